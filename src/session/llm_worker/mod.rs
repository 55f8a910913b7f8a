//! LlmWorker: streams one assistant reply at a time from an OpenAI-compatible `/chat/completions` endpoint,
//! running the tools the model calls on the way.
//!
//! Parent: the session (`client_socket`, through `children`), which sends [`Complete`] (system prompt, memory
//! and the new user message), [`CancelCompletion`] and [`ClientToolAnswer`], and receives [`LlmEvent`]s through
//! a `Recipient`. Owns: the requests of the current turn; cancelling drops them (and the tool calls in flight),
//! which closes the connections so the servers stop generating.
//!
//! A reply is a loop of steps (`step`): stream a completion from the agent's providers (fallback and circuit
//! breaker there), and when the model asks for tools, run them (`tool_runner`), append the calls and their
//! results to the conversation and stream again, up to `max_tool_steps` rounds; the last round is asked to
//! answer without tools. A tool that runs longer than a second has its filler spoken. The SSE body is decoded
//! with `providers::openai` (lines and UTF-8 split across reads, CRLF, comments, error objects mid-stream, a
//! stream cut without `[DONE]` reported as truncation).

mod breaker;
mod step;
mod tool_runner;

pub use breaker::Breakers;
pub use tool_runner::Caller;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::config::{Config, Secret};
use crate::db::ToolRecord;
use crate::db::TurnId;
use crate::metrics::Metrics;
use crate::providers::openai::{ChatMessage, ChatRequest, Role as ChatRole, ToolCall};
use crate::providers::{FailureKind, Provider, ProviderError};
use crate::retry::{Backoff, Failure, RetryPolicy};
use crate::tools::{FILLER_AFTER, ToolSpec};

/// Retries before the first token: three attempts in all, a server's wait honoured up to 5 s.
pub const REQUEST_RETRY: RetryPolicy = RetryPolicy {
    backoff: Backoff { first: Duration::from_millis(500), max: Duration::from_secs(4) },
    max_attempts: Some(3),
    deadline: None,
    max_retry_after: Duration::from_secs(5),
};
/// How long the response headers may take.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the stream may go silent (comments count as activity).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a whole reply may stream.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(180);

/// One OpenAI-compatible endpoint and model.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmProvider {
    /// How it is named in metrics, logs and stored messages (the model, unless the agents file names it).
    pub name: String,
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// Where the key came from (`OPENAI_API_KEY`), for the "not configured" error.
    pub api_key_env: String,
    pub model: String,
    /// With a provider after it: how long to wait for the first token before trying the next one.
    pub first_token_timeout: Option<Duration>,
}

/// What the worker needs to know.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// The primary, then the fallbacks, in order (never empty).
    pub providers: Vec<LlmProvider>,
    /// The tools the model is offered.
    pub tools: Arc<Vec<ToolSpec>>,
    /// Tool rounds per turn.
    pub max_tool_steps: u32,
    /// The providers' circuit breakers, shared by the agent's sessions.
    pub breakers: Arc<Breakers>,
}

impl LlmSettings {
    pub fn from_config(config: &Config) -> LlmSettings {
        LlmSettings {
            providers: vec![LlmProvider {
                name: config.openai.model.clone(),
                base_url: config.openai.base_url.clone(),
                api_key: config.openai.api_key.clone(),
                api_key_env: "OPENAI_API_KEY".into(),
                model: config.openai.model.clone(),
                first_token_timeout: None,
            }],
            tools: Arc::new(Vec::new()),
            max_tool_steps: crate::tools::DEFAULT_MAX_TOOL_STEPS,
            breakers: Arc::new(Breakers::default()),
        }
    }

    /// The primary provider.
    pub fn primary(&self) -> &LlmProvider {
        &self.providers[0]
    }
}

/// Stream a reply for `turn_id` to `messages`.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Complete {
    pub turn_id: TurnId,
    pub messages: Vec<ChatMessage>,
    /// Started before the turn is certain (preemptive generation): its text streams as usual, but no tool runs
    /// until [`ConfirmCompletion`] says the turn is real (tools act on the world; a discarded reply must not).
    pub speculative: bool,
}

