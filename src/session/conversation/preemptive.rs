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
//!
//! Speech synthesis starts early too (`PARLEY_PREEMPTIVE_TTS`, on by default): the first [`EARLY_PIECES`]
//! pieces the segmenter cuts from the held text are sent to TTS under the speculation's id, and the audio
//! that comes back is held as well. A turn that adopts the speculation speaks on in that TTS context (its
//! pieces are not sent twice), and the held audio goes out the moment the turn starts, paced as usual. A
//! discarded speculation's TTS context is cancelled; its audio is never played or recorded, and the characters
//! it sent (billed by the provider all the same) are counted in
//! `parley_preemptive_discarded_tts_characters_total`. Early speech stops at the first tool call (what follows
//! depends on the tool) and is dropped if it fails (the turn then speaks for itself).

use std::collections::VecDeque;
use std::time::Instant;

use super::segmenter::Segmenter;
use super::{Command, Conversation, Outbox};
use crate::db::{Role, TurnId};
use crate::providers::openai::ChatMessage;
use crate::session::llm_worker::{CancelCompletion, Complete, ConfirmCompletion, LlmEvent};
use crate::session::tts_link::{TtsCommand, TtsEvent};

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
    /// Cuts the held text into pieces for early speech, as the turn's own segmenter will.
    segmenter: Segmenter,
    /// Speech synthesis started early, if it has.
    pub voice: Option<EarlyVoice>,
    /// No more pieces are spoken early (enough were, a tool was called, the LLM is done or failed, or the early
    /// speech failed).
    voice_closed: bool,
}

/// How many pieces of an early reply are spoken before the turn is certain: the first audio is what the
/// listener waits for; later pieces have the playing time of the first to be synthesized. Two, because
/// HTTP mode starts a sentence once it knows the next.
pub(super) const EARLY_PIECES: usize = 2;

/// Speech synthesis of an early reply, under the speculation's id.
#[derive(Debug)]
pub(super) struct EarlyVoice {
    /// The pieces sent, in order: the adopting turn's segmenter cuts the same pieces and does not send them again.
    pub pieces: VecDeque<String>,
    /// Characters sent.
    pub characters: u64,
    /// When the first piece was sent.
    pub first_text: Instant,
    /// What TTS reported, with when it arrived.
    pub held: Vec<(Instant, TtsEvent)>,
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
        self.speculation = Some(Speculation {
            id,
            messages,
            held: Vec::new(),
            segmenter: Segmenter::new(),
            voice: None,
            voice_closed: !self.settings.turns.preemptive_tts,
        });
    }

    /// The user went on (or the speculation cannot become the turn): cancel it, silently.
    pub(super) fn discard_speculation(&mut self, out: &mut Outbox) {
        if let Some(s) = self.speculation.take() {
            out.run(Command::CancelCompletion(CancelCompletion { turn_id: s.id }));
            if let Some(voice) = s.voice {
                out.run(Command::Tts(TtsCommand::Cancel { turn_id: s.id }));
                self.metrics.preemptive_discarded_tts_characters_total.inc_by(voice.characters);
            }
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
    /// carry that turn's id; events of discarded speculations are dropped. The held text's first pieces are
    /// spoken early.
    pub(super) fn route_llm_event(&mut self, event: LlmEvent, out: &mut Outbox) -> Option<LlmEvent> {
        let id = event.turn_id();
        if id < SPECULATIVE_IDS {
            return Some(event);
        }
        if let Some(s) = self.speculation.as_mut().filter(|s| s.id == id) {
            if !s.voice_closed {
                let pieces = match &event {
                    LlmEvent::Requested { .. } => Vec::new(),
                    LlmEvent::Token { text, .. } => s.segmenter.push(text),
                    LlmEvent::Done { .. } => {
                        s.voice_closed = true;
                        s.segmenter.finish().into_iter().collect()
                    }
                    _ => {
                        s.voice_closed = true;
                        Vec::new()
                    }
                };
                for piece in pieces {
                    self.speak_early(piece, out);
                }
            }
            if let Some(s) = self.speculation.as_mut() {
                s.held.push((self.now, event));
            }
            return None;
        }
        let turn = self.turn.as_ref().filter(|t| t.speculation == Some(id))?;
        Some(event.for_turn(turn.id))
    }

    /// Sends a piece of the speculation's reply to TTS (starting its context with the first).
    fn speak_early(&mut self, piece: String, out: &mut Outbox) {
        let now = self.now;
        let Some(s) = self.speculation.as_mut().filter(|s| !s.voice_closed) else {
            return;
        };
        let id = s.id;
        let voice = s.voice.get_or_insert_with(|| {
            out.run(Command::Tts(TtsCommand::Start { turn_id: id }));
            EarlyVoice { pieces: VecDeque::new(), characters: 0, first_text: now, held: Vec::new() }
        });
        voice.characters += piece.chars().count() as u64;
        voice.pieces.push_back(piece.clone());
        s.voice_closed |= voice.pieces.len() >= EARLY_PIECES;
        out.run(Command::Tts(TtsCommand::Text { turn_id: id, text: piece }));
    }

    /// A TTS event as the turns see it: the speculation's audio is held (`None`) until it becomes a turn; a
    /// failure of its early speech drops that speech (the turn will speak for itself). Events of discarded
    /// speculations are dropped.
    pub(super) fn route_tts_event(&mut self, event: TtsEvent) -> Option<TtsEvent> {
        let id = event.turn_id();
        if id < SPECULATIVE_IDS {
            return Some(event);
        }
        if let Some(s) = self.speculation.as_mut().filter(|s| s.id == id) {
            if let TtsEvent::Failed { error, .. } = &event {
                log::info!(
                    "session {}: early speech of reply {id} failed ({error}); the turn speaks for itself",
                    self.session_id
                );
                if let Some(voice) = s.voice.take() {
                    self.metrics.preemptive_discarded_tts_characters_total.inc_by(voice.characters);
                }
                s.voice_closed = true;
            } else if let Some(voice) = s.voice.as_mut() {
                voice.held.push((self.now, event));
            }
            return None;
        }
        self.turn.as_ref().filter(|t| t.tts_id == id).map(|_| event)
    }

    /// Replays what an adopted speculation held into the turn it became, keeping when the first token, the
    /// first text for TTS and its first audio came.
    pub(super) fn replay_speculation(
        &mut self,
        held: Vec<(Instant, LlmEvent)>,
        voice: Option<EarlyVoice>,
        out: &mut Outbox,
    ) {
        let Some(id) = self.turn.as_ref().map(|t| t.id) else {
            return;
        };
        let first_token = held
            .iter()
            .find(|(_, e)| matches!(e, LlmEvent::Token { .. } | LlmEvent::ToolStarted { .. }))
            .map(|(at, _)| *at);
        if let (Some(at), Some(t)) = (first_token, self.turn.as_mut()) {
            t.times.llm_first_token = Some(at);
        }
        let (audio, first_text) = voice.map_or((Vec::new(), None), |v| (v.held, Some(v.first_text)));
        if let (Some(at), Some(t)) = (first_text, self.turn.as_mut()) {
            t.times.tts_first_text = Some(at);
        }
        for (_, event) in held {
            self.on_llm(event.for_turn(id), out);
        }
        let first_audio = audio.iter().find(|(_, e)| matches!(e, TtsEvent::Audio { .. })).map(|(at, _)| *at);
        if let (Some(at), Some(t)) = (first_audio, self.turn.as_mut()) {
            t.times.tts_first_byte = Some(at);
        }
        for (_, event) in audio {
            self.on_tts(event, out);
        }
    }
}
