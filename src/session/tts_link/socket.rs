//! The WebSocket mode of [`TtsLink`]: one `multi-stream-input` socket per session, one context per turn.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use awc::ws::{Frame, Message as WsMessage};
use bytes::Bytes;

use super::pcm::SampleAligner;
use super::{TtsCommand, TtsEvent, TtsLink};
use crate::audio::Encoding;
use crate::db::TurnId;
use crate::providers::elevenlabs::{ClientMessage, MAX_CONTEXTS, ServerMessage};
use crate::providers::{FailureKind, Provider, ProviderError};
use crate::retry::{Backoff, RetryPolicy};
use crate::session::ws_upstream::{self, Upstream, WsSink};

/// Idle seconds ElevenLabs allows before closing (the maximum; parley keeps open contexts alive itself).
const INACTIVITY_TIMEOUT_S: u32 = 180;
/// Keepalive period for contexts waiting for more text (ElevenLabs' limit is per context).
const KEEPALIVE_EVERY: Duration = Duration::from_secs(10);
/// Connecting for a turn: three attempts before its audio is given up on.
const CONNECT_RETRY: RetryPolicy = RetryPolicy {
    backoff: Backoff { first: Duration::from_millis(250), max: Duration::from_secs(2) },
    max_attempts: Some(3),
    deadline: None,
    max_retry_after: Duration::ZERO,
};
/// How long to wait for the server's close after `close_socket`.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

#[derive(Default)]
enum Conn {
    #[default]
    Disconnected,
    Connecting,
    Open(WsSink),
}

struct TurnContext {
    turn_id: TurnId,
    /// Some text was sent (so the server knows the context).
    started: bool,
    ended: bool,
    cancelled: bool,
    aligner: SampleAligner,
}

/// Socket-mode state.
#[derive(Default)]
pub(super) struct SocketMode {
    conn: Conn,
    generation: u64,
    attempts: u32,
    queued: Vec<ClientMessage>,
    contexts: HashMap<String, TurnContext>,
    by_turn: HashMap<TurnId, String>,
    seq: u64,
    /// The in-band error the server sent before closing.
    last_error: Option<(String, String)>,
    shutting_down: bool,
}

impl TtsLink {
    fn socket_url(&self) -> String {
        let base = self.settings.base_url.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("model_id", &self.settings.model_id)
            .append_pair("output_format", &self.settings.output_format.to_string())
            .append_pair("inactivity_timeout", &INACTIVITY_TIMEOUT_S.to_string())
            .finish();
        format!("{base}/text-to-speech/{}/multi-stream-input?{query}", self.settings.voice_id)
    }

    pub(super) fn socket_warm_up(&mut self, ctx: &mut Context<Self>) {
        if self.settings.api_key.is_some() {
            self.socket_connect(ctx);
        }
    }

    pub(super) fn socket_keepalive(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(KEEPALIVE_EVERY, |this, _| {
            let waiting: Vec<String> = this
                .socket
                .contexts
                .iter()
                .filter(|(_, c)| c.started && !c.ended && !c.cancelled)
                .map(|(id, _)| id.clone())
                .collect();
            for id in waiting {
                this.socket_send(ClientMessage::keep_context_alive(id));
            }
        });
    }

    fn socket_connect(&mut self, ctx: &mut Context<Self>) {
        let Some(key) = self.settings.api_key.clone() else {
            return;
        };
        if !matches!(self.socket.conn, Conn::Disconnected) {
            return;
        }
        self.socket.conn = Conn::Connecting;
        let client = self.client.clone();
        let url = self.socket_url();
        let fut = async move {
            ws_upstream::connect(&client, Provider::ElevenLabs, &url, &[("xi-api-key", key.expose().to_string())]).await
        };
        ctx.spawn(fut.into_actor(self).map(|result, this, ctx| match result {
            Ok(framed) => {
                this.socket.generation += 1;
                let mut sink = ws_upstream::attach::<Self>(framed, this.socket.generation, ctx);
                for message in this.socket.queued.drain(..) {
                    let _ = sink.write(WsMessage::Text(message.to_json().into()));
                }
                this.socket.conn = Conn::Open(sink);
                this.socket.attempts = 0;
                this.socket.last_error = None;
                if this.socket.shutting_down {
                    this.socket_shutdown(ctx);
                }
            }
            Err(e) => {
                this.socket.conn = Conn::Disconnected;
                let waiting = this.socket.contexts.values().any(|c| !c.cancelled);
                let delay = CONNECT_RETRY.next_delay(this.socket.attempts + 1, Duration::ZERO, e.retryable(), None);
                match delay.filter(|_| waiting) {
                    Some(delay) => {
                        this.socket.attempts += 1;
                        this.metrics.provider_reconnect(Provider::ElevenLabs);
                        ctx.run_later(delay, |this, ctx| this.socket_connect(ctx));
                    }
                    None => {
                        this.socket.attempts = 0;
                        this.socket_lost(e);
                    }
                }
            }
        }));
    }

