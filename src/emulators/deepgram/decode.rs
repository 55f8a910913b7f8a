//! Turns the audio bytes of a Deepgram connection into 16-bit samples: linear16 (little-endian, with an odd
//! trailing byte carried into the next frame, since clients may split frames anywhere), µ-law or A-law.

use crate::emulators::synth::g711;

/// How the audio bytes of a connection are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    Linear16,
    Mulaw,
    Alaw,
}

/// The decoder of one connection.
#[derive(Debug, Clone)]
pub struct SampleDecoder {
    format: SampleFormat,
    leftover: Option<u8>,
}

impl SampleDecoder {
    /// A decoder for `format`.
    pub fn new(format: SampleFormat) -> Self {
        SampleDecoder { format, leftover: None }
    }

    /// The samples in `bytes` (interleaved if the stream has several channels).
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<i16> {
        match self.format {
            SampleFormat::Linear16 => {
                let mut buf = Vec::with_capacity(bytes.len() + 1);
                buf.extend(self.leftover.take());
                buf.extend_from_slice(bytes);
                if buf.len() % 2 == 1 {
                    self.leftover = buf.pop();
                }
                buf.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect()
            }
            SampleFormat::Mulaw => bytes.iter().map(|&b| g711::ulaw_to_linear(b)).collect(),
            SampleFormat::Alaw => bytes.iter().map(|&b| g711::alaw_to_linear(b)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_split_across_frames_is_carried_over() {
        let mut d = SampleDecoder::new(SampleFormat::Linear16);
        let bytes = 1000i16.to_le_bytes();
        assert_eq!(d.decode(&[0x01, 0x00, bytes[0]]), vec![1]);
        assert_eq!(d.decode(&[bytes[1]]), vec![1000]);
    }

    #[test]
    fn g711_bytes_are_one_sample_each() {
        assert_eq!(SampleDecoder::new(SampleFormat::Mulaw).decode(&[0xFF, 0x80]), vec![0, 32124]);
        assert_eq!(SampleDecoder::new(SampleFormat::Alaw).decode(&[0xD5]).len(), 1);
    }
}
