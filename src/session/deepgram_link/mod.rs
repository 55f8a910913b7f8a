//! DeepgramLink: streams the session's microphone audio to Deepgram live STT and reports what it hears.
//!
//! Parent: the session (`client_socket`, through `children`), which writes the audio into the link's
//! [`SttFeed`] (`feed.rs`: no actor message per frame), sends [`SttFinalize`] and [`SttShutdown`], and receives
//! [`SttEvent`]s through a `Recipient`. Owns: the Deepgram WebSocket, whose writer it puts into the feed while
//! the connection is open; the feed keeps the audio waiting while it connects.
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

mod clock;
mod feed;
mod frames;
mod replay;
mod settings;

pub use feed::SttFeed;
pub use settings::SttSettings;

use super::ws_upstream;
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
/// How long to wait for Deepgram's close after `CloseStream`.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

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
    /// Connected: the connection's writer is in the feed.
    Open,
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
    /// The audio path, shared with the session.
    feed: SttFeed,
    shutting_down: bool,
}

impl DeepgramLink {
    pub fn new(
        settings: SttSettings,
        client: awc::Client,
        parent: Recipient<SttEvent>,
        metrics: Arc<Metrics>,
        session: String,
        feed: SttFeed,
    ) -> DeepgramLink {
        DeepgramLink {
            settings,
            client,
            parent,
            metrics,
            session,
            state: State::Idle,
            generation: 0,
            attempts: 0,
            feed,
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
        let mut feed = self.feed.get();
        feed.stop();
        feed.sink = None;
        drop(feed);
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
                this.state = State::Open;
                if this.attempts > 0 {
                    this.report(SttEvent::Status("speech recognition reconnected".into()));
                }
                this.attempts = 0;
                let mut feed = this.feed.get();
                feed.clock.restart();
                feed.sink = Some(sink);
                let again = feed.replay(this.settings.encoding);
                drop(feed);
                if again > 0 {
                    log::info!("session {}: replayed {again} frame(s) of audio into the new connection", this.session);
                }
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

    /// Deepgram settled the audio up to session time `end`: it will not be needed again.
    fn settled(&mut self, end: f64) {
        self.feed.get().settled(end);
    }

    fn send_text(&mut self, message: &ClientMessage) {
        if matches!(self.state, State::Open) {
            self.feed.get().send_text(message.to_json());
        }
    }

    fn connection_lost(&mut self, error: ProviderError, ctx: &mut Context<Self>) {
        if let Some(mut sink) = self.feed.get().sink.take() {
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
            if matches!(this.state, State::Open) && this.feed.get().last_sent.elapsed() >= KEEPALIVE_AFTER {
                this.send_text(&ClientMessage::KeepAlive);
            }
        });
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
        self.feed.get().accepting = false;
        if matches!(self.state, State::Open) {
            self.send_text(&ClientMessage::CloseStream);
            self.state = State::Closing;
            // Keep the writer until Deepgram closes (it sends the remaining finals and Metadata first).
            let sink = self.feed.get().sink.take();
            ctx.run_later(CLOSE_GRACE, move |_, ctx| {
                drop(sink);
                ctx.stop();
            });
        } else {
            ctx.stop();
        }
    }
}