/// The speculative reply `turn_id` became the turn: its tools may run.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ConfirmCompletion {
    pub turn_id: TurnId,
}

/// Stop the reply of `turn_id` now (barge-in, or the session ending); its tool calls in flight are dropped.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct CancelCompletion {
    pub turn_id: TurnId,
}

/// The client's answer to a client-side tool call.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ClientToolAnswer {
    pub call_id: String,
    pub answer: Result<serde_json::Value, String>,
}

/// The session is over: cancel whatever streams and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopWorker;

/// Tokens a reply used, summed over its steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LlmUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Some figure was estimated (a provider sent no usage).
    pub estimated: bool,
}

/// What the worker reports.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum LlmEvent {
    /// The request was sent (the latency clock starts; repeated on retries).
    Requested { turn_id: TurnId, at: Instant },
    /// Generated text.
    Token { turn_id: TurnId, text: String },
    /// The model called a tool; `client` when the session's client is to run it (and answer it).
    ToolStarted { turn_id: TurnId, call_id: String, name: String, arguments: serde_json::Value, client: bool },
    /// A tool call is over, with its result or error.
    ToolFinished { turn_id: TurnId, record: ToolRecord },
    /// A tool is taking a while: speak this meanwhile.
    Filler { turn_id: TurnId, text: String },
    /// The model called `end_conversation`: end the session once this turn has been spoken.
    EndConversation { turn_id: TurnId },
    /// The reply is complete; `provider` names the LLM that answered.
    Done { turn_id: TurnId, usage: LlmUsage, provider: String },
    /// The reply failed; `after_tokens` when some text had already been delivered.
    Failed { turn_id: TurnId, error: ProviderError, after_tokens: bool },
}

/// The `turn_id` field of any [`LlmEvent`] (every variant has one), by reference or by mutable reference.
macro_rules! turn_id_of {
    ($event:expr) => {
        match $event {
            LlmEvent::Requested { turn_id, .. }
            | LlmEvent::Token { turn_id, .. }
            | LlmEvent::ToolStarted { turn_id, .. }
            | LlmEvent::ToolFinished { turn_id, .. }
            | LlmEvent::Filler { turn_id, .. }
            | LlmEvent::EndConversation { turn_id }
            | LlmEvent::Done { turn_id, .. }
            | LlmEvent::Failed { turn_id, .. } => turn_id,
        }
    };
}

impl LlmEvent {
    /// The request the event is about.
    pub fn turn_id(&self) -> TurnId {
        *turn_id_of!(self)
    }

    /// The same event, about turn `id` (a speculative request's events once it became the turn).
    pub fn for_turn(mut self, id: TurnId) -> LlmEvent {
        *turn_id_of!(&mut self) = id;
        self
    }
}

/// The LLM client actor of one session.
pub struct LlmWorker {
    settings: LlmSettings,
    client: awc::Client,
    parent: Recipient<LlmEvent>,
    metrics: Arc<Metrics>,
    caller: Caller,
    current: Option<(TurnId, SpawnHandle)>,
    /// Opens the tools of the latest request (closed while it is speculative).
    confirm: Option<(TurnId, tokio::sync::watch::Sender<bool>)>,
    waiting: tool_runner::Waiting,
}

impl LlmWorker {
    pub fn new(
        settings: LlmSettings,
        client: awc::Client,
        parent: Recipient<LlmEvent>,
        metrics: Arc<Metrics>,
        caller: Caller,
    ) -> LlmWorker {
        LlmWorker {
            settings,
            client,
            parent,
            metrics,
            caller,
            current: None,
            confirm: None,
            waiting: Default::default(),
        }
    }
}

impl Actor for LlmWorker {
    type Context = Context<Self>;
}

impl Handler<Complete> for LlmWorker {
    type Result = ();

