//! Reads what a WAV file holds and how long it plays by walking its RIFF chunks: in any order, with unknown
//! chunks (`LIST`, `bext`, `JUNK`, ...) skipped by seeking, odd sizes padded, any `fmt ` tag including
//! WAVE_FORMAT_EXTENSIBLE. Only chunk headers and the `fmt `/`fact` bodies are read, so a recording of hours
//! costs a few small reads. A data chunk whose size runs past the file (a streaming placeholder, or a file cut
//! short) is taken to end where the file does.

use std::io::{Read, Seek};

use super::format::{FORMAT_ALAW, FORMAT_EXTENSIBLE, FORMAT_IEEE_FLOAT, FORMAT_MULAW, FORMAT_PCM, GUID_TAIL};
use super::{WavEncoding, WavFormat};
use crate::audio::source::{Source, le16_at, le32_at};

/// What a WAV file's `fmt `, `fact` and `data` chunks say, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    /// The codec's format tag; for an extensible file, the one inside its sub-format GUID (or
    /// `FORMAT_EXTENSIBLE` itself when the GUID is not a standard one).
    pub format_tag: u16,
    /// True when the file used the WAVE_FORMAT_EXTENSIBLE layout.
    pub extensible: bool,
    pub channels: u16,
    /// Sample frames per second; 0 (a broken header) gives no duration.
    pub sample_rate: u32,
    /// Average bytes per second: the only timing a compressed format without `fact` offers.
    pub byte_rate: u32,
    /// Bytes per sample frame; what uncompressed data lengths are divided by.
    pub block_align: u16,
    pub bits_per_sample: u16,
    /// Bytes of sample data actually present (the declared size, capped at the end of the file).
    pub data_len: u64,
    /// Samples per channel from the `fact` chunk, the timing of compressed formats.
    pub fact_samples: Option<u32>,
}

/// Reads the chunk layout of a WAV stream; `None` if it is not RIFF/WAVE or lacks a usable `fmt ` or `data`.
pub fn read_info<R: Read + Seek>(reader: R) -> Option<WavInfo> {
    info_from(&mut Source::new(reader)?)
}

/// Seconds of audio in a WAV stream, `None` when it cannot be known.
pub fn duration_seconds<R: Read + Seek>(reader: R) -> Option<f64> {
    read_info(reader)?.duration_seconds()
}

/// The chunk walk over an already wrapped source. Each step moves forward by at least a chunk header, so the
/// walk ends after at most `len / 8` steps whatever the sizes say.
pub(crate) fn info_from<R: Read + Seek>(src: &mut Source<R>) -> Option<WavInfo> {
    let head: [u8; 12] = src.array_at(0)?;
    if head.get(0..4)? != b"RIFF" || head.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut fmt: Option<Fmt> = None;
    let mut fact: Option<u32> = None;
    let mut data_len: Option<u64> = None;
    let mut pos: u64 = 12;
    while let Some(chunk) = src.array_at::<8>(pos) {
        let size = u64::from(le32_at(&chunk, 4)?);
        let body = pos + 8;
        let available = src.len() - body;
        match chunk.get(0..4)? {
            b"fmt " if fmt.is_none() => fmt = read_fmt(src, body, size),
            b"fact" if fact.is_none() && size >= 4 => {
                fact = src.array_at::<4>(body).map(u32::from_le_bytes);
            }
            b"data" if data_len.is_none() => {
                data_len = Some(size.min(available));
                if size > available {
                    break;
                }
            }
            _ => {}
        }
        pos = body + size + (size & 1);
    }
    let fmt = fmt?;
    Some(WavInfo {
        format_tag: fmt.tag,
        extensible: fmt.extensible,
        channels: fmt.channels,
        sample_rate: fmt.sample_rate,
        byte_rate: fmt.byte_rate,
        block_align: fmt.block_align,
        bits_per_sample: fmt.bits_per_sample,
        data_len: data_len?,
        fact_samples: fact,
    })
}

/// The `fmt ` fields, with the extensible sub-format already resolved.
struct Fmt {
    tag: u16,
    extensible: bool,
    channels: u16,
    sample_rate: u32,
    byte_rate: u32,
    block_align: u16,
    bits_per_sample: u16,
}

fn read_fmt<R: Read + Seek>(src: &mut Source<R>, body: u64, size: u64) -> Option<Fmt> {
    if size < 16 {
        return None;
    }
    // 40 bytes cover the longest standard layout (extensible); anything beyond is codec-specific.
    let mut b = [0u8; 40];
    let n = usize::try_from(size.min(40)).ok()?;
    if !src.read_at(body, b.get_mut(..n)?) {
        return None;
    }
    let raw_tag = le16_at(&b, 0)?;
    let extensible = raw_tag == FORMAT_EXTENSIBLE && n >= 40 && le16_at(&b, 16)? >= 22;
    let tag =
        if extensible && b.get(26..28)? == [0, 0] && b.get(28..40)? == GUID_TAIL { le16_at(&b, 24)? } else { raw_tag };
    Some(Fmt {
        tag,
        extensible,
        channels: le16_at(&b, 2)?,
        sample_rate: le32_at(&b, 4)?,
        byte_rate: le32_at(&b, 8)?,
        block_align: le16_at(&b, 12)?,
        bits_per_sample: le16_at(&b, 14)?,
    })
}

