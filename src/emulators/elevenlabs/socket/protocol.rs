//! What the ElevenLabs socket does with each client message: auth in the first message, the first-message
//! and settings rules, single-context end of input, multi-context open/keepalive/close/close_socket and the
//! five-context limit, buffering and generation with paced audio.

use std::time::{Duration, Instant};

use actix_web_actors::ws::WebsocketContext;
use base64::Engine as _;

use super::{Context, TtsSocket};
use crate::emulators::common::ws::{Out, close_now, send_at};
use crate::emulators::elevenlabs::buffer::TextBuffer;
use crate::emulators::elevenlabs::control::ElevenLabsFault;
use crate::emulators::elevenlabs::speech::{MAX_TEXT_CHARS, Voice};
use crate::providers::elevenlabs::{ClientMessage, MAX_CONTEXTS, ServerMessage};

impl TtsSocket {
    pub(super) fn on_text(&mut self, ctx: &mut WebsocketContext<Self>, text: String) {
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text.clone()));
        self.log(|l| l.received.push(value));
        if self.ending {
            return;
        }
        let msg: ClientMessage = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => {
                return self.fail(ctx, "invalid_message", &format!("Invalid message received: {e}"));
            }
        };
        let now = Instant::now();
        self.last_activity = now;
        let first = !self.first_seen;
        self.first_seen = true;
        if first && !self.setup.authed {
            let key = msg.xi_api_key.clone().or_else(|| msg.authorization.clone().map(|a| strip_bearer(&a)));
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
        if msg.text.as_deref().is_some_and(|t| !t.trim().is_empty()) {
            match self.setup.fault {
                Some(ElevenLabsFault::DropBeforeAudio) => {
                    self.setup.fault = None;
                    return close_now(self, ctx, Out::Drop);
                }
                Some(ElevenLabsFault::CloseBeforeAudio) => {
                    self.setup.fault = None;
                    return self.fail(ctx, "max_active_conversations", &too_many_contexts());
                }
                _ => {}
            }
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
        const RULE: &str =
            "voice_settings field must be provided in the first message and then either be not provided or not change.";
        let may_set =
            first || (self.setup.multi && !self.contexts.contains_key(msg.context_id.as_deref().unwrap_or("")));
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

    fn on_single(&mut self, ctx: &mut WebsocketContext<Self>, msg: ClientMessage, first: bool, now: Instant) {
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
                return self.fail(ctx, "max_active_conversations", &too_many_contexts());
            }
            self.open_context(id.clone(), now);
        }
        if let Some(c) = self.contexts.get_mut(&id) {
            c.last_activity = now;
        }
        self.feed(ctx, &id, &msg, &text);
    }

    fn open_context(&mut self, id: String, now: Instant) {
        let schedule = self.generation_config.as_ref().and_then(|g| g.chunk_length_schedule.clone());
        let Ok(voice) = Voice::new(self.setup.format) else {
            return;
        };
        let buffer = TextBuffer::new(schedule, self.setup.auto_mode);
        self.contexts.insert(id.clone(), Context { buffer, voice, last_activity: now, play_clock: now });
        if self.setup.multi {
            self.log(|l| l.contexts_opened.push(id));
        }
    }

    fn feed(&mut self, ctx: &mut WebsocketContext<Self>, id: &str, msg: &ClientMessage, text: &str) {
        let pending = self.contexts.get(id).map_or(0, |c| c.buffer.pending_chars());
        if pending + text.chars().count() > MAX_TEXT_CHARS {
            let m = format!("The text exceeds the limit of {MAX_TEXT_CHARS} buffered characters; flush more often.");
            return self.fail(ctx, "max_character_limit_exceeded", &m);
        }
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
        // Unflushed text is dropped; audio of flushed text still arrives, then `isFinal`: that is how a client
        // ends a turn (flush, close_context) and learns its last audio has come, so a barge-in's late audio
        // arrives too and the client drops it.
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
        // The timing knobs are read at each generation, not at the upgrade: a test that sets them after its
        // client has connected (parley opens its TTS socket when the session starts) gets what it asked for.
        let (time_to_first_byte, pacing) =
            self.control.shared.read(|s| (s.settings.time_to_first_byte, s.settings.realtime_pacing));
        let now = Instant::now();
        let mut due = now + time_to_first_byte;
        if pacing {
            due = due.max(c.play_clock);
        }
        for chunk in chunks {
            let alignment = chunk.ws_alignment();
            let msg = ServerMessage {
                audio: Some(base64::engine::general_purpose::STANDARD.encode(&chunk.audio)),
                normalized_alignment: Some(alignment.clone()),
                alignment: Some(alignment),
                context_id: self.setup.multi.then(|| id.to_string()),
                ..Default::default()
            };
            send_at(self, ctx, due, Out::Text(msg.to_json()), Some(id.to_string()));
            if self.setup.fault == Some(ElevenLabsFault::DropMidStream) {
                self.setup.fault = None;
                send_at(self, ctx, due, Out::Drop, None);
            }
            if pacing {
                due += Duration::from_secs_f64(chunk.duration_ms / 1000.0);
            }
        }
        if let Some(c) = self.contexts.get_mut(id) {
            c.play_clock = c.play_clock.max(due);
        }
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

/// The message of the `max_active_conversations` policy close.
fn too_many_contexts() -> String {
    format!(
        "Maximum simultaneous contexts per WebSocket connection exceeded ({MAX_CONTEXTS}). Please close unused contexts with close_context before opening new ones."
    )
}

fn strip_bearer(a: &str) -> String {
    a.strip_prefix("Bearer ").unwrap_or(a).trim().to_string()
}
