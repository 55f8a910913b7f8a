//! How much playing time a stream of output audio holds, chunk by chunk, as it arrives: exact for raw formats
//! (PCM, G.711) and counted frame by frame for MP3, whose chunks from a provider are cut anywhere, not on
//! frame boundaries. The session paces audio and maps "milliseconds heard" to text with it.

use super::mp3::FrameHeader;
use super::{Encoding, OutputFormat};

/// Measures one stream (one turn's audio).
#[derive(Debug, Clone)]
pub struct AudioMeter {
    format: OutputFormat,
    /// The bytes of an MP3 frame header being gathered (a header may straddle chunks).
    head: Vec<u8>,
    /// Bytes of the current MP3 frame still to come.
    skip: usize,
    /// Duration of the current MP3 frame, counted once it is complete.
    frame_ms: f64,
    total_ms: f64,
}

impl AudioMeter {
    pub fn new(format: OutputFormat) -> AudioMeter {
        AudioMeter { format, head: Vec::with_capacity(4), skip: 0, frame_ms: 0.0, total_ms: 0.0 }
    }

    /// Milliseconds of audio measured so far.
    pub fn total_ms(&self) -> f64 {
        self.total_ms
    }

    /// Adds `bytes`; returns the milliseconds of audio they complete.
    pub fn push(&mut self, bytes: &[u8]) -> f64 {
        let ms = match self.format.encoding {
            Encoding::Mp3 { .. } => self.push_mp3(bytes),
            Encoding::Pcm | Encoding::Ulaw | Encoding::Alaw | Encoding::Opus { .. } => {
                // Opus has no fixed frame size to count; its nominal bit rate is the best estimate there is.
                bytes.len() as f64 * 1000.0 / f64::from(self.format.bytes_per_second())
            }
        };
        self.total_ms += ms;
        ms
    }

    fn push_mp3(&mut self, bytes: &[u8]) -> f64 {
        let mut ms = 0.0;
        let mut i = 0;
        while i < bytes.len() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() - i);
                self.skip -= n;
                i += n;
                if self.skip == 0 {
                    ms += std::mem::take(&mut self.frame_ms);
                }
                continue;
            }
            self.head.push(bytes[i]);
            i += 1;
            if self.head.len() < 4 {
                continue;
            }
            match FrameHeader::parse([self.head[0], self.head[1], self.head[2], self.head[3]]) {
                Some(frame) => {
                    self.head.clear();
                    self.frame_ms = f64::from(frame.samples()) * 1000.0 / f64::from(frame.sample_rate);
                    self.skip = (frame.frame_len() as usize).saturating_sub(4);
                    if self.skip == 0 {
                        ms += std::mem::take(&mut self.frame_ms);
                    }
                }
                // Not a frame header (a tag, noise): slide one byte and look again.
                None => {
                    self.head.remove(0);
                }
            }
        }
        ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_formats_are_exact_whatever_the_chunking() {
        let mut m = AudioMeter::new("pcm_16000".parse().unwrap());
        assert_eq!(m.push(&[0; 640]), 20.0);
        assert_eq!(m.push(&[0; 3200]), 100.0);
        let mut u = AudioMeter::new("ulaw_8000".parse().unwrap());
        assert_eq!(u.push(&[0xFF; 160]), 20.0);
        assert_eq!(u.total_ms(), 20.0);
    }

    #[test]
    fn mp3_counts_whole_frames_across_arbitrary_cuts() {
        let mp3 = include_bytes!("../../tests/fixtures/audio/mp3_cbr_128k_44k.mp3");
        let whole = super::super::mp3::duration_seconds(std::io::Cursor::new(&mp3[..])).unwrap() * 1000.0;
        for cut in [1, 7, 417, 1000, 4096] {
            let mut m = AudioMeter::new(OutputFormat::ELEVENLABS_DEFAULT);
            let sum: f64 = mp3.chunks(cut).map(|c| m.push(c)).sum();
            assert!((sum - whole).abs() < 30.0, "cut {cut}: {sum} ms against {whole} ms");
            assert_eq!(sum, m.total_ms());
        }
        let mut half = AudioMeter::new(OutputFormat::ELEVENLABS_DEFAULT);
        assert!(half.push(&mp3[..mp3.len() / 2]) < whole * 0.55, "a frame counts once it is complete");
    }
}
