//! DeepgramLink: streams the session's microphone audio to Deepgram live STT and reports what it hears.
//!
//! Parent: the session (`client_socket`, through `children`), which sends [`SttAudio`], [`SttFinalize`] and [`SttShutdown`] and receives
//! [`SttEvent`]s through a `Recipient`. Owns: the Deepgram WebSocket and the audio waiting while it connects.
//!
//! Keeps the socket alive with `KeepAlive` text frames whenever no audio has flowed for a few seconds (Deepgram
//! closes an idle socket after ~10 s), reconnects with backoff after an abnormal close and says so, and treats
//! refusals (401/403, policy closes) as final. Times are reported in *session audio time* (seconds of the
//! client's audio since the session began), continuous across reconnects; "end of speech" is mapped back to the
//! instant that audio arrived from the client ([`AudioClock`], `clock.rs`). `frames.rs` handles what Deepgram
//! sends; `settings.rs` builds the `/listen` URL. Reconnects follow [`RECONNECT`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use awc::ws::Message as WsMessage;
use bytes::Bytes;

mod clock;
mod frames;
mod settings;

pub use settings::SttSettings;

use self::clock::AudioClock;
use super::ws_upstream::{self, WsSink};
use crate::metrics::Metrics;
use crate::providers::deepgram::ClientMessage;
use crate::providers::{Provider, ProviderError};
use crate::retry::{Backoff, RetryPolicy};

/// Send a KeepAlive when nothing was sent for this long (Deepgram's idle limit is ~10 s).
pub const KEEPALIVE_AFTER: Duration = Duration::from_secs(4);
/// Reconnect attempts after an abnormal close before giving up.
pub const MAX_RECONNECTS: u32 = 5;
/// How a lost connection is reopened: the connection that failed counts as the first attempt.
pub const RECONNECT: RetryPolicy = RetryPolicy {
    backoff: Backoff { first: Duration::from_millis(250), max: Duration::from_secs(4) },
    max_attempts: Some(MAX_RECONNECTS + 1),
    deadline: None,
    max_retry_after: Duration::ZERO,
};
/// Audio kept while (re)connecting, in seconds; older audio is dropped.
const MAX_BUFFERED_SECS: u64 = 10;
/// How long to wait for Deepgram's close after `CloseStream`.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A chunk of the client's PCM, with when it arrived.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SttAudio {
    pub pcm: Bytes,
    pub arrived: Instant,
}

/// Ask Deepgram to finalise what it has buffered (the client closed its microphone).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SttFinalize;

/// The session is over: close the stream properly and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SttShutdown;

/// What the link reports to its parent.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum SttEvent {
    /// A transcript; `end` is the session audio time its speech reaches, `speech_end` when that audio arrived.
    Transcript {
        text: String,
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
        end: Option<f64>,
        speech_end: Option<Instant>,
    },
    /// Deepgram heard speech begin at session audio time `at`.
    SpeechStarted { at: f64 },
    /// The pause after the last word is long enough to end the utterance.
    UtteranceEnd,
    /// Something the user should know that is not an error (reconnecting).
    Status(String),
    /// The link gave up; speech recognition is unavailable for the rest of the session.
    Failed(ProviderError),
}

enum State {
    Idle,
    Connecting,
    Open(WsSink),
    Waiting,
    Closing,
    Failed,
}

/// The STT client actor of one session.
pub struct DeepgramLink {
    settings: SttSettings,
    client: awc::Client,
    parent: Recipient<SttEvent>,
    metrics: Arc<Metrics>,
    session: String,
    state: State,
    generation: u64,
    attempts: u32,
    buffered: VecDeque<(Bytes, Instant)>,
    buffered_bytes: usize,
    clock: AudioClock,
    /// Session audio time at which the current connection's audio time 0 lies.
    offset: f64,
    last_sent: Instant,
    shutting_down: bool,
}

impl DeepgramLink {
    pub fn new(
        settings: SttSettings,
        client: awc::Client,
        parent: Recipient<SttEvent>,
        metrics: Arc<Metrics>,
        session: String,
    ) -> DeepgramLink {
        let clock = AudioClock::new(settings.bytes_per_second());
        DeepgramLink {
            settings,
            client,
            parent,
            metrics,
            session,
            state: State::Idle,
            generation: 0,
            attempts: 0,
            buffered: VecDeque::new(),
            buffered_bytes: 0,
            clock,
            offset: 0.0,
            last_sent: Instant::now(),
            shutting_down: false,
        }
    }

    fn report(&self, event: SttEvent) {
        // The parent is gone only while the session is ending; nothing to tell then.
        self.parent.do_send(event);
    }

