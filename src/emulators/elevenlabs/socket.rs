//! One ElevenLabs text-to-speech WebSocket (`stream-input` or `multi-stream-input`) as an actor. Parent: the
//! upgrade handler in `upgrade.rs`. Talks to: the client and `ElevenLabsControl` (its log). Owns the
//! contexts (one default context on the single socket, up to five named ones on the multi socket), each with
//! its text buffer and voice, the inactivity timer, and the outbox that paces audio (time to first byte,
//! real-time pacing).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext as _, AsyncContext as _, StreamHandler};
use actix_web_actors::ws::{self, WebsocketContext};
use base64::Engine as _;

use super::buffer::TextBuffer;
use super::control::{
    ElevenLabsControl, ElevenLabsFault, ElevenLabsSettings, SentFrame, TtsSocketLog,
};
use super::speech::Voice;
use crate::audio::OutputFormat;
use crate::emulators::common::ws::{
    HasOutbox, Incoming, Out, Outbox, Reassembler, close_now, send_at, truncate_reason,
};
use crate::providers::elevenlabs::{
    ClientMessage, GenerationConfig, MAX_CONTEXTS, ServerMessage, VoiceSettings,
};

/// Largest frame accepted from a client.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// What the upgrade handler decided about the connection.
#[derive(Debug, Clone)]
pub struct SocketSetup {
    pub index: usize,
    pub multi: bool,
    pub settings: ElevenLabsSettings,
    pub fault: Option<ElevenLabsFault>,
    pub format: OutputFormat,
    pub auto_mode: bool,
    pub inactivity: Duration,
    /// A valid key came with the upgrade (header or query).
    pub authed: bool,
    /// An error to send at once, then Close 1008: `(error, message)`.
    pub startup_error: Option<(String, String)>,
}

struct Context {
    buffer: TextBuffer,
    voice: Voice,
    last_activity: Instant,
}

/// The connection actor.
pub struct TtsSocket {
    control: ElevenLabsControl,
    setup: SocketSetup,
    first_seen: bool,
    voice_settings: Option<VoiceSettings>,
    generation_config: Option<GenerationConfig>,
    contexts: BTreeMap<String, Context>,
    last_activity: Instant,
    play_clock: Instant,
    outbox: Outbox,
    reassembler: Reassembler,
    ending: bool,
}

impl TtsSocket {
    /// A socket for the log entry `setup.index`.
    pub fn new(control: ElevenLabsControl, setup: SocketSetup) -> Self {
        TtsSocket {
            control,
            setup,
            first_seen: false,
            voice_settings: None,
            generation_config: None,
            contexts: BTreeMap::new(),
            last_activity: Instant::now(),
            play_clock: Instant::now(),
            outbox: Outbox::default(),
            reassembler: Reassembler::new(MAX_FRAME_BYTES),
            ending: false,
        }
    }

    fn log(&self, f: impl FnOnce(&mut TtsSocketLog)) {
        let i = self.setup.index;
        self.control.shared.update(|s| f(&mut s.sockets[i]));
    }

    /// Sends `{"message","error","code":1008}` and closes 1008 with the message as (cut) reason.
    fn fail(&mut self, ctx: &mut WebsocketContext<Self>, error: &str, message: &str) {
        if self.outbox.is_finished() {
            return;
        }
        let out = Out::Text(ServerMessage::error(error, message, 1008).to_json());
        crate::emulators::common::ws::deliver(ctx, &out);
        self.on_sent(&out);
        close_now(self, ctx, Out::Close(1008, message.to_string()));
    }

    fn check_idle(&mut self, ctx: &mut WebsocketContext<Self>) {
        if self.outbox.is_finished() || self.ending {
            return;
        }
        let oldest = match self.contexts.values().map(|c| c.last_activity).min() {
            Some(t) if self.setup.multi => t,
            _ => self.last_activity,
        };
        let deadline = oldest + self.setup.inactivity;
        let now = Instant::now();
        if now >= deadline {
            let secs = self.setup.inactivity.as_secs_f64();
            let message = format!(
                "Have not received a new text input within the timeout of {secs} seconds. Streaming input terminated. Please make sure to either feed the input or close the connection when you are done."
            );
            return self.fail(ctx, "input_timeout_exceeded", &message);
        }
        ctx.run_later(deadline - now, Self::check_idle);
    }

