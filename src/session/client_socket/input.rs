//! What the client sends: audio frames (to speech recognition, the recorder and the barge-in meter), JSON
//! messages, pings and closes. Bad input gets an `error` event and the session goes on; only a frame the codec
//! cannot read closes it (1009).

use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws;
use bytes::Bytes;

use super::ClientSocket;
use crate::recording::recorder::UserAudio;
use crate::session::barge_in::{VOICED_RMS, pcm16_rms};
use crate::session::deepgram_link::SttAudio;
use crate::session::protocol::{ClientMessage, ServerMessage, parse_client_message};

impl ClientSocket {
    fn on_audio(&mut self, pcm: Bytes, ctx: &mut ws::WebsocketContext<Self>) {
        let limit = self.app.config.limits.max_audio_frame_bytes;
        if !self.ready {
            return self.send_error(ctx, "not_ready", "audio sent before the session was ready; it was dropped", true);
        }
        if pcm.len() > limit {
            let msg = format!("audio frame of {} bytes is over the limit of {limit}; it was dropped", pcm.len());
            return self.send_error(ctx, "frame_too_large", msg, false);
        }
        if pcm.is_empty() {
            return;
        }
        let arrived = Instant::now();
        self.audio_time += pcm.len() as f64 / (f64::from(self.params.sample_rate) * 2.0);
        let voiced = pcm16_rms(&pcm) > VOICED_RMS;
        if self.barge_in.on_audio(self.audio_time, voiced) && self.assistant_speaking() {
            self.interrupt(ctx);
        }
        if let Some(recorder) = &self.recorder {
            recorder.do_send(UserAudio(pcm.clone()));
        }
        if let Some(stt) = self.stt(ctx) {
            stt.do_send(SttAudio { pcm, arrived });
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let limit = self.app.config.limits.max_text_frame_bytes;
        if text.len() > limit {
            let msg = format!("message of {} bytes is over the limit of {limit}; it was ignored", text.len());
            return self.send_error(ctx, "message_too_large", msg, false);
        }
        match parse_client_message(text) {
            Err(e) => self.send_error(ctx, e.code(), e.to_string(), false),
            Ok(ClientMessage::Ping) => self.send(ctx, &ServerMessage::Pong),
            Ok(ClientMessage::Interrupt) => {
                if self.assistant_speaking() {
                    self.interrupt(ctx);
                }
            }
            Ok(ClientMessage::Text { text }) => {
                if !self.ready {
                    return self.send_error(ctx, "not_ready", "message sent before the session was ready", true);
                }
                self.typed_turn(text.trim().to_string(), ctx);
            }
            Ok(ClientMessage::CloseMicrophone) => self.close_microphone(ctx),
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for ClientSocket {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_seen = Instant::now();
        match msg {
            Ok(ws::Message::Binary(pcm)) => self.on_audio(pcm, ctx),
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(p)) => ctx.pong(&p),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Close(reason)) => {
                log::info!("session {}: client closed ({reason:?})", self.session());
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Continuation(_)) => {
                self.send_error(ctx, "unsupported_frame", "fragmented messages are not supported", false);
            }
            Ok(ws::Message::Nop) => {}
            Err(ws::ProtocolError::Overflow) => {
                let limit =
                    self.app.config.limits.max_audio_frame_bytes.max(self.app.config.limits.max_text_frame_bytes);
                self.close(ctx, ws::CloseCode::Size, &format!("frame larger than {} bytes", limit * 4));
            }
            Err(e) => {
                log::info!("session {}: WebSocket protocol error: {e}", self.session());
                self.close(ctx, ws::CloseCode::Protocol, "protocol error");
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        // The client's socket ended (closed or vanished).
        ctx.stop();
    }
}
