//! The listening half of the [`Conversation`]: microphone audio to speech recognition, the recording and the
//! barge-in meter; transcripts into the utterance; deciding when the user has finished (an `UtteranceEnd`,
//! `speech_final` plus a short silence, or the microphone closing with a `Finalize` and a fallback timer); and
//! supervising speech recognition (started by the first audio, restarted after an outage once
//! `PARLEY_STT_RESTART_MS` has passed, never after a refusal).

use bytes::Bytes;

use super::utterance::Next;
use super::{Command, Conversation, Event, Outbox, Recognition, Timer};
use crate::audio::level::{self, QUIET_RMS, VOICED_RMS};
use crate::recording::recorder::UserAudio;
use crate::session::deepgram_link::{SttEvent, SttWord};

impl Conversation {
    pub(super) fn on_audio(&mut self, pcm: Bytes, out: &mut Outbox) {
        if !self.started {
            return out.error("not_ready", "audio sent before the session was ready; it was dropped", true);
        }
        if pcm.is_empty() {
            return;
        }
        let at = self.audio_time;
        self.audio_time += self.audio_in.seconds(pcm.len());
        let level = level::rms(&pcm, self.audio_in.encoding);
        let voiced = level > VOICED_RMS;
        if self.barge_in.on_audio(self.audio_time, voiced) && self.assistant_speaking() {
            self.interrupt(out);
        }
        out.run(Command::RecordUser(UserAudio(pcm.clone())));
        if self.recognition_available(out) {
            out.run(Command::SttAudio { pcm, arrived: self.now, at, quiet: level < QUIET_RMS });
        }
    }

    /// Whether audio can go to speech recognition now, starting or restarting it when it may.
    fn recognition_available(&mut self, out: &mut Outbox) -> bool {
        match self.recognition {
            Recognition::Running => return true,
            Recognition::Refused => return false,
            Recognition::Down { until } if self.now < until => return false,
            Recognition::Down { .. } => {
                out.send(Event::Status("speech recognition is starting again".into()));
            }
            Recognition::Idle => {}
        }
        self.recognition = Recognition::Running;
        out.run(Command::StartStt);
        true
    }

    pub(super) fn close_microphone(&mut self, out: &mut Outbox) {
        if self.recognition != Recognition::Running {
            return self.commit_utterance(None, out);
        }
        out.run(Command::SttFinalize);
        self.utterance.on_finalize_requested();
        // Deepgram may not answer a Finalize at all: commit what was heard after a while regardless.
        out.run(Command::StartTimer(Timer::Finalize, self.settings.turns.finalize_timeout));
    }

    pub(super) fn on_stt(&mut self, event: SttEvent, out: &mut Outbox) {
        match event {
            SttEvent::Transcript { text, words, is_final, speech_final, from_finalize, end, speech_end } => {
                let Some(text) = self.fresh_text(text, &words, end) else {
                    log::debug!(
                        "session {}: dropped a result about audio already committed (final: {is_final}, \
                         from_finalize: {from_finalize})",
                        self.session_id
                    );
                    return;
                };
                if !text.is_empty() {
                    if speech_end.is_some() {
                        self.last_speech_end = speech_end;
                    }
                    if self.barge_in.on_transcript(&text) && self.assistant_speaking() {
                        self.interrupt(out);
                    }
                }
                let next = self.utterance.on_result(&text, is_final, speech_final, from_finalize, end);
                if !text.is_empty() || is_final {
                    out.send(Event::Transcript { text: self.utterance.text(), is_final });
                }
                match next {
                    Next::Commit => self.commit_utterance(self.last_speech_end, out),
                    Next::StartCommitTimer => {
                        self.commit_speech_end = self.last_speech_end;
                        out.run(Command::StartTimer(Timer::Commit, self.settings.turns.commit_delay));
                        self.speculate(out);
                    }
                    // Speech goes on: a pending commit would cut the user off, and an early reply is moot.
                    Next::Wait if !text.is_empty() => {
                        out.run(Command::CancelTimer(Timer::Commit));
                        self.discard_speculation(out);
                    }
                    Next::Wait => {}
                }
            }
            SttEvent::SpeechStarted { at } => {
                self.barge_in.on_speech_started(at);
                out.run(Command::CancelTimer(Timer::Commit));
                self.discard_speculation(out);
            }
            SttEvent::UtteranceEnd => {
                if self.utterance.on_utterance_end() == Next::Commit {
                    self.commit_utterance(self.last_speech_end, out);
                }
            }
            SttEvent::Status(message) => out.send(Event::Status(message)),
            SttEvent::Failed(error) => {
                if error.retryable() {
                    self.recognition = Recognition::Down { until: self.now + self.settings.turns.stt_restart_after };
                    out.error(error.code(), error.user_message(), true);
                } else {
                    self.recognition = Recognition::Refused;
                    self.error_once(error.code(), error.user_message(), false, out);
                }
                // Whatever was heard before the failure is still an utterance.
                self.commit_utterance(self.last_speech_end, out);
            }
        }
    }

    /// The part of a result that is news: a result whose words all lie in audio already committed is dropped
    /// (`None`), one that straddles the committed point keeps only its later words. A word counts as committed
    /// when its midpoint is at or before the point, so a final that moves a word's edges by a few tens of
    /// milliseconds against the interim it replaces does not bring the word back.
    fn fresh_text(&self, text: String, words: &[SttWord], end: Option<f64>) -> Option<String> {
        if text.is_empty() || self.committed_until <= 0.0 {
            return Some(text);
        }
        if words.is_empty() {
            return match end {
                Some(end) if end <= self.committed_until => None,
                _ => Some(text),
            };
        }
        let fresh: Vec<&str> =
            words.iter().filter(|w| (w.start + w.end) / 2.0 > self.committed_until).map(|w| w.text.as_str()).collect();
        match fresh.len() {
            0 => None,
            n if n == words.len() => Some(text),
            _ => Some(fresh.join(" ")),
        }
    }

    /// The user has finished speaking: answer what was heard (if anything was).
    pub(super) fn commit_utterance(&mut self, speech_end: Option<std::time::Instant>, out: &mut Outbox) {
        out.run(Command::CancelTimer(Timer::Commit));
        out.run(Command::CancelTimer(Timer::Finalize));
        self.commit_speech_end = None;
        let Some((text, words_end)) = self.utterance.take() else {
            return self.discard_speculation(out);
        };
        // Whatever recognition says later about audio up to here belongs to this utterance.
        if let Some(end) = words_end {
            self.committed_until = self.committed_until.max(end);
        }
        if self.turn.is_some() {
            // Speech over the assistant that was too short to interrupt it (a backchannel such as "uh-huh",
            // or noise) is not a new question: the reply goes on.
            log::info!(
                "session {}: ignoring {text:?} spoken over the reply (below the barge-in threshold)",
                self.session_id
            );
            self.discard_speculation(out);
            self.last_speech_end = None;
            return;
        }
        let speech_end = speech_end.or(self.last_speech_end.take());
        self.start_turn(text, speech_end, true, out);
    }
}
