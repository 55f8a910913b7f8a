//! The speaking half of the [`Conversation`]: an assistant turn from the committed utterance (or typed text)
//! through the LLM stream, sentence by sentence into speech synthesis and out to the client, to its end, its
//! interruption (barge-in), or its abandonment when the client goes away; and what is remembered, stored,
//! recorded and measured for it.

use std::time::Instant;

use super::latency::TurnTimes;
use super::segmenter::Segmenter;
use super::{Command, Conversation, EndReason, Event, Outbox, Timer};
use crate::db::{Role, TurnId};
use crate::persistence::Write;
use crate::providers::openai::{ChatMessage, Role as ChatRole};
use crate::recording::recorder::{AssistantAudio, AssistantTurnEnded, UserTurnCommitted};
use crate::session::llm_worker::{CancelCompletion, Complete, LlmEvent};
use crate::session::tts_link::{TtsCommand, TtsEvent};

/// The assistant turn in progress.
pub(super) struct ActiveTurn {
    pub id: TurnId,
    /// Everything the LLM generated so far.
    pub generated: String,
    pub segmenter: Segmenter,
    pub pieces: usize,
    pub llm_done: bool,
    pub tts_done: bool,
    /// TTS failed or is unavailable: the reply is text only.
    pub tts_failed: bool,
    pub audio_started: bool,
    pub times: TurnTimes,
}

impl Conversation {
    pub(super) fn typed_turn(&mut self, text: String, out: &mut Outbox) {
        out.run(Command::CancelTimer(Timer::Commit));
        out.run(Command::CancelTimer(Timer::Finalize));
        self.interrupt(out);
        self.start_turn(text, Some(self.now), false, out);
    }

    /// Starts the assistant's answer to `text`; `spoken` when it came from the microphone (its audio becomes the
    /// turn's user recording).
    pub(super) fn start_turn(&mut self, text: String, speech_end: Option<Instant>, spoken: bool, out: &mut Outbox) {
        let id = self.next_turn;
        self.next_turn += 1;
        if spoken {
            out.run(Command::UserTurnCommitted(UserTurnCommitted { turn_id: id }));
        }
        let times =
            TurnTimes { speech_end: speech_end.or(Some(self.now)), committed: Some(self.now), ..TurnTimes::default() };
        out.send(Event::UserTurn { turn_id: id, text: text.clone() });
        out.run(Command::Persist(Write::Message {
            turn_id: id,
            role: Role::User,
            content: text.clone(),
            interrupted: false,
            at: crate::db::now(),
        }));
        self.memory.push(Role::User, text);
        out.run(Command::Complete(Complete { turn_id: id, messages: self.chat_messages() }));
        out.run(Command::Tts(TtsCommand::Start { turn_id: id }));
        self.barge_in.reset();
        self.turn = Some(ActiveTurn {
            id,
            generated: String::new(),
            segmenter: Segmenter::new(),
            pieces: 0,
            llm_done: false,
            tts_done: false,
            tts_failed: false,
            audio_started: false,
            times,
        });
    }

    /// System prompt, then the remembered conversation (which ends with the new user message).
    fn chat_messages(&self) -> Vec<ChatMessage> {
        let mut messages = vec![ChatMessage::new(ChatRole::System, self.settings.system_prompt.clone())];
        messages.extend(self.memory.messages().map(|m| {
            let role = match m.role {
                Role::User => ChatRole::User,
                Role::Assistant => ChatRole::Assistant,
            };
            ChatMessage::new(role, m.text.clone())
        }));
        messages
    }

    fn current_turn(&self) -> Option<TurnId> {
        self.turn.as_ref().map(|t| t.id)
    }

    pub(super) fn on_llm(&mut self, event: LlmEvent, out: &mut Outbox) {
        let current = self.current_turn();
        match event {
            LlmEvent::Requested { turn_id, at } if current == Some(turn_id) => {
                if let Some(t) = self.turn.as_mut() {
                    t.times.llm_requested = Some(at);
                }
            }
            LlmEvent::Token { turn_id, text } if current == Some(turn_id) => {
                let now = self.now;
                let pieces = match self.turn.as_mut() {
                    Some(t) => {
                        t.times.llm_first_token.get_or_insert(now);
                        t.generated.push_str(&text);
                        t.segmenter.push(&text)
                    }
                    None => Vec::new(),
                };
                for piece in pieces {
                    self.speak(piece, out);
                }
            }
            LlmEvent::Done { turn_id } if current == Some(turn_id) => self.llm_finished(out),
            LlmEvent::Failed { turn_id, error, after_tokens } if current == Some(turn_id) => {
                out.error(error.code(), error.user_message(), error.retryable());
                if !after_tokens {
                    if let Some(t) = self.turn.as_mut() {
                        t.tts_failed = true; // nothing to say
                    }
                }
                // What was generated before a mid-stream failure is still spoken; the turn then ends cleanly.
                self.llm_finished(out);
            }
            _ => {} // a superseded or interrupted turn
        }
    }

