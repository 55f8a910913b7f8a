//! The speaking half of the [`Conversation`]: an assistant turn from the committed utterance (or typed text)
//! through the LLM stream, sentence by sentence into speech synthesis and out to the client (paced: see
//! `playback`), to its end, its interruption (barge-in), or its abandonment when the client goes away; and what
//! is remembered, stored, recorded and measured for it.
//!
//! What is stored and remembered of a reply is what the listener heard. A reply that plays out whole is stored
//! as generated. One cut short (interrupted, or broken by a provider failure) waits to *settle*: the client's
//! last `played` acknowledgement (sent when it drops the turn) or [`SETTLE_AFTER`], whichever comes first, or
//! the next turn, whichever is sooner; then its content is the heard prefix, cut at the last whole word,
//! with the full generated text beside it, and the LLM remembers only the heard part, marked as cut off.
//! Errors of a turn are told after its last sentence and audio, right before its `turnEnd`.

use std::time::{Duration, Instant};

use super::latency::TurnTimes;
use super::playback::{Playback, heard_text};
use super::segmenter::Segmenter;
use super::{Command, Conversation, Event, Outbox, Timer};
use crate::db::{Role, TurnId};
use crate::persistence::{HeardSource, ReplyFacts, ReplyOutcome, Write};
use crate::providers::ProviderError;
use crate::providers::openai::{ChatMessage, Role as ChatRole};
use crate::recording::recorder::{AssistantAudio, AssistantTurnEnded, UserTurnCommitted};
use crate::session::llm_worker::{CancelCompletion, Complete, LlmEvent};
use crate::session::tts_link::{TtsCommand, TtsEvent};

/// How long an interrupted reply waits for the client's final `played` position before it is stored with the
/// best estimate.
pub const SETTLE_AFTER: Duration = Duration::from_millis(1000);

/// An assistant turn, from its start until it is stored.
pub(super) struct ActiveTurn {
    pub id: TurnId,
    /// Everything the LLM generated so far.
    pub generated: String,
    pub segmenter: Segmenter,
    pub pieces: usize,
    pub llm_done: bool,
    pub tts_done: bool,
    /// TTS failed or is unavailable: the rest of the reply is text only.
    pub tts_failed: bool,
    pub times: TurnTimes,
    pub playback: Playback,
    /// Failures of this turn, told after its last text and audio.
    pub errors: Vec<ProviderError>,
    /// A provider failure cut the reply short.
    pub broken: bool,
    /// How it ended, once it has.
    pub outcome: Option<ReplyOutcome>,
    /// The `latency` event went out (a later first acknowledgement sends it again, complete).
    pub latency_sent: bool,
}

