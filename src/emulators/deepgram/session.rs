//! One Deepgram live-listen connection, as an actor on the WebSocket. Parent: the `/v1/listen` upgrade
//! handler. Talks to: the client (frames) and `DeepgramControl` (its log). Owns the `Engine` that turns the
//! audio it receives into transcript events, the idle timer (1011 NET-0001) and the outbox that delays each
//! reply by the configured latency.

use std::time::{Duration, Instant};

use actix::{Actor, ActorContext as _, AsyncContext as _, StreamHandler};
use actix_web_actors::ws::{self, WebsocketContext};
use bytes::Bytes;

use super::control::{DeepgramControl, DeepgramFault, DeepgramSettings, FinalizeReply, ReceivedText};
use super::decode::{SampleDecoder, SampleFormat};
use super::engine::{Engine, EngineConfig};
use super::replies::{self, Replier};
use super::script::Script;
use super::upgrade::MAX_FRAME_BYTES;
use crate::emulators::common::abort::Abort;
use crate::emulators::common::reassemble::{Incoming, Reassembler};
use crate::emulators::common::ws::{HasOutbox, Out, Outbox, answer_close, close_now, send_after, truncate_reason};
use crate::providers::deepgram::{
    ClientMessage, DATA_0000_REASON, Endpointing, ListenOptions, NET_0000_REASON, NET_0001_REASON, ServerMessage,
};

/// The connection actor.
pub struct DeepgramSession {
    control: DeepgramControl,
    index: usize,
    replier: Replier,
    settings: DeepgramSettings,
    fault: Option<DeepgramFault>,
    engine: Engine,
    decoder: SampleDecoder,
    sha: ring::digest::Context,
    outbox: Outbox,
    reassembler: Reassembler,
    last_activity: Instant,
    audio_seen: bool,
    closing: bool,
}

