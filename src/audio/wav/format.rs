//! The WAV formats parley writes (16-bit PCM, G.711 µ-law and A-law) and the exact header bytes for each.
//!
//! The header is built as a value, not written through a stream, so both the blocking [`super::WavWriter`] and
//! an async caller that appends to a `tokio::fs::File` can use it: write it with [`DataLen::Streaming`] first,
//! append samples, then overwrite it in place with the final length (same size, so nothing moves).

use std::ops::Deref;

use super::WavError;
use crate::audio::{Encoding, OutputFormat};

/// `fmt ` format tag for integer PCM.
pub const FORMAT_PCM: u16 = 1;
/// `fmt ` format tag for IEEE float samples.
pub const FORMAT_IEEE_FLOAT: u16 = 3;
/// `fmt ` format tag for G.711 A-law.
pub const FORMAT_ALAW: u16 = 6;
/// `fmt ` format tag for G.711 µ-law.
pub const FORMAT_MULAW: u16 = 7;
/// `fmt ` format tag meaning "the real tag is in the sub-format GUID" (WAVE_FORMAT_EXTENSIBLE).
pub const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// The tail every WAVE_FORMAT_EXTENSIBLE sub-format GUID shares after its 2-byte format tag (and 2 zero bytes).
pub(crate) const GUID_TAIL: [u8; 12] = [
    0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// Largest header this module writes: RIFF (12) + extensible `fmt ` (8 + 40) + `fact` (8 + 4) + `data` (8).
const MAX_HEADER: usize = 80;

/// How samples are coded in the data chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WavEncoding {
    /// Signed 16-bit little-endian PCM: the user's microphone audio and ElevenLabs `pcm_*`.
    Pcm16,
    /// G.711 µ-law, 8 bits per sample: ElevenLabs `ulaw_8000` (telephony).
    Ulaw,
    /// G.711 A-law, 8 bits per sample: ElevenLabs `alaw_8000`.
    Alaw,
}

/// A sample layout parley can write as WAV. Valid by construction: a rate and channel count of at least one,
/// and a byte rate that fits the header's 32-bit field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WavFormat {
    encoding: WavEncoding,
    sample_rate: u32,
    channels: u16,
}

/// The data length to put in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataLen {
    /// Not known yet: every size field is 0xFFFFFFFF, which readers (ours included) take as "to the end of the
    /// file", so a recording whose header was never patched (a crash mid-turn) still has a usable duration.
    Streaming,
    /// The final number of sample bytes.
    Known(u32),
}

/// Header bytes for one format and length; dereferences to the bytes to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavHeader {
    bytes: [u8; MAX_HEADER],
    len: usize,
}

impl Deref for WavHeader {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&self.bytes)
    }
}

impl WavFormat {
    /// A format, refused if the rate or channel count is zero or the byte rate overflows the header field.
    pub fn new(encoding: WavEncoding, sample_rate: u32, channels: u16) -> Result<Self, WavError> {
        let block_align = u32::from(channels) * u32::from(encoding.bytes_per_sample());
        if sample_rate == 0 || channels == 0 {
            return Err(WavError::InvalidFormat(
                "sample rate and channels must be at least 1",
            ));
        }
        if sample_rate.checked_mul(block_align).is_none() || block_align > u32::from(u16::MAX) {
            return Err(WavError::InvalidFormat(
                "byte rate does not fit a WAV header",
            ));
        }
        Ok(WavFormat {
            encoding,
            sample_rate,
            channels,
        })
    }

    /// The WAV a raw ElevenLabs output format is stored as; `None` for MP3 and Opus, which keep their own
    /// container. ElevenLabs raw outputs are always mono.
    pub fn for_output(format: &OutputFormat) -> Option<Self> {
        let encoding = match format.encoding {
            Encoding::Pcm => WavEncoding::Pcm16,
            Encoding::Ulaw => WavEncoding::Ulaw,
            Encoding::Alaw => WavEncoding::Alaw,
            Encoding::Mp3 { .. } | Encoding::Opus { .. } => return None,
        };
        WavFormat::new(encoding, format.sample_rate, 1).ok()
    }

    /// How samples are coded.
    pub fn encoding(&self) -> WavEncoding {
        self.encoding
    }

    /// Sample frames per second.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Interleaved channels.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Bytes per sample frame (all channels).
    pub fn block_align(&self) -> u16 {
        self.channels
            .saturating_mul(u16::from(self.encoding.bytes_per_sample()))
    }

    /// Bytes per second of audio, what a data length is divided by to get a duration.
    pub fn byte_rate(&self) -> u32 {
        self.sample_rate
            .saturating_mul(u32::from(self.block_align()))
    }

