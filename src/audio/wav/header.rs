//! The exact header bytes for a [`WavFormat`] and data length.
//!
//! The header is built as a value, not written through a stream, so both the blocking [`super::WavWriter`] and
//! an async caller that appends to a `tokio::fs::File` can use it: write it with [`DataLen::Streaming`] first,
//! append samples, then overwrite it in place with the final length (same size, so nothing moves).

use std::ops::Deref;

use super::format::{GUID_TAIL, WavFormat};

/// Largest header this module writes: RIFF (12) + extensible `fmt ` (8 + 40) + `fact` (8 + 4) + `data` (8).
const MAX_HEADER: usize = 80;

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
        out.put(&self.channels().to_le_bytes());
        out.put(&self.sample_rate().to_le_bytes());
        out.put(&self.byte_rate().to_le_bytes());
        out.put(&self.block_align().to_le_bytes());
        out.put(&self.encoding().bits_per_sample().to_le_bytes());
        if self.is_extensible() {
            out.put(&22u16.to_le_bytes());
            out.put(&self.encoding().bits_per_sample().to_le_bytes());
            // Channel mask 0: no speaker positions claimed; the agent never writes surround audio.
            out.put(&0u32.to_le_bytes());
            out.put(&self.encoding().format_tag().to_le_bytes());
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
        WavHeader { bytes: out.bytes, len: out.len }
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
        HeaderBuf { bytes: [0; MAX_HEADER], len: 0 }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::wav::{FORMAT_EXTENSIBLE, FORMAT_MULAW, WavEncoding};

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn each_layout_has_the_size_its_chunks_add_up_to() {
        let cases = [
            (WavEncoding::Pcm16, 1, 44),
            (WavEncoding::Pcm16, 2, 44),
            (WavEncoding::Ulaw, 1, 58),
            (WavEncoding::Alaw, 2, 58),
            (WavEncoding::Pcm16, 6, 68),
            (WavEncoding::Ulaw, 3, MAX_HEADER),
        ];
        for (encoding, channels, len) in cases {
            let format = WavFormat::new(encoding, 8_000, channels).unwrap();
            assert_eq!(format.header_len(), len);
            assert_eq!(format.header(DataLen::Known(10)).len(), len);
            assert_eq!(format.header(DataLen::Streaming).len(), len);
        }
    }

    #[test]
    fn a_g711_header_carries_fmt_extension_and_fact_sample_count() {
        let format = WavFormat::new(WavEncoding::Ulaw, 8_000, 1).unwrap();
        let h = format.header(DataLen::Known(8_001));
        assert_eq!(&h[12..16], b"fmt ");
        assert_eq!(le32(&h, 16), 18);
        assert_eq!(u16::from_le_bytes([h[20], h[21]]), FORMAT_MULAW);
        assert_eq!(&h[38..42], b"fact");
        assert_eq!(le32(&h, 46), 8_001);
        assert_eq!(le32(&h, 54), 8_001);
        assert_eq!(le32(&h, 4) as usize, 58 - 8 + 8_001 + 1);
    }

    #[test]
    fn more_than_two_channels_use_the_extensible_layout_with_the_pcm_guid() {
        let h = WavFormat::new(WavEncoding::Pcm16, 48_000, 6).unwrap().header(DataLen::Known(0));
        assert_eq!(u16::from_le_bytes([h[20], h[21]]), FORMAT_EXTENSIBLE);
        assert_eq!(le32(&h, 16), 40);
        assert_eq!(&h[44..46], &[1, 0]);
        assert_eq!(&h[48..60], &GUID_TAIL);
    }

    #[test]
    fn streaming_placeholders_are_all_ones_and_known_lengths_are_capped() {
        let format = WavFormat::new(WavEncoding::Pcm16, 16_000, 1).unwrap();
        let h = format.header(DataLen::Streaming);
        assert_eq!((le32(&h, 4), le32(&h, 40)), (u32::MAX, u32::MAX));
        let max = format.header(DataLen::Known(u32::MAX));
        assert_eq!(le32(&max, 40), format.max_data_len());
        assert_eq!(le32(&max, 4), format.max_data_len() + 36);
        // The largest odd length, with its pad byte, still fits.
        let odd = format.header(DataLen::Known(format.max_data_len() - 1));
        assert_eq!(le32(&odd, 4), format.max_data_len() + 36);
    }
}
