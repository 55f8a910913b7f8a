//! Splits a streaming LLM reply into speakable pieces (sentences, and for the first piece possibly a clause),
//! as tokens arrive, so speech synthesis of the first sentence starts while the rest is still generated.
//!
//! A period ends a sentence only when it is followed by whitespace and then something that starts a sentence:
//! not after abbreviations ("Dr.", "e.g."), initials ("J. R. R."), inside decimals ("3.14"), or before a
//! lowercase word ("Well... maybe"), or after a list number ("1. Mix"). Closing quotes and brackets stay with their sentence. Line breaks end a
//! piece (lists). A first sentence longer than [`FIRST_CLAUSE_AFTER`] characters is cut at a clause boundary
//! so the first audio comes sooner, and no piece grows past [`MAX_PIECE`] characters.

/// A first piece longer than this (characters) is cut at its last clause boundary.
pub const FIRST_CLAUSE_AFTER: usize = 60;
/// A clause cut leaves at least this many characters in the first piece.
const MIN_CLAUSE: usize = 20;
/// No piece is longer than this; an unpunctuated run is cut at a space.
pub const MAX_PIECE: usize = 300;

const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "eg", "ie", "a.m", "p.m",
    "u.s", "u.k", "inc", "ltd", "co", "corp", "no", "fig", "approx", "dept", "est", "ave", "cf", "al", "jan", "feb",
    "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
];

/// Incremental segmenter for one reply.
#[derive(Debug, Default)]
pub struct Segmenter {
    buf: String,
    emitted_any: bool,
}

impl Segmenter {
    pub fn new() -> Segmenter {
        Segmenter::default()
    }

    /// Adds streamed text; returns the pieces it completed, in order.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        while let Some(end) = self.next_boundary() {
            let piece: String = self.buf.drain(..end).collect();
            let piece = piece.trim();
            if !piece.is_empty() {
                out.push(piece.to_string());
                self.emitted_any = true;
            }
        }
        out
    }

    /// The end of the reply: whatever remains is the last piece.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.trim();
        (!rest.is_empty()).then(|| rest.to_string())
    }

    /// Byte index just past the next complete piece, if one is complete.
    fn next_boundary(&self) -> Option<usize> {
        let buf = &self.buf;
        let chars: Vec<(usize, char)> = buf.char_indices().collect();
        let start = chars.iter().position(|(_, c)| !c.is_whitespace())?;
        for i in start..chars.len() {
            let (at, c) = chars[i];
            if c == '\n' {
                return Some(at + 1);
            }
            if matches!(c, '.' | '!' | '?' | '…') {
                // Closing quotes/brackets (and further terminators such as "?!" or "...") stay with the sentence.
                let mut j = i + 1;
                while j < chars.len()
                    && matches!(chars[j].1, '.' | '!' | '?' | '…' | '"' | '\'' | '”' | '’' | ')' | ']')
                {
                    j += 1;
                }
                let Some(&(ws_at, ws)) = chars.get(j) else {
                    return None; // need to see what follows
                };
                if !ws.is_whitespace() {
                    continue; // "3.14", "e.g.,", "Yahoo!Mail"
                }
                if c == '.' || c == '…' {
                    let next = chars[j..].iter().find(|(_, ch)| !ch.is_whitespace()).map(|(_, ch)| *ch);
                    let Some(next) = next else {
                        return None; // need the next word to decide
                    };
                    let ellipsis = c == '…'
                        || (i >= 2 && chars[i - 1].1 == '.' && chars[i - 2].1 == '.')
                        || chars[i + 1..j].iter().any(|(_, ch)| *ch == '.');
                    let list_marker = c == '.' && chars[start..i].iter().all(|(_, ch)| ch.is_ascii_digit());
                    if next.is_lowercase() || list_marker || (!ellipsis && is_abbreviation(&chars[start..i])) {
                        continue;
                    }
                }
                return Some(ws_at);
            }
        }
        let pending = &buf[chars[start].0..];
        let len = pending.chars().count();
        if !self.emitted_any
            && len > FIRST_CLAUSE_AFTER
            && let Some(cut) = last_clause_boundary(pending)
        {
            return Some(chars[start].0 + cut);
        }
        if len > MAX_PIECE {
            let limit = pending.char_indices().nth(MAX_PIECE).map_or(pending.len(), |(b, _)| b);
            let cut = pending[..limit].rfind(char::is_whitespace).filter(|&b| b > 0).unwrap_or(limit);
            return Some(chars[start].0 + cut);
        }
        None
    }
}

/// The word before a period (letters and inner dots), e.g. "e.g" in "for e.g." or "Dr".
fn is_abbreviation(before: &[(usize, char)]) -> bool {
    let word: String = before
        .iter()
        .rev()
        .take_while(|(_, c)| c.is_alphabetic() || *c == '.')
        .map(|(_, c)| *c)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if word.is_empty() {
        return false;
    }
    let single_initial = word.chars().count() == 1 && word.chars().all(char::is_uppercase);
    single_initial || ABBREVIATIONS.contains(&word.to_lowercase().as_str())
}

