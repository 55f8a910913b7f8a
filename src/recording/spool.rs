//! Recordings being written. Each side of a session (the user's microphone, the assistant's replies) has one
//! spool file, a [`Lane`]: opened with the side's first recording and appended to, with no file created per
//! turn. Its recordings go in one after another, each a complete file of its own: a WAV with its header (for
//! raw formats; the sizes patched when the recording ends) or the provider's own container (MP3, Ogg). A
//! recording is thus a byte range of its lane, which the Uploader cuts out when it stores it; [`SpoolLanes`]
//! removes a lane once its session is over and all of it is stored.
//!
//! Beside each lane its index (`….lane.idx`) notes, line by line, where each recording begins and its object
//! key, and whether it ended or was dropped, so a lane left by a process that died still says whose each
//! recording is (`recording::orphans`). A lane is named `{user_id}+{session_id}+{role}_{uuid}.lane`.
//!
//! Recordings taken out of a lane at start-up (no row), and spools from before lanes, are files of their own
//! named after their object key: `{user_id}+{session_id}+{role}_{uuid}_{timestamp}.{ext}` (the key below
//! `audio_recordings/`, `/` written as `+`, which neither ids nor the file part may contain), with `.part`
//! appended while incomplete. See [`SpoolName`].

use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// Appended to the name of a session's spool file of one side (a lane): its recordings one after another.
pub const LANE: &str = ".lane";

/// A lane this long is retired at the end of its current recording and the side's next recording starts a new
/// one (the old one goes once what it holds is stored): a long session keeps at most about this much already
/// stored audio per side in the spool, not all of it. 2 MiB is about a minute of 16 kHz microphone audio or
/// two of 128 kbit/s MP3, so a lane still takes many turns (one file every minute or so, not one per turn).
pub const LANE_RETIRE_BYTES: u64 = 2 << 20;

/// Appended to a lane's name for its index: where each recording in the lane starts, its object key and
/// whether it was finished or dropped.
pub const INDEX: &str = ".idx";

/// One line of a lane's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Where the recording starts in the lane.
    pub offset: u64,
    pub object_key: String,
    pub state: EntryState,
}

/// What became of a recording in a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Still being written when its recorder stopped: it runs to the end of the lane.
    Open,
    /// Complete: `length` bytes from its offset.
    Finished { length: u64 },
    /// Discarded (its bytes were cut off the lane).
    Dropped,
}

/// The index of the lane `lane`: one entry per recording begun in it, in order. A line the process was
/// writing when it died, or one parley did not write, is skipped.
pub fn read_index(lane: &Path) -> std::io::Result<Vec<IndexEntry>> {
    let text = std::fs::read_to_string(index_path(lane))?;
    let mut entries: Vec<IndexEntry> = Vec::new();
    for line in text.lines() {
        let mut words = line.splitn(3, ' ');
        let (verb, offset) = (words.next(), words.next().and_then(|o| o.parse::<u64>().ok()));
        let (Some(verb), Some(offset)) = (verb, offset) else { continue };
        let rest = words.next();
        let last = entries.iter_mut().rev().find(|e| e.offset == offset && e.state == EntryState::Open);
        match (verb, rest, last) {
            ("begin", Some(key), _) if !key.is_empty() => {
                entries.push(IndexEntry { offset, object_key: key.to_string(), state: EntryState::Open })
            }
            ("end", Some(length), Some(entry)) => {
                if let Ok(length) = length.parse() {
                    entry.state = EntryState::Finished { length };
                }
            }
            ("drop", None, Some(entry)) => entry.state = EntryState::Dropped,
            _ => {}
        }
    }
    Ok(entries)
}

/// The index file of the lane `lane`.
pub fn index_path(lane: &Path) -> PathBuf {
    let mut name = lane.as_os_str().to_owned();
    name.push(INDEX);
    PathBuf::from(name)
}

/// Removes a lane and its index (a lane nothing waits in any more).
pub fn remove_lane(lane: &Path) {
    for path in [lane.to_path_buf(), index_path(lane)] {
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!("spool: cannot remove {}: {e}", path.display());
        }
    }
}

/// A session's spool file of one side: opened once, its recordings appended one after another (one at a
/// time), each a complete file of its own (a WAV with its header, or the provider's container) that is cut out
/// of the lane when it is stored. The index beside it says where each begins and whose it is, so a lane left
/// by a process that died is still read right (`recording::orphans`).
pub struct Lane {
    path: PathBuf,
    file: File,
    index: File,
    /// Where the next recording starts: the length of the lane.
    end: u64,
}

