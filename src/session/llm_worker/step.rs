//! One step of a reply: a streamed chat completion, from the first provider of the agent's list that answers.
//! Text deltas are passed on as they come ([`LlmEvent::Token`]); tool-call fragments are assembled (with or
//! without `index`); the usage chunk is kept. Providers are tried in the breaker's order: each but the last gets
//! one attempt (and, when it has one, its `first_token_timeout`), the last gets the full [`REQUEST_RETRY`]
//! policy. A provider fails over only before its first token and only on a failure that may pass (rate limit,
//! server error, connection, timeout, a cut body); after the first token nothing is retried anywhere (it would
//! repeat what was already spoken).

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;

use super::{IDLE_TIMEOUT, LlmEvent, LlmProvider, REQUEST_RETRY, RESPONSE_TIMEOUT, Worker};
use crate::providers::openai::{
    ApiErrorBody, ChatMessage, ChatRequest, ChatStreamDecoder, StreamItem, ToolCall, ToolCallAccumulator, Usage,
};
use crate::providers::{FailureKind, Provider, ProviderError};
use crate::retry::{AttemptError, Failure, RetryPolicy, retry_after_header};

/// What one step produced.
#[derive(Debug, Default)]
pub struct StepOutput {
    /// The text delivered (already passed on as tokens).
    pub text: String,
    /// The tool calls the model made, assembled.
    pub calls: Vec<ToolCall>,
    /// The provider's usage figures, when it sent them.
    pub usage: Option<Usage>,
    /// Index of the provider that answered.
    pub provider: usize,
}

impl Worker {
    /// Runs one step over the providers.
    pub(super) async fn step(&self, request: &ChatRequest) -> Result<StepOutput, Failure<ProviderError>> {
        let providers = &self.settings.providers;
        let order = self.settings.breakers.order(providers.len(), Instant::now());
        let mut failure = None;
        for (pos, &i) in order.iter().enumerate() {
            let provider = &providers[i];
            let last = pos + 1 == order.len();
            let Some(key) = provider.api_key.clone() else {
                let error = ProviderError::not_configured(Provider::OpenAi, &provider.api_key_env);
                failure = Some(Failure { error, attempts: 0, output_started: false });
                continue;
            };
            let policy = if last { REQUEST_RETRY } else { RetryPolicy { max_attempts: Some(1), ..REQUEST_RETRY } };
            let first_token_timeout = if last { None } else { provider.first_token_timeout };
            let mut request = request.clone();
            request.model = provider.model.clone();
            let on_retry = |error: &ProviderError, attempt: u32, delay: Duration| {
                log::warn!(
                    "session {}: LLM {} attempt {attempt} failed ({error}); retrying in {delay:?}",
                    self.caller.session_id,
                    provider.name
                );
                self.metrics.provider_error(error);
            };
            let outcome = policy
                .run(
                    |_| {
                        self.parent.do_send(LlmEvent::Requested { turn_id: self.turn_id, at: Instant::now() });
                        self.attempt(provider, key.expose(), &request, first_token_timeout)
                    },
                    on_retry,
                )
                .await;
            match outcome {
                Ok(mut output) => {
                    self.settings.breakers.success(i);
                    output.provider = i;
                    if i != 0 {
                        self.metrics.llm_fallbacks_total.with_label_values(&[&providers[0].name, &provider.name]).inc();
                        log::info!(
                            "session {}: turn {} answered by fallback LLM {}",
                            self.caller.session_id,
                            self.turn_id,
                            provider.name
                        );
                    }
                    return Ok(output);
                }
                Err(f) => {
                    if self.settings.breakers.failure(i, Instant::now()) {
                        log::warn!("LLM {} keeps failing; tried last for a while", provider.name);
                    }
                    let fails_over = !f.output_started && f.error.retryable() && !last;
                    if !fails_over {
                        return Err(f);
                    }
                    log::warn!(
                        "session {}: LLM {} failed before its first token ({}); trying the next provider",
                        self.caller.session_id,
                        provider.name,
                        f.error
                    );
                    self.metrics.provider_error(&f.error);
                    failure = Some(f);
                }
            }
        }
        Err(failure.unwrap_or_else(|| Failure {
            error: ProviderError::not_configured(Provider::OpenAi, "OPENAI_API_KEY"),
            attempts: 0,
            output_started: false,
        }))
    }

