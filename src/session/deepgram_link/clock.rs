//! Maps Deepgram's audio-stream time (seconds of audio sent on one connection) back to the wall-clock instant
//! that audio arrived from the client, so "end of speech" is measured when the user actually stopped talking
//! and not when the provider reported it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many chunks are remembered (at 20–40 ms per chunk, 10–20 s of audio: results come well within that).
/// A power of two minus one, so the ring never grows past a power-of-two allocation.
const MAX_MARKS: usize = 511;

/// Arrival times of the audio sent on the current upstream connection.
#[derive(Debug)]
pub struct AudioClock {
    bytes_per_second: f64,
    sent_bytes: u64,
    /// When the connection's first chunk arrived: marks count milliseconds from here.
    base: Option<Instant>,
    /// (byte offset at the end of a chunk, milliseconds after `base` that chunk arrived from the client)
    marks: VecDeque<(u64, u32)>,
}

impl AudioClock {
    /// A clock for audio of `bytes_per_second` (32 000 for 16 kHz 16-bit PCM, 8 000 for 8 kHz µ-law).
    pub fn new(bytes_per_second: f64) -> AudioClock {
        AudioClock { bytes_per_second, sent_bytes: 0, base: None, marks: VecDeque::new() }
    }

    /// Records a chunk of `len` bytes that arrived from the client at `arrived`.
    pub fn record(&mut self, len: usize, arrived: Instant) {
        self.sent_bytes += len as u64;
        if self.marks.len() >= MAX_MARKS {
            self.marks.pop_front();
        }
        let base = *self.base.get_or_insert(arrived);
        let ms = arrived.saturating_duration_since(base).as_millis().min(u128::from(u32::MAX)) as u32;
        self.marks.push_back((self.sent_bytes, ms));
    }

    /// Audio time at the end of everything sent so far.
    pub fn now(&self) -> f64 {
        self.sent_bytes as f64 / self.bytes_per_second
    }

    /// When the audio at `seconds` arrived (the first chunk reaching that point), if still remembered.
    pub fn instant_at(&self, seconds: f64) -> Option<Instant> {
        let offset = (seconds.max(0.0) * self.bytes_per_second) as u64;
        let i = self.marks.partition_point(|(end, _)| *end < offset);
        let (_, ms) = self.marks.get(i).or(self.marks.back())?;
        Some(self.base? + Duration::from_millis(u64::from(*ms)))
    }

    /// Results will not ask about audio before `seconds` again (Deepgram settled it): its marks go.
    pub fn forget_before(&mut self, seconds: f64) {
        let offset = (seconds.max(0.0) * self.bytes_per_second) as u64;
        while self.marks.len() > 1 && self.marks.front().is_some_and(|(end, _)| *end < offset) {
            self.marks.pop_front();
        }
    }

    /// A new upstream connection starts its audio time at zero.
    pub fn restart(&mut self) {
        self.sent_bytes = 0;
        self.base = None;
        self.marks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_time_maps_to_the_arrival_of_the_chunk_containing_it() {
        let t0 = Instant::now();
        let mut c = AudioClock::new(32_000.0);
        for i in 0..50u64 {
            c.record(640, t0 + Duration::from_millis(20 * (i + 1)));
        }
        assert!((c.now() - 1.0).abs() < 1e-9);
        assert_eq!(c.instant_at(0.5), Some(t0 + Duration::from_millis(500)));
        assert_eq!(c.instant_at(0.51), Some(t0 + Duration::from_millis(520)));
        assert_eq!(c.instant_at(5.0), Some(t0 + Duration::from_millis(1000)), "beyond the end: the last chunk");
        c.forget_before(0.5);
        assert_eq!(c.instant_at(0.51), Some(t0 + Duration::from_millis(520)), "later audio is still known");
        assert_eq!(c.instant_at(0.2), Some(t0 + Duration::from_millis(500)), "forgotten: the first chunk kept");
        c.restart();
        assert_eq!(c.instant_at(0.1), None);
        assert_eq!(c.now(), 0.0);
    }
}