    fn socket_send(&mut self, message: ClientMessage) {
        match &mut self.socket.conn {
            Conn::Open(sink) => {
                let _ = sink.write(WsMessage::Text(message.to_json().into()));
            }
            Conn::Connecting | Conn::Disconnected => self.socket.queued.push(message),
        }
    }

    pub(super) fn socket_command(&mut self, command: TtsCommand, ctx: &mut Context<Self>) {
        match command {
            TtsCommand::Start { turn_id } => self.socket_start(turn_id, ctx),
            TtsCommand::Text { turn_id, text } => self.socket_text(turn_id, text),
            TtsCommand::End { turn_id } => self.socket_end(turn_id),
            TtsCommand::Cancel { turn_id } => self.socket_cancel(turn_id),
        }
    }

    fn socket_start(&mut self, turn_id: TurnId, ctx: &mut Context<Self>) {
        if self.settings.api_key.is_none() {
            let e = ProviderError::not_configured(Provider::ElevenLabs, "ELEVENLABS_API_KEY");
            return self.failed(turn_id, e);
        }
        if self.socket.contexts.len() + 1 >= MAX_CONTEXTS {
            // Contexts closed after barge-ins still count until their isFinal arrives: start a fresh socket
            // rather than hit the server's limit of five.
            log::info!(
                "session {}: {} TTS contexts pending; opening a new socket",
                self.session,
                self.socket.contexts.len()
            );
            self.socket_rotate();
        }
        self.socket.seq += 1;
        let id = format!("turn-{turn_id}-{}", self.socket.seq);
        self.socket.contexts.insert(
            id.clone(),
            TurnContext { turn_id, started: false, ended: false, cancelled: false, aligner: SampleAligner::default() },
        );
        self.socket.by_turn.insert(turn_id, id);
        self.socket_connect(ctx);
    }

    fn socket_text(&mut self, turn_id: TurnId, text: String) {
        let Some(id) = self.socket.by_turn.get(&turn_id).cloned() else {
            return;
        };
        let Some(c) = self.socket.contexts.get_mut(&id) else {
            return;
        };
        if c.ended || c.cancelled || text.trim().is_empty() {
            return;
        }
        let first = !c.started;
        c.started = true;
        let piece = format!("{} ", text.trim());
        // The first piece is generated at once instead of waiting for the chunk schedule: first audio sooner.
        let message = if first { ClientMessage::flush(Some(piece)) } else { ClientMessage::text(piece) };
        self.socket_send(message.in_context(id));
    }

    fn socket_end(&mut self, turn_id: TurnId) {
        let Some(id) = self.socket.by_turn.get(&turn_id).cloned() else {
            return;
        };
        let Some(c) = self.socket.contexts.get_mut(&id) else {
            return;
        };
        if c.ended || c.cancelled {
            return;
        }
        c.ended = true;
        if c.started {
            self.socket_send(ClientMessage::flush(None).in_context(id.clone()));
            self.socket_send(ClientMessage::close_context(id));
        } else {
            self.socket.contexts.remove(&id);
            self.socket.by_turn.remove(&turn_id);
            self.report(TtsEvent::Done { turn_id });
        }
    }

    fn socket_cancel(&mut self, turn_id: TurnId) {
        let Some(id) = self.socket.by_turn.remove(&turn_id) else {
            return;
        };
        let Some(c) = self.socket.contexts.get_mut(&id) else {
            return;
        };
        c.cancelled = true;
        if c.started {
            // Audio already in flight for this context will still arrive; it is dropped on receipt.
            self.socket_send(ClientMessage::close_context(id));
        } else {
            self.socket.contexts.remove(&id);
        }
    }

    pub(super) fn socket_shutdown(&mut self, ctx: &mut Context<Self>) {
        self.socket.shutting_down = true;
        match std::mem::take(&mut self.socket.conn) {
            Conn::Open(mut sink) => {
                let _ = sink.write(WsMessage::Text(ClientMessage::close_socket().to_json().into()));
                ctx.run_later(CLOSE_GRACE, move |_, ctx| {
                    drop(sink);
                    ctx.stop();
                });
            }
            Conn::Connecting => self.socket.conn = Conn::Connecting, // stops when the connect resolves
            Conn::Disconnected => ctx.stop(),
        }
    }

    /// Abandons the current socket (its contexts get no more audio) so the next turn starts on a fresh one.
    fn socket_rotate(&mut self) {
        if let Conn::Open(mut sink) = std::mem::take(&mut self.socket.conn) {
            let _ = sink.write(WsMessage::Text(ClientMessage::close_socket().to_json().into()));
            sink.close();
        }
        self.socket.generation += 1; // frames of the old socket are ignored from now on
        let live: Vec<TurnId> =
            self.socket.contexts.values().filter(|c| !c.cancelled && c.started).map(|c| c.turn_id).collect();
        self.socket.contexts.clear();
        self.socket.by_turn.clear();
        self.socket.queued.clear();
        for turn_id in live {
            let e = ProviderError::new(Provider::ElevenLabs, FailureKind::Server, "superseded by a new socket");
            self.report(TtsEvent::Failed { turn_id, error: e });
        }
    }