    pub(super) fn on_tts(&mut self, event: TtsEvent, out: &mut Outbox) {
        let current = self.current_turn();
        match event {
            TtsEvent::Audio { turn_id, bytes } if current == Some(turn_id) => {
                let now = self.now;
                if let Some(t) = self.turn.as_mut() {
                    if !t.audio_started {
                        t.audio_started = true;
                        t.times.tts_first_byte = Some(now);
                        t.times.first_audio_sent = Some(now);
                        out.send(Event::AudioStart { turn_id });
                    }
                }
                out.run(Command::RecordAssistant(AssistantAudio { turn_id, bytes: bytes.clone() }));
                out.send(Event::Audio { turn_id, bytes });
            }
            TtsEvent::Done { turn_id } if current == Some(turn_id) => {
                if let Some(t) = self.turn.as_mut() {
                    t.tts_done = true;
                }
                self.maybe_finish(out);
            }
            TtsEvent::Failed { turn_id, error } if current == Some(turn_id) => {
                if error.retryable() {
                    out.error(error.code(), error.user_message(), true);
                } else {
                    self.error_once(error.code(), error.user_message(), false, out);
                }
                if let Some(t) = self.turn.as_mut() {
                    t.tts_failed = true;
                    t.tts_done = true;
                }
                self.maybe_finish(out);
            }
            _ => {} // late audio of an interrupted turn: dropped
        }
    }

    /// A complete piece of the reply: caption it and speak it.
    fn speak(&mut self, piece: String, out: &mut Outbox) {
        let now = self.now;
        let Some(turn) = self.turn.as_mut() else {
            return;
        };
        turn.pieces += 1;
        let id = turn.id;
        if !turn.tts_failed {
            turn.times.tts_first_text.get_or_insert(now);
            out.run(Command::Tts(TtsCommand::Text { turn_id: id, text: piece.clone() }));
        }
        out.send(Event::AssistantText { turn_id: id, text: piece });
    }

    /// The LLM has nothing more: speak the remainder and let TTS finish.
    fn llm_finished(&mut self, out: &mut Outbox) {
        let rest = match self.turn.as_mut() {
            Some(turn) if !turn.llm_done => {
                turn.llm_done = true;
                turn.segmenter.finish()
            }
            _ => return,
        };
        if let Some(rest) = rest {
            self.speak(rest, out);
        }
        if let Some(turn) = self.turn.as_mut() {
            if turn.tts_failed || turn.pieces == 0 {
                // Nothing (more) will come from TTS for this turn.
                turn.tts_done = true;
                out.run(Command::Tts(TtsCommand::Cancel { turn_id: turn.id }));
            } else {
                out.run(Command::Tts(TtsCommand::End { turn_id: turn.id }));
            }
        }
        self.maybe_finish(out);
    }

    fn maybe_finish(&mut self, out: &mut Outbox) {
        if self.turn.as_ref().is_some_and(|t| t.llm_done && t.tts_done) {
            self.finish_turn(false, out);
        }
    }

    /// Ends the current turn: tells the client, reports latency, remembers and stores the reply.
    fn finish_turn(&mut self, interrupted: bool, out: &mut Outbox) {
        let Some(turn) = self.turn.take() else {
            return;
        };
        if turn.audio_started && !interrupted {
            out.send(Event::AudioEnd { turn_id: turn.id });
        }
        out.run(Command::AssistantTurnEnded(AssistantTurnEnded { turn_id: turn.id }));
        out.send(Event::TurnEnd { turn_id: turn.id, interrupted });
        out.send(Event::Latency { turn_id: turn.id, latency: turn.times.latency() });
        self.record_reply(&turn, interrupted, out);
        if self.draining {
            out.send(Event::End(EndReason::ServerShutdown));
        }
    }

    /// Metrics, memory and storage for a finished (or abandoned) reply.
    fn record_reply(&mut self, turn: &ActiveTurn, interrupted: bool, out: &mut Outbox) {
        turn.times.observe(&self.metrics);
        let outcome = if interrupted {
            "interrupted"
        } else if turn.generated.trim().is_empty() {
            "failed"
        } else {
            "completed"
        };
        self.metrics.turns_total.with_label_values(&[outcome]).inc();
        let text = turn.generated.trim().to_string();
        if text.is_empty() {
            return;
        }
        self.memory.push(Role::Assistant, text.clone());
        out.run(Command::Persist(Write::Message {
            turn_id: turn.id,
            role: Role::Assistant,
            content: text,
            interrupted,
            at: crate::db::now(),
        }));
    }

    /// Barge-in: stop the reply now, if there is one. The client hears `interrupt` before anything else of the
    /// turn, and no audio of it follows.
    pub(super) fn interrupt(&mut self, out: &mut Outbox) {
        let Some(id) = self.current_turn() else {
            return;
        };
        out.run(Command::CancelCompletion(CancelCompletion { turn_id: id }));
        out.run(Command::Tts(TtsCommand::Cancel { turn_id: id }));
        self.metrics.interruptions_total.inc();
        self.barge_in.reset();
        out.send(Event::Interrupt { turn_id: id });
        self.finish_turn(true, out);
    }

    /// The client is gone with a reply in progress: store what was generated, marked interrupted.
    pub(super) fn abandon_turn(&mut self, out: &mut Outbox) {
        if let Some(turn) = self.turn.take() {
            out.run(Command::CancelCompletion(CancelCompletion { turn_id: turn.id }));
            self.record_reply(&turn, true, out);
        }
    }
}