impl Lane {
    /// Opens a new lane in `dir` for `role`'s recordings in `session_id` of `user_id`. The directory is created
    /// only when it is missing (once per spool, not once per lane).
    pub fn create(dir: &Path, user_id: &UserId, session_id: &SessionId, role: Role) -> std::io::Result<Lane> {
        let name = format!(
            "{}+{}+{}_{}{LANE}",
            user_id.as_str(),
            session_id.as_str(),
            role.as_str(),
            uuid::Uuid::new_v4().simple()
        );
        let path = dir.join(name);
        let file = match File::create_new(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                File::create_new(&path)?
            }
            other => other?,
        };
        let index = match File::create_new(index_path(&path)) {
            Ok(index) => index,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        Ok(Lane { path, file, index, end: 0 })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Long enough to be retired ([`LANE_RETIRE_BYTES`]).
    pub fn is_full(&self) -> bool {
        self.end >= LANE_RETIRE_BYTES
    }

    /// Appends one line to the index; unsynced, like the audio (see [`Track::finish`]).
    fn note(&mut self, line: std::fmt::Arguments<'_>) -> std::io::Result<()> {
        self.index.write_all(format!("{line}\n").as_bytes())
    }
}

enum Sink {
    // Unbuffered: the session hands audio over in blocks of many frames already (`session::children`), so a
    // buffer here would only hold a second copy of a block per open recording.
    Wav(WavWriter<File>),
    Raw(File),
}

/// A recording being written at the end of a lane.
pub struct Track {
    path: PathBuf,
    index: File,
    /// Where the recording starts in the lane.
    offset: u64,
    object_key: String,
    format: TrackFormat,
    sink: Sink,
    bytes: u64,
}

/// A complete recording: `size_bytes` bytes of the lane at `path` from `offset`.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedTrack {
    pub path: PathBuf,
    pub offset: u64,
    pub object_key: String,
    pub format: TrackFormat,
    pub size_bytes: u64,
    /// `None` when the format gives no duration.
    pub duration_seconds: Option<f64>,
}