    /// The format tag readers see first: the codec's own, or EXTENSIBLE when more than two channels need the
    /// extensible layout (the WAVE spec requires it there; players misroute channels otherwise).
    pub fn format_tag(&self) -> u16 {
        if self.is_extensible() {
            FORMAT_EXTENSIBLE
        } else {
            self.encoding.format_tag()
        }
    }

    fn is_extensible(&self) -> bool {
        self.channels > 2
    }

    /// G.711 is a non-PCM format, for which the spec requires a `fact` chunk with the sample count.
    fn has_fact(&self) -> bool {
        self.encoding != WavEncoding::Pcm16
    }

    /// Length in bytes of the `fmt ` chunk body: 16 for PCM, 18 (with an empty extension) for G.711, 40 for
    /// extensible.
    fn fmt_body_len(&self) -> u32 {
        match (self.is_extensible(), self.has_fact()) {
            (true, _) => 40,
            (false, true) => 18,
            (false, false) => 16,
        }
    }

    /// Size of the header this format gets, i.e. the offset where samples start.
    pub fn header_len(&self) -> usize {
        let fact = if self.has_fact() { 12 } else { 0 };
        12 + 8 + self.fmt_body_len() as usize + fact + 8
    }

    /// Largest data length whose RIFF size still fits 32 bits (including the pad byte of an odd length).
    pub fn max_data_len(&self) -> u32 {
        u32::MAX - (self.header_len() as u32 - 8) - 1
    }

    /// The complete header for `data_len` bytes of samples.
    pub fn header(&self, data_len: DataLen) -> WavHeader {
        let (riff, data, frames) = match data_len {
            DataLen::Streaming => (u32::MAX, u32::MAX, u32::MAX),
            DataLen::Known(n) => {
                let n = n.min(self.max_data_len());
                let riff = self.header_len() as u32 - 8 + n + (n & 1);
                (riff, n, n / u32::from(self.block_align().max(1)))
            }
        };
        let mut out = HeaderBuf::default();
        out.put(b"RIFF");
        out.put(&riff.to_le_bytes());
        out.put(b"WAVE");
        out.put(b"fmt ");
        out.put(&self.fmt_body_len().to_le_bytes());
        out.put(&self.format_tag().to_le_bytes());
        out.put(&self.channels.to_le_bytes());
        out.put(&self.sample_rate.to_le_bytes());
        out.put(&self.byte_rate().to_le_bytes());
        out.put(&self.block_align().to_le_bytes());
        out.put(&self.encoding.bits_per_sample().to_le_bytes());
        if self.is_extensible() {
            out.put(&22u16.to_le_bytes());
            out.put(&self.encoding.bits_per_sample().to_le_bytes());
            // Channel mask 0: no speaker positions claimed; the agent never writes surround audio.
            out.put(&0u32.to_le_bytes());
            out.put(&self.encoding.format_tag().to_le_bytes());
            out.put(&[0, 0]);
            out.put(&GUID_TAIL);
        } else if self.has_fact() {
            out.put(&0u16.to_le_bytes());
        }
        if self.has_fact() {
            out.put(b"fact");
            out.put(&4u32.to_le_bytes());
            out.put(&frames.to_le_bytes());
        }
        out.put(b"data");
        out.put(&data.to_le_bytes());
        WavHeader {
            bytes: out.bytes,
            len: out.len,
        }
    }
}

impl WavEncoding {
    /// Bytes one sample of one channel takes.
    pub fn bytes_per_sample(&self) -> u8 {
        match self {
            WavEncoding::Pcm16 => 2,
            WavEncoding::Ulaw | WavEncoding::Alaw => 1,
        }
    }

    fn bits_per_sample(&self) -> u16 {
        u16::from(self.bytes_per_sample()) * 8
    }

    /// The codec's own format tag (also the first two bytes of the extensible sub-format GUID).
    pub fn format_tag(&self) -> u16 {
        match self {
            WavEncoding::Pcm16 => FORMAT_PCM,
            WavEncoding::Ulaw => FORMAT_MULAW,
            WavEncoding::Alaw => FORMAT_ALAW,
        }
    }
}

/// A fixed buffer the header is assembled in; writes past the end are dropped (cannot happen: every layout
/// fits [`MAX_HEADER`], which the tests check for the largest one).
struct HeaderBuf {
    bytes: [u8; MAX_HEADER],
    len: usize,
}

impl Default for HeaderBuf {
    fn default() -> Self {
        HeaderBuf {
            bytes: [0; MAX_HEADER],
            len: 0,
        }
    }
}

impl HeaderBuf {
    fn put(&mut self, b: &[u8]) {
        if let Some(slot) = self.bytes.get_mut(self.len..self.len + b.len()) {
            slot.copy_from_slice(b);
            self.len += b.len();
        }
    }
}
