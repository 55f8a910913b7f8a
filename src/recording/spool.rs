//! One recording being written: audio goes to a file in the spool directory as it arrives (so memory stays
//! flat however long the turn), with a WAV header for raw formats (patched with the real sizes at the end)
//! or as the provider's own container (MP3). Finishing it gives the file, its size and its duration.
//!
//! A spool file is named after the recording's object key, so a file left without a database row (the process
//! was killed before the row was written) still says whose it is: `{user_id}+{session_id}+{role}_{uuid}_{timestamp}.{ext}`
//! (the key below `audio_recordings/`, `/` written as `+`, which neither ids nor the file part may contain),
//! with `.part` appended while it is being written. See [`SpoolName`] and `recording::orphans`.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::audio::level::InputEncoding;
use crate::audio::wav::{WavEncoding, WavFormat, WavWriter};
use crate::audio::{Encoding, OutputFormat};
use crate::db::{Role, SessionId, UserId};

/// Directory, inside the data directory, of the files being written and of those waiting to be stored.
pub const SPOOL_DIR: &str = "spool";

/// Appended to the name of a file still being written.
pub const PARTIAL: &str = ".part";

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

/// The content type of a recording file with `extension`, as [`TrackFormat`] writes them.
pub fn content_type_of(extension: &str) -> Option<&'static str> {
    match extension {
        "wav" => Some("audio/wav"),
        "mp3" => Some("audio/mpeg"),
        "ogg" => Some("audio/ogg"),
        _ => None,
    }
}

/// What a spool file's name says about the recording in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolName {
    pub object_key: String,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub role: Role,
    pub extension: String,
    /// Still being written when its recorder stopped (`.part`): a WAV header may need its sizes patched.
    pub partial: bool,
}

impl SpoolName {
    /// The name of the complete spool file of `object_key`.
    pub fn for_key(object_key: &str) -> String {
        let below = object_key.strip_prefix(super::ROOT).and_then(|k| k.strip_prefix('/')).unwrap_or(object_key);
        below.replace('/', "+")
    }

    /// Reads a spool file name; `None` when it does not follow the layout (a file parley did not name, or one
    /// from before names carried the key).
    pub fn parse(name: &str) -> Option<SpoolName> {
        let (whole, partial) = match name.strip_suffix(PARTIAL) {
            Some(w) => (w, true),
            None => (name, false),
        };
        let mut parts = whole.split('+');
        let (user, session, file) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let user_id: UserId = user.parse().ok()?;
        let session_id: SessionId = session.parse().ok().filter(|s: &SessionId| s.as_str() == session)?;
        let (role, rest) = file.split_once('_')?;
        let role = Role::parse(role).ok()?;
        let (stem, extension) = rest.rsplit_once('.')?;
        let (uuid, stamp) = stem.split_once('_')?;
        let alnum = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if uuid.len() != 32 || !uuid.bytes().all(|b| b.is_ascii_hexdigit()) || !alnum(stamp) || !alnum(extension) {
            return None;
        }
        Some(SpoolName {
            object_key: format!("{}/{user}/{session}/{file}", super::ROOT),
            user_id,
            session_id,
            role,
            extension: extension.to_string(),
            partial,
        })
    }
}

enum Sink {
    // Unbuffered: the session hands audio over in blocks of many frames already (`session::children`), so a
    // buffer here would only hold a second copy of a block per open recording.
    Wav(WavWriter<File>),
    Raw(File),
}

/// A recording being written.
pub struct Track {
    /// The file being written (`….part`).
    path: PathBuf,
    /// Where the complete file goes.
    done: PathBuf,
    object_key: String,
    format: TrackFormat,
    sink: Sink,
    bytes: u64,
}

/// A complete recording file.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedTrack {
    pub path: PathBuf,
    pub object_key: String,
    pub format: TrackFormat,
    pub size_bytes: u64,
    /// `None` when the format gives no duration.
    pub duration_seconds: Option<f64>,
}

impl Track {
    /// Opens a new spool file in `dir` for the recording to be stored under `object_key`.
    /// The directory is created only when it is missing (once per spool, not once per recording).
    pub fn create(dir: &Path, object_key: &str, format: TrackFormat) -> std::io::Result<Track> {
        let done = dir.join(SpoolName::for_key(object_key));
        let mut path = done.clone().into_os_string();
        path.push(PARTIAL);
        let path = PathBuf::from(path);
        let file = match File::create(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                File::create(&path)?
            }
            other => other?,
        };
        let sink = match format {
            TrackFormat::Wav(wav) => Sink::Wav(WavWriter::new(file, wav).map_err(std::io::Error::other)?),
            TrackFormat::Container { .. } => Sink::Raw(file),
        };
        Ok(Track { path, done, object_key: object_key.to_string(), format, sink, bytes: 0 })
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

