//! What the listener of one assistant turn has been sent and has heard.
//!
//! [`Playback`] paces the turn's audio: the first chunk goes out at once, later ones no more than
//! `lead` ahead of real time from that first byte, so a client never holds much it must drop on an interrupt,
//! a slow client cannot make parley buffer a whole reply in its socket, and "audio sent" is an honest estimate
//! of "audio heard" when the client says nothing. It also keeps the turn's character timeline (from the TTS
//! alignment) and the client's `played` acknowledgements, and answers the question the history needs: which
//! words of the reply were heard ([`heard_text`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use crate::persistence::HeardSource;

/// The audio of one turn on its way to the listener.
#[derive(Debug)]
pub struct Playback {
    lead: Duration,
    queue: VecDeque<(Bytes, f64)>,
    /// When the first chunk was sent.
    first_sent: Option<Instant>,
    /// Milliseconds of audio sent so far, and received from TTS.
    sent_ms: f64,
    received_ms: f64,
    /// (end of a character in the turn's audio, ms; the character), in order, from the TTS alignment.
    timeline: Vec<(f64, char)>,
    /// The highest `played` position the client acknowledged, and when that acknowledgement arrived.
    acked: Option<(u64, Instant)>,
    /// An acknowledgement arrived after the turn was interrupted (the client's final position).
    acked_after_stop: bool,
    /// When the turn was cut short (interrupt, client gone), if it was.
    stopped: Option<Instant>,
}

impl Playback {
    pub fn new(lead: Duration) -> Playback {
        Playback {
            lead,
            queue: VecDeque::new(),
            first_sent: None,
            sent_ms: 0.0,
            received_ms: 0.0,
            timeline: Vec::new(),
            acked: None,
            acked_after_stop: false,
            stopped: None,
        }
    }

    /// A chunk from TTS, lasting `ms`, whose characters end at `chars` (ms from the start of the turn's audio).
    pub fn push(&mut self, bytes: Bytes, ms: f64, chars: impl IntoIterator<Item = (f64, char)>) {
        self.queue.push_back((bytes, ms));
        self.received_ms += ms;
        self.timeline.extend(chars);
    }

    /// The chunks that may be sent at `now`, and how long until the next one may (if one waits).
    pub fn release(&mut self, now: Instant) -> (Vec<Bytes>, Option<Duration>) {
        let mut out = Vec::new();
        while let Some((_, ms)) = self.queue.front() {
            let ahead_ms = match self.first_sent {
                None => 0.0,
                Some(first) => self.sent_ms - now.saturating_duration_since(first).as_secs_f64() * 1000.0,
            };
            let lead_ms = self.lead.as_secs_f64() * 1000.0;
            if self.first_sent.is_some() && ahead_ms > lead_ms {
                let wait = Duration::from_secs_f64(((ahead_ms - lead_ms) / 1000.0).max(0.001));
                return (out, Some(wait));
            }
            let ms = *ms;
            if let Some((bytes, _)) = self.queue.pop_front() {
                self.first_sent.get_or_insert(now);
                self.sent_ms += ms;
                out.push(bytes);
            }
        }
        (out, None)
    }

