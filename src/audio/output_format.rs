//! The ElevenLabs `output_format` values (`mp3_44100_128`, `pcm_16000`, `ulaw_8000`, ...) as a typed value:
//! what the client is told to expect (MIME type), what a recording is stored as, and how many bytes a second
//! of it takes. Parsed once from configuration so a typo stops start-up instead of failing every session.

use std::fmt;
use std::str::FromStr;

/// How the samples of an output format are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// MPEG-1/2 Layer III frames; `bitrate_kbps` is the constant bit rate ElevenLabs streams at.
    Mp3 { bitrate_kbps: u32 },
    /// Raw signed 16-bit little-endian mono PCM, no header.
    Pcm,
    /// Raw G.711 µ-law, 8 bits per sample, mono.
    Ulaw,
    /// Raw G.711 A-law, 8 bits per sample, mono.
    Alaw,
    /// Opus in an Ogg container at `bitrate_kbps`.
    Opus { bitrate_kbps: u32 },
}

/// One ElevenLabs output format: an encoding at a sample rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutputFormat {
    pub encoding: Encoding,
    pub sample_rate: u32,
}

/// Why an `output_format` string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown output format {0:?}: expected mp3_<rate>_<kbps>, pcm_<rate>, ulaw_8000, alaw_8000 or opus_48000_<kbps>"
)]
pub struct UnknownOutputFormat(pub String);

const PCM_RATES: [u32; 7] = [8000, 16000, 22050, 24000, 32000, 44100, 48000];
const MP3_VARIANTS: [(u32, u32); 6] = [(22050, 32), (44100, 32), (44100, 64), (44100, 96), (44100, 128), (44100, 192)];
const OPUS_BITRATES: [u32; 5] = [32, 64, 96, 128, 192];

impl OutputFormat {
    /// ElevenLabs' own default, also the original system's: MP3 at 44.1 kHz, 128 kbit/s.
    pub const ELEVENLABS_DEFAULT: OutputFormat =
        OutputFormat { encoding: Encoding::Mp3 { bitrate_kbps: 128 }, sample_rate: 44100 };

    /// The MIME type a browser needs to play this format (`audio/mpeg`, `audio/pcm;rate=16000`, ...).
    pub fn mime_type(&self) -> String {
        match self.encoding {
            Encoding::Mp3 { .. } => "audio/mpeg".to_string(),
            Encoding::Pcm => format!("audio/pcm;rate={}", self.sample_rate),
            Encoding::Ulaw => "audio/basic".to_string(),
            Encoding::Alaw => format!("audio/x-alaw-basic;rate={}", self.sample_rate),
            Encoding::Opus { .. } => "audio/ogg;codecs=opus".to_string(),
        }
    }

    /// Nominal bytes per second of audio: exact for PCM and G.711, the constant bit rate for MP3 and Opus.
    pub fn bytes_per_second(&self) -> u32 {
        match self.encoding {
            Encoding::Pcm => self.sample_rate * 2,
            Encoding::Ulaw | Encoding::Alaw => self.sample_rate,
            Encoding::Mp3 { bitrate_kbps } | Encoding::Opus { bitrate_kbps } => bitrate_kbps * 1000 / 8,
        }
    }

    /// File extension a recording of this format is stored under (raw PCM and G.711 get a WAV header).
    pub fn file_extension(&self) -> &'static str {
        match self.encoding {
            Encoding::Mp3 { .. } => "mp3",
            Encoding::Pcm | Encoding::Ulaw | Encoding::Alaw => "wav",
            Encoding::Opus { .. } => "ogg",
        }
    }

    /// True for raw sample formats, where any byte count maps to an exact duration.
    pub fn is_raw(&self) -> bool {
        matches!(self.encoding, Encoding::Pcm | Encoding::Ulaw | Encoding::Alaw)
    }
}

impl FromStr for OutputFormat {
    type Err = UnknownOutputFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || UnknownOutputFormat(s.to_string());
        let mut parts = s.split('_');
        let kind = parts.next().ok_or_else(err)?;
        let rate: u32 = parts.next().and_then(|r| r.parse().ok()).ok_or_else(err)?;
        let kbps: Option<u32> = match parts.next() {
            Some(k) => Some(k.parse().map_err(|_| err())?),
            None => None,
        };
        if parts.next().is_some() {
            return Err(err());
        }
        let encoding = match (kind, kbps) {
            ("mp3", Some(k)) if MP3_VARIANTS.contains(&(rate, k)) => Encoding::Mp3 { bitrate_kbps: k },
            ("pcm", None) if PCM_RATES.contains(&rate) => Encoding::Pcm,
            ("ulaw", None) if rate == 8000 => Encoding::Ulaw,
            ("alaw", None) if rate == 8000 => Encoding::Alaw,
            ("opus", Some(k)) if rate == 48000 && OPUS_BITRATES.contains(&k) => Encoding::Opus { bitrate_kbps: k },
            _ => return Err(err()),
        };
        Ok(OutputFormat { encoding, sample_rate: rate })
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.encoding {
            Encoding::Mp3 { bitrate_kbps } => {
                write!(f, "mp3_{}_{}", self.sample_rate, bitrate_kbps)
            }
            Encoding::Pcm => write!(f, "pcm_{}", self.sample_rate),
            Encoding::Ulaw => write!(f, "ulaw_{}", self.sample_rate),
            Encoding::Alaw => write!(f, "alaw_{}", self.sample_rate),
            Encoding::Opus { bitrate_kbps } => {
                write!(f, "opus_{}_{}", self.sample_rate, bitrate_kbps)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_format_parses_and_prints_back() {
        for s in [
            "mp3_22050_32",
            "mp3_44100_32",
            "mp3_44100_64",
            "mp3_44100_96",
            "mp3_44100_128",
            "mp3_44100_192",
            "pcm_8000",
            "pcm_16000",
            "pcm_22050",
            "pcm_24000",
            "pcm_32000",
            "pcm_44100",
            "pcm_48000",
            "ulaw_8000",
            "alaw_8000",
            "opus_48000_64",
        ] {
            let f: OutputFormat = s.parse().unwrap();
            assert_eq!(f.to_string(), s);
        }
    }

    #[test]
    fn typos_and_unsupported_combinations_are_refused() {
        for s in
            ["", "mp3", "mp3_44100", "mp3_44100_100", "pcm_16001", "pcm_16000_1", "ulaw_16000", "wav_16000", "pcm_abc"]
        {
            assert!(s.parse::<OutputFormat>().is_err(), "{s} should not parse");
        }
    }

    #[test]
    fn mime_types_and_byte_rates_follow_the_format() {
        let mp3: OutputFormat = "mp3_44100_128".parse().unwrap();
        assert_eq!(mp3.mime_type(), "audio/mpeg");
        assert_eq!(mp3.bytes_per_second(), 16_000);
        let pcm: OutputFormat = "pcm_16000".parse().unwrap();
        assert_eq!(pcm.mime_type(), "audio/pcm;rate=16000");
        assert_eq!(pcm.bytes_per_second(), 32_000);
        assert_eq!(pcm.file_extension(), "wav");
        let ulaw: OutputFormat = "ulaw_8000".parse().unwrap();
        assert_eq!(ulaw.bytes_per_second(), 8_000);
    }
}