    fn on_text(&mut self, ctx: &mut WebsocketContext<Self>, text: String) {
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text.clone()));
        self.log(|l| l.received.push(value));
        if self.ending {
            return;
        }
        let msg: ClientMessage = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => {
                return self.fail(
                    ctx,
                    "invalid_message",
                    &format!("Invalid message received: {e}"),
                );
            }
        };
        let now = Instant::now();
        self.last_activity = now;
        let first = !self.first_seen;
        self.first_seen = true;
        if first && !self.setup.authed {
            let key = msg
                .xi_api_key
                .clone()
                .or_else(|| msg.authorization.clone().map(|a| strip_bearer(&a)));
            let ok = self.setup.settings.api_keys.is_empty()
                || key.is_some_and(|k| self.setup.settings.api_keys.contains(&k));
            if !ok || self.setup.fault == Some(ElevenLabsFault::Unauthorized) {
                return self.fail(ctx, "invalid_api_key", "Invalid API key");
            }
        }
        if let Err(message) = self.check_settings(&msg, first) {
            return self.fail(ctx, "invalid_request", &message);
        }
        if !first && self.setup.fault == Some(ElevenLabsFault::SomethingWentWrong) {
            return self.fail(
                ctx,
                "internal_error",
                "We are sorry, something went wrong. You are not charged for this request.",
            );
        }
        if self.setup.multi {
            self.on_multi(ctx, msg, now);
        } else {
            self.on_single(ctx, msg, first, now);
        }
    }

    /// Settings may come once (first message, or the first message of a context on the multi socket) and
    /// never change afterwards.
    fn check_settings(&mut self, msg: &ClientMessage, first: bool) -> Result<(), String> {
        const RULE: &str = "voice_settings field must be provided in the first message and then either be not provided or not change.";
        let may_set = first
            || (self.setup.multi
                && !self
                    .contexts
                    .contains_key(msg.context_id.as_deref().unwrap_or("")));
        if let Some(vs) = &msg.voice_settings {
            match &self.voice_settings {
                Some(old) if old != vs => return Err(RULE.to_string()),
                None if !may_set => return Err(RULE.to_string()),
                _ => self.voice_settings = Some(vs.clone()),
            }
        }
        if let Some(gc) = &msg.generation_config {
            match &self.generation_config {
                Some(old) if old != gc => {
                    return Err(RULE.replace("voice_settings", "generation_config"));
                }
                None if !may_set => return Err(RULE.replace("voice_settings", "generation_config")),
                _ => self.generation_config = Some(gc.clone()),
            }
        }
        Ok(())
    }

    fn on_single(
        &mut self,
        ctx: &mut WebsocketContext<Self>,
        msg: ClientMessage,
        first: bool,
        now: Instant,
    ) {
        let text = msg.text.clone().unwrap_or_default();
        if first {
            if text != " " {
                let m = "The first message must initialise the stream with text set to a single space (\" \").";
                return self.fail(ctx, "invalid_request", m);
            }
            return self.open_context(String::new(), now);
        }
        if msg.text.as_deref() == Some("") {
            self.ending = true;
            self.speak(ctx, "", |b| b.flush());
            self.send_final(ctx, "");
            return self.send(ctx, Out::Close(1000, String::new()), None);
        }
        self.feed(ctx, "", &msg, &text);
    }

    fn on_multi(&mut self, ctx: &mut WebsocketContext<Self>, msg: ClientMessage, now: Instant) {
        if msg.close_socket == Some(true) {
            self.ending = true;
            let ids: Vec<String> = self.contexts.keys().cloned().collect();
            for id in ids {
                self.speak(ctx, &id, |b| b.flush());
                self.send_final(ctx, &id);
            }
            return self.send(ctx, Out::Close(1000, String::new()), None);
        }
        let id = msg.context_id.clone().unwrap_or_default();
        if msg.close_context == Some(true) {
            return self.close_context(ctx, &id);
        }
        let text = msg.text.clone().unwrap_or_default();
        if !self.contexts.contains_key(&id) {
            if text.is_empty() && msg.flush != Some(true) {
                return; // a keepalive must not open a context
            }
            if self.contexts.len() >= MAX_CONTEXTS {
                let m = format!(
                    "Maximum simultaneous contexts per WebSocket connection exceeded ({MAX_CONTEXTS}). Please close unused contexts with close_context before opening new ones."
                );
                return self.fail(ctx, "max_active_conversations", &m);
            }
            self.open_context(id.clone(), now);
        }
        if let Some(c) = self.contexts.get_mut(&id) {
            c.last_activity = now;
        }
        self.feed(ctx, &id, &msg, &text);
    }

    fn open_context(&mut self, id: String, now: Instant) {
        let schedule = self
            .generation_config
            .as_ref()
            .and_then(|g| g.chunk_length_schedule.clone());
        let Ok(voice) = Voice::new(self.setup.format) else {
            return;
        };
        let buffer = TextBuffer::new(schedule, self.setup.auto_mode);
        self.contexts.insert(
            id.clone(),
            Context {
                buffer,
                voice,
                last_activity: now,
            },
        );
        if self.setup.multi {
            self.log(|l| l.contexts_opened.push(id));
        }
    }

    fn feed(
        &mut self,
        ctx: &mut WebsocketContext<Self>,
        id: &str,
        msg: &ClientMessage,
        text: &str,
    ) {
        if !text.is_empty() {
            self.speak(ctx, id, |b| b.push(text));
        }
        if msg.try_trigger_generation == Some(true) {
            self.speak(ctx, id, TextBuffer::try_trigger);
        }
        if msg.flush == Some(true) {
            self.speak(ctx, id, TextBuffer::flush);
        }
    }

    fn close_context(&mut self, ctx: &mut WebsocketContext<Self>, id: &str) {
        let Some(mut c) = self.contexts.remove(id) else {
            return;
        };
        c.buffer.discard();
        self.log(|l| l.contexts_closed.push(id.to_string()));
        if self.setup.fault == Some(ElevenLabsFault::LateAudioAfterClose) {
            self.contexts.insert(id.to_string(), c);
            self.speak(ctx, id, |_| Some("late ".to_string()));
            self.contexts.remove(id);
        }
        self.send_final(ctx, id);
    }

    /// Runs `take` on the context's buffer and queues the audio for whatever it returns.
    fn speak(
        &mut self,
        ctx: &mut WebsocketContext<Self>,
        id: &str,
        take: impl FnOnce(&mut TextBuffer) -> Option<String>,
    ) {
        let Some(c) = self.contexts.get_mut(id) else {
            return;
        };
        let Some(text) = take(&mut c.buffer) else {
            return;
        };
        let chunks = c.voice.speak(&text);
        let now = Instant::now();
        let mut due = now + self.setup.settings.time_to_first_byte;
        if self.setup.settings.realtime_pacing {
            due = due.max(self.play_clock);
        }
        for chunk in chunks {
            let msg = ServerMessage {
                audio: Some(base64::engine::general_purpose::STANDARD.encode(&chunk.audio)),
                normalized_alignment: Some(chunk.alignment.clone()),
                alignment: Some(chunk.alignment),
                context_id: self.setup.multi.then(|| id.to_string()),
                ..Default::default()
            };
            send_at(
                self,
                ctx,
                due,
                Out::Text(msg.to_json()),
                Some(id.to_string()),
            );
            if self.setup.fault == Some(ElevenLabsFault::DropMidStream) {
                self.setup.fault = None;
                send_at(self, ctx, due, Out::Drop, None);
            }
            if self.setup.settings.realtime_pacing {
                due += Duration::from_secs_f64(chunk.duration_ms / 1000.0);
            }
        }
        self.play_clock = self.play_clock.max(due);
    }

    fn send_final(&mut self, ctx: &mut WebsocketContext<Self>, id: &str) {
        let msg = ServerMessage {
            is_final: Some(true),
            context_id: self.setup.multi.then(|| id.to_string()),
            ..Default::default()
        };
        self.send(ctx, Out::Text(msg.to_json()), Some(id.to_string()));
    }

    fn send(&mut self, ctx: &mut WebsocketContext<Self>, out: Out, tag: Option<String>) {
        let now = Instant::now();
        send_at(self, ctx, now, out, tag);
    }
}

