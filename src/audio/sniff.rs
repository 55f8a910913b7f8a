//! Which container a recording is in, from its declared content type or from its first bytes. Content types
//! arrive from uploads and storage metadata and are often vague (`application/octet-stream`) or missing; the
//! bytes are the fallback, and neither ever produces an error, only "don't know".

use super::mp3::FrameHeader;

/// A container parley can recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// RIFF/WAVE.
    Wav,
    /// MPEG audio frames, possibly behind an ID3v2 tag.
    Mp3,
    /// Native FLAC (`fLaC`).
    Flac,
    /// Ogg (Opus or Vorbis); recognised, but no duration is computed for it.
    Ogg,
}

impl Container {
    /// The container a MIME type names unambiguously (parameters and case ignored); `None` for generic or
    /// unknown types, which should be sniffed instead.
    pub fn from_content_type(content_type: &str) -> Option<Container> {
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" | "audio/x-pn-wav" => Some(Container::Wav),
            "audio/mpeg" | "audio/mp3" | "audio/x-mp3" | "audio/mpeg3" | "audio/x-mpeg" | "audio/mpa" => {
                Some(Container::Mp3)
            }
            "audio/flac" | "audio/x-flac" => Some(Container::Flac),
            "audio/ogg" | "application/ogg" | "audio/opus" | "audio/x-opus" => Some(Container::Ogg),
            _ => None,
        }
    }

    /// The MIME type to store a recording in this container under.
    pub fn mime_type(&self) -> &'static str {
        match self {
            Container::Wav => "audio/wav",
            Container::Mp3 => "audio/mpeg",
            Container::Flac => "audio/flac",
            Container::Ogg => "audio/ogg",
        }
    }
}

/// The container whose signature `prefix` (the first bytes of a file; 12 are enough) starts with. An ID3v2
/// tag is taken to mean MP3, the only container it is standard in front of.
pub fn detect(prefix: &[u8]) -> Option<Container> {
    let starts = |sig: &[u8]| prefix.starts_with(sig);
    if starts(b"RIFF") && prefix.get(8..12) == Some(b"WAVE") {
        Some(Container::Wav)
    } else if starts(b"fLaC") {
        Some(Container::Flac)
    } else if starts(b"OggS") {
        Some(Container::Ogg)
    } else if starts(b"ID3") && prefix.get(3).is_some_and(|&v| v != 0xFF) {
        Some(Container::Mp3)
    } else {
        let header: [u8; 4] = prefix.get(..4)?.try_into().ok()?;
        FrameHeader::parse(header).map(|_| Container::Mp3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_signature_is_recognised() {
        assert_eq!(detect(b"RIFF\x24\0\0\0WAVEfmt "), Some(Container::Wav));
        assert_eq!(detect(b"fLaC\0\0\0\x22"), Some(Container::Flac));
        assert_eq!(detect(b"OggS\0\x02"), Some(Container::Ogg));
        assert_eq!(detect(b"ID3\x04\0\0\0\0\0\x10"), Some(Container::Mp3));
        assert_eq!(detect(&[0xFF, 0xFB, 0x90, 0x64]), Some(Container::Mp3));
        assert_eq!(detect(&[0xFF, 0xE3, 0x28, 0xC4]), Some(Container::Mp3));
    }

    #[test]
    fn unknown_short_or_near_miss_prefixes_are_not_recognised() {
        for prefix in [
            &b""[..],
            b"RIFF",
            b"RIFF\0\0\0\0AVI ",
            b"fLa",
            b"{\"json\": 1}",
            &[0xFF, 0xF1, 0x50, 0x80], // ADTS AAC
            &[0xFF, 0xFB],
        ] {
            assert_eq!(detect(prefix), None, "{prefix:02X?}");
        }
    }

    #[test]
    fn content_types_are_matched_on_their_essence_only() {
        for (ct, container) in [
            ("audio/wav", Container::Wav),
            (" Audio/X-WAV ; rate=16000", Container::Wav),
            ("audio/mpeg", Container::Mp3),
            ("audio/x-flac", Container::Flac),
            ("audio/ogg;codecs=opus", Container::Ogg),
        ] {
            assert_eq!(Container::from_content_type(ct), Some(container), "{ct}");
        }
        for vague in ["application/octet-stream", "audio/pcm;rate=16000", "audio/basic", "", "audio"] {
            assert_eq!(Container::from_content_type(vague), None, "{vague}");
        }
    }
}