    /// Completes the file (patching the WAV header), drops its `.part` and measures it. Not synced to disk one
    /// by one (that cost a disk flush per turn): a process that dies loses nothing (the written data is in the
    /// kernel), a clean stop syncs the file system ([`sync_filesystem`]), and only a crash of the machine itself
    /// can lose the last seconds of files not yet stored. Blocking file I/O: call it off any audio path.
    pub fn finish(self) -> std::io::Result<FinishedTrack> {
        let (file, duration_seconds) = match self.sink {
            Sink::Wav(w) => {
                let seconds = w.duration_seconds();
                (w.finish().map_err(std::io::Error::other)?, Some(seconds))
            }
            Sink::Raw(file) => {
                (file, crate::audio::file_duration_seconds(Some(self.format.content_type()), &self.path))
            }
        };
        let size_bytes = file.metadata()?.len();
        drop(file);
        std::fs::rename(&self.path, &self.done)?;
        Ok(FinishedTrack {
            path: self.done,
            object_key: self.object_key,
            format: self.format,
            size_bytes,
            duration_seconds,
        })
    }

    /// Drops the recording and its file.
    pub fn discard(self) {
        let path = self.path.clone();
        drop(self.sink);
        let _ = std::fs::remove_file(path);
    }
}

/// Flushes the file system holding `dir` to disk: what a clean stop does for the spool and the local store,
/// whose files are not synced one by one.
pub fn sync_filesystem(dir: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let handle = File::open(dir)?;
    // SAFETY: `syncfs` only reads the descriptor, which `handle` keeps open for the call.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "audio_recordings/alice@x.org/2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b/user_0123456789abcdef0123456789abcdef_20261124T101112345Z.wav";

    #[test]
    fn spool_names_carry_the_object_key_and_read_back() {
        let name = SpoolName::for_key(KEY);
        assert_eq!(
            name,
            "alice@x.org+2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b+user_0123456789abcdef0123456789abcdef_20261124T101112345Z.wav"
        );
        let read = SpoolName::parse(&name).unwrap();
        assert_eq!((read.object_key.as_str(), read.role, read.extension.as_str()), (KEY, Role::User, "wav"));
        assert_eq!(
            (read.user_id.as_str(), read.session_id.as_str()),
            ("alice@x.org", "2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b")
        );
        assert!(!read.partial);
        let part = SpoolName::parse(&format!("{name}{PARTIAL}")).unwrap();
        assert!(part.partial);
        assert_eq!(part.object_key, KEY);
        let key = super::super::object_key(
            "bo",
            "2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b",
            Role::Assistant,
            "mp3",
            crate::db::now(),
        );
        assert_eq!(SpoolName::parse(&SpoolName::for_key(&key)).unwrap().object_key, key);
    }

    #[test]
    fn names_parley_did_not_give_are_not_read() {
        for name in [
            "0123456789abcdef0123456789abcdef.wav.part", // before names carried the key
            "notes.txt",
            "a+b+c",
            "alice+2F1C7D9E-8F6A-4B8E-9A51-0C2D3E4F5A6B+user_0123456789abcdef0123456789abcdef_1.wav",
            "alice+2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b+system_0123456789abcdef0123456789abcdef_1.wav",
            "alice+2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b+user_0123_1.wav",
            "alice+2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b+user_0123456789abcdef0123456789abcdef_1",
            "al ice+2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b+user_0123456789abcdef0123456789abcdef_1.wav",
            "a+2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b+user_0123456789abcdef0123456789abcdef_1.wav+x",
        ] {
            assert_eq!(SpoolName::parse(name), None, "{name}");
        }
    }

    #[test]
    fn a_microphone_track_becomes_a_wav_of_the_right_duration() {
        let dir = tempfile::tempdir().unwrap();
        let mut t =
            Track::create(dir.path(), KEY, TrackFormat::microphone(InputEncoding::Linear16, 16_000).unwrap()).unwrap();
        assert!(dir.path().join(format!("{}{PARTIAL}", SpoolName::for_key(KEY))).exists(), "written as .part");
        for _ in 0..50 {
            t.append(&[0u8; 640]).unwrap(); // 20 ms each
        }
        let done = t.finish().unwrap();
        assert_eq!(done.path, dir.path().join(SpoolName::for_key(KEY)), "complete: the .part is gone");
        assert_eq!(done.object_key, KEY);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(done.size_bytes, 44 + 32_000);
        assert_eq!(done.duration_seconds, Some(1.0));
        let measured = crate::audio::file_duration_seconds(Some("audio/wav"), &done.path).unwrap();
        assert!((measured - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_spool_directory_is_made_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("a").join(SPOOL_DIR);
        let mut t =
            Track::create(&spool, KEY, TrackFormat::microphone(InputEncoding::Linear16, 8_000).unwrap()).unwrap();
        t.append(&[1u8; 160]).unwrap();
        let done = t.finish().unwrap();
        assert_eq!((done.size_bytes, done.duration_seconds), (44 + 160, Some(0.01)));
        sync_filesystem(&spool).unwrap();
        assert!(sync_filesystem(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn an_mp3_track_keeps_the_bytes_and_measures_the_frames() {
        let dir = tempfile::tempdir().unwrap();
        let format = TrackFormat::assistant(&OutputFormat::ELEVENLABS_DEFAULT);
        assert_eq!((format.extension(), format.content_type()), ("mp3", "audio/mpeg"));
        let mp3 = include_bytes!("../../tests/fixtures/audio/mp3_cbr_128k_44k.mp3");
        let mut t = Track::create(dir.path(), &KEY.replace(".wav", ".mp3"), format).unwrap();
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
        let t = Track::create(dir.path(), KEY, TrackFormat::assistant(&pcm)).unwrap();
        t.discard();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
