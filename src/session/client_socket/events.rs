//! How the [`ClientSocket`] reacts to its children: transcripts drive the utterance and barge-in, tokens
//! become sentences, audio goes straight to the client, stored messages are announced.

use std::time::Instant;

use actix::prelude::*;

use super::ClientSocket;
use crate::recording::recorder::AssistantAudio;
use crate::session::deepgram_link::SttEvent;
use crate::session::llm_worker::LlmEvent;
use crate::session::persister::Persisted;
use crate::session::protocol::ServerMessage;
use crate::session::tts_link::TtsEvent;
use crate::session::utterance::Next;

impl Handler<SttEvent> for ClientSocket {
    type Result = ();

    fn handle(&mut self, event: SttEvent, ctx: &mut Self::Context) {
        match event {
            SttEvent::Transcript { text, is_final, speech_final, from_finalize, end, speech_end } => {
                if !text.is_empty() {
                    if speech_end.is_some() {
                        self.last_speech_end = speech_end;
                    }
                    if self.barge_in.on_transcript(&text) && self.assistant_speaking() {
                        self.interrupt(ctx);
                    }
                }
                let next = self.utterance.on_result(&text, is_final, speech_final, from_finalize, end);
                if !text.is_empty() || is_final {
                    self.send(ctx, &ServerMessage::Transcript { text: self.utterance.text(), is_final });
                }
                match next {
                    Next::Commit => self.commit_utterance(self.last_speech_end, ctx),
                    Next::StartCommitTimer => self.start_commit_timer(self.last_speech_end, ctx),
                    Next::Wait if !text.is_empty() => {
                        // Speech goes on: a pending commit would cut the user off.
                        if let Some(h) = self.commit_timer.take() {
                            ctx.cancel_future(h);
                        }
                    }
                    Next::Wait => {}
                }
            }
            SttEvent::SpeechStarted { at } => {
                self.barge_in.on_speech_started(at);
                if let Some(h) = self.commit_timer.take() {
                    ctx.cancel_future(h);
                }
            }
            SttEvent::UtteranceEnd => {
                if self.utterance.on_utterance_end() == Next::Commit {
                    self.commit_utterance(self.last_speech_end, ctx);
                }
            }
            SttEvent::Status(message) => self.send(ctx, &ServerMessage::Status { message }),
            SttEvent::Failed(error) => {
                self.stt = None;
                if error.retryable() {
                    self.stt_down = Some(Some(Instant::now() + self.app.config.turns.stt_restart_after));
                    self.send_error(ctx, &error.code(), error.user_message(), true);
                } else {
                    self.stt_down = Some(None);
                    self.send_error_once(ctx, error.code(), error.user_message(), false);
                }
                // Whatever was heard before the failure is still an utterance.
                self.commit_utterance(self.last_speech_end, ctx);
            }
        }
    }
}

impl Handler<LlmEvent> for ClientSocket {
    type Result = ();

    fn handle(&mut self, event: LlmEvent, ctx: &mut Self::Context) {
        let current = self.turn.as_ref().map(|t| t.id);
        match event {
            LlmEvent::Requested { turn_id, at } if current == Some(turn_id) => {
                if let Some(t) = self.turn.as_mut() {
                    t.times.llm_requested = Some(at);
                }
            }
            LlmEvent::Token { turn_id, text } if current == Some(turn_id) => {
                let pieces = match self.turn.as_mut() {
                    Some(t) => {
                        t.times.llm_first_token.get_or_insert_with(Instant::now);
                        t.generated.push_str(&text);
                        t.segmenter.push(&text)
                    }
                    None => Vec::new(),
                };
                for piece in pieces {
                    self.speak(piece, ctx);
                }
            }
            LlmEvent::Done { turn_id } if current == Some(turn_id) => self.llm_finished(ctx),
            LlmEvent::Failed { turn_id, error, after_tokens } if current == Some(turn_id) => {
                self.send_error(ctx, &error.code(), error.user_message(), error.retryable());
                if !after_tokens {
                    if let Some(t) = self.turn.as_mut() {
                        t.tts_failed = true; // nothing to say
                    }
                }
                // What was generated before a mid-stream failure is still spoken; the turn then ends cleanly.
                self.llm_finished(ctx);
            }
            _ => {} // a superseded or interrupted turn
        }
    }
}

impl Handler<TtsEvent> for ClientSocket {
    type Result = ();

    fn handle(&mut self, event: TtsEvent, ctx: &mut Self::Context) {
        let current = self.turn.as_ref().map(|t| t.id);
        match event {
            TtsEvent::Audio { turn_id, bytes } if current == Some(turn_id) => {
                let mime = self.app.config.elevenlabs.mime_type.clone();
                if let Some(t) = self.turn.as_mut() {
                    if !t.audio_started {
                        t.audio_started = true;
                        let now = Instant::now();
                        t.times.tts_first_byte = Some(now);
                        t.times.first_audio_sent = Some(now);
                        ctx.text(ServerMessage::AudioStart { turn_id, mime_type: mime }.to_json());
                    }
                }
                if let Some(recorder) = &self.recorder {
                    recorder.do_send(AssistantAudio { turn_id, bytes: bytes.clone() });
                }
                ctx.binary(bytes);
            }
            TtsEvent::Done { turn_id } if current == Some(turn_id) => {
                if let Some(t) = self.turn.as_mut() {
                    t.tts_done = true;
                }
                self.maybe_finish(ctx);
            }
            TtsEvent::Failed { turn_id, error } if current == Some(turn_id) => {
                if error.retryable() {
                    self.send_error(ctx, &error.code(), error.user_message(), true);
                } else {
                    self.send_error_once(ctx, error.code(), error.user_message(), false);
                }
                if let Some(t) = self.turn.as_mut() {
                    t.tts_failed = true;
                    t.tts_done = true;
                }
                self.maybe_finish(ctx);
            }
            _ => {} // late audio of an interrupted turn: dropped
        }
    }
}

impl Handler<Persisted> for ClientSocket {
    type Result = ();

    fn handle(&mut self, msg: Persisted, ctx: &mut Self::Context) {
        self.send(
            ctx,
            &ServerMessage::MessageSaved { turn_id: msg.turn_id, role: msg.role, message_id: msg.message_id.0 },
        );
    }
}