    /// Audio still held back by the pacing.
    pub fn is_drained(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn any_sent(&self) -> bool {
        self.first_sent.is_some()
    }

    pub fn first_sent(&self) -> Option<Instant> {
        self.first_sent
    }

    pub fn sent_ms(&self) -> f64 {
        self.sent_ms
    }

    pub fn received_ms(&self) -> f64 {
        self.received_ms
    }

    /// The turn is cut short at `now`: nothing held back will be sent.
    pub fn stop(&mut self, now: Instant) {
        self.queue.clear();
        self.stopped.get_or_insert(now);
    }

    /// A `played` acknowledgement; true when it is the first of the turn with audio heard.
    pub fn ack(&mut self, ms: u64, now: Instant) -> bool {
        let first = self.acked.is_none_or(|(m, _)| m == 0) && ms > 0;
        if self.acked.is_none_or(|(m, _)| ms >= m) {
            self.acked = Some((ms, now));
        }
        if self.stopped.is_some() {
            self.acked_after_stop = true;
        }
        first
    }

    /// The client's final position has arrived (an acknowledgement after the stop).
    pub fn settled_by_client(&self) -> bool {
        self.acked_after_stop
    }

    /// How much of the turn was heard by `now` (or by the stop), and who says so. A client that acknowledged
    /// is believed; if its final acknowledgement has not come, its last one is carried forward in real time to
    /// the stop. Never more than was sent.
    pub fn heard(&self, now: Instant) -> (f64, HeardSource) {
        let until = self.stopped.unwrap_or(now);
        match self.acked {
            Some((ms, at)) => {
                let carried = if self.acked_after_stop {
                    ms as f64
                } else {
                    ms as f64 + until.saturating_duration_since(at).as_secs_f64() * 1000.0
                };
                (carried.min(self.sent_ms), HeardSource::Client)
            }
            None => {
                let played = self.first_sent.map_or(0.0, |f| until.saturating_duration_since(f).as_secs_f64() * 1000.0);
                (played.min(self.sent_ms), HeardSource::Estimate)
            }
        }
    }

    /// The characters spoken in the first `heard_ms` of the turn's audio, if TTS gave a timeline.
    pub fn heard_chars(&self, heard_ms: f64) -> Option<usize> {
        if self.timeline.is_empty() {
            return None;
        }
        Some(self.timeline.iter().take_while(|(end, _)| *end <= heard_ms).filter(|(_, c)| !c.is_whitespace()).count())
    }
}

/// The part of `generated` a listener heard: the first `spoken_chars` non-blank characters (from the TTS
/// timeline), or when there is none, the share `heard_ms / audio_ms` of the text (an estimate from the audio
/// duration); cut back to the last whole word. Returns the heard text and whether it is shorter than the
/// generated one.
pub fn heard_text(generated: &str, spoken_chars: Option<usize>, heard_ms: f64, audio_ms: f64) -> (String, bool) {
    let generated = generated.trim();
    let total = generated.chars().filter(|c| !c.is_whitespace()).count();
    let keep = match spoken_chars {
        Some(n) => n.min(total),
        None if audio_ms <= 0.0 => 0,
        None => ((total as f64) * (heard_ms / audio_ms).clamp(0.0, 1.0)).floor() as usize,
    };
    if keep >= total {
        return (generated.to_string(), false);
    }
    // The byte index just past the `keep`-th non-blank character.
    let mut seen = 0;
    let mut end = 0;
    for (i, c) in generated.char_indices() {
        if seen == keep {
            break;
        }
        if !c.is_whitespace() {
            seen += 1;
        }
        end = i + c.len_utf8();
    }
    // A word is whole when what follows is a space or punctuation that closes it ("time" of "time,").
    let ends_word = |c: char| c.is_whitespace() || matches!(c, ',' | '.' | '!' | '?' | ';' | ':' | ')' | '"' | '…');
    let whole_word = generated[end..].chars().next().is_none_or(ends_word);
    let cut = if whole_word { end } else { generated[..end].rfind(char::is_whitespace).unwrap_or(0) };
    (generated[..cut].trim_end().to_string(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_chunk_goes_at_once_and_the_rest_no_more_than_the_lead_ahead() {
        let t0 = Instant::now();
        let mut p = Playback::new(ms(500));
        for _ in 0..10 {
            p.push(Bytes::from_static(b"x"), 200.0, []);
        }
        let (sent, wait) = p.release(t0);
        // A chunk goes while what was sent is no more than 500 ms ahead of the clock: 0, 200, 400 → 600 ms out.
        assert_eq!(sent.len(), 3, "{wait:?}");
        assert_eq!(p.sent_ms(), 600.0);
        assert_eq!(wait, Some(ms(100)));
        let (sent, _) = p.release(t0 + ms(300));
        assert_eq!(sent.len(), 2, "300 and 500 ms ahead at 300 ms");
        let (sent, wait) = p.release(t0 + ms(10_000));
        assert_eq!(sent.len(), 5);
        assert_eq!(wait, None);
        assert!(p.is_drained());
    }

    #[test]
    fn heard_comes_from_the_client_when_it_acknowledges_and_is_estimated_otherwise() {
        let t0 = Instant::now();
        let mut p = Playback::new(ms(500));
        for _ in 0..20 {
            p.push(Bytes::from_static(b"x"), 100.0, []);
        }
        p.release(t0);
        assert_eq!(p.heard(t0 + ms(250)), (250.0, HeardSource::Estimate));
        assert!(p.ack(200, t0 + ms(260)));
        assert!(!p.ack(150, t0 + ms(270)), "not the first");
        p.stop(t0 + ms(400));
        assert_eq!(p.heard(t0 + ms(900)), (340.0, HeardSource::Client), "the last ack carried to the stop");
        p.ack(420, t0 + ms(450));
        assert!(p.settled_by_client());
        assert_eq!(p.heard(t0 + ms(900)), (420.0, HeardSource::Client));
    }

    #[test]
    fn heard_text_ends_at_the_last_whole_word() {
        let text = "Once upon a time, there was a fox.";
        assert_eq!(heard_text(text, Some(6), 0.0, 0.0), ("Once".into(), true), "'upo' is half a word");
        assert_eq!(heard_text(text, Some(8), 0.0, 0.0), ("Once upon".into(), true));
        assert_eq!(heard_text(text, Some(13), 0.0, 0.0), ("Once upon a time".into(), true));
        assert_eq!(heard_text(text, Some(14), 0.0, 0.0), ("Once upon a time,".into(), true));
        assert_eq!(
            heard_text("I don't know", Some(3), 0.0, 0.0),
            ("I".into(), true),
            "\"don\" of \"don't\" is no word"
        );
        assert_eq!(heard_text(text, Some(2), 0.0, 0.0), ("".into(), true));
        assert_eq!(heard_text(text, Some(99), 0.0, 0.0), (text.into(), false));
        assert_eq!(heard_text(text, None, 500.0, 1000.0).0, "Once upon a time", "half the audio: half the text");
        assert_eq!(heard_text("  Hé là, ça va ?", Some(4), 0.0, 0.0), ("Hé là".into(), true), "multi-byte text");
    }

    #[test]
    fn the_timeline_counts_the_characters_that_ended() {
        let mut p = Playback::new(ms(500));
        p.push(Bytes::new(), 100.0, [(40.0, 'H'), (80.0, 'i'), (90.0, ' ')]);
        p.push(Bytes::new(), 100.0, [(150.0, 'y'), (190.0, 'o')]);
        assert_eq!(p.heard_chars(85.0), Some(2));
        assert_eq!(p.heard_chars(160.0), Some(3));
        assert_eq!(Playback::new(ms(1)).heard_chars(10.0), None);
    }
}