    fn handle(&mut self, msg: Complete, ctx: &mut Context<Self>) {
        if let Some((old, handle)) = self.current.take() {
            log::debug!("session {}: turn {old} superseded by turn {}", self.caller.session_id, msg.turn_id);
            ctx.cancel_future(handle);
        }
        let turn_id = msg.turn_id;
        let (confirm, confirmed) = tokio::sync::watch::channel(!msg.speculative);
        self.confirm = Some((turn_id, confirm));
        let worker = Worker {
            settings: self.settings.clone(),
            client: self.client.clone(),
            parent: self.parent.clone(),
            metrics: self.metrics.clone(),
            caller: self.caller.clone(),
            turn_id,
            waiting: self.waiting.clone(),
            confirmed,
        };
        let work = async move {
            let parent = worker.parent.clone();
            let outcome = tokio::time::timeout(TOTAL_TIMEOUT, worker.reply(msg.messages)).await.unwrap_or_else(|_| {
                let error = ProviderError::new(Provider::OpenAi, FailureKind::Timeout, "the reply took too long");
                Err(Failure { error, attempts: 1, output_started: true })
            });
            match outcome {
                Ok((usage, provider)) => parent.do_send(LlmEvent::Done { turn_id, usage, provider }),
                Err(Failure { error, output_started, .. }) => {
                    log::warn!("session {}: turn {turn_id}: {error}", worker.caller.session_id);
                    worker.metrics.provider_error(&error);
                    parent.do_send(LlmEvent::Failed { turn_id, error, after_tokens: output_started });
                }
            }
        };
        let handle = ctx.spawn(work.into_actor(self).map(move |(), this, _| {
            if this.current.as_ref().is_some_and(|(t, _)| *t == turn_id) {
                this.current = None;
            }
        }));
        self.current = Some((turn_id, handle));
    }
}

impl Handler<ConfirmCompletion> for LlmWorker {
    type Result = ();

    fn handle(&mut self, msg: ConfirmCompletion, _: &mut Context<Self>) {
        if let Some((turn, confirm)) = &self.confirm
            && *turn == msg.turn_id
        {
            confirm.send_replace(true);
        }
    }
}

impl Handler<CancelCompletion> for LlmWorker {
    type Result = ();

    fn handle(&mut self, msg: CancelCompletion, ctx: &mut Context<Self>) {
        if let Some((turn, handle)) = self.current.take() {
            if turn == msg.turn_id {
                ctx.cancel_future(handle);
                self.waiting.lock().unwrap_or_else(|e| e.into_inner()).clear();
            } else {
                self.current = Some((turn, handle));
            }
        }
    }
}

impl Handler<ClientToolAnswer> for LlmWorker {
    type Result = ();

    fn handle(&mut self, msg: ClientToolAnswer, _: &mut Context<Self>) {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&msg.call_id);
        match waiting {
            Some(tx) => {
                let _ = tx.send(msg.answer);
            }
            None => log::debug!(
                "session {}: answer to tool call {} that no longer waits",
                self.caller.session_id,
                msg.call_id
            ),
        }
    }
}

impl Handler<StopWorker> for LlmWorker {
    type Result = ();

