//! The audio kept for replay into a new Deepgram connection: everything since the last final result (sent or
//! not yet sent), oldest first, within a time bound.
//!
//! Kept compactly, because every live session holds it: voiced audio is copied out of the client's read buffer
//! (a kept slice would pin the whole buffer) into blocks of [`BLOCK`] bytes, so a second of speech is a few
//! entries rather than fifty; a near-silent chunk is kept as its length and a pause is one entry. A final
//! result that ends inside a block cuts the block there, so nothing Deepgram already settled is sent twice.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::audio::level::InputEncoding;

/// Voiced audio is kept in blocks of this many bytes (a quarter second of 16 kHz 16-bit audio): the last block
/// is on average half empty, so smaller blocks hold less idle capacity, at a few more entries a second.
pub const BLOCK: usize = 8 * 1024;

/// A stretch of contiguous kept audio.
#[derive(Debug)]
pub struct Kept {
    audio: Audio,
    /// When its first chunk arrived from the client.
    first_arrived: Instant,
    /// When the last of it arrived from the client.
    arrived: Instant,
    /// Session audio time of its first sample.
    pub at: f64,
    /// Written to the current or an earlier connection.
    pub sent: bool,
}

#[derive(Debug)]
enum Audio {
    Voiced(Vec<u8>),
    Silence(usize),
}

impl Kept {
    pub fn len(&self) -> usize {
        match &self.audio {
            Audio::Voiced(b) => b.len(),
            Audio::Silence(n) => *n,
        }
    }

    /// When the audio up to byte `end` of it arrived: between its first and last arrival, in proportion (exact
    /// for audio that came at the pace it plays).
    pub fn arrival_of(&self, end: usize) -> Instant {
        let span = self.arrived.saturating_duration_since(self.first_arrived);
        let share = if self.len() == 0 { 1.0 } else { (end as f64 / self.len() as f64).clamp(0.0, 1.0) };
        self.first_arrived + span.mul_f64(share)
    }

    /// The bytes to send again (digital silence in `encoding` for audio kept as its length).
    pub fn bytes(&self, encoding: InputEncoding) -> Bytes {
        match &self.audio {
            Audio::Voiced(b) => Bytes::copy_from_slice(b),
            Audio::Silence(n) => Bytes::from(vec![encoding.silence_byte(); *n]),
        }
    }
}

/// A frame of kept audio to write again, from [`ReplayBuffer::frames`].
#[derive(Debug)]
pub struct ResendFrame {
    pub pcm: Bytes,
    pub arrived: Instant,
    pub at: f64,
    /// Sent to an earlier connection (a replay) rather than never sent.
    pub again: bool,
}

/// The kept audio of one link.
#[derive(Debug)]
pub struct ReplayBuffer {
    kept: VecDeque<Kept>,
    bytes_per_second: f64,
    sample_bytes: usize,
    /// Most audio kept, in seconds: older audio is dropped.
    limit: f64,
}

impl ReplayBuffer {
    pub fn new(encoding: InputEncoding, bytes_per_second: f64, limit: f64) -> ReplayBuffer {
        ReplayBuffer { kept: VecDeque::new(), bytes_per_second, sample_bytes: encoding.bytes_per_sample(), limit }
    }

    fn end_of(&self, k: &Kept) -> f64 {
        k.at + k.len() as f64 / self.bytes_per_second
    }

