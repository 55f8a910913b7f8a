//! TtsLink: turns the assistant's text into audio with ElevenLabs, one turn at a time, and hands the audio to
//! the parent the moment it arrives.
//!
//! Parent: the session (`client_socket`, through `children`), which sends [`TtsCommand`]s (start a turn, its
//! text as the LLM produces it, its end, its cancellation on barge-in) and [`TtsShutdown`], and receives
//! [`TtsEvent`]s through a `Recipient`.
//!
//! Two modes ([`TtsMode`], from `ELEVENLABS_USE_WEBSOCKET`), chosen once and dispatched in one place:
//! - `Socket` (default): one `multi-stream-input` WebSocket per session, one context per assistant turn, text
//!   fed as it streams, the first piece flushed at once, flush + `close_context` at the end of the turn,
//!   `close_context` on barge-in with late audio of that context dropped, keepalives for open contexts;
//! - `Http`: one `POST …/stream` per sentence with the original's sliding window (first sentence with
//!   `next_text`, middle ones with both, the last with `previous_text`).
//!
//! In socket mode, a turn whose socket cannot be (re)opened before its first audio (the retries exhausted on a
//! failure that may pass) is spoken over HTTP instead, with the text it already had, and new turns use HTTP for
//! [`HTTP_FALLBACK_FOR`] before the socket is tried again.
//!
//! Policy and auth failures disable TTS for the session (reported once, never retried in a loop); transient
//! failures before the first audio byte are retried with backoff.

mod http;
mod pcm;
mod socket;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use awc::error::WsProtocolError;
use bytes::Bytes;

use super::ws_upstream::Upstream;
use crate::audio::OutputFormat;
use crate::config::{Config, Secret};
use crate::db::TurnId;
use crate::metrics::Metrics;
use crate::providers::ProviderError;
use crate::retry::{Backoff, RetryPolicy};

/// How the link talks to ElevenLabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtsMode {
    /// The `multi-stream-input` WebSocket.
    Socket,
    /// HTTP streaming, one request per sentence.
    Http,
}

/// What the link needs to know.
#[derive(Debug, Clone)]
pub struct TtsSettings {
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub voice_id: String,
    pub model_id: String,
    pub output_format: OutputFormat,
    pub mode: TtsMode,
}

impl TtsSettings {
    pub fn from_config(config: &Config) -> TtsSettings {
        TtsSettings {
            base_url: config.elevenlabs.base_url.clone(),
            api_key: config.elevenlabs.api_key.clone(),
            voice_id: config.elevenlabs.voice_id.clone(),
            model_id: config.elevenlabs.model_id.clone(),
            output_format: config.elevenlabs.output_format,
            mode: if config.elevenlabs.use_websocket { TtsMode::Socket } else { TtsMode::Http },
        }
    }
}

/// What the parent asks of the link for one turn.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum TtsCommand {
    /// A new assistant turn begins.
    Start { turn_id: TurnId },
    /// A piece of the turn's text (a sentence or clause), in order.
    Text { turn_id: TurnId, text: String },
    /// The turn's text is complete: speak what remains, then report `Done`.
    End { turn_id: TurnId },
    /// Barge-in: stop the turn now; no audio of it is reported after this.
    Cancel { turn_id: TurnId },
}

/// The session is over: close everything and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TtsShutdown;

/// Retrying a turn's speech before its first audio reached the parent, in both modes: a failed socket is
/// reopened and the turn's text sent again, a failed sentence request is made again; three attempts in all
/// within 10 s of the turn's start. After its first audio a turn is never retried (speech would repeat).
pub const TTS_RETRY: RetryPolicy = RetryPolicy {
    backoff: Backoff { first: Duration::from_millis(250), max: Duration::from_secs(2) },
    max_attempts: Some(3),
    deadline: Some(Duration::from_secs(10)),
    max_retry_after: Duration::from_secs(2),
};

/// What the link reports.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum TtsEvent {
    /// Audio of a turn, in the output format (PCM always in whole samples): `ms` of playing time, and where the
    /// provider said so, when each character of the text it speaks ends (ms from the start of the turn's
    /// audio), in order.
    Audio { turn_id: TurnId, bytes: Bytes, ms: f64, chars: Vec<(f64, char)> },
    /// All audio of the turn has been reported.
    Done { turn_id: TurnId },
    /// The turn's audio failed; the turn gets no (more) audio.
    Failed { turn_id: TurnId, error: ProviderError },
}

