//! One recording being written: audio goes to a file in the spool directory as it arrives (so memory stays
//! flat however long the turn), with a WAV header for raw formats (patched with the real sizes at the end)
//! or as the provider's own container (MP3). Finishing it gives the file, its size and its duration.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use crate::audio::level::InputEncoding;
use crate::audio::wav::{WavEncoding, WavFormat, WavWriter};
use crate::audio::{Encoding, OutputFormat};

/// Write buffer per open recording: a few hundred milliseconds of audio, so a session costs little memory
/// and the disk sees few writes.
const BUFFER_BYTES: usize = 16 * 1024;

/// How a recording's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackFormat {
    /// Raw samples in a WAV container.
    Wav(WavFormat),
    /// The bytes as received, already in a container (`mp3`, `ogg`).
    Container { extension: &'static str, content_type: &'static str },
}

impl TrackFormat {
    /// The client's microphone: mono at its declared rate, 16-bit PCM (browsers) or µ-law (phones).
    pub fn microphone(encoding: InputEncoding, sample_rate: u32) -> Option<TrackFormat> {
        let encoding = match encoding {
            InputEncoding::Linear16 => WavEncoding::Pcm16,
            InputEncoding::Mulaw => WavEncoding::Ulaw,
        };
        WavFormat::new(encoding, sample_rate, 1).ok().map(TrackFormat::Wav)
    }

    /// The assistant's audio in the ElevenLabs output format.
    pub fn assistant(format: &OutputFormat) -> TrackFormat {
        match (WavFormat::for_output(format), format.encoding) {
            (Some(wav), _) => TrackFormat::Wav(wav),
            (None, Encoding::Opus { .. }) => TrackFormat::Container { extension: "ogg", content_type: "audio/ogg" },
            (None, _) => TrackFormat::Container { extension: "mp3", content_type: "audio/mpeg" },
        }
    }

    pub fn extension(&self) -> &'static str {
        match self {
            TrackFormat::Wav(_) => "wav",
            TrackFormat::Container { extension, .. } => extension,
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            TrackFormat::Wav(_) => "audio/wav",
            TrackFormat::Container { content_type, .. } => content_type,
        }
    }
}

enum Sink {
    Wav(WavWriter<BufWriter<File>>),
    Raw(BufWriter<File>),
}

/// A recording being written.
pub struct Track {
    path: PathBuf,
    format: TrackFormat,
    sink: Sink,
    bytes: u64,
}

/// A complete recording file.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedTrack {
    pub path: PathBuf,
    pub format: TrackFormat,
    pub size_bytes: u64,
    /// `None` when the format gives no duration.
    pub duration_seconds: Option<f64>,
}

impl Track {
    /// Opens a new spool file in `dir`.
    pub fn create(dir: &Path, format: TrackFormat) -> std::io::Result<Track> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.{}.part", uuid::Uuid::new_v4().simple(), format.extension()));
        let file = BufWriter::with_capacity(BUFFER_BYTES, File::create(&path)?);
        let sink = match format {
            TrackFormat::Wav(wav) => Sink::Wav(WavWriter::new(file, wav).map_err(std::io::Error::other)?),
            TrackFormat::Container { .. } => Sink::Raw(file),
        };
        Ok(Track { path, format, sink, bytes: 0 })
    }

    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Wav(w) => w.append(bytes).map_err(std::io::Error::other)?,
            Sink::Raw(w) => w.write_all(bytes)?,
        }
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Audio bytes appended so far.
    pub fn audio_bytes(&self) -> u64 {
        self.bytes
    }

    /// Completes the file (patching the WAV header) and measures it. Blocking file I/O: call it off any
    /// audio path.
    pub fn finish(self) -> std::io::Result<FinishedTrack> {
        let duration_seconds = match self.sink {
            Sink::Wav(w) => {
                let seconds = w.duration_seconds();
                w.finish().map_err(std::io::Error::other)?.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                Some(seconds)
            }
            Sink::Raw(w) => {
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                crate::audio::file_duration_seconds(Some(self.format.content_type()), &self.path)
            }
        };
        let size_bytes = std::fs::metadata(&self.path)?.len();
        Ok(FinishedTrack { path: self.path, format: self.format, size_bytes, duration_seconds })
    }

    /// Drops the recording and its file.
    pub fn discard(self) {
        let path = self.path.clone();
        drop(self.sink);
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_microphone_track_becomes_a_wav_of_the_right_duration() {
        let dir = tempfile::tempdir().unwrap();
        let mut t =
            Track::create(dir.path(), TrackFormat::microphone(InputEncoding::Linear16, 16_000).unwrap()).unwrap();
        for _ in 0..50 {
            t.append(&[0u8; 640]).unwrap(); // 20 ms each
        }
        let done = t.finish().unwrap();
        assert_eq!(done.size_bytes, 44 + 32_000);
        assert_eq!(done.duration_seconds, Some(1.0));
        let measured = crate::audio::file_duration_seconds(Some("audio/wav"), &done.path).unwrap();
        assert!((measured - 1.0).abs() < 1e-9);
    }

    #[test]
    fn an_mp3_track_keeps_the_bytes_and_measures_the_frames() {
        let dir = tempfile::tempdir().unwrap();
        let format = TrackFormat::assistant(&OutputFormat::ELEVENLABS_DEFAULT);
        assert_eq!((format.extension(), format.content_type()), ("mp3", "audio/mpeg"));
        let mp3 = include_bytes!("../../tests/fixtures/audio/mp3_cbr_128k_44k.mp3");
        let mut t = Track::create(dir.path(), format).unwrap();
        for chunk in mp3.chunks(1000) {
            t.append(chunk).unwrap();
        }
        let done = t.finish().unwrap();
        assert_eq!(done.size_bytes, mp3.len() as u64);
        let d = done.duration_seconds.unwrap();
        assert!((d - 1.045).abs() < 0.03, "{d}");
    }

    #[test]
    fn pcm_and_ulaw_outputs_get_wav_headers_and_discarded_tracks_leave_no_file() {
        let pcm: OutputFormat = "pcm_24000".parse().unwrap();
        assert!(matches!(TrackFormat::assistant(&pcm), TrackFormat::Wav(w) if w.sample_rate() == 24_000));
        let ulaw: OutputFormat = "ulaw_8000".parse().unwrap();
        assert!(matches!(TrackFormat::assistant(&ulaw), TrackFormat::Wav(w) if w.encoding() == WavEncoding::Ulaw));
        let dir = tempfile::tempdir().unwrap();
        let t = Track::create(dir.path(), TrackFormat::assistant(&pcm)).unwrap();
        t.discard();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
