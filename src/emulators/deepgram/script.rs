//! What a Deepgram emulator connection "hears": the next utterance from the script queued for it, or a
//! deterministic default naming the connection and turn ("This is caller 7, turn 2, speaking."), so
//! concurrent sessions are told apart. Text is split into words the way a transcript reports them: `word`
//! lowercase without punctuation, `punctuated_word` as written.

use std::collections::VecDeque;

/// One word of an utterance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptWord {
    /// Lowercase, punctuation stripped (`word`).
    pub plain: String,
    /// As written (`punctuated_word`).
    pub punctuated: String,
}

/// The utterances of one connection.
#[derive(Debug, Clone)]
pub struct Script {
    queued: VecDeque<String>,
    connection: u64,
    turn: u64,
}

impl Script {
    /// A script for connection number `connection`, with `queued` utterances first.
    pub fn new(connection: u64, queued: Vec<String>) -> Self {
        Script { queued: queued.into(), connection, turn: 0 }
    }

    /// The words of the next utterance.
    pub fn next_utterance(&mut self) -> Vec<ScriptWord> {
        self.turn += 1;
        let text = self
            .queued
            .pop_front()
            .unwrap_or_else(|| format!("This is caller {}, turn {}, speaking.", self.connection, self.turn));
        words(&text)
    }
}

/// Splits text into transcript words.
pub fn words(text: &str) -> Vec<ScriptWord> {
    text.split_whitespace()
        .map(|w| ScriptWord {
            plain: w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').flat_map(char::to_lowercase).collect(),
            punctuated: w.to_string(),
        })
        .filter(|w| !w.plain.is_empty())
        .collect()
}

/// The transcript of `words`: punctuated as written when the client asked for punctuation, else plain.
pub fn transcript(words: &[ScriptWord], punctuate: bool) -> String {
    words.iter().map(|w| if punctuate { &w.punctuated } else { &w.plain }).cloned().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_lines_come_first_then_a_default_unique_per_connection_and_turn() {
        let mut s = Script::new(7, vec!["Book a table.".into()]);
        assert_eq!(transcript(&s.next_utterance(), true), "Book a table.");
        assert_eq!(transcript(&s.next_utterance(), true), "This is caller 7, turn 2, speaking.");
        assert_eq!(transcript(&s.next_utterance(), false), "this is caller 7 turn 3 speaking");
    }

    #[test]
    fn punctuation_only_tokens_are_not_words() {
        assert_eq!(words("Hi - there!").len(), 2);
    }
}
