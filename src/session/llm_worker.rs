//! LlmWorker: streams one assistant reply at a time from an OpenAI-compatible `/chat/completions` endpoint.
//!
//! Parent: the session (`client_socket`, through `children`), which sends [`Complete`] (system prompt + memory + the new user message) and
//! [`CancelCompletion`], and receives [`LlmEvent`]s through a `Recipient`. Owns: the HTTP request of the
//! current turn; cancelling drops it, which closes the connection so the server stops generating.
//!
//! The SSE body is decoded with `providers::openai` (lines and UTF-8 split across reads, CRLF, comments, error
//! objects mid-stream, a stream cut without `[DONE]` reported as truncation). Failures before the first token
//! that may pass (429, 5xx, connection errors, timeouts) are retried under [`REQUEST_RETRY`], honouring a
//! short `Retry-After`; after the first token nothing is retried (it would repeat what was already spoken).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::StreamExt as _;

use crate::config::{Config, Secret};
use crate::db::TurnId;
use crate::metrics::Metrics;
use crate::providers::openai::{ApiErrorBody, ChatMessage, ChatRequest, ChatStreamDecoder, StreamItem};
use crate::providers::{FailureKind, Provider, ProviderError};
use crate::retry::{AttemptError, Backoff, Failure, RetryPolicy, retry_after_header};
use crate::tools::ToolSpec;

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
}

/// Stop the reply of `turn_id` now (barge-in, or the session ending).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct CancelCompletion {
    pub turn_id: TurnId,
}

/// The session is over: cancel whatever streams and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopWorker;

/// What the worker reports.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum LlmEvent {
    /// The request was sent (the latency clock starts; repeated on retries).
    Requested { turn_id: TurnId, at: Instant },
    /// Generated text.
    Token { turn_id: TurnId, text: String },
    /// The reply is complete.
    Done { turn_id: TurnId },
    /// The reply failed; `after_tokens` when some text had already been delivered.
    Failed { turn_id: TurnId, error: ProviderError, after_tokens: bool },
}

/// The LLM client actor of one session.
pub struct LlmWorker {
    settings: LlmSettings,
    client: awc::Client,
    parent: Recipient<LlmEvent>,
    metrics: Arc<Metrics>,
    session: String,
    current: Option<(TurnId, SpawnHandle)>,
}

impl LlmWorker {
    pub fn new(
        settings: LlmSettings,
        client: awc::Client,
        parent: Recipient<LlmEvent>,
        metrics: Arc<Metrics>,
        session: String,
    ) -> LlmWorker {
        LlmWorker { settings, client, parent, metrics, session, current: None }
    }
}

impl Actor for LlmWorker {
    type Context = Context<Self>;
}

impl Handler<Complete> for LlmWorker {
    type Result = ();