impl DeepgramSession {
    /// A session for log entry `index` (connection `number`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        control: DeepgramControl,
        index: usize,
        number: u64,
        request_id: String,
        settings: DeepgramSettings,
        script: Vec<String>,
        fault: Option<DeepgramFault>,
        options: ListenOptions,
        format: SampleFormat,
        abort: Abort,
    ) -> Self {
        let channels = options.channels.unwrap_or(1);
        let punctuate = options.punctuate.unwrap_or(false) || options.smart_format.unwrap_or(false);
        let cfg = EngineConfig {
            sample_rate: options.sample_rate.unwrap_or(16_000),
            channels,
            interim_results: options.interim_results.unwrap_or(false),
            endpointing_ms: match options.endpointing {
                Some(Endpointing::Disabled) => None,
                Some(Endpointing::Ms(ms)) => Some(ms),
                None => Some(10),
            },
            utterance_end_ms: options.utterance_end_ms,
            vad_events: options.vad_events.unwrap_or(false),
            punctuate,
            empty_finals: fault == Some(DeepgramFault::EmptyFinals),
        };
        DeepgramSession {
            control,
            index,
            replier: Replier {
                request_id,
                channels,
                punctuate,
                model: options.model.unwrap_or_else(|| "nova-3".to_string()),
            },
            settings,
            fault,
            engine: Engine::new(cfg, Script::new(number, script)),
            decoder: SampleDecoder::new(format),
            sha: ring::digest::Context::new(&ring::digest::SHA256),
            outbox: Outbox::new(abort),
            reassembler: Reassembler::new(MAX_FRAME_BYTES),
            last_activity: Instant::now(),
            audio_seen: false,
            closing: false,
        }
    }

    fn log(&self, f: impl FnOnce(&mut super::control::DeepgramConnectionLog)) {
        let i = self.index;
        self.control.shared.update(|s| {
            s.connections.update(i, f);
        });
    }

    fn reply(&mut self, ctx: &mut WebsocketContext<Self>, msg: ServerMessage) {
        let latency = self.settings.reply_latency;
        send_after(self, ctx, latency, Out::Text(msg.to_json()), None);
    }

    fn reply_out(&mut self, ctx: &mut WebsocketContext<Self>, out: Out) {
        let latency = self.settings.reply_latency;
        send_after(self, ctx, latency, out, None);
    }

    fn check_idle(&mut self, ctx: &mut WebsocketContext<Self>) {
        let idle = self.last_activity.elapsed();
        if idle >= self.settings.idle_timeout {
            close_now(self, ctx, Out::Close(1011, NET_0001_REASON.to_string()));
        } else {
            ctx.run_later(self.settings.idle_timeout - idle, Self::check_idle);
        }
    }

    fn on_text(&mut self, ctx: &mut WebsocketContext<Self>, text: String) {
        self.last_activity = Instant::now();
        let audio_time = self.engine.now();
        let parsed = serde_json::from_str::<ClientMessage>(&text);
        self.log(|l| l.texts_received.push(ReceivedText { text, audio_time }));
        match parsed {
            Ok(ClientMessage::KeepAlive) => {}
            Ok(ClientMessage::Finalize { .. }) => self.on_finalize(ctx),
            Ok(ClientMessage::CloseStream) => self.close_stream(ctx),
            Err(e) => log::debug!("deepgram emulator: ignoring unparseable text frame: {e}"),
        }
    }

    /// Answers `Finalize` as the settings say; an ignored one leaves the words in the engine for the next final.
    fn on_finalize(&mut self, ctx: &mut WebsocketContext<Self>) {
        let extra = match self.settings.finalize {
            _ if self.closing => return,
            FinalizeReply::Ignored => return,
            FinalizeReply::Immediate => Duration::ZERO,
            FinalizeReply::Late(delay) => delay,
        };
        if let Some(t) = self.engine.finalize() {
            let msg = self.replier.results(&t);
            let due = self.settings.reply_latency + extra;
            send_after(self, ctx, due, Out::Text(msg.to_json()), None);
        }
    }

    fn on_binary(&mut self, ctx: &mut WebsocketContext<Self>, bytes: Bytes) {
        if bytes.is_empty() {
            // Legacy: a zero-length binary frame means CloseStream.
            self.last_activity = Instant::now();
            return self.close_stream(ctx);
        }
        if bytes.first() == Some(&b'{')
            && let Ok(ClientMessage::KeepAlive | ClientMessage::Finalize { .. } | ClientMessage::CloseStream) =
                serde_json::from_slice::<ClientMessage>(&bytes)
        {
            // A control message sent as binary is not a control message (and not a keepalive).
            let text = String::from_utf8_lossy(&bytes).into_owned();
            return self.log(|l| l.binary_control_frames.push(text));
        }
        self.last_activity = Instant::now();
        if self.closing {
            return;
        }
        self.on_audio(ctx, &bytes);
    }

    fn on_audio(&mut self, ctx: &mut WebsocketContext<Self>, bytes: &[u8]) {
        if !self.audio_seen {
            self.audio_seen = true;
            match &self.fault {
                Some(DeepgramFault::UndecodableAudio) => {
                    return self.reply_out(ctx, Out::Close(1008, DATA_0000_REASON.to_string()));
                }
                Some(DeepgramFault::ErrorFrame) => self.reply(ctx, replies::error_frame()),
                Some(DeepgramFault::UnknownType) => self.reply(ctx, replies::unknown_frame()),
                _ => {}
            }
        }
        self.sha.update(bytes);
        let len = bytes.len() as u64;
        self.log(|l| {
            l.audio_bytes += len;
            l.audio_frames += 1;
        });
        let samples = self.decoder.decode(bytes);
        let events = self.engine.push(samples);
        for event in events {
            let msg = self.replier.event(&event);
            self.reply(ctx, msg);
        }
        let now = Duration::from_secs_f64(self.engine.now());
        match self.fault {
            Some(DeepgramFault::Close1011AfterAudio(after)) if now >= after => {
                self.fault = None;
                self.reply_out(ctx, Out::Close(1011, NET_0000_REASON.to_string()));
            }
            Some(DeepgramFault::DropAfterAudio(after)) if now >= after => {
                self.fault = None;
                self.reply_out(ctx, Out::Drop);
            }
            Some(DeepgramFault::ResetAfterAudio(after)) if now >= after => {
                self.fault = None;
                self.reply_out(ctx, Out::Reset);
            }
            _ => {}
        }
    }

    fn close_stream(&mut self, ctx: &mut WebsocketContext<Self>) {
        if self.closing {
            return;
        }
        self.closing = true;
        if let Some(t) = self.engine.close() {
            let msg = self.replier.results(&t);
            self.reply(ctx, msg);
        }
        let sha = std::mem::replace(&mut self.sha, ring::digest::Context::new(&ring::digest::SHA256)).finish();
        let duration = (self.engine.now() * 1000.0).round() / 1000.0;
        let metadata = self.replier.metadata(sha.as_ref(), duration);
        self.reply(ctx, metadata);
        self.reply_out(ctx, Out::Close(1000, String::new()));
    }
}

impl Actor for DeepgramSession {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.last_activity = Instant::now();
        ctx.run_later(self.settings.idle_timeout, Self::check_idle);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.log(|l| l.open = false);
    }
}

impl HasOutbox for DeepgramSession {
    fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    fn on_sent(&mut self, out: &Out) {
        match out {
            Out::Text(t) => {
                let t = t.clone();
                self.log(|l| l.sent.push(t));
            }
            Out::Close(code, reason) => {
                let c = (*code, truncate_reason(reason));
                self.log(|l| l.close_sent = Some(c));
            }
            Out::Drop | Out::Reset => self.log(|l| l.dropped = true),
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for DeepgramSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                let code = if matches!(e, ws::ProtocolError::Overflow) { 1009 } else { 1002 };
                return close_now(self, ctx, Out::Close(code, e.to_string()));
            }
        };
        match self.reassembler.feed(msg) {
            Incoming::Text(t) => self.on_text(ctx, t),
            Incoming::Binary(b) => self.on_binary(ctx, b),
            Incoming::Ping(p) => ctx.pong(&p),
            Incoming::Close(reason) => {
                let got = reason.as_ref().map(|r| (u16::from(r.code), r.description.clone().unwrap_or_default()));
                self.log(|l| l.close_received = Some(got.unwrap_or((1005, String::new()))));
                answer_close(self, ctx);
            }
            Incoming::Nothing => {}
            Incoming::Invalid(why) => close_now(self, ctx, Out::Close(1007, why.to_string())),
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