    fn handle(&mut self, _: StopWorker, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// One reply being generated.
struct Worker {
    settings: LlmSettings,
    client: awc::Client,
    parent: Recipient<LlmEvent>,
    metrics: Arc<Metrics>,
    caller: Caller,
    turn_id: TurnId,
    waiting: tool_runner::Waiting,
    /// True once the request is the turn's (at once unless it is speculative).
    confirmed: tokio::sync::watch::Receiver<bool>,
}

impl Worker {
    /// Waits until the request is the turn's before anything acts on the world. A request that never is gets
    /// cancelled meanwhile (superseded, interrupted or discarded), so waiting forever is never seen.
    async fn until_confirmed(&self) {
        let mut confirmed = self.confirmed.clone();
        if confirmed.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// The reply's steps: stream, run the tools the model asked for, stream again with their results.
    async fn reply(&self, mut messages: Vec<ChatMessage>) -> Result<(LlmUsage, String), Failure<ProviderError>> {
        let tools = self.settings.tools.clone();
        let mut usage = LlmUsage::default();
        let mut spoke = false;
        let mut step_no = 0;
        loop {
            let mut request = ChatRequest::streaming(self.settings.primary().model.clone(), messages.clone());
            if !tools.is_empty() {
                request.tools = Some(tools.iter().map(ToolSpec::declaration).collect());
                if step_no >= self.settings.max_tool_steps {
                    request.tool_choice = Some(serde_json::Value::String("none".into()));
                }
            }
            let output = match self.step(&request).await {
                Ok(o) => o,
                Err(mut f) => {
                    f.output_started |= spoke;
                    return Err(f);
                }
            };
            spoke |= !output.text.is_empty();
            match &output.usage {
                Some(u) => {
                    usage.prompt_tokens += u64::from(u.prompt_tokens);
                    usage.completion_tokens += u64::from(u.completion_tokens);
                }
                None => {
                    usage.estimated = true;
                    usage.prompt_tokens += step::estimate_tokens(step::prompt_chars(&request.messages));
                    let args: usize = output.calls.iter().map(|c| c.function.arguments.len()).sum();
                    usage.completion_tokens += step::estimate_tokens(output.text.chars().count() + args);
                }
            }
            let provider = self.settings.providers[output.provider].name.clone();
            if output.calls.is_empty() || tools.is_empty() || step_no >= self.settings.max_tool_steps {
                if !output.calls.is_empty() {
                    log::warn!(
                        "session {}: turn {}: tool calls past max_tool_steps ({}) ignored",
                        self.caller.session_id,
                        self.turn_id,
                        self.settings.max_tool_steps
                    );
                }
                return Ok((usage, provider));
            }
            step_no += 1;
            let calls: Vec<ToolCall> = output
                .calls
                .into_iter()
                .enumerate()
                .map(|(i, mut c)| {
                    if c.id.is_empty() {
                        c.id = format!("call_{}_{step_no}_{i}", self.turn_id);
                    }
                    c
                })
                .collect();
            self.until_confirmed().await;
            let records = self.run_tools(&calls).await;
            let mut assistant = ChatMessage::new(ChatRole::Assistant, output.text);
            if assistant.text().is_empty() {
                assistant.content = None;
            }
            assistant.tool_calls = Some(calls);
            messages.push(assistant);
            for record in records {
                let mut answer = ChatMessage::new(ChatRole::Tool, record.answer());
                answer.tool_call_id = Some(record.call_id.clone());
                messages.push(answer);
            }
        }
    }

    /// Runs a step's calls concurrently; speaks a filler when one takes longer than [`FILLER_AFTER`].
    async fn run_tools(&self, calls: &[ToolCall]) -> Vec<ToolRecord> {
        let runner = tool_runner::Runner {
            client: &self.client,
            tools: &self.settings.tools,
            caller: &self.caller,
            parent: &self.parent,
            turn_id: self.turn_id,
            waiting: &self.waiting,
        };
        for call in calls {
            let spec = runner.spec(&call.function.name);
            let arguments = serde_json::from_str(&call.function.arguments)
                .unwrap_or_else(|_| serde_json::Value::String(call.function.arguments.clone()));
            self.parent.do_send(LlmEvent::ToolStarted {
                turn_id: self.turn_id,
                call_id: call.id.clone(),
                name: call.function.name.clone(),
                arguments,
                client: spec.is_some_and(|s| s.kind == crate::tools::ToolKind::Client),
            });
        }
        let filler = calls.iter().find_map(|c| runner.spec(&c.function.name).and_then(|s| s.filler.clone()));
        let all = futures_util::future::join_all(calls.iter().map(|c| async {
            let record = runner.run(c).await;
            self.parent.do_send(LlmEvent::ToolFinished { turn_id: self.turn_id, record: record.clone() });
            record
        }));
        tokio::pin!(all);
        if let Some(text) = filler {
            tokio::select! {
                records = &mut all => return records,
                () = tokio::time::sleep(FILLER_AFTER) => {
                    self.parent.do_send(LlmEvent::Filler { turn_id: self.turn_id, text });
                }
            }
        }
        all.await
    }
}