impl Track {
    /// Begins the recording to be stored under `object_key` at the end of `lane`. On failure the lane is
    /// given up (its path is the caller's to close).
    pub fn start(mut lane: Lane, object_key: &str, format: TrackFormat) -> std::io::Result<Track> {
        let offset = lane.end;
        lane.note(format_args!("begin {offset} {object_key}"))?;
        let Lane { path, file, index, .. } = lane;
        let sink = match format {
            TrackFormat::Wav(wav) => Sink::Wav(WavWriter::new(file, wav).map_err(std::io::Error::other)?),
            TrackFormat::Container { .. } => Sink::Raw(file),
        };
        Ok(Track { path, index, offset, object_key: object_key.to_string(), format, sink, bytes: 0 })
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

    /// The lane the recording is written to.
    pub fn lane_path(&self) -> &Path {
        &self.path
    }

    /// Completes the recording (patching the WAV header), notes it in the index, measures it and gives the
    /// lane back for the next. Not synced to disk one by one (that cost a disk flush per turn): a process that
    /// dies loses nothing (the written data is in the kernel), a clean stop syncs the file system
    /// ([`sync_filesystem`]), and only a crash of the machine itself can lose the last seconds of recordings
    /// not yet stored. Blocking file I/O: call it off any audio path. On failure the lane is given up.
    pub fn finish(self) -> std::io::Result<(FinishedTrack, Lane)> {
        let (file, duration_seconds) = match self.sink {
            Sink::Wav(w) => {
                let seconds = w.duration_seconds();
                (w.finish().map_err(std::io::Error::other)?, Some(seconds))
            }
            Sink::Raw(file) => {
                // Read through a window (positioned reads): the file stays at its end for the next recording.
                let window = Window::new(&file, self.offset, self.bytes);
                let seconds = crate::audio::duration_seconds(Some(self.format.content_type()), window);
                (file, seconds)
            }
        };
        let mut lane = Lane { path: self.path, file, index: self.index, end: 0 };
        lane.end = lane.file.stream_position()?;
        let size_bytes = lane.end - self.offset;
        lane.note(format_args!("end {} {size_bytes}", self.offset))?;
        let finished = FinishedTrack {
            path: lane.path.clone(),
            offset: self.offset,
            object_key: self.object_key,
            format: self.format,
            size_bytes,
            duration_seconds,
        };
        Ok((finished, lane))
    }

    /// Drops the recording: its bytes are cut off the lane, which is given back for the next (`None` when
    /// that fails: the lane is then given up).
    pub fn discard(self) -> Option<Lane> {
        let mut file = match self.sink {
            Sink::Wav(w) => w.into_inner(),
            Sink::Raw(file) => file,
        };
        let offset = self.offset;
        let cut = file.set_len(offset).and_then(|()| file.seek(SeekFrom::Start(offset)).map(drop));
        let mut lane = Lane { path: self.path, file, index: self.index, end: offset };
        match cut.and_then(|()| lane.note(format_args!("drop {offset}"))) {
            Ok(()) => Some(lane),
            Err(e) => {
                log::warn!("spool: cannot cut a discarded recording off {}: {e}", lane.path.display());
                None
            }
        }
    }
}

/// A read-only window of `len` bytes of a file from `start`, read without moving the file's own position.
pub struct Window<'a> {
    file: &'a File,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a> Window<'a> {
    pub fn new(file: &'a File, start: u64, len: u64) -> Window<'a> {
        Window { file, start, len, pos: 0 }
    }
}

impl std::io::Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        let left = self.len.saturating_sub(self.pos);
        let want = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let n = self.file.read_at(&mut buf[..want], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// Copies `len` bytes of `from` at `offset` into a new file `to` (replacing one there); returns how many it
/// copied (fewer when `from` ends first). In the kernel (`copy_file_range`), not through a buffer here.
pub fn copy_out(from: &Path, offset: u64, len: u64, to: &Path) -> std::io::Result<u64> {
    use std::io::Read as _;
    let mut source = File::open(from)?;
    source.seek(SeekFrom::Start(offset))?;
    let mut out = File::create(to)?;
    // `io::copy` of a `Take<File>` into a `File` is done by the kernel.
    std::io::copy(&mut source.take(len), &mut out)
}

/// The bytes of a recording waiting in the spool: `len` bytes of `path` from `offset`, or the whole file when
/// it has no offset (the file is the recording).
pub async fn read_recording(path: &Path, offset: Option<u64>, len: u64) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    let Some(offset) = offset else {
        return tokio::fs::read(path).await;
    };
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(SeekFrom::Start(offset)).await?;
    let mut bytes = vec![0; usize::try_from(len).map_err(std::io::Error::other)?];
    file.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// Which lanes are in use, so that a lane is removed once nothing waits in it: its recorder has closed it and
/// every recording handed on from it is stored. Shared by the recorders and the uploader (one per process).
#[derive(Debug, Default)]
pub struct SpoolLanes {
    lanes: Mutex<HashMap<PathBuf, LaneUse>>,
}

#[derive(Debug, Default)]
struct LaneUse {
    /// Its recorder still writes to it.
    open: bool,
    /// Recordings handed on from it and not stored yet.
    waiting: usize,
}

impl SpoolLanes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, LaneUse>> {
        self.lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A recorder opened `lane`.
    pub fn opened(&self, lane: &Path) {
        self.lock().insert(lane.to_path_buf(), LaneUse { open: true, waiting: 0 });
    }

    /// A recording of `lane` was handed on to be stored.
    pub fn handed(&self, lane: &Path) {
        self.lock().entry(lane.to_path_buf()).or_default().waiting += 1;
    }

    /// At start-up: `lane`, which no recorder writes to, holds `waiting` recordings still to be stored.
    pub fn kept(&self, lane: &Path, waiting: usize) {
        self.lock().insert(lane.to_path_buf(), LaneUse { open: false, waiting });
    }

    /// Its recorder is done with `lane`; removed when nothing in it waits.
    pub fn closed(&self, lane: &Path) {
        self.settle(lane, |u| u.open = false);
    }

    /// A recording of `lane` is stored; the lane is removed when it was the last one and the lane is closed.
    /// A lane this process does not know (from before a restart that did not count it) stays for the next
    /// start's scan.
    pub fn stored(&self, lane: &Path) {
        self.settle(lane, |u| u.waiting = u.waiting.saturating_sub(1));
    }

    fn settle(&self, lane: &Path, change: impl FnOnce(&mut LaneUse)) {
        let done = {
            let mut lanes = self.lock();
            let Some(entry) = lanes.get_mut(lane) else { return };
            change(entry);
            let done = !entry.open && entry.waiting == 0;
            if done {
                lanes.remove(lane);
            }
            done
        };
        if done {
            remove_lane(lane);
        }
    }

    /// Lanes known, for tests and logs.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    const SESSION: &str = "2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b";

    fn lane(dir: &Path, role: Role) -> Lane {
        Lane::create(dir, &"alice@x.org".parse().unwrap(), &SESSION.parse().unwrap(), role).unwrap()
    }

    fn key(n: u32, extension: &str) -> String {
        KEY.replace("0123456789abcdef0123456789abcdef", &format!("{n:032x}")).replace(".wav", &format!(".{extension}"))
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    fn read(done: &FinishedTrack) -> Vec<u8> {
        let file = File::open(&done.path).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut Window::new(&file, done.offset, done.size_bytes), &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn a_lane_holds_a_sides_recordings_one_after_another_each_a_complete_wav() {
        let dir = tempfile::tempdir().unwrap();
        let format = TrackFormat::microphone(InputEncoding::Linear16, 16_000).unwrap();
        let mut t = Track::start(lane(dir.path(), Role::User), &key(1, "wav"), format).unwrap();
        for _ in 0..50 {
            t.append(&[1u8; 640]).unwrap(); // 20 ms each
        }
        let (first, lane) = t.finish().unwrap();
        assert_eq!((first.offset, first.size_bytes, first.duration_seconds), (0, 44 + 32_000, Some(1.0)));
        // A dropped recording is cut off the lane: the next one starts where it did.
        let mut t = Track::start(lane, &key(2, "wav"), format).unwrap();
        t.append(&[2u8; 6400]).unwrap();
        let lane = t.discard().unwrap();
        let mut t = Track::start(lane, &key(3, "wav"), format).unwrap();
        t.append(&[3u8; 322]).unwrap();
        let (third, lane) = t.finish().unwrap();
        assert_eq!((third.offset, third.size_bytes), (44 + 32_000, 44 + 322));
        assert_eq!(third.duration_seconds, Some(322.0 / 32_000.0));
        let name = lane.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(&format!("alice@x.org+{SESSION}+user_")) && name.ends_with(LANE), "{name}");
        assert_eq!(names(dir.path()), [name.clone(), format!("{name}{INDEX}")], "one file (and its index) per lane");
        assert_eq!(std::fs::metadata(lane.path()).unwrap().len(), 44 + 32_000 + 44 + 322);
        for (done, sample, data) in [(&first, 1u8, 32_000), (&third, 3u8, 322)] {
            let wav = read(done);
            let info = crate::audio::wav::read_info(std::io::Cursor::new(&wav)).unwrap();
            assert_eq!(info.duration_seconds(), done.duration_seconds, "a complete file, sizes patched");
            assert_eq!(u32::from_le_bytes(wav[40..44].try_into().unwrap()), data, "data size");
            assert!(wav[44..44 + data as usize].iter().all(|b| *b == sample));
        }
        let index = read_index(lane.path()).unwrap();
        let states: Vec<(u64, &str, EntryState)> =
            index.iter().map(|e| (e.offset, e.object_key.as_str(), e.state)).collect();
        let (k1, k2, k3) = (key(1, "wav"), key(2, "wav"), key(3, "wav"));
        assert_eq!(
            states,
            [
                (0, k1.as_str(), EntryState::Finished { length: 44 + 32_000 }),
                (44 + 32_000, k2.as_str(), EntryState::Dropped),
                (44 + 32_000, k3.as_str(), EntryState::Finished { length: 44 + 322 }),
            ]
        );
    }

    #[test]
    fn mp3_replies_keep_their_bytes_and_durations_in_a_lane() {
        let dir = tempfile::tempdir().unwrap();
        let format = TrackFormat::assistant(&OutputFormat::ELEVENLABS_DEFAULT);
        assert_eq!((format.extension(), format.content_type()), ("mp3", "audio/mpeg"));
        let mp3 = include_bytes!("../../tests/fixtures/audio/mp3_cbr_128k_44k.mp3");
        let mut lane = lane(dir.path(), Role::Assistant);
        let mut done = Vec::new();
        for n in 0..2 {
            let mut t = Track::start(lane, &key(n, "mp3"), format).unwrap();
            for chunk in mp3.chunks(1000) {
                t.append(chunk).unwrap();
            }
            let (finished, next) = t.finish().unwrap();
            lane = next;
            done.push(finished);
        }
        for (n, d) in done.iter().enumerate() {
            assert_eq!((d.offset, d.size_bytes), (n as u64 * mp3.len() as u64, mp3.len() as u64));
            assert_eq!(read(d), mp3, "the reply's bytes as received");
            let seconds = d.duration_seconds.unwrap();
            assert!((seconds - 1.045).abs() < 0.03, "measured within its range only: {seconds}");
        }
    }

    #[test]
    fn a_recording_still_being_written_is_open_in_the_index_and_torn_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let format = TrackFormat::microphone(InputEncoding::Mulaw, 8_000).unwrap();
        let mut t = Track::start(lane(dir.path(), Role::User), &key(7, "wav"), format).unwrap();
        t.append(&[0xff; 800]).unwrap();
        let path = t.lane_path().to_path_buf();
        drop(t); // the process died here
        let mut index = std::fs::OpenOptions::new().append(true).open(index_path(&path)).unwrap();
        index.write_all(b"begin 9x\nend 12 5\nend 4").unwrap(); // lines parley did not write, a torn one
        let entries = read_index(&path).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].offset, entries[0].object_key.clone()), (0, key(7, "wav")));
        assert_eq!(entries[0].state, EntryState::Open, "a torn end line is no end");
        let TrackFormat::Wav(wav) = format else { unreachable!() };
        assert_eq!(std::fs::metadata(&path).unwrap().len(), wav.header_len() as u64 + 800);
    }

