//! How loud a chunk of raw input audio is, whatever its encoding: the root-mean-square of its samples on the
//! 16-bit linear scale, so one threshold ([`VOICED_RMS`]) serves browser PCM and phone µ-law alike.

use super::g711;

/// RMS on the 16-bit scale above which a chunk counts as voiced (about -36 dBFS): well above line noise,
/// below speech.
pub const VOICED_RMS: f64 = 500.0;

/// RMS on the 16-bit scale below which a chunk is as good as silence (about -60 dBFS, far below speech): kept
/// for replay as its length only and replayed as digital silence.
pub const QUIET_RMS: f64 = 32.0;

/// The sample encodings parley accepts from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEncoding {
    /// 16-bit little-endian signed PCM (the browser protocol).
    Linear16,
    /// G.711 µ-law, one byte per sample (telephony).
    Mulaw,
}

impl InputEncoding {
    /// The byte that, repeated, is digital silence.
    pub fn silence_byte(self) -> u8 {
        match self {
            InputEncoding::Linear16 => 0,
            InputEncoding::Mulaw => 0xFF,
        }
    }
}

impl InputEncoding {
    pub fn bytes_per_sample(self) -> usize {
        match self {
            InputEncoding::Linear16 => 2,
            InputEncoding::Mulaw => 1,
        }
    }

    /// Deepgram's name for it (`encoding=` of `/listen`).
    pub fn deepgram_name(self) -> &'static str {
        match self {
            InputEncoding::Linear16 => "linear16",
            InputEncoding::Mulaw => "mulaw",
        }
    }
}

/// Root-mean-square level of `bytes` in `encoding` (0 for no whole sample).
pub fn rms(bytes: &[u8], encoding: InputEncoding) -> f64 {
    let (sum, n) = match encoding {
        InputEncoding::Linear16 => bytes
            .chunks_exact(2)
            .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
            .fold((0.0, 0usize), |(s, n), v| (s + v * v, n + 1)),
        InputEncoding::Mulaw => bytes
            .iter()
            .map(|&b| f64::from(g711::ulaw_to_linear(b)))
            .fold((0.0, 0usize), |(s, n), v| (s + v * v, n + 1)),
    };
    if n == 0 { 0.0 } else { (sum / n as f64).sqrt() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_zero_and_a_loud_square_wave_is_its_amplitude_in_both_encodings() {
        assert_eq!(rms(&[0; 640], InputEncoding::Linear16), 0.0);
        let loud: Vec<i16> = (0..320).map(|i| if i % 2 == 0 { 8000 } else { -8000 }).collect();
        let pcm: Vec<u8> = loud.iter().flat_map(|s| s.to_le_bytes()).collect();
        assert!((rms(&pcm, InputEncoding::Linear16) - 8000.0).abs() < 1e-6);
        let ulaw: Vec<u8> = loud.iter().map(|&s| g711::linear_to_ulaw(s)).collect();
        let level = rms(&ulaw, InputEncoding::Mulaw);
        assert!((level - 8000.0).abs() < 8000.0 * 0.05, "µ-law keeps the level within its quantisation: {level}");
        assert!(level > VOICED_RMS);
        assert_eq!(rms(&[0xFF; 160], InputEncoding::Mulaw), 0.0, "0xFF is µ-law silence");
        for e in [InputEncoding::Linear16, InputEncoding::Mulaw] {
            assert_eq!(rms(&[e.silence_byte(); 160], e), 0.0, "{e:?}");
        }
        assert_eq!(rms(&[1], InputEncoding::Linear16), 0.0, "a lone byte is no sample");
    }
}