fn strip_bearer(a: &str) -> String {
    a.strip_prefix("Bearer ").unwrap_or(a).trim().to_string()
}

impl Actor for TtsSocket {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some((error, message)) = self.setup.startup_error.clone() {
            return self.fail(ctx, &error, &message);
        }
        ctx.run_later(self.setup.inactivity, Self::check_idle);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.log(|l| l.open = false);
    }
}

impl HasOutbox for TtsSocket {
    fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    fn on_sent(&mut self, out: &Out) {
        match out {
            Out::Text(t) => {
                let m = ServerMessage::parse(t).unwrap_or_default();
                let audio_bytes = m.audio_bytes().map(|a| a.len()).unwrap_or(0);
                let frame = SentFrame {
                    context_id: m.context_id.clone(),
                    audio_bytes,
                    is_final: m.is_final(),
                    error: m.error.clone(),
                };
                self.log(|l| {
                    l.audio_bytes_sent += audio_bytes;
                    l.sent.push(frame);
                });
            }
            Out::Close(code, reason) => {
                let c = (*code, truncate_reason(reason));
                self.log(|l| l.close_sent = Some(c));
            }
            Out::Drop => self.log(|l| l.dropped = true),
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for TtsSocket {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                return self.fail(
                    ctx,
                    "invalid_message",
                    &format!("WebSocket protocol error: {e}"),
                );
            }
        };
        match self.reassembler.feed(msg) {
            Incoming::Text(t) => self.on_text(ctx, t),
            Incoming::Binary(_) => self.fail(
                ctx,
                "invalid_message",
                "Binary frames are not accepted; send JSON text frames.",
            ),
            Incoming::Ping(p) => ctx.pong(&p),
            Incoming::Close(reason) => {
                let got = reason.map(|r| (u16::from(r.code), r.description.unwrap_or_default()));
                self.log(|l| l.close_received = Some(got.unwrap_or((1005, String::new()))));
                close_now(self, ctx, Out::Close(1000, String::new()));
                ctx.stop();
            }
            Incoming::Nothing => {}
            Incoming::Invalid(why) => self.fail(ctx, "invalid_message", why),
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
