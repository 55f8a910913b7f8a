//! DeepgramLink: streams the session's microphone audio to Deepgram live STT and reports what it hears.
//!
//! Parent: the session (`client_socket`, through `children`), which sends [`SttAudio`], [`SttFinalize`] and [`SttShutdown`] and receives
//! [`SttEvent`]s through a `Recipient`. Owns: the Deepgram WebSocket and the audio waiting while it connects.
//!
//! Keeps the socket alive with `KeepAlive` text frames whenever no audio has flowed for a few seconds (Deepgram
//! closes an idle socket after ~10 s), reconnects with backoff after an abnormal close and says so, and treats
//! refusals (401/403, policy closes) as final. Reconnects follow [`RECONNECT`].
//!
//! No words are lost to a dropped connection: the audio since Deepgram's last final result is kept (at most
//! `PARLEY_STT_REPLAY_SECS`) and sent again, before live audio, into the new connection, so an utterance cut
//! by a drop is transcribed whole. Times are reported in *session audio time* (seconds of the client's audio
//! since the session began, as the parent stamps each chunk): a connection's time 0 is the session time of the
//! first chunk it was sent, so replayed words keep their times and the conversation can tell words it already
//! has from new ones. "End of speech" is mapped back to the instant that audio arrived from the client
//! ([`AudioClock`], `clock.rs`). `frames.rs` handles what Deepgram sends; `settings.rs` builds the URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use awc::ws::Message as WsMessage;
use bytes::Bytes;

mod clock;
mod frames;
mod replay;
mod settings;

pub use settings::SttSettings;

use self::clock::AudioClock;
use self::replay::ReplayBuffer;
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
/// Audio kept while (re)connecting when no replay is configured, in seconds; older audio is dropped.
const MIN_BUFFERED_SECS: f64 = 10.0;
/// How long to wait for Deepgram's close after `CloseStream`.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A chunk of the client's audio, with when it arrived and where it starts in session audio time (seconds).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SttAudio {
    pub pcm: Bytes,
    pub arrived: Instant,
    pub at: f64,
    /// As good as silence: kept for replay as its length only.
    pub quiet: bool,
}

/// A recognised word, in session audio time.
#[derive(Debug, Clone, PartialEq)]
pub struct SttWord {
    /// As shown (punctuated and formatted when Deepgram gives it so).
    pub text: String,
    pub start: f64,
    pub end: f64,
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
    /// A transcript; `end` is the session audio time its speech reaches, `speech_end` when that audio arrived;
    /// `words` its words with their times (empty when Deepgram gave none).
    Transcript {
        text: String,
        words: Vec<SttWord>,
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
    /// Audio since the last final result (sent or not yet), oldest first: replayed into a new connection.
    unsettled: ReplayBuffer,
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
        let limit = settings.replay_secs.max(MIN_BUFFERED_SECS);
        let unsettled = ReplayBuffer::new(settings.encoding, settings.bytes_per_second(), limit);
        DeepgramLink {
            settings,
            client,
            parent,
            metrics,
            session,
            state: State::Idle,
            generation: 0,
            attempts: 0,
            unsettled,
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
        self.unsettled.clear();
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
                this.clock.restart();
                this.state = State::Open(sink);
                if this.attempts > 0 {
                    this.report(SttEvent::Status("speech recognition reconnected".into()));
                }
                this.attempts = 0;
                this.replay();
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

    /// Writes audio that starts at session time `at` and arrived at `arrived` to the open connection (the first
    /// audio of a connection fixes its time origin). Whether it was written.
    fn send_audio(&mut self, pcm: Bytes, arrived: Instant, at: f64) -> bool {
        let State::Open(sink) = &mut self.state else { return false };
        if pcm.is_empty() {
            return false; // an empty binary frame means "close stream" to Deepgram
        }
        if self.clock.now() == 0.0 {
            self.offset = at;
        }
        self.clock.record(pcm.len(), arrived);
        let _ = sink.write(WsMessage::Binary(pcm));
        self.last_sent = Instant::now();
        true
    }

    /// A new connection: everything kept is sent again (or, without replay, what was never sent), oldest first.
    fn replay(&mut self) {
        let replay = self.settings.replay_secs > 0.0;
        let encoding = self.settings.encoding;
        let mut kept = std::mem::replace(&mut self.unsettled, ReplayBuffer::new(encoding, 1.0, 0.0));
        let bytes_per_second = self.settings.bytes_per_second();
        // Sent again in 20 ms frames, the size the client's audio came in, not as one burst per kept block.
        let sample = encoding.bytes_per_sample();
        let frame = ((bytes_per_second / 50.0) as usize / sample).max(1) * sample;
        let mut resent = 0;
        for k in kept.iter_mut().filter(|k| replay || !k.sent) {
            resent += usize::from(k.sent);
            let bytes = k.bytes(encoding);
            let mut start = 0;
            while start < bytes.len() {
                let end = (start + frame).min(bytes.len());
                let at = k.at + start as f64 / bytes_per_second;
                k.sent |= self.send_audio(bytes.slice(start..end), k.arrival_of(end), at);
                start = end;
            }
        }
        if resent > 0 {
            log::info!("session {}: replayed {resent} stretch(es) of audio into the new connection", self.session);
        }
        self.unsettled = kept;
    }

    /// Deepgram settled the audio up to session time `end`: it will not be needed again.
    fn settled(&mut self, end: f64) {
        self.unsettled.settled(end);
        self.clock.forget_before(end - self.offset);
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
        let sent = match self.state {
            State::Open(_) => self.send_audio(msg.pcm.clone(), msg.arrived, msg.at),
            State::Idle | State::Connecting | State::Waiting => false,
            State::Closing | State::Failed => return,
        };
        // Without replay, only audio not yet sent is kept (for the connection being opened).
        if !sent || self.settings.replay_secs > 0.0 {
            self.unsettled.keep(&msg.pcm, msg.quiet, msg.arrived, msg.at, sent);
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
