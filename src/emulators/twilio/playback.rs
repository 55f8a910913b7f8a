//! The caller's loudspeaker: audio the server sends is queued and plays in real time (8 µ-law bytes a
//! millisecond); a mark comes due when everything queued before it has played; `clear` drops what has not
//! played yet and makes every pending mark due at once. Time is passed in (a `Duration` since the stream
//! started), so the logic is tested on a fake clock.

use std::collections::VecDeque;
use std::time::Duration;

/// µ-law bytes played per millisecond at 8 kHz.
pub const BYTES_PER_MS: u64 = 8;

#[derive(Debug)]
enum Queued {
    /// Audio that starts playing at `start`.
    Audio { start: Duration, bytes: Vec<u8> },
    /// A mark due at `due` (when the audio queued before it ends).
    Mark { name: String, due: Duration },
}

/// The playback queue and what has been heard so far.
#[derive(Debug, Default)]
pub struct Playback {
    queue: VecDeque<Queued>,
    /// When everything queued will have played.
    busy_until: Duration,
    heard: Vec<u8>,
}

fn play_time(bytes: usize) -> Duration {
    Duration::from_micros(bytes as u64 * 1000 / BYTES_PER_MS)
}

fn bytes_in(d: Duration) -> usize {
    (d.as_micros() * u128::from(BYTES_PER_MS) / 1000) as usize
}

impl Playback {
    /// Queues audio received at `now`; it plays after what is already queued.
    pub fn push_audio(&mut self, now: Duration, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let start = self.busy_until.max(now);
        self.busy_until = start + play_time(bytes.len());
        self.queue.push_back(Queued::Audio { start, bytes });
    }

    /// Queues a mark received at `now`.
    pub fn push_mark(&mut self, now: Duration, name: String) {
        self.busy_until = self.busy_until.max(now);
        self.queue.push_back(Queued::Mark { name, due: self.busy_until });
    }

    /// Moves what has fully played by `now` into the heard audio; returns the marks now due, in order.
    pub fn advance(&mut self, now: Duration) -> Vec<String> {
        let mut due = Vec::new();
        while let Some(front) = self.queue.front() {
            let done = match front {
                Queued::Audio { start, bytes } => *start + play_time(bytes.len()) <= now,
                Queued::Mark { due, .. } => *due <= now,
            };
            if !done {
                break;
            }
            match self.queue.pop_front() {
                Some(Queued::Audio { bytes, .. }) => self.heard.extend_from_slice(&bytes),
                Some(Queued::Mark { name, .. }) => due.push(name),
                None => break,
            }
        }
        due
    }

    /// `clear` at `now`: what has played stays heard, the rest is dropped, and every pending mark is returned
    /// (to be echoed at once).
    pub fn clear(&mut self, now: Duration) -> Vec<String> {
        let mut marks = self.advance(now);
        let mut dropped = 0;
        for item in self.queue.drain(..) {
            match item {
                Queued::Audio { start, bytes } => {
                    let played = if now > start { bytes_in(now - start).min(bytes.len()) } else { 0 };
                    self.heard.extend_from_slice(&bytes[..played]);
                    dropped += bytes.len() - played;
                }
                Queued::Mark { name, .. } => marks.push(name),
            }
        }
        log::debug!("twilio emulator: clear dropped {dropped} bytes of queued audio");
        self.busy_until = now;
        marks
    }

    /// When the next mark comes due, if one is queued.
    pub fn next_mark_due(&self) -> Option<Duration> {
        self.queue.iter().find_map(|q| match q {
            Queued::Mark { due, .. } => Some(*due),
            Queued::Audio { .. } => None,
        })
    }

    /// Everything heard by `now`, including the played part of audio still playing; changes nothing.
    pub fn heard_at(&self, now: Duration) -> Vec<u8> {
        let mut heard = self.heard.clone();
        for item in &self.queue {
            if let Queued::Audio { start, bytes } = item {
                if now <= *start {
                    break;
                }
                heard.extend_from_slice(&bytes[..bytes_in(now - *start).min(bytes.len())]);
            }
        }
        heard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_mark_comes_due_when_the_audio_before_it_has_played() {
        let mut p = Playback::default();
        p.push_audio(ms(0), vec![1; 160]); // 20 ms
        p.push_audio(ms(5), vec![2; 160]); // queued behind: plays 20..40
        p.push_mark(ms(6), "a".into());
        p.push_audio(ms(7), vec![3; 80]); // 40..50
        p.push_mark(ms(8), "b".into());
        assert_eq!(p.next_mark_due(), Some(ms(40)));
        assert!(p.advance(ms(39)).is_empty());
        assert_eq!(p.heard_at(ms(30)).len(), 240);
        assert_eq!(p.advance(ms(40)), ["a"]);
        assert_eq!(p.next_mark_due(), Some(ms(50)));
        assert_eq!(p.advance(ms(60)), ["b"]);
        assert_eq!(p.heard_at(ms(60)).len(), 400);
    }

    #[test]
    fn a_mark_with_nothing_queued_is_due_at_once_and_audio_after_a_gap_starts_when_it_arrives() {
        let mut p = Playback::default();
        p.push_mark(ms(10), "now".into());
        assert_eq!(p.advance(ms(10)), ["now"]);
        p.push_audio(ms(100), vec![0; 8]);
        p.push_mark(ms(100), "after".into());
        assert_eq!(p.next_mark_due(), Some(ms(101)));
    }

    #[test]
    fn clear_keeps_what_played_drops_the_rest_and_returns_pending_marks() {
        let mut p = Playback::default();
        p.push_audio(ms(0), vec![1; 160]);
        p.push_mark(ms(0), "m1".into());
        p.push_audio(ms(0), vec![2; 160]);
        p.push_mark(ms(0), "m2".into());
        // At 30 ms: the first frame and m1 are done, half of the second frame has played.
        assert_eq!(p.clear(ms(30)), ["m1", "m2"]);
        let heard = p.heard_at(ms(1000));
        assert_eq!(heard.len(), 240);
        assert!(heard[160..].iter().all(|b| *b == 2));
        assert_eq!(p.next_mark_due(), None);
        // New audio after a clear starts at once.
        p.push_audio(ms(31), vec![3; 8]);
        p.push_mark(ms(31), "m3".into());
        assert_eq!(p.next_mark_due(), Some(ms(32)));
    }
}
