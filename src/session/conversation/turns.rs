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
use super::{Command, Conversation, EndReason, Event, LAST_SAVES, Outbox, Timer, ToolStatus};
use crate::db::{Role, ToolRecord, TurnId, TurnUsage};
use crate::persistence::{HeardSource, ReplyFacts, ReplyOutcome, Write};
use crate::providers::ProviderError;
use crate::providers::openai::{ChatMessage, FunctionCall, Role as ChatRole, ToolCall};
use crate::recording::recorder::{AssistantAudio, AssistantTurnEnded, UserTurnCommitted};
use crate::session::llm_worker::{CancelCompletion, ClientToolAnswer, Complete, LlmEvent};
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
    /// Tool calls finished, in order.
    pub tools: Vec<ToolRecord>,
    /// Tool calls started and not finished: (call id, name).
    pub pending_tools: Vec<(String, String)>,
    /// Client-side calls waiting for the client's answer.
    pub client_calls: Vec<String>,
    /// The LLM that answered, once it has.
    pub llm: Option<String>,
    /// What the turn used.
    pub usage: TurnUsage,
    /// The speculative request this turn adopted (preemptive generation): its LLM events carry that id.
    pub speculation: Option<TurnId>,
    /// The id the turn's speech synthesis goes by: its own, or the adopted speculation's when that had started
    /// speaking (the TTS context is that one's).
    pub tts_id: TurnId,
    /// Pieces the adopted speculation already sent to TTS, in order: not sent again.
    pub early_pieces: std::collections::VecDeque<String>,
}

impl ActiveTurn {
    /// A turn that starts now, with nothing generated yet.
    pub fn new(id: TurnId, times: TurnTimes, audio_lead: Duration) -> ActiveTurn {
        ActiveTurn {
            id,
            generated: String::new(),
            segmenter: Segmenter::new(),
            pieces: 0,
            llm_done: false,
            tts_done: false,
            tts_failed: false,
            times,
            playback: Playback::new(audio_lead),
            errors: Vec::new(),
            broken: false,
            outcome: None,
            latency_sent: false,
            tools: Vec::new(),
            pending_tools: Vec::new(),
            client_calls: Vec::new(),
            llm: None,
            usage: TurnUsage::default(),
            speculation: None,
            tts_id: id,
            early_pieces: std::collections::VecDeque::new(),
        }
    }
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
            self.discard_speculation(out);
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
        // A typed turn skipped speech recognition: its STT figure is null, not 0 ms.
        let times = TurnTimes {
            speech_end: speech_end.or(Some(self.now)),
            committed: spoken.then_some(self.now),
            ..TurnTimes::default()
        };
        out.send(Event::UserTurn { turn_id: id, text: text.clone() });
        out.run(Command::Persist(Write::message(id, Role::User, text.clone(), false, crate::db::now(), None)));
        self.unsaved += 1;
        self.memory.push(Role::User, text);
        let messages = self.chat_messages_of(&self.memory);
        let mut adopted = self.adopt_speculation(id, &messages, out);
        if adopted.is_none() {
            out.run(Command::Complete(Complete { turn_id: id, messages, speculative: false }));
        }
        // Speech the adopted reply started early goes on in its TTS context; otherwise the turn starts one.
        let mut voice = adopted.as_mut().and_then(|s| s.voice.take());
        let mut turn = ActiveTurn::new(id, times, self.settings.turns.audio_lead);
        match (voice.as_mut(), adopted.as_ref()) {
            (Some(v), Some(s)) => {
                turn.tts_id = s.id;
                turn.early_pieces = std::mem::take(&mut v.pieces);
            }
            _ => out.run(Command::Tts(TtsCommand::Start { turn_id: id })),
        }
        self.barge_in.reset();
        if spoken {
            turn.usage.stt_seconds = (self.audio_time - self.stt_metered_until).max(0.0);
        }
        turn.speculation = adopted.as_ref().map(|s| s.id);
        self.stt_metered_until = self.audio_time;
        self.turn = Some(turn);
        if let Some(s) = adopted {
            self.replay_speculation(s.held, voice, out);
        }
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

