//! ElevenLabs' text buffering: text accumulates until the `chunk_length_schedule` threshold of the next
//! generation is reached (then everything up to the last complete word is spoken), or until `flush`, end of
//! input or `try_trigger_generation` (above a small minimum). `auto_mode` skips the schedule and speaks each
//! complete word as soon as it arrives. Text without a trailing space stays buffered, as it does for real.

use crate::providers::elevenlabs::DEFAULT_CHUNK_LENGTH_SCHEDULE;

/// Characters `try_trigger_generation` needs before it generates.
pub const TRY_TRIGGER_MIN_CHARS: usize = 50;

/// The text waiting to be spoken in one context.
#[derive(Debug, Clone)]
pub struct TextBuffer {
    pending: String,
    schedule: Vec<u32>,
    generations: usize,
    auto_mode: bool,
}

impl TextBuffer {
    /// A buffer with this schedule (the default when `None` or empty).
    pub fn new(schedule: Option<Vec<u32>>, auto_mode: bool) -> Self {
        let schedule = schedule.filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_CHUNK_LENGTH_SCHEDULE.to_vec());
        TextBuffer { pending: String::new(), schedule, generations: 0, auto_mode }
    }

    /// Adds text; returns what to speak now, if a threshold was reached.
    pub fn push(&mut self, text: &str) -> Option<String> {
        self.pending.push_str(text);
        let threshold = self.schedule[self.generations.min(self.schedule.len() - 1)] as usize;
        if self.auto_mode || self.pending.chars().count() >= threshold {
            return self.take_complete_words();
        }
        None
    }

    /// `try_trigger_generation`: speak complete words if enough text is buffered.
    pub fn try_trigger(&mut self) -> Option<String> {
        if self.pending.chars().count() >= TRY_TRIGGER_MIN_CHARS {
            return self.take_complete_words();
        }
        None
    }

    /// `flush`/end of input: speak everything buffered.
    pub fn flush(&mut self) -> Option<String> {
        let all = std::mem::take(&mut self.pending);
        self.spoken(all)
    }

    /// Characters waiting in the buffer.
    pub fn pending_chars(&self) -> usize {
        self.pending.chars().count()
    }

    /// Drops the buffered text (context closed); returns it.
    pub fn discard(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    fn take_complete_words(&mut self) -> Option<String> {
        let cut = self.pending.rfind(char::is_whitespace)? + 1;
        let rest = self.pending.split_off(cut);
        let ready = std::mem::replace(&mut self.pending, rest);
        self.spoken(ready)
    }

    fn spoken(&mut self, text: String) -> Option<String> {
        if text.trim().is_empty() {
            return None;
        }
        self.generations += 1;
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_waits_for_the_schedule_threshold_then_speaks_whole_words() {
        let mut b = TextBuffer::new(Some(vec![20, 30]), false);
        assert_eq!(b.push("Sure, "), None);
        assert_eq!(b.push("your table is boo"), Some("Sure, your table is ".to_string()));
        assert_eq!(b.push("ked. "), None);
        assert_eq!(b.flush(), Some("booked. ".to_string()));
        assert_eq!(b.flush(), None);
    }

    #[test]
    fn try_trigger_needs_a_minimum_and_auto_mode_speaks_each_word() {
        let mut b = TextBuffer::new(None, false);
        b.push("short text ");
        assert_eq!(b.try_trigger(), None);
        b.push(&"long ".repeat(10));
        assert!(b.try_trigger().is_some());
        let mut a = TextBuffer::new(None, true);
        assert_eq!(a.push("Hi "), Some("Hi ".to_string()));
        assert_eq!(a.push("the"), None);
    }

    #[test]
    fn whitespace_alone_is_never_spoken() {
        let mut b = TextBuffer::new(Some(vec![1]), false);
        assert_eq!(b.push(" "), None);
        assert_eq!(b.flush(), None);
    }
}
