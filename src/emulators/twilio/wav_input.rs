//! The caller's voice from a WAV file: 16-bit PCM at any rate and channel count, or 8-bit µ-law/A-law, made
//! into what a phone line carries (µ-law, 8 kHz, mono) with `audio::g711` and a naive resampler (a box filter
//! when going down, linear interpolation when going up: fine for a test caller, not for music).

use std::io::Cursor;

use crate::audio::g711::{alaw_to_linear, linear_to_ulaw, ulaw_to_linear};
use crate::audio::wav::{FORMAT_ALAW, FORMAT_MULAW, FORMAT_PCM, read_info};

/// The phone line's sample rate.
pub const PHONE_RATE: u32 = 8000;

/// µ-law 8 kHz mono from the bytes of a WAV file, or why not.
pub fn mulaw_from_wav(file: &[u8]) -> Result<Vec<u8>, String> {
    let info = read_info(Cursor::new(file)).ok_or("not a WAV file (RIFF/WAVE with fmt and data chunks)")?;
    let data = data_chunk(file).ok_or("the WAV file has no data chunk")?;
    let channels = usize::from(info.channels.max(1));
    let decoded: Vec<i16> = match (info.format_tag, info.bits_per_sample) {
        (FORMAT_PCM, 16) => data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
        (FORMAT_MULAW, 8) => data.iter().map(|b| ulaw_to_linear(*b)).collect(),
        (FORMAT_ALAW, 8) => data.iter().map(|b| alaw_to_linear(*b)).collect(),
        (tag, bits) => {
            return Err(format!("unsupported WAV encoding (format {tag}, {bits} bits): use 16-bit PCM or µ-law"));
        }
    };
    if info.sample_rate == 0 {
        return Err("the WAV file says its sample rate is 0".into());
    }
    if info.format_tag == FORMAT_MULAW && info.sample_rate == PHONE_RATE && channels == 1 {
        return Ok(data.to_vec());
    }
    let mono: Vec<i16> = decoded
        .chunks_exact(channels)
        .map(|frame| (frame.iter().map(|s| i32::from(*s)).sum::<i32>() / channels as i32) as i16)
        .collect();
    Ok(resample(&mono, info.sample_rate, PHONE_RATE).into_iter().map(linear_to_ulaw).collect())
}

/// The body of the first `data` chunk (cut at the end of the file if its size runs past it).
fn data_chunk(file: &[u8]) -> Option<&[u8]> {
    let mut pos = 12usize;
    while pos.checked_add(8)? <= file.len() {
        let id = file.get(pos..pos + 4)?;
        let size = u32::from_le_bytes(file.get(pos + 4..pos + 8)?.try_into().ok()?) as usize;
        let body = pos + 8;
        if id == b"data" {
            return file.get(body..body.saturating_add(size).min(file.len()));
        }
        pos = body.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// Naive resampling of mono samples from `from` Hz to `to` Hz.
pub fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || samples.is_empty() || from == 0 || to == 0 {
        return samples.to_vec();
    }
    let out_len = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let step = f64::from(from) / f64::from(to);
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * step;
            let first = pos as usize;
            if step > 1.0 {
                let last = ((pos + step) as usize).clamp(first + 1, samples.len());
                let window = &samples[first.min(samples.len() - 1)..last];
                (window.iter().map(|s| i64::from(*s)).sum::<i64>() / window.len().max(1) as i64) as i16
            } else {
                let a = f64::from(samples[first.min(samples.len() - 1)]);
                let b = f64::from(samples[(first + 1).min(samples.len() - 1)]);
                (a + (b - a) * (pos - first as f64)).round() as i16
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::wav::{DataLen, WavEncoding, WavFormat};

    fn wav(encoding: WavEncoding, rate: u32, channels: u16, data: &[u8]) -> Vec<u8> {
        let format = WavFormat::new(encoding, rate, channels).unwrap();
        let mut file = format.header(DataLen::Known(data.len() as u32)).to_vec();
        file.extend_from_slice(data);
        file
    }

    #[test]
    fn pcm16_stereo_at_16k_becomes_half_as_many_mulaw_bytes_at_8k() {
        let frames: Vec<u8> = (0..1600).flat_map(|_| [1000i16, 3000].into_iter().flat_map(i16::to_le_bytes)).collect();
        let out = mulaw_from_wav(&wav(WavEncoding::Pcm16, 16000, 2, &frames)).unwrap();
        assert_eq!(out.len(), 800);
        assert!(out.iter().all(|b| *b == linear_to_ulaw(2000)));
    }

    #[test]
    fn mulaw_at_8k_passes_through_and_other_formats_are_refused() {
        let data = [0x00, 0x7F, 0xFF, 0x80];
        assert_eq!(mulaw_from_wav(&wav(WavEncoding::Ulaw, 8000, 1, &data)).unwrap(), data);
        assert!(mulaw_from_wav(b"RIFF....WAVEjunk").is_err());
        assert!(mulaw_from_wav(b"").is_err());
    }

    #[test]
    fn resampling_keeps_duration_and_level() {
        let up = resample(&[0, 100, 200, 300], 4000, 8000);
        assert_eq!(up, [0, 50, 100, 150, 200, 250, 300, 300]);
        let down = resample(&vec![500i16; 441], 44100, 8000);
        assert_eq!(down.len(), 80);
        assert!(down.iter().all(|s| *s == 500));
    }
}
