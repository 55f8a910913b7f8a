//! The HTTP mode of [`TtsLink`]: one `POST /v1/text-to-speech/{voice}/stream` per sentence, in order, with the
//! original system's sliding window of context: the first sentence is sent with `next_text`, middle ones with
//! `previous_text` and `next_text`, the last with `previous_text`. A sentence therefore starts once the next
//! one is known (or the reply has ended).

use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use futures_util::StreamExt as _;

use super::pcm::SampleAligner;
use super::{TtsCommand, TtsEvent, TtsLink};
use crate::audio::Encoding;
use crate::db::TurnId;
use crate::providers::elevenlabs::{HttpErrorBody, TtsRequest};
use crate::providers::{FailureKind, Provider, ProviderError};
use crate::retry::{AttemptError, Backoff, RetryPolicy, retry_after_header};

/// A sentence's request before its first byte: three attempts in all.
const REQUEST_RETRY: RetryPolicy = RetryPolicy {
    backoff: Backoff { first: Duration::from_millis(250), max: Duration::from_secs(2) },
    max_attempts: Some(3),
    deadline: None,
    max_retry_after: Duration::from_secs(2),
};
/// How long the response headers may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the audio body may go silent.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// The turn being spoken.
struct HttpTurn {
    turn_id: TurnId,
    sentences: Vec<String>,
    /// Index of the next sentence to request.
    next: usize,
    input_done: bool,
    in_flight: Option<SpawnHandle>,
}

/// HTTP-mode state.
#[derive(Default)]
pub(super) struct HttpMode {
    turn: Option<HttpTurn>,
}

/// One sentence's request.
struct SentenceRequest {
    client: awc::Client,
    url: String,
    key: String,
    body: TtsRequest,
    turn_id: TurnId,
    parent: Recipient<TtsEvent>,
    pcm16: bool,
}

impl TtsLink {
    pub(super) fn http_command(&mut self, command: TtsCommand, ctx: &mut Context<Self>) {
        match command {
            TtsCommand::Start { turn_id } => self.http_start(turn_id, ctx),
            TtsCommand::Text { turn_id, text } => self.http_text(turn_id, text, ctx),
            TtsCommand::End { turn_id } => self.http_end(turn_id, ctx),
            TtsCommand::Cancel { turn_id } => self.http_cancel(turn_id, ctx),
        }
    }

    fn http_start(&mut self, turn_id: TurnId, ctx: &mut Context<Self>) {
        if self.settings.api_key.is_none() {
            let e = ProviderError::not_configured(Provider::ElevenLabs, "ELEVENLABS_API_KEY");
            return self.failed(turn_id, e);
        }
        if let Some(old) = self.http.turn.take() {
            if let Some(h) = old.in_flight {
                ctx.cancel_future(h);
            }
        }
        self.http.turn = Some(HttpTurn { turn_id, sentences: Vec::new(), next: 0, input_done: false, in_flight: None });
    }

    fn http_text(&mut self, turn_id: TurnId, text: String, ctx: &mut Context<Self>) {
        match self.http.turn.as_mut() {
            Some(t) if t.turn_id == turn_id && !t.input_done && !text.trim().is_empty() => {
                t.sentences.push(text.trim().to_string());
            }
            _ => return,
        }
        self.http_pump(ctx);
    }

    fn http_end(&mut self, turn_id: TurnId, ctx: &mut Context<Self>) {
        match self.http.turn.as_mut() {
            Some(t) if t.turn_id == turn_id => t.input_done = true,
            _ => return,
        }
        self.http_pump(ctx);
    }

    fn http_cancel(&mut self, turn_id: TurnId, ctx: &mut Context<Self>) {
        if self.http.turn.as_ref().is_some_and(|t| t.turn_id == turn_id) {
            if let Some(h) = self.http.turn.take().and_then(|t| t.in_flight) {
                ctx.cancel_future(h);
            }
        }
    }