impl WavInfo {
    /// Seconds of audio. Uncompressed formats (PCM, float, G.711): whole sample frames in the data chunk over
    /// the rate. Anything else: the `fact` sample count over the rate, else the data size over the average byte
    /// rate. `None` when the header gives no rate to divide by.
    pub fn duration_seconds(&self) -> Option<f64> {
        if self.sample_rate == 0 {
            return None;
        }
        let rate = f64::from(self.sample_rate);
        let by_byte_rate = || (self.byte_rate > 0).then(|| self.data_len as f64 / f64::from(self.byte_rate));
        match self.format_tag {
            FORMAT_PCM | FORMAT_IEEE_FLOAT | FORMAT_ALAW | FORMAT_MULAW => {
                if self.block_align > 0 {
                    let frames = self.data_len / u64::from(self.block_align);
                    Some(frames as f64 / rate)
                } else {
                    by_byte_rate()
                }
            }
            _ => match self.fact_samples {
                Some(samples) => Some(f64::from(samples) / rate),
                None => by_byte_rate(),
            },
        }
    }

    /// The writable format this file is in, if it is one parley writes (PCM16, 8-bit µ-law or A-law).
    pub fn wav_format(&self) -> Option<WavFormat> {
        let encoding = match (self.format_tag, self.bits_per_sample) {
            (FORMAT_PCM, 16) => WavEncoding::Pcm16,
            (FORMAT_MULAW, 8) => WavEncoding::Ulaw,
            (FORMAT_ALAW, 8) => WavEncoding::Alaw,
            _ => return None,
        };
        WavFormat::new(encoding, self.sample_rate, self.channels).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::wav::DataLen;
    use std::io::Cursor;

    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut c = id.to_vec();
        c.extend_from_slice(&(body.len() as u32).to_le_bytes());
        c.extend_from_slice(body);
        if body.len() % 2 == 1 {
            c.push(0);
        }
        c
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut f = b"RIFF".to_vec();
        f.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
        f.extend_from_slice(b"WAVE");
        f.extend_from_slice(&body);
        f
    }

    /// A 16-byte PCM16 `fmt ` body, built by hand so it can also be invalid (rate 0).
    fn pcm_fmt(channels: u16, rate: u32) -> Vec<u8> {
        let block = channels * 2;
        let mut f = FORMAT_PCM.to_le_bytes().to_vec();
        f.extend_from_slice(&channels.to_le_bytes());
        f.extend_from_slice(&rate.to_le_bytes());
        f.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        f.extend_from_slice(&block.to_le_bytes());
        f.extend_from_slice(&16u16.to_le_bytes());
        f
    }

    #[test]
    fn chunks_in_any_order_with_odd_unknown_chunks_are_walked() {
        let file = riff(&[
            chunk(b"LIST", b"INFOISFT\x03\x00\x00\x00ab\x00"),
            chunk(b"data", &[0; 8000]),
            chunk(b"JUNK", &[1, 2, 3]),
            chunk(b"fmt ", &pcm_fmt(2, 1000)),
        ]);
        let info = read_info(Cursor::new(file)).unwrap();
        assert_eq!(info.channels, 2);
        assert_eq!(info.data_len, 8000);
        assert_eq!(info.duration_seconds(), Some(2.0));
    }

    #[test]
    fn extensible_fmt_resolves_to_the_sub_format_tag() {
        let format = WavFormat::new(WavEncoding::Pcm16, 48_000, 6).unwrap();
        let mut file = format.header(DataLen::Known(12 * 48_000)).to_vec();
        file.resize(file.len() + 12 * 48_000, 0);
        let info = read_info(Cursor::new(file)).unwrap();
        assert!(info.extensible);
        assert_eq!(info.format_tag, FORMAT_PCM);
        assert_eq!(info.wav_format(), Some(format));
        assert_eq!(info.duration_seconds(), Some(1.0));
    }

    #[test]
    fn compressed_formats_use_the_fact_sample_count_or_else_the_byte_rate() {
        // IMA ADPCM (tag 0x11), 8 kHz mono, 4055 bytes/s average.
        let mut fmt = pcm_fmt(1, 8000);
        fmt[0..2].copy_from_slice(&0x11u16.to_le_bytes());
        fmt[8..12].copy_from_slice(&4055u32.to_le_bytes());
        fmt[12..14].copy_from_slice(&256u16.to_le_bytes());
        let with_fact =
            riff(&[chunk(b"fmt ", &fmt), chunk(b"fact", &16_000u32.to_le_bytes()), chunk(b"data", &[0; 100])]);
        assert_eq!(duration_seconds(Cursor::new(with_fact)), Some(2.0));
        let without = riff(&[chunk(b"fmt ", &fmt), chunk(b"data", &[0; 8110])]);
        assert_eq!(duration_seconds(Cursor::new(without)), Some(2.0));
    }

    #[test]
    fn a_data_size_past_the_end_of_the_file_is_capped_there() {
        let mut file = riff(&[chunk(b"fmt ", &pcm_fmt(1, 16_000)), chunk(b"data", &[0; 3200])]);
        let data_size_at = file.len() - 3200 - 4;
        file[data_size_at..data_size_at + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
        let info = read_info(Cursor::new(file)).unwrap();
        assert_eq!(info.data_len, 3200);
        assert_eq!(info.duration_seconds(), Some(0.1));
    }

    #[test]
    fn files_without_fmt_or_data_or_a_rate_have_no_duration() {
        let no_data = riff(&[chunk(b"fmt ", &pcm_fmt(1, 16_000))]);
        assert_eq!(read_info(Cursor::new(no_data)), None);
        let no_fmt = riff(&[chunk(b"data", &[0; 10])]);
        assert_eq!(read_info(Cursor::new(no_fmt)), None);
        let zero_rate = riff(&[chunk(b"fmt ", &pcm_fmt(1, 0)), chunk(b"data", &[0; 10])]);
        assert_eq!(duration_seconds(Cursor::new(zero_rate)), None);
        assert_eq!(read_info(Cursor::new(b"RIFX\0\0\0\0WAVE".to_vec())), None);
    }
}