    /// System prompt, then the remembered conversation (which ends with the new user message). A reply that
    /// used tools is given as the calls (an assistant message with `tool_calls`), their answers (`tool`
    /// messages), then its text.
    pub(super) fn chat_messages_of(&self, memory: &super::memory::Memory) -> Vec<ChatMessage> {
        let mut messages = vec![ChatMessage::new(ChatRole::System, self.settings.system_prompt.clone())];
        for m in memory.messages() {
            let role = match m.role {
                Role::User => ChatRole::User,
                Role::Assistant => ChatRole::Assistant,
            };
            if !m.tools.is_empty() {
                let mut calls = ChatMessage::new(ChatRole::Assistant, "");
                calls.content = None;
                calls.tool_calls = Some(
                    m.tools
                        .iter()
                        .map(|t| ToolCall {
                            id: t.call_id.clone(),
                            kind: "function".into(),
                            function: FunctionCall {
                                name: t.name.clone(),
                                arguments: match &t.arguments {
                                    serde_json::Value::String(raw) => raw.clone(),
                                    v => v.to_string(),
                                },
                            },
                        })
                        .collect(),
                );
                messages.push(calls);
                for t in &m.tools {
                    let mut answer = ChatMessage::new(ChatRole::Tool, t.answer());
                    answer.tool_call_id = Some(t.call_id.clone());
                    messages.push(answer);
                }
            }
            if !m.text.trim().is_empty() {
                messages.push(ChatMessage::new(role, m.text.clone()));
            }
        }
        messages
    }

    fn current_turn(&self) -> Option<TurnId> {
        self.turn.as_ref().map(|t| t.id)
    }

    /// The LLM request the current turn streams from: its own id, or the speculative request it adopted.
    fn llm_request_of_turn(&self) -> TurnId {
        self.turn.as_ref().map_or(0, |t| t.speculation.unwrap_or(t.id))
    }

