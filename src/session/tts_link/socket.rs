//! The WebSocket mode of [`TtsLink`]: one `multi-stream-input` socket per session, one context per turn.
//!
//! Each context keeps the text sent for its turn. When the socket fails (a drop, a policy close) before any
//! audio of a turn reached the parent, the turn is not lost: the socket is reopened under [`TTS_RETRY`] and
//! the turn's text sent again, so the reply is spoken whole; only once the policy gives up (or the failure is
//! a refusal) is the turn reported failed. After its first audio a turn is never re-sent (that would repeat
//! speech): it fails and the conversation ends it with what was spoken. Every audio chunk is measured
//! ([`AudioMeter`]) and its alignment (character times relative to the chunk) is turned into times from the
//! start of the turn's audio.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use awc::ws::{Frame, Message as WsMessage};
use bytes::Bytes;

use super::pcm::SampleAligner;
use super::{TTS_RETRY, TtsCommand, TtsEvent, TtsLink};
use crate::audio::Encoding;
use crate::audio::meter::AudioMeter;
use crate::db::TurnId;
use crate::providers::elevenlabs::{Alignment, ClientMessage, MAX_CONTEXTS, ServerMessage};
use crate::providers::{FailureKind, Provider, ProviderError};
use crate::session::ws_upstream::{self, Upstream, WsSink};

/// Idle seconds ElevenLabs allows before closing (the maximum; parley keeps open contexts alive itself).
const INACTIVITY_TIMEOUT_S: u32 = 180;
/// Keepalive period for contexts waiting for more text (ElevenLabs' limit is per context).
const KEEPALIVE_EVERY: Duration = Duration::from_secs(10);
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
    /// The turn's text, in the pieces it was given; what a new socket is sent again.
    texts: Vec<String>,
    /// How many of `texts` the current socket has been sent (and whether its end was).
    sent: usize,
    end_sent: bool,
    ended: bool,
    cancelled: bool,
    /// Audio of the turn reached the parent: it can no longer be sent again.
    spoke: bool,
    aligner: SampleAligner,
    meter: AudioMeter,
    /// When the turn began (its retries stop at the policy's deadline), and the failed sockets it survived.
    began: Instant,
    failures: u32,
}

