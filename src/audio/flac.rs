//! FLAC durations from the STREAMINFO block, which every FLAC stream must start with and which carries the
//! sample rate and the total sample count: one 42-byte read, whatever the file's length. A total of zero means
//! the encoder did not know it (a stream piped through), and gives no duration rather than a wrong one.

use std::io::{Read, Seek};

use crate::audio::source::Source;

/// What STREAMINFO says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlacInfo {
    /// Samples per second per channel; 0 is invalid and gives no duration.
    pub sample_rate: u32,
    pub channels: u8,
    pub bits_per_sample: u8,
    /// Samples per channel; 0 when unknown.
    pub total_samples: u64,
}

impl FlacInfo {
    /// Seconds of audio, `None` when the total is unknown (0) or the rate is invalid (0).
    pub fn duration_seconds(&self) -> Option<f64> {
        (self.sample_rate > 0 && self.total_samples > 0)
            .then(|| self.total_samples as f64 / f64::from(self.sample_rate))
    }
}

/// Reads STREAMINFO from a FLAC stream; `None` if the stream does not start with `fLaC` and a STREAMINFO
/// block of the right size.
pub fn read_info<R: Read + Seek>(reader: R) -> Option<FlacInfo> {
    let mut src = Source::new(reader)?;
    info_at(&mut src, 0)
}

/// Seconds of audio in a FLAC stream.
pub fn duration_seconds<R: Read + Seek>(reader: R) -> Option<f64> {
    read_info(reader)?.duration_seconds()
}

/// STREAMINFO of the FLAC stream starting at `pos` (after any ID3v2 tag a tagger put in front).
pub(crate) fn info_at<R: Read + Seek>(src: &mut Source<R>, pos: u64) -> Option<FlacInfo> {
    let b: [u8; 42] = src.array_at(pos)?;
    // "fLaC", then a block header: last-block flag and type 0 (STREAMINFO), 24-bit length 34.
    if b.get(0..4)? != b"fLaC" || b.get(4)? & 0x7F != 0 || b.get(5..8)? != [0, 0, 34] {
        return None;
    }
    // Body from byte 8: min/max block size (2+2), min/max frame size (3+3), then 64 packed bits:
    // sample rate (20), channels - 1 (3), bits per sample - 1 (5), total samples (36).
    let packed = u64::from_be_bytes(b.get(18..26)?.try_into().ok()?);
    Some(FlacInfo {
        sample_rate: (packed >> 44) as u32,
        channels: ((packed >> 41) & 0x7) as u8 + 1,
        bits_per_sample: ((packed >> 36) & 0x1F) as u8 + 1,
        total_samples: packed & 0xF_FFFF_FFFF,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn streaminfo(rate: u32, channels: u8, bits: u8, total: u64) -> Vec<u8> {
        let mut f = b"fLaC\x80\x00\x00\x22".to_vec();
        f.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, 0, 0, 0, 0, 0, 0]);
        let packed = (u64::from(rate) << 44) | (u64::from(channels - 1) << 41) | (u64::from(bits - 1) << 36) | total;
        f.extend_from_slice(&packed.to_be_bytes());
        f.extend_from_slice(&[0; 16]);
        f
    }

    #[test]
    fn streaminfo_gives_rate_channels_depth_and_duration() {
        let info = read_info(Cursor::new(streaminfo(16_000, 1, 16, 12_000))).unwrap();
        assert_eq!(info, FlacInfo { sample_rate: 16_000, channels: 1, bits_per_sample: 16, total_samples: 12_000 });
        assert_eq!(info.duration_seconds(), Some(0.75));
    }

    #[test]
    fn the_largest_36_bit_total_and_20_bit_rate_are_read_whole() {
        let info = read_info(Cursor::new(streaminfo(655_350, 8, 32, 0xF_FFFF_FFFF))).unwrap();
        assert_eq!((info.sample_rate, info.channels, info.bits_per_sample), (655_350, 8, 32));
        assert_eq!(info.total_samples, 0xF_FFFF_FFFF);
    }

    #[test]
    fn an_unknown_total_or_zero_rate_gives_no_duration() {
        assert_eq!(duration_seconds(Cursor::new(streaminfo(44_100, 2, 16, 0))), None);
        assert_eq!(duration_seconds(Cursor::new(streaminfo(0, 2, 16, 10))), None);
    }

    #[test]
    fn a_first_block_that_is_not_streaminfo_is_refused() {
        let mut f = streaminfo(16_000, 1, 16, 100);
        f[4] = 0x04; // VORBIS_COMMENT first
        assert_eq!(read_info(Cursor::new(f)), None);
        assert_eq!(read_info(Cursor::new(b"fLaC".to_vec())), None);
    }
}
