//! What arrives on the Deepgram socket: transcripts, speech starts, utterance ends, pings and closes, turned into
//! [`SttEvent`]s for the parent or into reconnects.

use actix::prelude::*;
use awc::error::WsProtocolError;
use awc::ws::{Frame, Message as WsMessage};

use super::{DeepgramLink, State, SttEvent, SttWord};
use crate::providers::deepgram::{ResultsMessage, ServerMessage};
use crate::providers::{FailureKind, Provider, ProviderError};
use crate::session::ws_upstream::{self, Upstream};

impl DeepgramLink {
    fn on_text(&mut self, text: &str) {
        match ServerMessage::parse(text) {
            Ok(ServerMessage::Results(r)) => self.on_results(&r),
            Ok(ServerMessage::SpeechStarted(s)) => {
                self.report(SttEvent::SpeechStarted { at: self.feed.get().offset + s.timestamp })
            }
            Ok(ServerMessage::UtteranceEnd(_)) => self.report(SttEvent::UtteranceEnd),
            Ok(ServerMessage::Metadata(_)) => {}
            Ok(ServerMessage::Error(e)) => log::warn!("session {}: Deepgram error frame: {e:?}", self.session),
            Ok(ServerMessage::Unknown(v)) => log::debug!("session {}: ignoring Deepgram frame {v}", self.session),
            Err(e) => log::warn!("session {}: unreadable Deepgram frame ({e}): {text:.200}", self.session),
        }
    }

    fn on_results(&mut self, r: &ResultsMessage) {
        let alternative = r.channel.alternatives.first();
        let words_end = alternative.and_then(|a| a.words.last()).map(|w| w.end);
        let end_conn = words_end.unwrap_or(r.start + r.duration);
        let text = r.transcript().trim().to_string();
        let (offset, arrived_at_end) = {
            let feed = self.feed.get();
            (feed.offset, feed.clock.instant_at(end_conn))
        };
        let (end, speech_end) = if text.is_empty() { (None, None) } else { (Some(offset + end_conn), arrived_at_end) };
        let words = alternative
            .map(|a| {
                a.words
                    .iter()
                    .map(|w| SttWord {
                        text: w.punctuated_word.clone().unwrap_or_else(|| w.word.clone()),
                        start: offset + w.start,
                        end: offset + w.end,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if r.is_final {
            // Audio up to here is transcribed for good: it will not be replayed into a new connection.
            self.settled(offset + r.start + r.duration);
        }
        self.report(SttEvent::Transcript {
            text,
            words,
            is_final: r.is_final,
            speech_final: r.speech_final,
            from_finalize: r.from_finalize,
            end,
            speech_end,
        });
    }
}

impl StreamHandler<Upstream> for DeepgramLink {
    fn handle(&mut self, item: Upstream, ctx: &mut Context<Self>) {
        if item.generation != self.generation {
            return; // a replaced connection
        }
        match item.frame {
            Some(Ok(Frame::Text(bytes))) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_text(text),
                Err(_) => log::warn!("session {}: Deepgram sent invalid UTF-8", self.session),
            },
            Some(Ok(Frame::Ping(p))) => {
                if let (State::Open, Some(sink)) = (&self.state, &mut self.feed.get().sink) {
                    let _ = sink.write(WsMessage::Pong(p));
                }
            }
            Some(Ok(Frame::Close(reason))) => {
                let failure = ws_upstream::close_failure(Provider::Deepgram, reason.as_ref());
                match failure {
                    None if self.shutting_down => ctx.stop(),
                    None => {
                        let e = ProviderError::new(Provider::Deepgram, FailureKind::Connect, "closed by Deepgram");
                        self.connection_lost(e, ctx);
                    }
                    Some(e) => self.connection_lost(e, ctx),
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let e = ws_upstream::read_failure(Provider::Deepgram, &e);
                self.connection_lost(e, ctx);
            }
            None => {
                if self.shutting_down {
                    ctx.stop();
                } else if matches!(self.state, State::Open) {
                    let e = ProviderError::new(Provider::Deepgram, FailureKind::Connect, "connection dropped (1006)");
                    self.connection_lost(e, ctx);
                }
            }
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        // Each connection's end arrives as an item; the actor decides itself when to stop.
    }
}

impl actix::io::WriteHandler<WsProtocolError> for DeepgramLink {
    fn error(&mut self, err: WsProtocolError, _: &mut Context<Self>) -> Running {
        log::warn!("session {}: writing to Deepgram failed: {err}", self.session);
        Running::Continue
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}