    fn handle(&mut self, msg: Complete, ctx: &mut Context<Self>) {
        if let Some((old, handle)) = self.current.take() {
            log::debug!("session {}: turn {old} superseded by turn {}", self.session, msg.turn_id);
            ctx.cancel_future(handle);
        }
        let turn_id = msg.turn_id;
        let parent = self.parent.clone();
        let primary = self.settings.primary();
        let Some(key) = primary.api_key.clone() else {
            let error = ProviderError::not_configured(Provider::OpenAi, &primary.api_key_env);
            parent.do_send(LlmEvent::Failed { turn_id, error, after_tokens: false });
            return;
        };
        let stream = Stream {
            client: self.client.clone(),
            url: format!("{}/chat/completions", primary.base_url),
            key,
            request: ChatRequest::streaming(primary.model.clone(), msg.messages),
            parent: parent.clone(),
            turn_id,
            metrics: self.metrics.clone(),
            session: self.session.clone(),
        };
        let session = self.session.clone();
        let metrics = self.metrics.clone();
        let work = async move {
            let outcome = tokio::time::timeout(TOTAL_TIMEOUT, stream.run()).await.unwrap_or_else(|_| {
                let error = ProviderError::new(Provider::OpenAi, FailureKind::Timeout, "the reply took too long");
                Err(Failure { error, attempts: 1, output_started: true })
            });
            match outcome {
                Ok(()) => {
                    parent.do_send(LlmEvent::Done { turn_id });
                }
                Err(Failure { error, output_started, .. }) => {
                    log::warn!("session {session}: turn {turn_id}: {error}");
                    metrics.provider_error(&error);
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

impl Handler<CancelCompletion> for LlmWorker {
    type Result = ();

    fn handle(&mut self, msg: CancelCompletion, ctx: &mut Context<Self>) {
        if let Some((turn, handle)) = self.current.take() {
            if turn == msg.turn_id {
                ctx.cancel_future(handle);
            } else {
                self.current = Some((turn, handle));
            }
        }
    }
}

impl Handler<StopWorker> for LlmWorker {
    type Result = ();

    fn handle(&mut self, _: StopWorker, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// One streamed completion, with its retries.
struct Stream {
    client: awc::Client,
    url: String,
    key: Secret,
    request: ChatRequest,
    parent: Recipient<LlmEvent>,
    turn_id: TurnId,
    metrics: Arc<Metrics>,
    session: String,
}

impl Stream {
    async fn run(self) -> Result<(), Failure<ProviderError>> {
        let on_retry = |error: &ProviderError, attempt: u32, delay: Duration| {
            log::warn!("session {}: LLM attempt {attempt} failed ({error}); retrying in {delay:?}", self.session);
            self.metrics.provider_error(error);
        };
        REQUEST_RETRY
            .run(
                |_| {
                    self.parent.do_send(LlmEvent::Requested { turn_id: self.turn_id, at: Instant::now() });
                    self.attempt()
                },
                on_retry,
            )
            .await
    }

    /// One request; its failure says whether tokens were delivered and how long the server asked to wait.
    async fn attempt(&self) -> Result<(), AttemptError<ProviderError>> {
        let err = |kind, message: String| AttemptError::new(ProviderError::new(Provider::OpenAi, kind, message));
        let send = self
            .client
            .post(&self.url)
            .bearer_auth(self.key.expose())
            .insert_header(("Accept", "text/event-stream"))
            .send_json(&self.request);
        let mut response = match tokio::time::timeout(RESPONSE_TIMEOUT, send).await {
            Err(_) => return Err(err(FailureKind::Timeout, "no response in time".into())),
            Ok(Err(e)) => return Err(err(FailureKind::Connect, e.to_string())),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if !status.is_success() {
            let wait = retry_after_header(response.headers());
            let body = response.body().limit(64 * 1024).await.unwrap_or_default();
            let detail = serde_json::from_slice::<ApiErrorBody>(&body)
                .map(|b| b.error.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(200).collect());
            return Err(err(FailureKind::from_status(status.as_u16()), format!("HTTP {status}: {detail}"))
                .with_retry_after(wait));
        }
        let mut decoder = ChatStreamDecoder::new();
        let mut delivered = false;
        let cut = |e: ProviderError, delivered: bool| {
            if delivered { AttemptError::after_output(e) } else { AttemptError::new(e) }
        };
        loop {
            let chunk = match tokio::time::timeout(IDLE_TIMEOUT, response.next()).await {
                Err(_) => {
                    let e = ProviderError::new(Provider::OpenAi, FailureKind::Timeout, "the stream stalled");
                    return Err(cut(e, delivered));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    let e = ProviderError::new(Provider::OpenAi, FailureKind::Truncated, format!("stream broke: {e}"));
                    return Err(cut(e, delivered));
                }
                Ok(Some(Ok(bytes))) => bytes,
            };
            for item in decoder.push(&chunk) {
                match item {
                    StreamItem::Chunk(c) => {
                        if let Some(text) = c.content().filter(|t| !t.is_empty()) {
                            delivered = true;
                            self.parent.do_send(LlmEvent::Token { turn_id: self.turn_id, text: text.to_string() });
                        }
                    }
                    StreamItem::Done => return Ok(()),
                    StreamItem::Error(body) => {
                        let kind = if body.error.kind.as_deref() == Some("server_error") {
                            FailureKind::Server
                        } else {
                            FailureKind::Protocol
                        };
                        let e = ProviderError::new(
                            Provider::OpenAi,
                            kind,
                            format!("error mid-stream: {}", body.error.message),
                        );
                        return Err(cut(e, delivered));
                    }
                    StreamItem::Ignored => {}
                    StreamItem::Invalid { reason, .. } => {
                        let e = ProviderError::new(
                            Provider::OpenAi,
                            FailureKind::Protocol,
                            format!("unreadable event: {reason}"),
                        );
                        return Err(cut(e, delivered));
                    }
                }
            }
        }
        match decoder.finish() {
            Ok(()) => Ok(()),
            Err(end) => {
                Err(cut(ProviderError::new(Provider::OpenAi, FailureKind::Truncated, end.to_string()), delivered))
            }
        }
    }
}
