//! Preemptive generation (`PARLEY_PREEMPTIVE`, on by default): when speech recognition marks `speech_final`
//! with words in hand, the reply's LLM request starts at once, while the commit window
//! (`PARLEY_COMMIT_DELAY_MS`) still runs, instead of after it.
//!
//! The request is a *speculation*: it has an id of its own, outside the turn ids, and whatever it streams is
//! held here, unseen. When the window closes and the committed turn asks the LLM exactly what the speculation
//! asked (same words, same conversation), the speculation becomes the turn: what it held is replayed into the
//! turn as if it had just arrived, the rest streams on, and only then may its tools run (the worker holds a
//! speculative request's tool calls until [`ConfirmCompletion`]). Otherwise (the user goes on speaking, a
//! typed message comes first, nothing is committed) it is cancelled and forgotten: nothing of it is sent to
//! the client, spoken, stored, recorded or metered as a turn; `parley_preemptive_discarded_total` counts it.
//! Speech synthesis is not started early: the first sentence rarely completes within the commit window, and
//! characters sent to a TTS provider are billed whether or not they are heard.

use std::time::Instant;

use super::{Command, Conversation, Outbox};
use crate::db::{Role, TurnId};
use crate::providers::openai::ChatMessage;
use crate::session::llm_worker::{CancelCompletion, Complete, ConfirmCompletion, LlmEvent};

/// Speculative requests' ids start here, far above any turn id, so that their events never pass for a turn's.
pub(super) const SPECULATIVE_IDS: TurnId = 1 << 62;

/// A reply requested before its turn was certain.
#[derive(Debug)]
pub(super) struct Speculation {
    pub id: TurnId,
    /// What the LLM was asked: the turn it becomes must ask exactly this.
    pub messages: Vec<ChatMessage>,
    /// What it streamed so far, with when each arrived.
    pub held: Vec<(Instant, LlmEvent)>,
}

impl Conversation {
    /// `speech_final` with words: ask the LLM now what the committed turn would ask.
    pub(super) fn speculate(&mut self, out: &mut Outbox) {
        let unsettled = self.finished.as_ref().is_some_and(|t| t.outcome.is_some());
        if !self.settings.turns.preemptive || self.turn.is_some() || unsettled || self.draining {
            return;
        }
        let text = self.utterance.text();
        if text.is_empty() {
            return;
        }
        let mut memory = self.memory.clone();
        memory.push(Role::User, text);
        let messages = self.chat_messages_of(&memory);
        if self.speculation.as_ref().is_some_and(|s| s.messages == messages) {
            return;
        }
        self.discard_speculation(out);
        self.speculations += 1;
        let id = SPECULATIVE_IDS + self.speculations;
        out.run(Command::Complete(Complete { turn_id: id, messages: messages.clone(), speculative: true }));
        self.speculation = Some(Speculation { id, messages, held: Vec::new() });
    }

    /// The user went on (or the speculation cannot become the turn): cancel it, silently.
    pub(super) fn discard_speculation(&mut self, out: &mut Outbox) {
        if let Some(s) = self.speculation.take() {
            out.run(Command::CancelCompletion(CancelCompletion { turn_id: s.id }));
            self.metrics.preemptive_discarded_total.inc();
            log::debug!("session {}: speculative reply {} discarded", self.session_id, s.id);
        }
    }

    /// The committed turn `id` is about to ask the LLM `messages`: the speculation that asked exactly that (and
    /// has not failed) becomes it, and is returned with what it held; any other is discarded.
    pub(super) fn adopt_speculation(
        &mut self,
        id: TurnId,
        messages: &[ChatMessage],
        out: &mut Outbox,
    ) -> Option<Speculation> {
        let usable = self.speculation.as_ref().is_some_and(|s| {
            s.messages == messages && !s.held.iter().any(|(_, e)| matches!(e, LlmEvent::Failed { .. }))
        });
        if !usable {
            self.discard_speculation(out);
            return None;
        }
        let s = self.speculation.take()?;
        out.run(Command::ConfirmCompletion(ConfirmCompletion { turn_id: s.id }));
        self.metrics.preemptive_used_total.inc();
        log::debug!("session {}: speculative reply {} became turn {id}", self.session_id, s.id);
        Some(s)
    }

    /// An LLM event as the turns see it: a speculation's events are held (`None`) until it becomes a turn, then
    /// carry that turn's id; events of discarded speculations are dropped.
    pub(super) fn route_llm_event(&mut self, event: LlmEvent) -> Option<LlmEvent> {
        let id = event.turn_id();
        if id < SPECULATIVE_IDS {
            return Some(event);
        }
        if let Some(s) = self.speculation.as_mut().filter(|s| s.id == id) {
            s.held.push((self.now, event));
            return None;
        }
        let turn = self.turn.as_ref().filter(|t| t.speculation == Some(id))?;
        Some(event.for_turn(turn.id))
    }

    /// Replays what an adopted speculation held into the turn it became, keeping when the first token came.
    pub(super) fn replay_speculation(&mut self, held: Vec<(Instant, LlmEvent)>, out: &mut Outbox) {
        let Some(id) = self.turn.as_ref().map(|t| t.id) else {
            return;
        };
        let first_token = held.iter().find(|(_, e)| matches!(e, LlmEvent::Token { .. })).map(|(at, _)| *at);
        if let (Some(at), Some(t)) = (first_token, self.turn.as_mut()) {
            t.times.llm_first_token = Some(at);
        }
        for (_, event) in held {
            self.on_llm(event.for_turn(id), out);
        }
    }
}
