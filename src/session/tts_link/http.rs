//! The HTTP mode of [`TtsLink`]: one `POST /v1/text-to-speech/{voice}/stream/with-timestamps` per sentence, in
//! order, with the original system's sliding window of context: the first sentence is sent with `next_text`,
//! middle ones with `previous_text` and `next_text`, the last with `previous_text`. A sentence therefore starts
//! once the next one is known (or the reply has ended).
//!
//! The with-timestamps variant (lines of JSON, each with audio and the characters it speaks) is used rather
//! than the raw audio stream for two reasons: its character times tell which words a listener heard, and it
//! makes a cut body visible. awc hands over a chunked body that ends without its terminating chunk, or at a
//! chunk boundary, as if it were complete; here a body that ends inside a line, or before the characters of
//! the sentence have all been spoken, is an `elevenlabs_truncated` failure (retried before the sentence's
//! first audio, like any other, under [`TTS_RETRY`]).

use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use futures_util::StreamExt as _;

use super::pcm::SampleAligner;
use super::{TTS_RETRY, TtsCommand, TtsEvent, TtsLink};
use crate::audio::Encoding;
use crate::audio::meter::AudioMeter;
use crate::db::TurnId;
use crate::providers::elevenlabs::{HttpErrorBody, LineDecoder, TimestampedAudio, TtsRequest};
use crate::providers::{FailureKind, Provider, ProviderError};
use crate::retry::{AttemptError, retry_after_header};
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
    /// Measures the turn's audio across its sentences (away with the request in flight).
    meter: Option<AudioMeter>,
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
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    session: String,
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

    /// The turn HTTP mode is speaking, if any.
    pub(super) fn http_turn(&self) -> Option<TurnId> {
        self.http.turn.as_ref().map(|t| t.turn_id)
    }

    /// Speaks a turn that began on the socket over HTTP: the text it had so far, and its end if it came.
    pub(super) fn http_take_over(&mut self, turn_id: TurnId, texts: Vec<String>, ended: bool, ctx: &mut Context<Self>) {
        self.http_start(turn_id, ctx);
        for text in texts {
            self.http_text(turn_id, text, ctx);
        }
        if ended {
            self.http_end(turn_id, ctx);
        }
    }

    fn http_start(&mut self, turn_id: TurnId, ctx: &mut Context<Self>) {
        if self.settings.api_key.is_none() {
            let e = ProviderError::not_configured(Provider::ElevenLabs, "ELEVENLABS_API_KEY");
            return self.failed(turn_id, e);
        }
        if let Some(old) = self.http.turn.take()
            && let Some(h) = old.in_flight
        {
            ctx.cancel_future(h);
        }
        self.http.turn = Some(HttpTurn {
            turn_id,
            sentences: Vec::new(),
            next: 0,
            input_done: false,
            in_flight: None,
            meter: Some(AudioMeter::new(self.settings.output_format)),
        });
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
        if self.http.turn.as_ref().is_some_and(|t| t.turn_id == turn_id)
            && let Some(h) = self.http.turn.take().and_then(|t| t.in_flight)
        {
            ctx.cancel_future(h);
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
        let meter = t.meter.take().unwrap_or_else(|| AudioMeter::new(self.settings.output_format));
        let request = SentenceRequest {
            client: self.client.clone(),
            url: format!(
                "{}/text-to-speech/{}/stream/with-timestamps?output_format={}",
                self.settings.base_url, self.settings.voice_id, self.settings.output_format
            ),
            key: self.settings.api_key.as_ref().map(|k| k.expose().to_string()).unwrap_or_default(),
            body,
            turn_id,
            parent: self.parent.clone(),
            pcm16: self.settings.output_format.encoding == Encoding::Pcm,
            metrics: self.metrics.clone(),
            session: self.session.clone(),
        };
        let handle = ctx.spawn(request.run(meter).into_actor(self).map(move |(meter, result), this, ctx| {
            let Some(t) = this.http.turn.as_mut().filter(|t| t.turn_id == turn_id) else {
                return;
            };
            t.in_flight = None;
            t.meter = Some(meter);
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
    /// Speaks the sentence, retrying before its first audio; gives the turn's meter back with the outcome.
    async fn run(self, meter: AudioMeter) -> (AudioMeter, Result<(), ProviderError>) {
        let meter = std::cell::RefCell::new(meter);
        let on_retry = |e: &ProviderError, attempt: u32, delay: Duration| {
            log::warn!("session {}: TTS request attempt {attempt} failed ({e}); retrying in {delay:?}", self.session);
            self.metrics.provider_error(e);
        };
        let result = TTS_RETRY.run(|_| self.attempt(&meter), on_retry).await.map_err(|f| f.error);
        (meter.into_inner(), result)
    }

    /// One request; its failure says whether audio had already been delivered.
    async fn attempt(&self, meter: &std::cell::RefCell<AudioMeter>) -> Result<(), AttemptError<ProviderError>> {
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
        let mut speech = Speech {
            turn_id: self.turn_id,
            parent: &self.parent,
            pcm16: self.pcm16,
            aligner: SampleAligner::default(),
            // Character times run from the start of this request's audio; the turn's began earlier.
            offset_ms: meter.borrow().total_ms(),
            meter,
            delivered: false,
            aligned: false,
            spoken: 0,
        };
        let truncated = |speech: &Speech<'_>, why: String| {
            let e = ProviderError::new(Provider::ElevenLabs, FailureKind::Truncated, why);
            if speech.delivered { AttemptError::after_output(e) } else { AttemptError::new(e) }
        };
        let mut lines = LineDecoder::default();
        loop {
            match tokio::time::timeout(IDLE_TIMEOUT, response.next()).await {
                Err(_) => {
                    let e = ProviderError::new(Provider::ElevenLabs, FailureKind::Timeout, "the audio stream stalled");
                    return Err(if speech.delivered { AttemptError::after_output(e) } else { AttemptError::new(e) });
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(truncated(&speech, format!("audio cut off: {e}"))),
                Ok(Some(Ok(body))) => {
                    for line in lines.push(&body) {
                        match line {
                            Ok(chunk) => speech.take(&chunk),
                            Err(e) => return Err(truncated(&speech, e.to_string())),
                        }
                    }
                }
            }
        }
        match lines.finish() {
            Ok(Some(chunk)) => speech.take(&chunk),
            Ok(None) => {}
            Err(e) => return Err(truncated(&speech, e.to_string())),
        }
        let expected = self.body.text.chars().filter(|c| !c.is_whitespace()).count();
        // A provider that sends no alignment at all cannot be checked this way (ElevenLabs always sends it).
        if speech.aligned && speech.spoken < expected {
            let why = format!("the body ended after {} of the sentence's {expected} characters", speech.spoken);
            return Err(truncated(&speech, why));
        }
        Ok(())
    }
}

/// The audio of one sentence on its way to the parent.
struct Speech<'a> {
    turn_id: TurnId,
    parent: &'a Recipient<TtsEvent>,
    pcm16: bool,
    aligner: SampleAligner,
    meter: &'a std::cell::RefCell<AudioMeter>,
    offset_ms: f64,
    delivered: bool,
    /// Some line carried an alignment.
    aligned: bool,
    /// Non-blank characters the alignment says were spoken.
    spoken: usize,
}

impl Speech<'_> {
    fn take(&mut self, chunk: &TimestampedAudio) {
        let chars: Vec<(f64, char)> =
            chunk.char_ends_ms().into_iter().map(|(end, c)| (self.offset_ms + end, c)).collect();
        self.aligned |= chunk.alignment.is_some();
        self.spoken += chars.iter().filter(|(_, c)| !c.is_whitespace()).count();
        let audio = match chunk.audio_bytes() {
            Ok(a) => a,
            Err(e) => {
                log::warn!("undecodable audio from ElevenLabs: {e}");
                return;
            }
        };
        let bytes = self.aligner.align(Bytes::from(audio), self.pcm16);
        if bytes.is_empty() {
            return;
        }
        let ms = self.meter.borrow_mut().push(&bytes);
        self.delivered = true;
        self.parent.do_send(TtsEvent::Audio { turn_id: self.turn_id, bytes, ms, chars });
    }
}
