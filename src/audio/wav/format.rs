//! The WAV formats parley writes (16-bit PCM, G.711 µ-law and A-law), the `fmt ` tags they and other
//! writers use, and which ElevenLabs output format maps to which.

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
pub(crate) const GUID_TAIL: [u8; 12] = [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

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

impl WavFormat {
    /// A format, refused if the rate or channel count is zero or the byte rate overflows the header field.
    pub fn new(encoding: WavEncoding, sample_rate: u32, channels: u16) -> Result<Self, WavError> {
        let block_align = u32::from(channels) * u32::from(encoding.bytes_per_sample());
        if sample_rate == 0 || channels == 0 {
            return Err(WavError::InvalidFormat("sample rate and channels must be at least 1"));
        }
        if sample_rate.checked_mul(block_align).is_none() || block_align > u32::from(u16::MAX) {
            return Err(WavError::InvalidFormat("byte rate does not fit a WAV header"));
        }
        Ok(WavFormat { encoding, sample_rate, channels })
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
        self.channels.saturating_mul(u16::from(self.encoding.bytes_per_sample()))
    }

    /// Bytes per second of audio, what a data length is divided by to get a duration.
    pub fn byte_rate(&self) -> u32 {
        self.sample_rate.saturating_mul(u32::from(self.block_align()))
    }

    /// The format tag readers see first: the codec's own, or EXTENSIBLE when more than two channels need the
    /// extensible layout.
    pub fn format_tag(&self) -> u16 {
        if self.is_extensible() { FORMAT_EXTENSIBLE } else { self.encoding.format_tag() }
    }

    /// The WAVE spec requires the extensible layout above two channels; players misroute channels otherwise.
    pub(super) fn is_extensible(&self) -> bool {
        self.channels > 2
    }

    /// G.711 is a non-PCM format, for which the spec requires a `fact` chunk with the sample count.
    pub(super) fn has_fact(&self) -> bool {
        self.encoding != WavEncoding::Pcm16
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

    /// Bits per sample as the `fmt ` chunk states them.
    pub(super) fn bits_per_sample(&self) -> u16 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_elevenlabs_outputs_map_to_mono_wav_and_compressed_ones_do_not() {
        let wav = |s: &str| WavFormat::for_output(&s.parse().unwrap());
        let pcm = wav("pcm_24000").unwrap();
        assert_eq!((pcm.encoding(), pcm.sample_rate(), pcm.channels()), (WavEncoding::Pcm16, 24_000, 1));
        assert_eq!(pcm.byte_rate(), 48_000);
        assert_eq!(wav("ulaw_8000").unwrap().encoding(), WavEncoding::Ulaw);
        assert_eq!(wav("alaw_8000").unwrap().format_tag(), FORMAT_ALAW);
        assert_eq!(wav("mp3_44100_128"), None);
        assert_eq!(wav("opus_48000_64"), None);
    }

    #[test]
    fn the_byte_rate_of_every_raw_output_matches_output_format() {
        for s in ["pcm_8000", "pcm_16000", "pcm_44100", "pcm_48000", "ulaw_8000", "alaw_8000"] {
            let output: OutputFormat = s.parse().unwrap();
            let format = WavFormat::for_output(&output).unwrap();
            assert_eq!(format.byte_rate(), output.bytes_per_second(), "{s}");
        }
    }

    #[test]
    fn formats_a_header_cannot_describe_are_refused() {
        assert!(WavFormat::new(WavEncoding::Pcm16, 0, 1).is_err());
        assert!(WavFormat::new(WavEncoding::Pcm16, 16_000, 0).is_err());
        assert!(WavFormat::new(WavEncoding::Pcm16, u32::MAX, 2).is_err());
        assert!(WavFormat::new(WavEncoding::Pcm16, 16_000, u16::MAX).is_err());
        assert!(WavFormat::new(WavEncoding::Ulaw, 16_000, u16::MAX).is_ok());
    }
}