    pub(super) fn on_llm(&mut self, event: LlmEvent, out: &mut Outbox) {
        let current = self.current_turn();
        match event {
            LlmEvent::Requested { turn_id, at } if current == Some(turn_id) => {
                // The turn's first request: a retry, a fallback or a tool step after it is part of the wait.
                if let Some(t) = self.turn.as_mut() {
                    t.times.llm_requested.get_or_insert(at);
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
            LlmEvent::ToolStarted { turn_id, call_id, name, arguments, client } if current == Some(turn_id) => {
                let now = self.now;
                if let Some(t) = self.turn.as_mut() {
                    // A tool call is the model's first output as much as a word is.
                    t.times.llm_first_token.get_or_insert(now);
                    t.pending_tools.push((call_id.clone(), name.clone()));
                    if client {
                        t.client_calls.push(call_id.clone());
                    }
                }
                if client {
                    out.send(Event::ToolCall { turn_id, call_id, name, arguments });
                } else {
                    out.send(Event::ToolStatus { turn_id, call_id, name, status: ToolStatus::Running });
                }
            }
            LlmEvent::ToolFinished { turn_id, record } if current == Some(turn_id) => {
                let status = if record.error.is_some() { ToolStatus::Failed } else { ToolStatus::Done };
                let outcome = if record.error.is_some() { "error" } else { "ok" };
                self.metrics.tool_calls_total.with_label_values(&[&record.name, outcome]).inc();
                if let Some(t) = self.turn.as_mut() {
                    t.pending_tools.retain(|(id, _)| *id != record.call_id);
                    t.client_calls.retain(|id| *id != record.call_id);
                    t.usage.tool_calls += 1;
                    let (call_id, name) = (record.call_id.clone(), record.name.clone());
                    t.tools.push(record);
                    out.send(Event::ToolStatus { turn_id, call_id, name, status });
                }
            }
            LlmEvent::Filler { turn_id, text } if current == Some(turn_id) => {
                // Whatever the model said before calling the tool goes first.
                let before = self.turn.as_mut().and_then(|t| t.segmenter.finish());
                if let Some(before) = before {
                    self.speak(before, out);
                }
                if let Some(t) = self.turn.as_mut() {
                    if !t.generated.is_empty() && !t.generated.ends_with(' ') {
                        t.generated.push(' ');
                    }
                    t.generated.push_str(&text);
                    t.generated.push(' ');
                }
                self.speak(text, out);
            }
            LlmEvent::EndConversation { turn_id } if current == Some(turn_id) => {
                log::info!("session {}: the agent ends the conversation after turn {turn_id}", self.session_id);
                self.end_reason = EndReason::AgentEnded;
            }
            LlmEvent::Done { turn_id, usage, provider } if current == Some(turn_id) => {
                if let Some(t) = self.turn.as_mut() {
                    t.llm = Some(provider).filter(|p| !p.is_empty());
                    t.usage.llm_prompt_tokens = usage.prompt_tokens;
                    t.usage.llm_completion_tokens = usage.completion_tokens;
                    t.usage.llm_tokens_estimated = usage.estimated;
                }
                self.llm_finished(out)
            }
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
        let current = self.turn.as_ref().map(|t| t.tts_id);
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
            // A turn already over (its LLM failed before the voice did) still tells the listener what the
            // operator must fix (a missing or refused key), once a session, rather than only the log.
            TtsEvent::Failed { error, .. } if !error.retryable() => {
                self.error_once(error.code(), error.user_message(), false, out);
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
            turn.usage.tts_characters += piece.chars().count() as u64;
            turn.times.tts_first_text.get_or_insert(now);
            if turn.early_pieces.front() == Some(&piece) {
                turn.early_pieces.pop_front(); // spoken early, under the speculation's id
            } else {
                if !turn.early_pieces.is_empty() {
                    log::warn!("session {}: turn {id}: the reply's pieces differ from the early ones", self.session_id);
                    turn.early_pieces.clear();
                }
                out.run(Command::Tts(TtsCommand::Text { turn_id: turn.tts_id, text: piece.clone() }));
            }
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
                out.run(Command::Tts(TtsCommand::Cancel { turn_id: turn.tts_id }));
            } else {
                out.run(Command::Tts(TtsCommand::End { turn_id: turn.tts_id }));
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
        if self.end_reason == EndReason::AgentEnded && !self.draining {
            if interrupted {
                // The user spoke over the goodbye: the conversation goes on.
                self.end_reason = EndReason::ServerShutdown;
            } else {
                // Ends once the reply is stored and the client told so (or within a second, whatever happens).
                self.draining = true;
                out.run(Command::StartTimer(Timer::Drain, LAST_SAVES));
            }
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
        let tools = std::mem::take(&mut turn.tools);
        let usage = std::mem::take(&mut turn.usage);
        let llm = turn.llm.take();
        meter(&self.metrics, &self.settings.agent, &usage);
        if generated.is_empty() && tools.is_empty() {
            return;
        }
        let text_only = turn.tts_failed && !turn.playback.any_sent();
        let (content, facts) = if outcome == ReplyOutcome::Completed || text_only {
            // Played out whole, or a text-only reply the listener read in full.
            (generated.clone(), ReplyFacts { outcome, generated: None, heard: None, tools, llm, usage: Some(usage) })
        } else {
            let (heard_ms, source) = match outcome {
                // Broken, not interrupted: everything sent plays out.
                ReplyOutcome::Partial => (turn.playback.sent_ms(), HeardSource::Estimate),
                _ => turn.playback.heard(self.now),
            };
            let chars = turn.playback.heard_chars(heard_ms);
            let (heard, _) = heard_text(&generated, chars, heard_ms, turn.playback.received_ms());
            let full = (heard != generated).then(|| generated.clone());
            let heard_at = Some((heard_ms.round() as u64, source));
            (heard, ReplyFacts { outcome, generated: full, heard: heard_at, tools, llm, usage: Some(usage) })
        };
        self.memory.push_with_tools(Role::Assistant, remembered_reply(&content, outcome), facts.tools.clone());
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
        out.run(Command::CancelCompletion(CancelCompletion { turn_id: self.llm_request_of_turn() }));
        let tts_id = self.turn.as_ref().map_or(id, |t| t.tts_id);
        out.run(Command::Tts(TtsCommand::Cancel { turn_id: tts_id }));
        self.cancel_tools(out);
        self.metrics.interruptions_total.inc();
        self.barge_in.reset();
        out.send(Event::Interrupt { turn_id: id });
        self.finish_turn(ReplyOutcome::Interrupted, out);
    }

    /// The client is gone: a reply in progress ends as interrupted (what was generated is stored as far as it
    /// was heard), and a reply still waiting to settle is stored with what is known.
    pub(super) fn abandon_turn(&mut self, out: &mut Outbox) {
        self.cancel_tools(out);
        if let Some(mut turn) = self.turn.take() {
            out.run(Command::CancelCompletion(CancelCompletion { turn_id: turn.speculation.unwrap_or(turn.id) }));
            turn.playback.stop(self.now);
            turn.outcome = Some(ReplyOutcome::Interrupted);
            self.metrics.turns_total.with_label_values(&["interrupted"]).inc();
            self.settle(out);
            self.finished = Some(turn);
        }
        self.settle(out);
    }

    /// A barge-in (or the client leaving) drops the turn's tool calls still running: the client hears that
    /// each is cancelled, and each is recorded as such, so the model knows its outcome is unknown.
    fn cancel_tools(&mut self, out: &mut Outbox) {
        let Some(t) = self.turn.as_mut() else {
            return;
        };
        for (call_id, name) in std::mem::take(&mut t.pending_tools) {
            self.metrics.tool_calls_total.with_label_values(&[&name, "cancelled"]).inc();
            out.send(Event::ToolStatus {
                turn_id: t.id,
                call_id: call_id.clone(),
                name: name.clone(),
                status: ToolStatus::Cancelled,
            });
            t.tools.push(ToolRecord {
                call_id,
                name,
                arguments: serde_json::Value::Null,
                result: None,
                error: Some("cancelled: the user interrupted before it finished; its outcome is unknown".into()),
            });
        }
        t.client_calls.clear();
    }

    /// The client answered a client-side tool call of the current turn.
    pub(super) fn on_tool_result(
        &mut self,
        call_id: String,
        answer: Result<serde_json::Value, String>,
        out: &mut Outbox,
    ) {
        let waiting = self.turn.as_ref().is_some_and(|t| t.client_calls.contains(&call_id));
        if !waiting {
            return out.error(
                "unknown_tool_call",
                format!("no tool call {call_id:?} is waiting for an answer (it may have been cancelled)"),
                false,
            );
        }
        if let Some(t) = self.turn.as_mut() {
            t.client_calls.retain(|id| *id != call_id);
        }
        out.run(Command::ClientToolAnswer(ClientToolAnswer { call_id, answer }));
    }
}

/// Counts a settled turn's usage in the agent's metrics.
fn meter(m: &crate::metrics::Metrics, agent: &str, usage: &TurnUsage) {
    if usage.stt_seconds > 0.0 {
        m.usage_stt_seconds_total.with_label_values(&[agent]).inc_by(usage.stt_seconds);
    }
    m.usage_llm_tokens_total.with_label_values(&[agent, "prompt"]).inc_by(usage.llm_prompt_tokens);
    m.usage_llm_tokens_total.with_label_values(&[agent, "completion"]).inc_by(usage.llm_completion_tokens);
    m.usage_tts_characters_total.with_label_values(&[agent]).inc_by(usage.tts_characters);
}