    #[test]
    fn the_spool_directory_is_made_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("a").join(SPOOL_DIR);
        let format = TrackFormat::microphone(InputEncoding::Linear16, 8_000).unwrap();
        let mut t = Track::start(lane(&spool, Role::User), KEY, format).unwrap();
        t.append(&[1u8; 160]).unwrap();
        let (done, _) = t.finish().unwrap();
        assert_eq!((done.size_bytes, done.duration_seconds), (44 + 160, Some(0.01)));
        sync_filesystem(&spool).unwrap();
        assert!(sync_filesystem(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn pcm_and_ulaw_outputs_get_wav_headers() {
        let pcm: OutputFormat = "pcm_24000".parse().unwrap();
        assert!(matches!(TrackFormat::assistant(&pcm), TrackFormat::Wav(w) if w.sample_rate() == 24_000));
        let ulaw: OutputFormat = "ulaw_8000".parse().unwrap();
        assert!(matches!(TrackFormat::assistant(&ulaw), TrackFormat::Wav(w) if w.encoding() == WavEncoding::Ulaw));
    }

    #[test]
    fn a_lane_goes_once_it_is_closed_and_all_it_handed_on_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let lanes = SpoolLanes::default();
        let path = lane(dir.path(), Role::User).path().to_path_buf();
        lanes.opened(&path);
        lanes.handed(&path);
        lanes.handed(&path);
        lanes.stored(&path);
        lanes.closed(&path);
        assert_eq!(names(dir.path()).len(), 2, "one recording still waits");
        lanes.stored(&path);
        assert!(names(dir.path()).is_empty(), "the lane and its index are gone");
        assert!(lanes.is_empty());
        // Closed with nothing waiting: gone at once. Unknown lanes are left for the next start's scan.
        let path = lane(dir.path(), Role::Assistant).path().to_path_buf();
        let other = lane(dir.path(), Role::User).path().to_path_buf();
        lanes.opened(&path);
        lanes.closed(&path);
        lanes.stored(&other);
        lanes.closed(&other);
        assert_eq!(names(dir.path()).len(), 2, "only the unknown lane is left");
        lanes.kept(&other, 1);
        lanes.stored(&other);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_window_reads_and_seeks_within_its_range_only() {
        use std::io::Read as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = File::open(&path).unwrap();
        let mut w = Window::new(&file, 3, 4);
        let mut all = String::new();
        w.read_to_string(&mut all).unwrap();
        assert_eq!(all, "3456");
        assert_eq!(w.seek(SeekFrom::End(-1)).unwrap(), 3);
        let mut one = [0u8; 4];
        assert_eq!(w.read(&mut one).unwrap(), 1);
        assert_eq!(one[0], b'6');
        assert!(w.seek(SeekFrom::Current(-5)).is_err());
    }

    #[actix::test]
    async fn a_recording_in_the_spool_is_read_whole_or_from_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_recording(&path, None, 0).await.unwrap(), b"0123456789");
        assert_eq!(read_recording(&path, Some(2), 3).await.unwrap(), b"234");
        assert!(read_recording(&path, Some(8), 3).await.is_err(), "cut short is an error, not a short file");
    }
}