    /// One request to one provider.
    async fn attempt(
        &self,
        provider: &LlmProvider,
        key: &str,
        request: &ChatRequest,
        first_token_timeout: Option<Duration>,
    ) -> Result<StepOutput, AttemptError<ProviderError>> {
        let err = |kind, message: String| AttemptError::new(ProviderError::new(Provider::OpenAi, kind, message));
        let first_token_by = first_token_timeout.map(|t| tokio::time::Instant::now() + t);
        let no_first_token = || {
            err(
                FailureKind::Timeout,
                format!("no first token within {} ms", first_token_timeout.unwrap_or_default().as_millis()),
            )
        };
        let send = self
            .client
            .post(format!("{}/chat/completions", provider.base_url))
            .bearer_auth(key)
            .insert_header(("Accept", "text/event-stream"))
            .send_json(request);
        let deadline = match first_token_by {
            Some(by) => by.min(tokio::time::Instant::now() + RESPONSE_TIMEOUT),
            None => tokio::time::Instant::now() + RESPONSE_TIMEOUT,
        };
        let mut response = match tokio::time::timeout_at(deadline, send).await {
            Err(_) if first_token_by.is_some_and(|by| by <= tokio::time::Instant::now()) => {
                return Err(no_first_token());
            }
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
        let mut out = StepOutput::default();
        let mut calls = ToolCallAccumulator::new();
        let mut started = false;
        let cut = |e: ProviderError, delivered: bool| {
            if delivered { AttemptError::after_output(e) } else { AttemptError::new(e) }
        };
        loop {
            let wait = match first_token_by.filter(|_| !started) {
                Some(by) => by.min(tokio::time::Instant::now() + IDLE_TIMEOUT),
                None => tokio::time::Instant::now() + IDLE_TIMEOUT,
            };
            let chunk = match tokio::time::timeout_at(wait, response.next()).await {
                Err(_) if !started && first_token_by.is_some_and(|by| by <= tokio::time::Instant::now()) => {
                    return Err(no_first_token());
                }
                Err(_) => {
                    let e = ProviderError::new(Provider::OpenAi, FailureKind::Timeout, "the stream stalled");
                    return Err(cut(e, !out.text.is_empty()));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    let e = ProviderError::new(Provider::OpenAi, FailureKind::Truncated, format!("stream broke: {e}"));
                    return Err(cut(e, !out.text.is_empty()));
                }
                Ok(Some(Ok(bytes))) => bytes,
            };
            for item in decoder.push(&chunk) {
                match item {
                    StreamItem::Chunk(c) => {
                        if let Some(u) = &c.usage {
                            out.usage = Some(u.clone());
                        }
                        if let Some(text) = c.content().filter(|t| !t.is_empty()) {
                            started = true;
                            out.text.push_str(text);
                            self.parent.do_send(LlmEvent::Token { turn_id: self.turn_id, text: text.to_string() });
                        }
                        for choice in c.choices.iter().filter(|c| c.index == 0) {
                            for delta in choice.delta.tool_calls.iter().flatten() {
                                started = true;
                                calls.push(delta);
                            }
                        }
                    }
                    StreamItem::Done => {
                        out.calls = calls.calls();
                        return Ok(out);
                    }
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
                        return Err(cut(e, !out.text.is_empty()));
                    }
                    StreamItem::Ignored => {}
                    StreamItem::Invalid { reason, .. } => {
                        let e = ProviderError::new(
                            Provider::OpenAi,
                            FailureKind::Protocol,
                            format!("unreadable event: {reason}"),
                        );
                        return Err(cut(e, !out.text.is_empty()));
                    }
                }
            }
        }
        match decoder.finish() {
            Ok(()) => {
                out.calls = calls.calls();
                Ok(out)
            }
            Err(end) => Err(cut(
                ProviderError::new(Provider::OpenAi, FailureKind::Truncated, end.to_string()),
                !out.text.is_empty(),
            )),
        }
    }
}

/// Rough token count of text when a provider reports none (about four characters a token).
pub fn estimate_tokens(chars: usize) -> u64 {
    chars.div_ceil(4) as u64
}

/// Characters of the messages sent, for an estimate of the prompt tokens.
pub fn prompt_chars(messages: &[ChatMessage]) -> usize {
    messages
        .iter()
        .map(|m| {
            m.text().chars().count()
                + m.tool_calls
                    .iter()
                    .flatten()
                    .map(|c| c.function.arguments.len() + c.function.name.len())
                    .sum::<usize>()
        })
        .sum()
}