    /// Starts the next sentence when it can start, or reports the turn done.
    fn http_pump(&mut self, ctx: &mut Context<Self>) {
        let Some(t) = self.http.turn.as_mut() else {
            return;
        };
        if t.in_flight.is_some() {
            return;
        }
        if t.next >= t.sentences.len() {
            if t.input_done {
                let turn_id = t.turn_id;
                self.http.turn = None;
                self.report(TtsEvent::Done { turn_id });
            }
            return;
        }
        let known_next = t.next + 1 < t.sentences.len();
        if !known_next && !t.input_done {
            return; // wait for the next sentence: it is sent as next_text
        }
        let i = t.next;
        let body = TtsRequest {
            text: t.sentences[i].clone(),
            model_id: Some(self.settings.model_id.clone()),
            previous_text: i.checked_sub(1).map(|p| t.sentences[p].clone()),
            next_text: t.sentences.get(i + 1).cloned(),
            ..Default::default()
        };
        let turn_id = t.turn_id;
        let request = SentenceRequest {
            client: self.client.clone(),
            url: format!(
                "{}/text-to-speech/{}/stream?output_format={}",
                self.settings.base_url, self.settings.voice_id, self.settings.output_format
            ),
            key: self.settings.api_key.as_ref().map(|k| k.expose().to_string()).unwrap_or_default(),
            body,
            turn_id,
            parent: self.parent.clone(),
            pcm16: self.settings.output_format.encoding == Encoding::Pcm,
        };
        let handle = ctx.spawn(request.run().into_actor(self).map(move |result, this, ctx| {
            let Some(t) = this.http.turn.as_mut().filter(|t| t.turn_id == turn_id) else {
                return;
            };
            t.in_flight = None;
            match result {
                Ok(()) => {
                    t.next += 1;
                    this.http_pump(ctx);
                }
                Err(e) => {
                    this.http.turn = None;
                    this.failed(turn_id, e);
                }
            }
        }));
        if let Some(t) = self.http.turn.as_mut() {
            t.in_flight = Some(handle);
        }
    }
}

impl SentenceRequest {
    async fn run(self) -> Result<(), ProviderError> {
        let on_retry = |e: &ProviderError, attempt: u32, delay: Duration| {
            log::info!("TTS request attempt {attempt} failed ({e}); retrying in {delay:?}");
        };
        REQUEST_RETRY.run(|_| self.attempt(), on_retry).await.map_err(|f| f.error)
    }

    /// One request; its failure says whether audio had already been delivered.
    async fn attempt(&self) -> Result<(), AttemptError<ProviderError>> {
        let fail = |kind, msg: String| AttemptError::new(ProviderError::new(Provider::ElevenLabs, kind, msg));
        let send = self.client.post(&self.url).insert_header(("xi-api-key", self.key.as_str())).send_json(&self.body);
        let mut response = match tokio::time::timeout(RESPONSE_TIMEOUT, send).await {
            Err(_) => return Err(fail(FailureKind::Timeout, "no response in time".into())),
            Ok(Err(e)) => return Err(fail(FailureKind::Connect, e.to_string())),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if !status.is_success() {
            let wait = retry_after_header(response.headers());
            let body = response.body().limit(64 * 1024).await.unwrap_or_default();
            let detail = serde_json::from_slice::<HttpErrorBody>(&body)
                .map(|b| b.message())
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(200).collect());
            return Err(fail(FailureKind::from_status(status.as_u16()), format!("HTTP {status}: {detail}"))
                .with_retry_after(wait));
        }
        let mut aligner = SampleAligner::default();
        let mut delivered = false;
        let cut = |e: ProviderError, delivered: bool| {
            if delivered { AttemptError::after_output(e) } else { AttemptError::new(e) }
        };
        loop {
            match tokio::time::timeout(IDLE_TIMEOUT, response.next()).await {
                Err(_) => {
                    let e = ProviderError::new(Provider::ElevenLabs, FailureKind::Timeout, "the audio stream stalled");
                    return Err(cut(e, delivered));
                }
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => {
                    let e =
                        ProviderError::new(Provider::ElevenLabs, FailureKind::Truncated, format!("audio cut off: {e}"));
                    return Err(cut(e, delivered));
                }
                Ok(Some(Ok(chunk))) => {
                    let bytes: Bytes = aligner.align(chunk, self.pcm16);
                    if !bytes.is_empty() {
                        delivered = true;
                        self.parent.do_send(TtsEvent::Audio { turn_id: self.turn_id, bytes });
                    }
                }
            }
        }
    }
}
