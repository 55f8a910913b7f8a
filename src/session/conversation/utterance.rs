//! Assembling what the user said from Deepgram results into one utterance, and deciding when it is complete.
//!
//! Finals accumulate (several `is_final` results can make one utterance); the latest interim is kept too, so
//! an utterance whose finals never came (a `Finalize` with no reply, an empty final after interim text) is
//! not lost. Completion: `UtteranceEnd` commits at once; `speech_final` starts a short silence timer (the
//! caller's), cancelled by new speech; `closeMicrophone` asks for `Finalize` and commits on its reply or on a
//! fallback timer.

/// What the caller should do after feeding a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep listening.
    Wait,
    /// Start (or restart) the short silence timer; commit when it fires unless speech resumes.
    StartCommitTimer,
    /// Commit now.
    Commit,
}

/// The utterance being heard.
#[derive(Debug, Default)]
pub struct Utterance {
    finals: Vec<String>,
    interim: String,
    /// Audio time (seconds) where the last recognised word ended.
    last_word_end: Option<f64>,
    finalizing: bool,
}

impl Utterance {
    /// A transcript result. `end` is the audio time the result reaches (start + duration, or the last word's
    /// end when words are given).
    pub fn on_result(
        &mut self,
        text: &str,
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
        end: Option<f64>,
    ) -> Next {
        let text = text.trim();
        if !text.is_empty() {
            self.last_word_end = end.or(self.last_word_end);
        }
        if is_final {
            if !text.is_empty() {
                self.finals.push(text.to_string());
            } else if !self.interim.is_empty() {
                // An empty final after interim words happens in noise; the words were heard, keep them.
                self.finals.push(std::mem::take(&mut self.interim));
            }
            self.interim.clear();
        } else {
            self.interim = text.to_string();
        }
        if from_finalize && self.finalizing {
            return if self.has_text() { Next::Commit } else { Next::Wait };
        }
        if speech_final && self.has_text() && self.interim.is_empty() {
            return Next::StartCommitTimer;
        }
        Next::Wait
    }

    /// Deepgram's `UtteranceEnd`: the gap after the last word is long enough.
    pub fn on_utterance_end(&mut self) -> Next {
        if self.has_text() { Next::Commit } else { Next::Wait }
    }

    /// The client closed its microphone; a `Finalize` has been sent.
    pub fn on_finalize_requested(&mut self) {
        self.finalizing = true;
    }

    pub fn is_finalizing(&self) -> bool {
        self.finalizing
    }

    /// Finals so far, then the pending interim, as the transcript shown while the user speaks.
    pub fn text(&self) -> String {
        let mut parts: Vec<&str> = self.finals.iter().map(String::as_str).collect();
        if !self.interim.is_empty() {
            parts.push(&self.interim);
        }
        parts.join(" ")
    }

    pub fn has_text(&self) -> bool {
        !self.finals.is_empty() || !self.interim.is_empty()
    }

    /// Takes the complete utterance (text, audio time its speech ended) and starts a new one.
    pub fn take(&mut self) -> Option<(String, Option<f64>)> {
        let text = self.text();
        let end = self.last_word_end;
        *self = Utterance::default();
        (!text.is_empty()).then_some((text, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finals_accumulate_until_utterance_end() {
        let mut u = Utterance::default();
        assert_eq!(u.on_result("book a", false, false, false, Some(0.8)), Next::Wait);
        assert_eq!(u.on_result("book a table", true, false, false, Some(1.2)), Next::Wait);
        assert_eq!(u.on_result("for two", true, false, false, Some(2.0)), Next::Wait);
        assert_eq!(u.text(), "book a table for two");
        assert_eq!(u.on_utterance_end(), Next::Commit);
        assert_eq!(u.take(), Some(("book a table for two".into(), Some(2.0))));
        assert_eq!(u.take(), None);
    }

    #[test]
    fn speech_final_asks_for_the_silence_timer() {
        let mut u = Utterance::default();
        assert_eq!(u.on_result("hello there", true, true, false, Some(1.0)), Next::StartCommitTimer);
    }

    #[test]
    fn an_empty_speech_final_after_interim_text_keeps_the_words() {
        let mut u = Utterance::default();
        u.on_result("what time is it", false, false, false, Some(1.5));
        assert_eq!(u.on_result("", true, true, false, None), Next::StartCommitTimer);
        assert_eq!(u.take(), Some(("what time is it".into(), Some(1.5))));
    }

    #[test]
    fn finalize_replies_commit_and_interim_text_survives_a_missing_reply() {
        let mut u = Utterance::default();
        u.on_result("turn off the", false, false, false, Some(0.9));
        u.on_finalize_requested();
        assert_eq!(u.on_result("turn off the lights", true, false, true, Some(1.3)), Next::Commit);
        assert_eq!(u.take().unwrap().0, "turn off the lights");

        let mut silent = Utterance::default();
        silent.on_result("are you there", false, false, false, Some(0.7));
        silent.on_finalize_requested();
        // No reply: the caller's fallback timer takes what was heard.
        assert_eq!(silent.take().unwrap().0, "are you there");
    }

    #[test]
    fn nothing_heard_commits_nothing() {
        let mut u = Utterance::default();
        assert_eq!(u.on_result("", true, true, false, None), Next::Wait);
        assert_eq!(u.on_utterance_end(), Next::Wait);
        assert_eq!(u.take(), None);
    }
}