    /// Keeps a chunk of `pcm` starting at session time `at`; `quiet` keeps only its length.
    pub fn keep(&mut self, pcm: &[u8], quiet: bool, arrived: Instant, at: f64, sent: bool) {
        if pcm.is_empty() {
            return;
        }
        let follows = self.kept.back().is_some_and(|last| last.sent == sent && (self.end_of(last) - at).abs() < 1e-6);
        let last = self.kept.back_mut().filter(|_| follows);
        match (last.map(|l| (&mut l.audio, &mut l.arrived)), quiet) {
            (Some((Audio::Silence(n), last_arrived)), true) => {
                *n += pcm.len();
                *last_arrived = arrived;
            }
            (Some((Audio::Voiced(b), last_arrived)), false) if b.len() + pcm.len() <= b.capacity() => {
                b.extend_from_slice(pcm);
                *last_arrived = arrived;
            }
            (_, quiet) => {
                let audio = if quiet {
                    Audio::Silence(pcm.len())
                } else {
                    let mut b = Vec::with_capacity(BLOCK.max(pcm.len()));
                    b.extend_from_slice(pcm);
                    Audio::Voiced(b)
                };
                self.kept.push_back(Kept { audio, first_arrived: arrived, arrived, at, sent });
            }
        }
        while let (Some(first), Some(last)) = (self.kept.front(), self.kept.back()) {
            if self.end_of(last) - first.at <= self.limit || self.kept.len() == 1 {
                break;
            }
            self.kept.pop_front();
        }
    }

    /// Deepgram settled the audio up to session time `end`: what was sent before it is dropped, and a stretch
    /// it ends inside is cut there (on a sample boundary).
    pub fn settled(&mut self, end: f64) {
        while let Some(first) = self.kept.front() {
            if !first.sent || first.at >= end {
                break;
            }
            if self.end_of(first) <= end {
                self.kept.pop_front();
                continue;
            }
            let (bps, sample) = (self.bytes_per_second, self.sample_bytes);
            let first = self.kept.front_mut().expect("checked above");
            let cut = (((end - first.at) * bps) as usize / sample) * sample;
            first.first_arrived = first.arrival_of(cut);
            match &mut first.audio {
                Audio::Voiced(b) => drop(b.drain(..cut.min(b.len()))),
                Audio::Silence(n) => *n -= cut.min(*n),
            }
            first.at += cut as f64 / bps;
            break;
        }
        if self.kept.is_empty() && self.kept.capacity() > 16 {
            self.kept.shrink_to_fit();
        }
    }

    pub fn clear(&mut self) {
        self.kept = VecDeque::new();
    }

    /// The kept audio to write into a new connection, oldest first, in 20 ms frames (the size the client's audio
    /// came in, not one burst per kept block), each with its share of its stretch's arrival time and its session
    /// time: everything when `replay`, otherwise only what was never sent. Then [`ReplayBuffer::mark_sent`].
    pub fn frames(&self, encoding: InputEncoding, replay: bool) -> Vec<ResendFrame> {
        let frame = ((self.bytes_per_second / 50.0) as usize / self.sample_bytes).max(1) * self.sample_bytes;
        let mut out = Vec::new();
        for k in self.kept.iter().filter(|k| replay || !k.sent) {
            let bytes = k.bytes(encoding);
            let mut start = 0;
            while start < bytes.len() {
                let end = (start + frame).min(bytes.len());
                out.push(ResendFrame {
                    pcm: bytes.slice(start..end),
                    arrived: k.arrival_of(end),
                    at: k.at + start as f64 / self.bytes_per_second,
                    again: k.sent,
                });
                start = end;
            }
        }
        out
    }