    fn fail(&mut self, error: ProviderError, ctx: &mut Context<Self>) {
        log::warn!("session {}: speech recognition failed: {error}", self.session);
        self.metrics.provider_error(&error);
        self.state = State::Failed;
        self.buffered.clear();
        self.buffered_bytes = 0;
        self.report(SttEvent::Failed(error));
        ctx.stop();
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let Some(key) = self.settings.api_key.clone() else {
            let e = ProviderError::not_configured(Provider::Deepgram, "DEEPGRAM_API_KEY");
            return self.fail(e, ctx);
        };
        self.state = State::Connecting;
        let client = self.client.clone();
        let url = self.settings.url();
        let auth = format!("Token {}", key.expose());
        let fut =
            async move { ws_upstream::connect(&client, Provider::Deepgram, &url, &[("Authorization", auth)]).await };
        ctx.spawn(fut.into_actor(self).map(|result, this, ctx| match result {
            Ok(framed) => {
                if this.shutting_down {
                    ctx.stop();
                    return;
                }
                this.generation += 1;
                let sink = ws_upstream::attach::<Self>(framed, this.generation, ctx);
                this.offset += this.clock.now();
                this.clock.restart();
                this.state = State::Open(sink);
                if this.attempts > 0 {
                    this.report(SttEvent::Status("speech recognition reconnected".into()));
                }
                this.attempts = 0;
                this.flush_buffer();
            }
            Err(e) if e.retryable() => this.retry(e, ctx),
            Err(e) => this.fail(e, ctx),
        }));
    }

    /// Schedules a reconnect, or gives up after [`MAX_RECONNECTS`].
    fn retry(&mut self, error: ProviderError, ctx: &mut Context<Self>) {
        if self.shutting_down {
            ctx.stop();
            return;
        }
        let Some(delay) = RECONNECT.next_delay(self.attempts + 1, Duration::ZERO, error.retryable(), None) else {
            return self.fail(error, ctx);
        };
        self.attempts += 1;
        self.metrics.provider_reconnect(Provider::Deepgram);
        self.metrics.provider_error(&error);
        log::warn!("session {}: {error}; reconnecting in {delay:?} (attempt {})", self.session, self.attempts);
        self.report(SttEvent::Status(format!(
            "speech recognition connection lost; reconnecting (attempt {} of {MAX_RECONNECTS})",
            self.attempts
        )));
        self.state = State::Waiting;
        ctx.run_later(delay, |this, ctx| {
            if matches!(this.state, State::Waiting) {
                this.connect(ctx);
            }
        });
    }

    fn send_audio(&mut self, pcm: Bytes, arrived: Instant) {
        if let State::Open(sink) = &mut self.state {
            if pcm.is_empty() {
                return; // an empty binary frame means "close stream" to Deepgram
            }
            self.clock.record(pcm.len(), arrived);
            let _ = sink.write(WsMessage::Binary(pcm));
            self.last_sent = Instant::now();
        }
    }

    fn flush_buffer(&mut self) {
        while let Some((pcm, arrived)) = self.buffered.pop_front() {
            self.send_audio(pcm, arrived);
        }
        self.buffered_bytes = 0;
    }

    fn send_text(&mut self, message: &ClientMessage) {
        if let State::Open(sink) = &mut self.state {
            let _ = sink.write(WsMessage::Text(message.to_json().into()));
            self.last_sent = Instant::now();
        }
    }

    fn connection_lost(&mut self, error: ProviderError, ctx: &mut Context<Self>) {
        if let State::Open(sink) = &mut self.state {
            sink.close();
        }
        if self.shutting_down {
            ctx.stop();
        } else if error.retryable() {
            self.retry(error, ctx);
        } else {
            self.fail(error, ctx);
        }
    }
}

impl Actor for DeepgramLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.connect(ctx);
        ctx.run_interval(Duration::from_secs(1), |this, _| {
            if matches!(this.state, State::Open(_)) && this.last_sent.elapsed() >= KEEPALIVE_AFTER {
                this.send_text(&ClientMessage::KeepAlive);
            }
        });
    }
}

impl Handler<SttAudio> for DeepgramLink {
    type Result = ();

    fn handle(&mut self, msg: SttAudio, _: &mut Context<Self>) {
        match self.state {
            State::Open(_) => self.send_audio(msg.pcm, msg.arrived),
            State::Idle | State::Connecting | State::Waiting => {
                let limit = MAX_BUFFERED_SECS as usize * self.settings.bytes_per_second() as usize;
                self.buffered_bytes += msg.pcm.len();
                self.buffered.push_back((msg.pcm, msg.arrived));
                while self.buffered_bytes > limit {
                    match self.buffered.pop_front() {
                        Some((old, _)) => self.buffered_bytes -= old.len(),
                        None => break,
                    }
                }
            }
            State::Closing | State::Failed => {}
        }
    }
}

impl Handler<SttFinalize> for DeepgramLink {
    type Result = ();

    fn handle(&mut self, _: SttFinalize, _: &mut Context<Self>) {
        self.send_text(&ClientMessage::Finalize { channel: None });
    }
}

impl Handler<SttShutdown> for DeepgramLink {
    type Result = ();

    fn handle(&mut self, _: SttShutdown, ctx: &mut Context<Self>) {
        self.shutting_down = true;
        if matches!(self.state, State::Open(_)) {
            self.send_text(&ClientMessage::CloseStream);
            if let State::Open(sink) = std::mem::replace(&mut self.state, State::Closing) {
                // Keep the sink until Deepgram closes (it sends the remaining finals and Metadata first).
                ctx.run_later(CLOSE_GRACE, move |_, ctx| {
                    drop(sink);
                    ctx.stop();
                });
            }
        } else {
            ctx.stop();
        }
    }
}