/// Socket-mode state.
#[derive(Default)]
pub(super) struct SocketMode {
    conn: Conn,
    generation: u64,
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
                .filter(|(_, c)| c.sent > 0 && !c.ended && !c.cancelled)
                .map(|(id, _)| id.clone())
                .collect();
            for id in waiting {
                this.socket_write(ClientMessage::keep_context_alive(id));
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
                let sink = ws_upstream::attach::<Self>(framed, this.socket.generation, ctx);
                this.socket.conn = Conn::Open(sink);
                this.socket.last_error = None;
                if this.socket.shutting_down {
                    return this.socket_shutdown(ctx);
                }
                // A new socket knows nothing: every live turn is sent from its first piece.
                let ids: Vec<String> = this.socket.contexts.keys().cloned().collect();
                for id in ids {
                    if let Some(c) = this.socket.contexts.get_mut(&id) {
                        c.sent = 0;
                        c.end_sent = false;
                    }
                    this.socket_flush_context(&id);
                }
            }
            Err(e) => {
                this.socket.conn = Conn::Disconnected;
                this.socket_lost(e, ctx);
            }
        }));
    }

    /// Writes to the open socket; nothing is written otherwise (contexts are sent once it opens).
    fn socket_write(&mut self, message: ClientMessage) {
        if let Conn::Open(sink) = &mut self.socket.conn {
            let _ = sink.write(WsMessage::Text(message.to_json().into()));
        }
    }

    /// Sends what the open socket has not had yet of context `id`: its pending text, then its end.
    fn socket_flush_context(&mut self, id: &str) {
        if !matches!(self.socket.conn, Conn::Open(_)) {
            return;
        }
        let Some(c) = self.socket.contexts.get_mut(id) else {
            return;
        };
        if c.cancelled {
            return;
        }
        let mut messages = Vec::new();
        while c.sent < c.texts.len() {
            let piece = format!("{} ", c.texts[c.sent].trim());
            // The first piece is generated at once instead of waiting for the chunk schedule: first audio sooner.
            let m = if c.sent == 0 { ClientMessage::flush(Some(piece)) } else { ClientMessage::text(piece) };
            messages.push(m.in_context(id.to_string()));
            c.sent += 1;
        }
        if c.ended && !c.end_sent && c.sent > 0 {
            messages.push(ClientMessage::flush(None).in_context(id.to_string()));
            messages.push(ClientMessage::close_context(id.to_string()));
            c.end_sent = true;
        }
        for m in messages {
            self.socket_write(m);
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
            TurnContext {
                turn_id,
                texts: Vec::new(),
                sent: 0,
                end_sent: false,
                ended: false,
                cancelled: false,
                spoke: false,
                aligner: SampleAligner::default(),
                meter: AudioMeter::new(self.settings.output_format),
                began: Instant::now(),
                failures: 0,
            },
        );
        self.socket.by_turn.insert(turn_id, id);
        self.socket_connect(ctx);
    }

    fn socket_text(&mut self, turn_id: TurnId, text: String) {
        let Some(id) = self.socket.by_turn.get(&turn_id).cloned() else {
            return;
        };
        match self.socket.contexts.get_mut(&id) {
            Some(c) if !c.ended && !c.cancelled && !text.trim().is_empty() => c.texts.push(text),
            _ => return,
        }
        self.socket_flush_context(&id);
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
        if c.texts.is_empty() {
            self.socket.contexts.remove(&id);
            self.socket.by_turn.remove(&turn_id);
            self.report(TtsEvent::Done { turn_id });
        } else {
            self.socket_flush_context(&id);
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
        if c.sent > 0 && matches!(self.socket.conn, Conn::Open(_)) {
            // Audio already in flight for this context will still arrive; it is dropped on receipt.
            self.socket_write(ClientMessage::close_context(id));
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
            self.socket.contexts.values().filter(|c| !c.cancelled && c.sent > 0).map(|c| c.turn_id).collect();
        self.socket.contexts.clear();
        self.socket.by_turn.clear();
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
            Some(Ok(Frame::Text(bytes))) => match std::str::from_utf8(&bytes).map(ServerMessage::parse) {
                Ok(Ok(m)) => self.socket_message(m),
                Ok(Err(e)) => log::warn!("session {}: unreadable ElevenLabs frame: {e}", self.session),
                Err(_) => log::warn!("session {}: ElevenLabs sent invalid UTF-8", self.session),
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
                let e = ws_upstream::read_failure(Provider::ElevenLabs, &e);
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
                        // Alignment times are relative to this chunk: place them after the audio before it.
                        let offset = c.meter.total_ms();
                        let ms = c.meter.push(&bytes);
                        let chars = m.alignment.as_ref().map(|a| chunk_chars(a, offset)).unwrap_or_default();
                        c.spoke = true;
                        let turn_id = c.turn_id;
                        self.report(TtsEvent::Audio { turn_id, bytes, ms, chars });
                    }
                }
                Ok(_) => {}
                Err(e) => log::warn!("session {}: undecodable audio from ElevenLabs: {e}", self.session),
            }
        }
        if m.is_final()
            && let Some(c) = self.socket.contexts.remove(&id)
            && !c.cancelled
        {
            self.socket.by_turn.remove(&c.turn_id);
            self.report(TtsEvent::Done { turn_id: c.turn_id });
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
        self.socket_lost(error, ctx);
    }

    /// The socket is gone (or could not be opened). Turns that have spoken fail; turns that have not are kept
    /// and sent again on a new socket while the retry policy allows, else they fail too. An idle socket lost
    /// to a refusal disables speech for the session.
    fn socket_lost(&mut self, error: ProviderError, ctx: &mut Context<Self>) {
        let mut failed = Vec::new();
        let mut retry_in: Option<Duration> = None;
        for (id, c) in self.socket.contexts.iter_mut() {
            if c.cancelled {
                continue;
            }
            c.failures += 1;
            let wait = if c.spoke {
                None
            } else {
                TTS_RETRY.next_delay(c.failures, c.began.elapsed(), error.retryable(), None)
            };
            match wait {
                Some(wait) => retry_in = Some(retry_in.map_or(wait, |w| w.max(wait))),
                None => failed.push((id.clone(), c.turn_id)),
            }
        }
        // Cancelled contexts were waiting for an isFinal that will not come now.
        self.socket.contexts.retain(|_, c| !c.cancelled);
        let mut over_http = Vec::new();
        for (id, turn_id) in &failed {
            if let Some(c) = self.socket.contexts.remove(id) {
                // Nothing spoken yet and the failure may pass: HTTP can still speak the turn.
                if !c.spoke && error.retryable() {
                    over_http.push((c.turn_id, c.texts, c.ended));
                }
            }
            self.socket.by_turn.remove(turn_id);
        }
        if let Some((turn_id, texts, ended)) = over_http.pop() {
            log::warn!(
                "session {}: the TTS socket cannot be reopened ({error}); turn {turn_id} is spoken over HTTP",
                self.session
            );
            self.metrics.provider_error(&error);
            self.http_fallback_until = Some(Instant::now() + super::HTTP_FALLBACK_FOR);
            failed.retain(|(_, t)| *t != turn_id);
            self.http_take_over(turn_id, texts, ended, ctx);
        }
        if failed.is_empty() && retry_in.is_none() {
            if error.retryable() {
                log::debug!("session {}: idle TTS socket closed: {error}", self.session);
            } else {
                // Nothing was being spoken, but the key or voice is refused: remember it for the next turn.
                self.metrics.provider_error(&error);
                log::warn!("session {}: speech synthesis unavailable: {error}", self.session);
                self.disabled.get_or_insert(error.clone());
            }
        }
        for (_, turn_id) in failed {
            self.failed(turn_id, error.clone());
        }
        if let Some(wait) = retry_in {
            log::info!("session {}: {error}; reopening the TTS socket in {wait:?} to speak the turn", self.session);
            self.metrics.provider_error(&error);
            self.metrics.provider_reconnect(Provider::ElevenLabs);
            ctx.run_later(wait, |this, ctx| this.socket_connect(ctx));
        }
    }
}

/// A chunk's alignment as (end of each character in ms from the start of the turn's audio, the character).
fn chunk_chars(a: &Alignment, offset_ms: f64) -> Vec<(f64, char)> {
    a.chars
        .iter()
        .zip(a.char_start_times_ms.iter().zip(a.char_durations_ms.iter()))
        .filter_map(|(c, (start, dur))| Some((offset_ms + f64::from(*start) + f64::from(*dur), c.chars().next()?)))
        .collect()
}