/// What the LLM is given of a stored reply: what the listener heard, marked when it was cut short (nothing at all
/// when nothing was heard).
pub fn remembered_reply(heard: &str, outcome: ReplyOutcome) -> String {
    match outcome {
        ReplyOutcome::Completed => heard.to_string(),
        ReplyOutcome::Interrupted if heard.is_empty() => String::new(),
        ReplyOutcome::Interrupted => format!("{heard}… [interrupted: the user heard only this much]"),
        ReplyOutcome::Partial => format!("{heard}… [cut off by an error]"),
    }
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
        // What the listener heard of the previous reply is part of the conversation the LLM now sees.
        self.settle(out);
        if !self.turn_allowed() {
            log::info!("session {}: turn refused, over {} a minute", self.session_id, self.settings.turns_per_minute);
            return out.error(
                "rate_limited",
                format!("more than {} turns a minute; wait a moment", self.settings.turns_per_minute),
                true,
            );
        }
        let id = self.next_turn;
        self.next_turn += 1;
        if spoken {
            out.run(Command::UserTurnCommitted(UserTurnCommitted { turn_id: id }));
        }
        let times =
            TurnTimes { speech_end: speech_end.or(Some(self.now)), committed: Some(self.now), ..TurnTimes::default() };
        out.send(Event::UserTurn { turn_id: id, text: text.clone() });
        out.run(Command::Persist(Write::message(id, Role::User, text.clone(), false, crate::db::now(), None)));
        self.unsaved += 1;
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
            times,
            playback: Playback::new(self.settings.turns.audio_lead),
            errors: Vec::new(),
            broken: false,
            outcome: None,
            latency_sent: false,
        });
    }

    /// Counts a turn against `PARLEY_TURNS_PER_MINUTE`; false when the last minute already had that many.
    fn turn_allowed(&mut self) -> bool {
        let minute = Duration::from_secs(60);
        while self.recent_turns.front().is_some_and(|t| self.now.saturating_duration_since(*t) >= minute) {
            self.recent_turns.pop_front();
        }
        if self.recent_turns.len() >= self.settings.turns_per_minute as usize {
            return false;
        }
        self.recent_turns.push_back(self.now);
        true
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
                if let Some(t) = self.turn.as_mut() {
                    if after_tokens {
                        t.broken = true; // what was generated is spoken, but it is not the whole answer
                    } else {
                        t.tts_failed = true; // nothing to say
                    }
                    t.errors.push(error);
                }
                self.llm_finished(out);
            }
            _ => {} // a superseded or interrupted turn
        }
    }

    pub(super) fn on_tts(&mut self, event: TtsEvent, out: &mut Outbox) {
        let current = self.current_turn();
        match event {
            TtsEvent::Audio { turn_id, bytes, ms, chars } if current == Some(turn_id) => {
                let now = self.now;
                if let Some(t) = self.turn.as_mut() {
                    t.times.tts_first_byte.get_or_insert(now);
                    t.playback.push(bytes, ms, chars);
                }
                self.pace(out);
            }
            TtsEvent::Done { turn_id } if current == Some(turn_id) => {
                if let Some(t) = self.turn.as_mut() {
                    t.tts_done = true;
                }
                self.maybe_finish(out);
            }
            TtsEvent::Failed { turn_id, error } if current == Some(turn_id) => {
                if let Some(t) = self.turn.as_mut() {
                    // Audio already out means the reply is cut; none means it is text only.
                    t.broken |= t.playback.any_sent() || !t.playback.is_drained();
                    t.tts_failed = true;
                    t.tts_done = true;
                    t.errors.push(error);
                }
                self.maybe_finish(out);
            }
            _ => {} // late audio of an interrupted turn: dropped
        }
    }

    /// Sends the turn's audio as far as pacing allows, and arms the pacing timer for the rest.
    pub(super) fn pace(&mut self, out: &mut Outbox) {
        let now = self.now;
        let Some(t) = self.turn.as_mut() else {
            return;
        };
        let (chunks, wait) = t.playback.release(now);
        for bytes in chunks {
            if t.times.first_audio_sent.is_none() {
                t.times.first_audio_sent = Some(now);
                out.send(Event::AudioStart { turn_id: t.id });
            }
            out.run(Command::RecordAssistant(AssistantAudio { turn_id: t.id, bytes: bytes.clone() }));
            out.send(Event::Audio { turn_id: t.id, bytes });
        }
        if let Some(wait) = wait {
            out.run(Command::StartTimer(Timer::Pace, wait));
        }
        self.maybe_finish(out);
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
        if self.turn.as_ref().is_some_and(|t| t.llm_done && t.tts_done && t.playback.is_drained()) {
            let outcome = if self.turn.as_ref().is_some_and(|t| t.broken) {
                ReplyOutcome::Partial
            } else {
                ReplyOutcome::Completed
            };
            self.finish_turn(outcome, out);
        }
    }

    /// Ends the current turn: tells the client (errors after the last audio), reports latency, and stores the
    /// reply now or, when it was cut short, once it has settled.
    fn finish_turn(&mut self, outcome: ReplyOutcome, out: &mut Outbox) {
        let Some(mut turn) = self.turn.take() else {
            return;
        };
        let interrupted = outcome == ReplyOutcome::Interrupted;
        if interrupted {
            turn.playback.stop(self.now);
        }
        out.run(Command::CancelTimer(Timer::Pace));
        if turn.playback.any_sent() && !interrupted {
            out.send(Event::AudioEnd { turn_id: turn.id });
        }
        out.run(Command::AssistantTurnEnded(AssistantTurnEnded { turn_id: turn.id }));
        for error in std::mem::take(&mut turn.errors) {
            if error.retryable() {
                out.error(error.code(), error.user_message(), true);
            } else {
                self.error_once(error.code(), error.user_message(), false, out);
            }
        }
        out.send(Event::TurnEnd { turn_id: turn.id, interrupted });
        out.send(Event::Latency { turn_id: turn.id, latency: turn.times.latency() });
        turn.latency_sent = true;
        turn.times.observe(&self.metrics);
        let label = match outcome {
            ReplyOutcome::Interrupted => "interrupted",
            _ if turn.generated.trim().is_empty() => "failed",
            _ => "completed",
        };
        self.metrics.turns_total.with_label_values(&[label]).inc();
        turn.outcome = Some(outcome);
        // The previous reply, if still waiting, is settled now: one reply waits at a time.
        self.settle(out);
        // Only a listener who was cut off has a final position to report (a broken reply plays out what was
        // sent); a session that is closing does not wait for it.
        let wait_for_client = interrupted && turn.playback.any_sent() && !self.draining;
        self.finished = Some(turn);
        if wait_for_client {
            out.run(Command::StartTimer(Timer::Settle, SETTLE_AFTER));
        } else {
            self.settle(out);
        }
        self.end_if_drained(out);
    }

    /// Stores and remembers the finished reply that is still waiting (what its listener heard), if any.
    pub(super) fn settle(&mut self, out: &mut Outbox) {
        let Some(turn) = self.finished.as_mut().filter(|t| t.outcome.is_some()) else {
            return;
        };
        let Some(outcome) = turn.outcome.take() else {
            return;
        };
        out.run(Command::CancelTimer(Timer::Settle));
        let generated = turn.generated.trim().to_string();
        if generated.is_empty() {
            return;
        }
        let text_only = turn.tts_failed && !turn.playback.any_sent();
        let (content, facts) = if outcome == ReplyOutcome::Completed || text_only {
            // Played out whole, or a text-only reply the listener read in full.
            (generated.clone(), ReplyFacts { outcome, generated: None, heard: None })
        } else {
            let (heard_ms, source) = match outcome {
                // Broken, not interrupted: everything sent plays out.
                ReplyOutcome::Partial => (turn.playback.sent_ms(), HeardSource::Estimate),
                _ => turn.playback.heard(self.now),
            };
            let chars = turn.playback.heard_chars(heard_ms);
            let (heard, _) = heard_text(&generated, chars, heard_ms, turn.playback.received_ms());
            let full = (heard != generated).then(|| generated.clone());
            (heard, ReplyFacts { outcome, generated: full, heard: Some((heard_ms.round() as u64, source)) })
        };
        self.memory.push(Role::Assistant, remembered_reply(&content, outcome));
        let interrupted = outcome != ReplyOutcome::Completed;
        out.run(Command::Persist(Write::message(
            turn.id,
            Role::Assistant,
            content,
            interrupted,
            crate::db::now(),
            Some(facts),
        )));
        self.unsaved += 1;
    }

    /// The client heard `ms` of turn `turn_id`. The first position of a turn dates when the listener began
    /// hearing it (voice-to-voice); a position after an interruption is the client's final word on it.
    pub(super) fn on_played(&mut self, turn_id: TurnId, ms: u64, out: &mut Outbox) {
        let now = self.now;
        let metrics = self.metrics.clone();
        let turn = match (self.turn.as_mut(), self.finished.as_mut()) {
            (Some(t), _) if t.id == turn_id => t,
            (_, Some(t)) if t.id == turn_id => t,
            _ => {
                log::debug!("session {}: played {ms} ms of turn {turn_id}, which is not current", self.session_id);
                return;
            }
        };
        if turn.playback.ack(ms, now) {
            turn.times.first_heard = Some(now.checked_sub(Duration::from_millis(ms)).unwrap_or(now));
            turn.times.observe_heard(&metrics);
            if turn.latency_sent {
                // The turn's figures, now complete, replace the ones sent at its end.
                out.send(Event::Latency { turn_id, latency: turn.times.latency() });
            }
        }
        let settled = self.finished.as_ref().is_some_and(|t| {
            t.id == turn_id && t.outcome == Some(ReplyOutcome::Interrupted) && t.playback.settled_by_client()
        });
        if settled {
            self.settle(out);
        }
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
        self.finish_turn(ReplyOutcome::Interrupted, out);
    }

    /// The client is gone: a reply in progress ends as interrupted (what was generated is stored as far as it
    /// was heard), and a reply still waiting to settle is stored with what is known.
    pub(super) fn abandon_turn(&mut self, out: &mut Outbox) {
        if let Some(mut turn) = self.turn.take() {
            out.run(Command::CancelCompletion(CancelCompletion { turn_id: turn.id }));
            turn.playback.stop(self.now);
            turn.outcome = Some(ReplyOutcome::Interrupted);
            self.metrics.turns_total.with_label_values(&["interrupted"]).inc();
            self.settle(out);
            self.finished = Some(turn);
        }
        self.settle(out);
    }
}