    pub(super) fn socket_frame(&mut self, item: Upstream, ctx: &mut Context<Self>) {
        if item.generation != self.socket.generation {
            return;
        }
        match item.frame {
            Some(Ok(Frame::Text(bytes))) => match ServerMessage::parse(&String::from_utf8_lossy(&bytes)) {
                Ok(m) => self.socket_message(m),
                Err(e) => log::warn!("session {}: unreadable ElevenLabs frame: {e}", self.session),
            },
            Some(Ok(Frame::Ping(p))) => {
                if let Conn::Open(sink) = &mut self.socket.conn {
                    let _ = sink.write(WsMessage::Pong(p));
                }
            }
            Some(Ok(Frame::Close(reason))) => {
                let error = self.close_error(reason.as_ref().map(|r| u16::from(r.code)));
                self.socket_closed(error, ctx);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let e = ProviderError::new(Provider::ElevenLabs, FailureKind::Protocol, e.to_string());
                self.socket_closed(Some(e), ctx);
            }
            None => {
                let error = self.close_error(Some(1006));
                self.socket_closed(error, ctx);
            }
        }
    }

    fn socket_message(&mut self, m: ServerMessage) {
        if m.is_error() {
            log::warn!("session {}: ElevenLabs error {:?}: {:?}", self.session, m.error, m.message);
            self.socket.last_error = Some((m.error.clone().unwrap_or_default(), m.message.clone().unwrap_or_default()));
            return;
        }
        let Some(id) = m.context_id.clone() else {
            return; // nothing of ours lives in the default context
        };
        let pcm16 = self.settings.output_format.encoding == Encoding::Pcm;
        let Some(c) = self.socket.contexts.get_mut(&id) else {
            return;
        };
        if !c.cancelled {
            match m.audio_bytes() {
                Ok(audio) if !audio.is_empty() => {
                    let bytes = c.aligner.align(Bytes::from(audio), pcm16);
                    if !bytes.is_empty() {
                        let turn_id = c.turn_id;
                        self.report(TtsEvent::Audio { turn_id, bytes });
                    }
                }
                Ok(_) => {}
                Err(e) => log::warn!("session {}: undecodable audio from ElevenLabs: {e}", self.session),
            }
        }
        if m.is_final() {
            if let Some(c) = self.socket.contexts.remove(&id) {
                if !c.cancelled {
                    self.socket.by_turn.remove(&c.turn_id);
                    self.report(TtsEvent::Done { turn_id: c.turn_id });
                }
            }
        }
    }

    /// The failure a close stands for, using the in-band error that preceded it; `None` when it was normal.
    fn close_error(&mut self, code: Option<u16>) -> Option<ProviderError> {
        let code = code.unwrap_or(1005);
        let (error, message) = self.socket.last_error.take().unwrap_or_default();
        let kind = match error.as_str() {
            "" if code == 1000 => return None,
            "invalid_api_key" | "unauthorized" | "quota_exceeded" => FailureKind::Auth,
            "input_timeout_exceeded" => FailureKind::Timeout,
            "max_active_conversations" => FailureKind::RateLimited,
            "" => FailureKind::from_close_code(code),
            _ => FailureKind::Policy,
        };
        let text = if error.is_empty() { format!("closed with {code}") } else { format!("{error}: {message}") };
        Some(ProviderError::new(Provider::ElevenLabs, kind, text))
    }

    fn socket_closed(&mut self, error: Option<ProviderError>, ctx: &mut Context<Self>) {
        if let Conn::Open(mut sink) = std::mem::take(&mut self.socket.conn) {
            sink.close();
        }
        self.socket.generation += 1;
        if self.socket.shutting_down {
            ctx.stop();
            return;
        }
        let error =
            error.unwrap_or_else(|| ProviderError::new(Provider::ElevenLabs, FailureKind::Connect, "socket closed"));
        self.socket_lost(error);
    }

    /// The socket is gone: turns still expecting audio fail with `error`; the next turn reconnects.
    fn socket_lost(&mut self, error: ProviderError) {
        self.socket.queued.clear();
        let live: Vec<TurnId> = self.socket.contexts.values().filter(|c| !c.cancelled).map(|c| c.turn_id).collect();
        self.socket.contexts.clear();
        self.socket.by_turn.clear();
        if live.is_empty() {
            if error.retryable() {
                log::debug!("session {}: idle TTS socket closed: {error}", self.session);
            } else {
                // Nothing was being spoken, but the key or voice is refused: remember it for the next turn.
                self.metrics.provider_error(&error);
                log::warn!("session {}: speech synthesis unavailable: {error}", self.session);
                self.disabled.get_or_insert(error.clone());
            }
        }
        for turn_id in live {
            self.failed(turn_id, error.clone());
        }
    }
}
