//! TtsLink: turns the assistant's text into audio with ElevenLabs, one turn at a time, and hands the audio to
//! the parent the moment it arrives.
//!
//! Parent: `ClientSocket`, which sends [`TtsStart`], [`TtsText`] (sentences as the LLM produces them),
//! [`TtsEnd`], [`TtsCancel`] (barge-in) and [`TtsShutdown`], and receives [`TtsEvent`]s through a `Recipient`.
//!
//! Two modes (`ELEVENLABS_USE_WEBSOCKET`):
//! - `socket` (default): one `multi-stream-input` WebSocket per session, one context per assistant turn, text
//!   fed as it streams, the first piece flushed at once, flush + `close_context` at the end of the turn,
//!   `close_context` on barge-in with late audio of that context dropped, keepalives for open contexts;
//! - `http`: one `POST …/stream` per sentence with the original's sliding window (first sentence with
//!   `next_text`, middle ones with both, the last with `previous_text`).
//!
//! Policy and auth failures disable TTS for the session (reported once, never retried in a loop); transient
//! failures before the first audio byte are retried with backoff.

mod http;
mod pcm;
mod socket;

use std::sync::Arc;

use actix::prelude::*;
use awc::error::WsProtocolError;
use bytes::Bytes;

use super::protocol::TurnId;
use super::upstream::ProviderError;
use super::ws_upstream::Upstream;
use crate::audio::OutputFormat;
use crate::config::{Config, Secret};
use crate::metrics::Metrics;

/// What the link needs to know.
#[derive(Debug, Clone)]
pub struct TtsSettings {
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub voice_id: String,
    pub model_id: String,
    pub output_format: OutputFormat,
    pub use_websocket: bool,
}

impl TtsSettings {
    pub fn from_config(config: &Config) -> TtsSettings {
        TtsSettings {
            base_url: config.elevenlabs.base_url.clone(),
            api_key: config.elevenlabs.api_key.clone(),
            voice_id: config.elevenlabs.voice_id.clone(),
            model_id: config.elevenlabs.model_id.clone(),
            output_format: config.elevenlabs.output_format,
            use_websocket: config.elevenlabs.use_websocket,
        }
    }
}

/// A new assistant turn begins.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TtsStart {
    pub turn_id: TurnId,
}

/// A piece of the turn's text (a sentence or clause), in order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TtsText {
    pub turn_id: TurnId,
    pub text: String,
}

/// The turn's text is complete: speak what remains, then report `Done`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TtsEnd {
    pub turn_id: TurnId,
}

/// Barge-in: stop the turn now; no audio of it is reported after this.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TtsCancel {
    pub turn_id: TurnId,
}

/// The session is over: close everything and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TtsShutdown;

/// What the link reports.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum TtsEvent {
    /// Audio of a turn, in the output format (PCM always in whole samples).
    Audio { turn_id: TurnId, bytes: Bytes },
    /// All audio of the turn has been reported.
    Done { turn_id: TurnId },
    /// The turn's audio failed; the turn gets no (more) audio.
    Failed { turn_id: TurnId, error: ProviderError },
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
        }
    }

    fn report(&self, event: TtsEvent) {
        self.parent.do_send(event);
    }

    fn failed(&mut self, turn_id: TurnId, error: ProviderError) {
        log::warn!("session {}: turn {turn_id}: speech synthesis failed: {error}", self.session);
        self.metrics.provider_errors.with_label_values(&["elevenlabs", error.kind.label()]).inc();
        if !error.retryable() && self.disabled.is_none() {
            self.disabled = Some(error.clone());
        }
        self.report(TtsEvent::Failed { turn_id, error });
    }
}

impl Actor for TtsLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.settings.use_websocket {
            // Open the socket now so the first reply does not wait for TCP, TLS and the upgrade.
            self.socket_warm_up(ctx);
            self.socket_keepalive(ctx);
        }
    }
}

impl Handler<TtsStart> for TtsLink {
    type Result = ();

    fn handle(&mut self, msg: TtsStart, ctx: &mut Context<Self>) {
        if let Some(error) = self.disabled.clone() {
            return self.report(TtsEvent::Failed { turn_id: msg.turn_id, error });
        }
        if self.settings.use_websocket {
            self.socket_start(msg.turn_id, ctx);
        } else {
            self.http_start(msg.turn_id, ctx);
        }
    }
}

impl Handler<TtsText> for TtsLink {
    type Result = ();

    fn handle(&mut self, msg: TtsText, ctx: &mut Context<Self>) {
        if self.settings.use_websocket {
            self.socket_text(msg.turn_id, msg.text);
        } else {
            self.http_text(msg.turn_id, msg.text, ctx);
        }
    }
}

impl Handler<TtsEnd> for TtsLink {
    type Result = ();

    fn handle(&mut self, msg: TtsEnd, ctx: &mut Context<Self>) {
        if self.settings.use_websocket {
            self.socket_end(msg.turn_id);
        } else {
            self.http_end(msg.turn_id, ctx);
        }
    }
}

impl Handler<TtsCancel> for TtsLink {
    type Result = ();

    fn handle(&mut self, msg: TtsCancel, ctx: &mut Context<Self>) {
        if self.settings.use_websocket {
            self.socket_cancel(msg.turn_id);
        } else {
            self.http_cancel(msg.turn_id, ctx);
        }
    }
}

impl Handler<TtsShutdown> for TtsLink {
    type Result = ();

    fn handle(&mut self, _: TtsShutdown, ctx: &mut Context<Self>) {
        if self.settings.use_websocket {
            self.socket_shutdown(ctx);
        } else {
            ctx.stop();
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