/// Byte index just after the last ", " / "; " / ": " / " — " / " - " that leaves at least [`MIN_CLAUSE`]
/// characters before it.
fn last_clause_boundary(text: &str) -> Option<usize> {
    let mut best = None;
    for (at, c) in text.char_indices() {
        let after = at + c.len_utf8();
        let next_is_space = text[after..].chars().next().is_some_and(char::is_whitespace);
        let clause = match c {
            ',' | ';' | ':' => next_is_space,
            '—' | '–' => true,
            '-' => next_is_space && text[..at].ends_with(' '),
            _ => false,
        };
        if clause && text[..at].chars().count() >= MIN_CLAUSE {
            best = Some(after);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `text` in pieces of `step` characters, the way tokens arrive.
    fn segment(text: &str, step: usize) -> Vec<String> {
        let mut s = Segmenter::new();
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        for chunk in chars.chunks(step) {
            out.extend(s.push(&chunk.iter().collect::<String>()));
        }
        out.extend(s.finish());
        out
    }

    fn all_steps(text: &str) -> Vec<String> {
        let first = segment(text, 1);
        for step in [2, 3, 5, 7, 100] {
            assert_eq!(segment(text, step), first, "same pieces whatever the token size ({step})");
        }
        first
    }

    #[test]
    fn sentences_split_on_terminal_punctuation() {
        assert_eq!(all_steps("Hello there. How are you? I'm fine!"), ["Hello there.", "How are you?", "I'm fine!"]);
    }

    #[test]
    fn abbreviations_and_initials_do_not_end_sentences() {
        assert_eq!(
            all_steps("Dr. Smith met Mrs. Jones at 5 p.m. on Main St. today. She said hi."),
            ["Dr. Smith met Mrs. Jones at 5 p.m. on Main St. today.", "She said hi."]
        );
        assert_eq!(
            all_steps("Bring fruit, e.g. Apples or pears. Thanks."),
            ["Bring fruit, e.g. Apples or pears.", "Thanks."]
        );
        assert_eq!(all_steps("J. R. R. Tolkien wrote it. Yes."), ["J. R. R. Tolkien wrote it.", "Yes."]);
    }

    #[test]
    fn decimals_and_versions_stay_whole() {
        assert_eq!(all_steps("Pi is 3.14159. It is irrational."), ["Pi is 3.14159.", "It is irrational."]);
        assert_eq!(all_steps("Use version 2.0.1 now. Done."), ["Use version 2.0.1 now.", "Done."]);
    }

    #[test]
    fn ellipses_end_a_sentence_only_before_a_capital() {
        assert_eq!(all_steps("Well... maybe not. Hmm… Okay then."), ["Well... maybe not.", "Hmm…", "Okay then."]);
    }

    #[test]
    fn closing_quotes_stay_with_their_sentence() {
        assert_eq!(
            all_steps("He said \"Stop.\" Then he left. (It was late.) Fine."),
            ["He said \"Stop.\"", "Then he left.", "(It was late.)", "Fine."]
        );
        assert_eq!(all_steps("Really?! Yes."), ["Really?!", "Yes."]);
    }

    #[test]
    fn line_breaks_end_pieces() {
        assert_eq!(all_steps("Steps:\n1. Mix\n2. Bake\n"), ["Steps:", "1. Mix", "2. Bake"]);
    }

    #[test]
    fn a_long_first_sentence_is_cut_at_a_clause() {
        let text = "When you get to the station on the north side of town, turn left at the bakery and walk for ten minutes. Then call me.";
        let pieces = all_steps(text);
        assert_eq!(pieces[0], "When you get to the station on the north side of town,");
        assert_eq!(pieces[1], "turn left at the bakery and walk for ten minutes.");
        assert_eq!(pieces[2], "Then call me.");
    }

    #[test]
    fn only_the_first_piece_is_cut_at_clauses() {
        let later = "This second sentence is long enough to be cut, but it is not the first one, so it stays whole.";
        let pieces = all_steps(&format!("Short. {later}"));
        assert_eq!(pieces, ["Short.", later]);
    }

    #[test]
    fn unpunctuated_runs_are_bounded() {
        let text = "word ".repeat(200);
        for piece in all_steps(&text) {
            assert!(piece.chars().count() <= MAX_PIECE, "{}", piece.len());
        }
    }

    #[test]
    fn a_decision_waits_for_the_next_word_but_not_longer() {
        let mut s = Segmenter::new();
        assert!(s.push("It costs 5 dollars.").is_empty(), "cannot know yet");
        assert!(s.push(" ").is_empty(), "still cannot know");
        assert_eq!(s.push("Next"), ["It costs 5 dollars."]);
        assert_eq!(s.finish().as_deref(), Some("Next"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn multibyte_text_is_never_split_inside_a_character() {
        let pieces = all_steps("Café au lait — très bon. 日本語のテキスト。 Ça va? Oui.");
        assert_eq!(pieces.join(" "), "Café au lait — très bon. 日本語のテキスト。 Ça va? Oui.");
    }
}
