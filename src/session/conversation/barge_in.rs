//! Deciding when the user's speech should interrupt the assistant, without letting a cough or a short noise
//! do it: a transcript with at least `min_words` words interrupts, and so does speech that Deepgram flagged
//! (`SpeechStarted`) and that parley's own energy meter (`audio::level`) hears continuing for `min_speech` of
//! audio.

use std::time::Duration;

/// The barge-in rule of one session.
#[derive(Debug, Clone)]
pub struct BargeIn {
    min_words: usize,
    min_speech: Duration,
    /// Audio time (seconds) since which speech has been continuous, after a `SpeechStarted`.
    speaking_since: Option<f64>,
}

impl BargeIn {
    pub fn new(min_words: usize, min_speech: Duration) -> BargeIn {
        BargeIn { min_words: min_words.max(1), min_speech, speaking_since: None }
    }

    /// A transcript (interim or final) arrived; true when it has enough words to interrupt.
    pub fn on_transcript(&self, text: &str) -> bool {
        text.split_whitespace().count() >= self.min_words
    }

    /// Deepgram heard speech begin at audio time `at`.
    pub fn on_speech_started(&mut self, at: f64) {
        self.speaking_since.get_or_insert(at);
    }

    /// A chunk of the user's audio ending at audio time `end`; true when speech has now lasted long enough.
    pub fn on_audio(&mut self, end: f64, voiced: bool) -> bool {
        match (self.speaking_since, voiced) {
            (Some(since), true) => end - since >= self.min_speech.as_secs_f64(),
            (Some(_), false) => {
                self.speaking_since = None;
                false
            }
            (None, _) => false,
        }
    }

    /// Forgets pending speech (after an interruption, or when a turn ends).
    pub fn reset(&mut self) {
        self.speaking_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enough_words_interrupt() {
        let b = BargeIn::new(2, Duration::from_millis(500));
        assert!(!b.on_transcript("uh"));
        assert!(!b.on_transcript("   "));
        assert!(b.on_transcript("wait stop"));
    }

    #[test]
    fn sustained_speech_interrupts_and_a_short_noise_does_not() {
        let mut b = BargeIn::new(3, Duration::from_millis(500));
        b.on_speech_started(10.0);
        assert!(!b.on_audio(10.2, true));
        assert!(!b.on_audio(10.3, false), "silence: it was a noise");
        assert!(!b.on_audio(10.8, true), "no speech start pending any more");
        b.on_speech_started(11.0);
        assert!(!b.on_audio(11.3, true));
        assert!(b.on_audio(11.5, true));
    }
}
