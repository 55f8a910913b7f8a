//! One ElevenLabs text-to-speech WebSocket (`stream-input` or `multi-stream-input`) as an actor. Parent: the
//! upgrade handler in `upgrade.rs`. Talks to: the client and `ElevenLabsControl` (its log). Owns the
//! contexts (one default context on the single socket, up to five named ones on the multi socket), each with
//! its text buffer, voice and play clock, the inactivity timer, and the outbox that paces audio (time to first
//! byte, real-time pacing per context).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext as _, AsyncContext as _, StreamHandler};
use actix_web_actors::ws::{self, WebsocketContext};

mod protocol;

use super::buffer::TextBuffer;
use super::control::{ElevenLabsControl, ElevenLabsFault, ElevenLabsSettings, SentFrame, TtsSocketLog};
use super::speech::Voice;
use crate::audio::OutputFormat;
use crate::emulators::common::abort::Abort;
use crate::emulators::common::reassemble::{Incoming, Reassembler};
use crate::emulators::common::ws::{HasOutbox, Out, Outbox, answer_close, close_now, deliver, truncate_reason};
use crate::providers::elevenlabs::{GenerationConfig, ServerMessage, VoiceSettings};

/// Largest frame accepted from a client.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// What the upgrade handler decided about the connection.
#[derive(Debug, Clone)]
pub struct SocketSetup {
    pub index: usize,
    pub multi: bool,
    /// The settings at the upgrade: keys and inactivity. Timing (first byte, pacing) is read live at each
    /// generation, from the control's shared settings.
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
    /// With real-time pacing, when this context's audio queued so far will have played. Contexts are paced
    /// independently, as the service generates them independently: a closed context still sending its
    /// tail does not hold back the next one.
    play_clock: Instant,
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
    outbox: Outbox,
    reassembler: Reassembler,
    ending: bool,
}

impl TtsSocket {
    /// A socket for the log entry `setup.index`.
    pub fn new(control: ElevenLabsControl, setup: SocketSetup, abort: Abort) -> Self {
        TtsSocket {
            control,
            setup,
            first_seen: false,
            voice_settings: None,
            generation_config: None,
            contexts: BTreeMap::new(),
            last_activity: Instant::now(),
            outbox: Outbox::new(abort),
            reassembler: Reassembler::new(MAX_FRAME_BYTES),
            ending: false,
        }
    }

    fn log(&self, f: impl FnOnce(&mut TtsSocketLog)) {
        let i = self.setup.index;
        self.control.shared.update(|s| {
            s.sockets.update(i, f);
        });
    }

    /// Sends `{"message","error","code":1008}` and closes 1008 with the message as (cut) reason.
    fn fail(&mut self, ctx: &mut WebsocketContext<Self>, error: &str, message: &str) {
        if self.outbox.is_finished() {
            return;
        }
        let out = Out::Text(ServerMessage::error(error, message, 1008).to_json());
        deliver(self, ctx, &out);
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
                    alignment: m.alignment.clone(),
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
            Out::Drop | Out::Reset => self.log(|l| l.dropped = true),
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for TtsSocket {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                return self.fail(ctx, "invalid_message", &format!("WebSocket protocol error: {e}"));
            }
        };
        match self.reassembler.feed(msg) {
            Incoming::Text(t) => self.on_text(ctx, t),
            Incoming::Binary(_) => {
                self.fail(ctx, "invalid_message", "Binary frames are not accepted; send JSON text frames.")
            }
            Incoming::Ping(p) => ctx.pong(&p),
            Incoming::Close(reason) => {
                let got = reason.map(|r| (u16::from(r.code), r.description.unwrap_or_default()));
                self.log(|l| l.close_received = Some(got.unwrap_or((1005, String::new()))));
                answer_close(self, ctx);
            }
            Incoming::Nothing => {}
            Incoming::Invalid(why) => self.fail(ctx, "invalid_message", why),
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
