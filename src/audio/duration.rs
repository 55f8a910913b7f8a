//! One entry point for "how long is this recording": pick the container (the declared content type when it is
//! specific and the bytes name no other container, the file's signature otherwise) and ask its parser. Only
//! headers and frame headers are read, so a recording of many minutes is never held in memory. An unknown or
//! unreadable format is `None`: a missing duration must never fail an upload.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

use super::sniff::{Container, detect};
use super::source::Source;
use super::{flac, mp3, wav};

/// Seconds of audio in `reader`, or `None` when the format is unknown or the file too damaged to tell.
///
/// A specific `content_type` is trusted unless the bytes carry another container's magic number (`RIFF`/`WAVE`,
/// `fLaC`, `OggS`), which outranks a label; MPEG frames have no magic number, so there the label goes first.
/// If the first choice finds nothing the other is tried, so a mislabelled file still gets its duration. The
/// reader's position afterwards is unspecified.
pub fn duration_seconds<R: Read + Seek>(content_type: Option<&str>, reader: R) -> Option<f64> {
    let mut src = Source::new(reader)?;
    let declared = content_type.and_then(Container::from_content_type);
    let sniffed = sniff(&mut src);
    let (first, second) = match (declared, sniffed) {
        (Some(_), Some(magic)) if magic != Container::Mp3 => (sniffed, declared),
        _ => (declared, sniffed),
    };
    let mut tried = None;
    for container in [first, second].into_iter().flatten() {
        if tried == Some(container) {
            continue;
        }
        tried = Some(container);
        if let Some(seconds) = duration_of(container, &mut src) {
            return Some(seconds);
        }
    }
    None
}

/// [`duration_seconds`] of the file at `path`; `None` also when it cannot be opened.
pub fn file_duration_seconds(content_type: Option<&str>, path: &Path) -> Option<f64> {
    duration_seconds(content_type, File::open(path).ok()?)
}

/// The container the stream's bytes announce, looking past any ID3v2 tag (taggers also put them in front of
/// FLAC).
fn sniff<R: Read + Seek>(src: &mut Source<R>) -> Option<Container> {
    let after_tags = mp3::skip_id3v2(src, 0);
    let mut prefix = [0u8; 12];
    let available = usize::try_from(src.len().saturating_sub(after_tags)).map_or(12, |n| n.min(12));
    let prefix = prefix.get_mut(..available)?;
    src.read_at(after_tags, prefix).then_some(())?;
    match detect(prefix) {
        None if after_tags > 0 => Some(Container::Mp3),
        found => found,
    }
}

fn duration_of<R: Read + Seek>(container: Container, src: &mut Source<R>) -> Option<f64> {
    let seconds = match container {
        Container::Wav => wav::info_from(src)?.duration_seconds()?,
        Container::Mp3 => mp3::probe_from(src)?.duration_seconds(),
        Container::Flac => {
            let start = mp3::skip_id3v2(src, 0);
            flac::info_at(src, start)?.duration_seconds()?
        }
        Container::Ogg => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::wav::{DataLen, WavEncoding, WavFormat};
    use std::io::Cursor;

    fn one_second_wav() -> Vec<u8> {
        let format = WavFormat::new(WavEncoding::Pcm16, 8_000, 1).unwrap();
        let mut file = format.header(DataLen::Known(16_000)).to_vec();
        file.resize(file.len() + 16_000, 0);
        file
    }

    #[test]
    fn a_vague_or_missing_content_type_falls_back_to_the_signature() {
        for ct in [None, Some("application/octet-stream"), Some("audio/pcm")] {
            assert_eq!(duration_seconds(ct, Cursor::new(one_second_wav())), Some(1.0));
        }
    }

    #[test]
    fn a_wrong_content_type_is_corrected_by_the_signature() {
        let d = duration_seconds(Some("audio/mpeg"), Cursor::new(one_second_wav()));
        assert_eq!(d, Some(1.0));
    }

    #[test]
    fn a_magic_number_outranks_a_label_even_when_the_labelled_parser_would_answer() {
        // A WAV whose samples happen to hold two MPEG frames: labelled MP3, it is still timed as WAV.
        let mut frame = vec![0xFF, 0xFB, 0x90, 0x64];
        frame.resize(417, 0);
        let samples = [frame.clone(), frame].concat();
        let format = WavFormat::new(WavEncoding::Pcm16, 8_000, 1).unwrap();
        let mut file = format.header(DataLen::Known(samples.len() as u32)).to_vec();
        file.extend(samples);
        let d = duration_seconds(Some("audio/mpeg"), Cursor::new(file));
        assert_eq!(d, Some(417.0 / 8_000.0));
    }

    #[test]
    fn unknown_or_duration_less_formats_give_none_not_an_error() {
        assert_eq!(duration_seconds(None, Cursor::new(b"hello world".to_vec())), None);
        assert_eq!(duration_seconds(Some("audio/wav"), Cursor::new(Vec::new())), None);
        let ogg = b"OggS\0\x02\0\0\0\0\0\0\0\0".to_vec();
        assert_eq!(duration_seconds(Some("audio/ogg"), Cursor::new(ogg)), None);
    }

    #[test]
    fn a_file_path_is_read_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        std::fs::write(&path, one_second_wav()).unwrap();
        assert_eq!(file_duration_seconds(None, &path), Some(1.0));
        assert_eq!(file_duration_seconds(None, &dir.path().join("missing")), None);
    }
}