    /// Everything kept has now been written to the connection.
    pub fn mark_sent(&mut self) {
        for k in &mut self.kept {
            k.sent = true;
        }
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.kept.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const BPS: f64 = 32_000.0;

    fn frame(i: usize) -> Vec<u8> {
        (0..640).map(|j| ((i * 640 + j) % 251) as u8).collect()
    }

    fn speak(r: &mut ReplayBuffer, from: usize, frames: usize, quiet: bool, sent: bool) {
        let t = Instant::now();
        for i in from..from + frames {
            r.keep(&frame(i), quiet, t, i as f64 * 0.02, sent);
        }
    }

    fn replayed(r: &mut ReplayBuffer, encoding: InputEncoding) -> Vec<u8> {
        let frames = r.frames(encoding, true);
        let frame = (r.bytes_per_second / 50.0) as usize;
        assert!(frames.iter().rev().skip(1).all(|f| f.pcm.len() == frame), "sent again in 20 ms frames");
        frames.into_iter().flat_map(|f| f.pcm.to_vec()).collect()
    }

    #[test]
    fn voiced_audio_is_kept_in_blocks_and_replayed_byte_for_byte() {
        let mut r = ReplayBuffer::new(InputEncoding::Linear16, BPS, 15.0);
        speak(&mut r, 0, 100, false, true);
        let expected: Vec<u8> = (0..100).flat_map(frame).collect();
        assert!(replayed(&mut r, InputEncoding::Linear16) == expected, "replayed audio differs");
        assert_eq!(r.entries(), 64_000usize.div_ceil(BLOCK / 640 * 640), "two seconds in a handful of blocks");
    }

    #[test]
    fn a_block_knows_when_each_part_of_it_arrived() {
        let mut r = ReplayBuffer::new(InputEncoding::Linear16, BPS, 15.0);
        let t0 = Instant::now();
        for i in 0..10u32 {
            r.keep(&frame(i as usize), false, t0 + Duration::from_millis(20 * u64::from(i)), f64::from(i) * 0.02, true);
        }
        let k = r.kept.front().unwrap();
        assert_eq!(k.arrival_of(640), t0 + Duration::from_millis(18), "the first frame, in proportion");
        assert_eq!(k.arrival_of(6400), t0 + Duration::from_millis(180), "the last frame's arrival");
        r.settled(0.1);
        let k = r.kept.front().unwrap();
        assert_eq!(k.arrival_of(0), t0 + Duration::from_millis(90), "a cut block starts where the cut was");
    }

    #[test]
    fn a_pause_is_one_entry_and_replays_as_digital_silence() {
        let mut r = ReplayBuffer::new(InputEncoding::Mulaw, 8_000.0, 15.0);
        let t = Instant::now();
        for i in 0..50 {
            r.keep(&[7u8; 160], true, t, i as f64 * 0.02, true);
        }
        assert_eq!(r.entries(), 1);
        assert!(replayed(&mut r, InputEncoding::Mulaw) == vec![0xFF; 8000], "not 1 s of µ-law silence");
    }

    #[test]
    fn a_final_inside_a_block_cuts_it_on_a_sample_boundary() {
        let mut r = ReplayBuffer::new(InputEncoding::Linear16, BPS, 15.0);
        speak(&mut r, 0, 50, false, true);
        // Settled up to 0.30 s plus a fraction of a sample.
        r.settled(0.300_01);
        let all: Vec<u8> = (0..50).flat_map(frame).collect();
        assert!(replayed(&mut r, InputEncoding::Linear16) == all[9600..], "not cut at 0.3 s");
        r.settled(1.0);
        assert_eq!(r.entries(), 0);
    }

    #[test]
    fn audio_not_yet_sent_is_never_settled_nor_merged_with_sent_audio() {
        let mut r = ReplayBuffer::new(InputEncoding::Linear16, BPS, 15.0);
        speak(&mut r, 0, 5, false, true);
        speak(&mut r, 5, 5, false, false);
        assert_eq!(r.entries(), 2);
        r.settled(10.0);
        assert_eq!(r.entries(), 1, "only the sent stretch goes");
        assert!(r.kept.iter().all(|k| !k.sent));
    }

    #[test]
    fn a_gap_in_session_time_starts_a_new_entry_and_the_bound_drops_the_oldest() {
        let mut r = ReplayBuffer::new(InputEncoding::Linear16, BPS, 1.0);
        let t = Instant::now();
        r.keep(&frame(0), false, t, 0.0, true);
        r.keep(&frame(1), false, t, 5.0, true);
        assert_eq!(r.entries(), 1, "the stretch before the gap is beyond the bound");
        assert_eq!(r.kept.front().unwrap().at, 5.0);
    }
}
