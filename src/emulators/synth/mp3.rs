//! MPEG audio Layer III frames: a header parser, a frame walker (the duration of an MP3 byte stream is its
//! frame count times the frame length) and the pre-encoded loops the emulator cuts its `mp3_*` output from.
//! The loops were encoded without the bit reservoir (assets/generate.py), so every frame is self-contained
//! and any run of whole frames is a valid stream.

/// What one frame header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub sample_rate: u32,
    pub bitrate_kbps: u32,
    /// Bytes in the frame, header included.
    pub len: usize,
    /// PCM samples per channel the frame decodes to (1152 for MPEG-1, 576 for MPEG-2/2.5).
    pub samples: u32,
}

const MPEG1_L3_KBPS: [u32; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const MPEG2_L3_KBPS: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
const MPEG1_RATES: [u32; 3] = [44100, 48000, 32000];

/// Parses a Layer III header at the start of `b`; `None` for anything else (including free-format frames).
pub fn parse_header(b: &[u8]) -> Option<FrameHeader> {
    let [b0, b1, b2, ..] = *b else { return None };
    if b0 != 0xFF || b1 & 0xE0 != 0xE0 || (b1 >> 1) & 0x03 != 0x01 {
        return None;
    }
    let version = (b1 >> 3) & 0x03;
    let divisor = match version {
        3 => 1,
        2 => 2,
        0 => 4,
        _ => return None,
    };
    let br_index = usize::from(b2 >> 4);
    let sr_index = usize::from((b2 >> 2) & 0x03);
    if br_index == 0 || br_index == 15 || sr_index == 3 {
        return None;
    }
    let bitrate_kbps = if version == 3 { MPEG1_L3_KBPS[br_index] } else { MPEG2_L3_KBPS[br_index] };
    let sample_rate = MPEG1_RATES[sr_index] / divisor;
    let padding = usize::from((b2 >> 1) & 0x01);
    let (coef, samples) = if version == 3 { (144, 1152) } else { (72, 576) };
    let len = (coef * bitrate_kbps * 1000 / sample_rate) as usize + padding;
    Some(FrameHeader { sample_rate, bitrate_kbps, len, samples })
}

/// Splits a stream into whole frames, skipping bytes that are not a frame header (tags, garbage). A frame
/// cut short at the end is left out.
pub fn frames(mut b: &[u8]) -> Vec<(FrameHeader, &[u8])> {
    let mut out = Vec::new();
    while !b.is_empty() {
        match parse_header(b) {
            Some(h) if h.len <= b.len() => {
                out.push((h, &b[..h.len]));
                b = &b[h.len..];
            }
            Some(_) => break,
            None => b = &b[1..],
        }
    }
    out
}

/// Seconds of audio in a stream, by walking its frames.
pub fn duration_secs(b: &[u8]) -> f64 {
    frames(b).iter().map(|(h, _)| f64::from(h.samples) / f64::from(h.sample_rate)).sum()
}

/// The pre-encoded loop for a documented `mp3_<rate>_<kbps>` format.
pub fn asset(sample_rate: u32, kbps: u32) -> Option<&'static [u8]> {
    Some(match (sample_rate, kbps) {
        (22050, 32) => include_bytes!("../assets/tone_22050_32.mp3"),
        (44100, 32) => include_bytes!("../assets/tone_44100_32.mp3"),
        (44100, 64) => include_bytes!("../assets/tone_44100_64.mp3"),
        (44100, 96) => include_bytes!("../assets/tone_44100_96.mp3"),
        (44100, 128) => include_bytes!("../assets/tone_44100_128.mp3"),
        (44100, 192) => include_bytes!("../assets/tone_44100_192.mp3"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_a_walkable_stream_at_its_promised_rate_and_bitrate() {
        for (rate, kbps) in [(22050, 32), (44100, 32), (44100, 64), (44100, 96), (44100, 128), (44100, 192)] {
            let bytes = asset(rate, kbps).unwrap();
            let fr = frames(bytes);
            assert!(fr.len() > 70, "{rate}/{kbps}: {} frames", fr.len());
            let total: usize = fr.iter().map(|(_, f)| f.len()).sum();
            assert_eq!(total, bytes.len(), "{rate}/{kbps}: stray bytes");
            assert!(fr.iter().all(|(h, _)| h.sample_rate == rate && h.bitrate_kbps == kbps));
            let d = duration_secs(bytes);
            assert!((d - 2.0).abs() < 0.1, "{rate}/{kbps}: {d}s");
        }
    }

    #[test]
    fn garbage_is_skipped_and_a_cut_frame_is_not_counted() {
        let bytes = asset(44100, 128).unwrap();
        let one = frames(bytes)[0].1.len();
        let mut s = b"ID3junk".to_vec();
        s.extend_from_slice(&bytes[..one * 2 + 10]);
        assert_eq!(frames(&s).len(), 2);
        assert_eq!(parse_header(b"\xFF\xFB"), None);
    }
}