impl TtsEvent {
    /// The turn (or early reply) the event is about.
    pub fn turn_id(&self) -> TurnId {
        match self {
            TtsEvent::Audio { turn_id, .. } | TtsEvent::Done { turn_id } | TtsEvent::Failed { turn_id, .. } => *turn_id,
        }
    }
}

/// The TTS client actor of one session.
pub struct TtsLink {
    settings: TtsSettings,
    client: awc::Client,
    parent: Recipient<TtsEvent>,
    metrics: Arc<Metrics>,
    session: String,
    /// Set after an auth or policy failure: every later turn fails at once with it.
    disabled: Option<ProviderError>,
    socket: socket::SocketMode,
    http: http::HttpMode,
    /// Socket mode only: the socket could not be (re)opened for a turn, which was spoken over HTTP instead;
    /// until then new turns go over HTTP too.
    http_fallback_until: Option<std::time::Instant>,
}

impl TtsLink {
    pub fn new(
        settings: TtsSettings,
        client: awc::Client,
        parent: Recipient<TtsEvent>,
        metrics: Arc<Metrics>,
        session: String,
    ) -> TtsLink {
        TtsLink {
            settings,
            client,
            parent,
            metrics,
            session,
            disabled: None,
            socket: socket::SocketMode::default(),
            http: http::HttpMode::default(),
            http_fallback_until: None,
        }
    }

    fn report(&self, event: TtsEvent) {
        self.parent.do_send(event);
    }

    fn failed(&mut self, turn_id: TurnId, error: ProviderError) {
        log::warn!("session {}: turn {turn_id}: speech synthesis failed: {error}", self.session);
        self.metrics.provider_error(&error);
        if !error.retryable() && self.disabled.is_none() {
            self.disabled = Some(error.clone());
        }
        self.report(TtsEvent::Failed { turn_id, error });
    }
}

impl Actor for TtsLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.settings.mode == TtsMode::Socket {
            // Open the socket now so the first reply does not wait for TCP, TLS and the upgrade.
            self.socket_warm_up(ctx);
            self.socket_keepalive(ctx);
        }
    }
}

impl Handler<TtsCommand> for TtsLink {
    type Result = ();

    fn handle(&mut self, command: TtsCommand, ctx: &mut Context<Self>) {
        if let (TtsCommand::Start { turn_id }, Some(error)) = (&command, self.disabled.clone()) {
            return self.report(TtsEvent::Failed { turn_id: *turn_id, error });
        }
        let over_http = match (&command, self.settings.mode) {
            (_, TtsMode::Http) => true,
            (TtsCommand::Start { .. }, TtsMode::Socket) => {
                self.http_fallback_until.is_some_and(|until| std::time::Instant::now() < until)
            }
            (
                TtsCommand::Text { turn_id, .. } | TtsCommand::End { turn_id } | TtsCommand::Cancel { turn_id },
                TtsMode::Socket,
            ) => self.http_turn() == Some(*turn_id),
        };
        if over_http { self.http_command(command, ctx) } else { self.socket_command(command, ctx) }
    }
}

/// How long, after the socket could not be reopened for a turn, new turns go straight to HTTP.
pub const HTTP_FALLBACK_FOR: Duration = Duration::from_secs(30);

impl Handler<TtsShutdown> for TtsLink {
    type Result = ();

    fn handle(&mut self, _: TtsShutdown, ctx: &mut Context<Self>) {
        match self.settings.mode {
            TtsMode::Socket => self.socket_shutdown(ctx),
            TtsMode::Http => ctx.stop(),
        }
    }
}

impl StreamHandler<Upstream> for TtsLink {
    fn handle(&mut self, item: Upstream, ctx: &mut Context<Self>) {
        self.socket_frame(item, ctx);
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        // Each connection's end arrives as an item; the actor decides itself when to stop.
    }
}

impl actix::io::WriteHandler<WsProtocolError> for TtsLink {
    fn error(&mut self, err: WsProtocolError, _: &mut Context<Self>) -> Running {
        log::warn!("session {}: writing to ElevenLabs failed: {err}", self.session);
        Running::Continue
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}
