//! The spool at start-up: every file no waiting `recordings` row refers to is an orphan, left by a process that
//! stopped (kill -9, a crash, power loss) after writing audio but before its row was written. Each one is
//! dealt with, logged and counted (`parley_recordings_orphaned_total{outcome}`); none is kept or deleted
//! silently:
//!
//! - `registered`: its name says whose it is (see [`SpoolName`]) and its session is in the database, so it gets
//!   a `recordings` row held by this instance and the Uploader stores it like any other. A file still being
//!   written (`.part`) is completed first: a WAV header gets its sizes from the file's length. What the row
//!   cannot know is its turn: it is registered as turn 0, linked to no message, and shows in
//!   `GET /api/recordings` with the others.
//! - `quarantined`: whose it is cannot be established (a name parley did not give, a session that never
//!   reached the database, a session of another user, an unknown file type). It is moved to
//!   `<data dir>/spool-quarantine/` for an operator to look at.
//! - `removed`: it holds nothing worth keeping: no audio at all (the process died before any reached the disk),
//!   or a copy of a recording already stored (the process died between storing it and deleting the spool copy).
//!
//! Lanes (a session's spool file of one side, see [`super::spool::Lane`]) are read through their index first:
//! a recording in a lane with no row (and none waiting in the journal) is taken out into a file of its own,
//! named for its object key (`.part` if it was still being written), which the pass over files then treats as
//! above. A lane nothing waits in any more is removed with its index; one that still holds waiting recordings
//! is handed to [`SpoolLanes`], which removes it once the Uploader has stored them.
//!
//! A file that cannot be dealt with now (the database or the file system failed) stays where it is and is looked
//! at again on the next start. The scan runs in `startup` before the server accepts a connection, so no live
//! recorder is writing into the spool while it looks (one data directory, one running instance).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::spool::{
    EntryState, INDEX, LANE, PARTIAL, SpoolLanes, SpoolName, content_type_of, copy_out, read_index, remove_lane,
};
use crate::db::{InstanceId, NewRecording, RecordingRecord, RecordingStatus, Store};
use crate::metrics::Metrics;

/// Directory, inside the data directory, where orphans nobody can own are moved.
pub const QUARANTINE_DIR: &str = "spool-quarantine";

/// What the scan needs.
pub struct OrphanScan<'a> {
    pub spool_dir: &'a Path,
    pub quarantine_dir: &'a Path,
    pub store: &'a Store,
    /// This instance: the holder of `spool_dir`, and of the rows registered.
    pub instance: &'a InstanceId,
    /// `local` or `gcs`, recorded on registered rows.
    pub backend: &'static str,
    pub metrics: &'a Metrics,
    /// Object keys of the recordings whose rows wait in the write journal (a database outage): not orphans.
    pub journaled: &'a HashSet<String>,
    /// Told which lanes still hold recordings to be stored.
    pub lanes: &'a SpoolLanes,
}

/// What the scan did, file by file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OrphanReport {
    pub registered: usize,
    pub quarantined: usize,
    pub removed: usize,
    /// Orphans that could not be dealt with now (retried at the next start).
    pub left: usize,
}

/// What became of one orphan.
enum Fate {
    Registered { id: i64, session: String },
    Quarantined(&'static str),
    Removed(&'static str),
    Left(String),
}

impl OrphanScan<'_> {
    /// Deals with every orphan in the spool.
    pub async fn run(&self) -> OrphanReport {
        let mut report = OrphanReport::default();
        let entries = match fs::read_dir(self.spool_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return report,
            Err(e) => {
                log::error!("cannot look for orphan recordings in {}: {e}", self.spool_dir.display());
                return report;
            }
        };
        drop(entries);
        let waiting = match self.store.waiting_recordings(self.instance).await {
            Ok(rows) => rows,
            Err(e) => {
                log::error!("cannot look for orphan recordings (database: {e}); they are looked at next start");
                return report;
            }
        };
        let referenced: HashSet<String> = waiting
            .iter()
            .filter(|r| r.spool_offset.is_none())
            .filter_map(|r| r.spool_path.as_deref().and_then(file_name))
            .collect();
        // Lanes first: what they hold without a row becomes files of their own, which the pass below takes.
        for path in self.listed(|name| name.ends_with(LANE)) {
            self.lane(&path, &waiting, &mut report).await;
        }
        for path in self.listed(|name| !name.ends_with(LANE)) {
            let Some(name) = file_name(&path.to_string_lossy()) else { continue };
            if referenced.contains(&name) {
                continue; // waiting in its row (the Uploader's)
            }
            if SpoolName::parse(&name).is_some_and(|s| self.journaled.contains(&s.object_key)) {
                continue; // waiting in the journal (registered by its replay)
            }
            if let Some(lane) = name.strip_suffix(INDEX).filter(|lane| lane.ends_with(LANE)) {
                if !self.spool_dir.join(lane).exists() {
                    // Its lane was removed and the process stopped before the index went too.
                    let fate = Fate::Removed("the index of a lane no longer there");
                    self.record(&path, &name, fate, &mut report);
                }
                continue;
            }
            if !path.is_file() {
                log::warn!("spool: {} is not a file parley writes; left where it is", path.display());
                report.left += 1;
                continue;
            }
            let fate = self.orphan(&path, &name).await;
            self.record(&path, &name, fate, &mut report);
        }
        if report != OrphanReport::default() {
            log::info!(
                "orphan recordings in the spool: {} registered, {} quarantined, {} removed, {} left for the next start",
                report.registered,
                report.quarantined,
                report.removed,
                report.left
            );
        }
        report
    }

    /// The entries of the spool whose names `pick` takes, in name order.
    fn listed(&self, pick: impl Fn(&str) -> bool) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = fs::read_dir(self.spool_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| pick(&n.to_string_lossy())))
            .collect();
        paths.sort();
        paths
    }

    /// Reads the lane at `path` through its index: each recording with no row and not in the journal is taken
    /// out into a file of its own; the lane is removed when nothing in it waits to be stored any more, and
    /// otherwise handed to [`SpoolLanes`].
    async fn lane(&self, path: &Path, waiting: &[RecordingRecord], report: &mut OrphanReport) {
        let name = file_name(&path.to_string_lossy()).unwrap_or_default();
        let entries = match read_index(path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                report.left += 1;
                return log::error!("spool: cannot read the index of {name} ({e}); looked at again next start");
            }
        };
        let length = match fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) => {
                report.left += 1;
                return log::error!("spool: cannot read {name} ({e}); looked at again next start");
            }
        };
        if entries.is_empty() && length > 0 {
            // Audio with no index saying whose it is (it was lost): an operator's to look at.
            let fate = Fate::Quarantined("its index is missing");
            return self.record(path, &name, fate, report);
        }
        let waits: HashSet<&str> =
            waiting.iter().filter(|r| r.spool_offset.is_some()).map(|r| r.object_key.as_str()).collect();
        let mut holds = 0;
        for entry in &entries {
            let len = match entry.state {
                EntryState::Dropped => continue,
                EntryState::Finished { length } => length,
                EntryState::Open => length.saturating_sub(entry.offset),
            };
            if waits.contains(entry.object_key.as_str()) || self.journaled.contains(&entry.object_key) {
                holds += 1; // stored by the Uploader, now or once the journal's replay registers it
                continue;
            }
            match self.store.find_recording_by_key(&entry.object_key).await {
                Ok(Some(_)) => continue, // stored, or registered from a file of its own
                Ok(None) => {}
                Err(e) => {
                    holds += 1;
                    report.left += 1;
                    log::error!("spool: {} in {name} cannot be looked up ({e}); next start", entry.object_key);
                    continue;
                }
            }
            let partial = matches!(entry.state, EntryState::Open);
            let to = self.spool_dir.join(format!(
                "{}{}",
                SpoolName::for_key(&entry.object_key),
                if partial { PARTIAL } else { "" }
            ));
            if let Err(e) = copy_out(path, entry.offset, len, &to) {
                holds += 1;
                report.left += 1;
                log::error!("spool: {} cannot be taken out of {name} ({e}); next start", entry.object_key);
                continue;
            }
            log::info!("spool: {} had no row; taken out of {name} to be looked at as an orphan", entry.object_key);
        }
        if holds == 0 {
            remove_lane(path);
        } else {
            self.lanes.kept(path, holds);
        }
    }

    fn record(&self, path: &Path, name: &str, fate: Fate, report: &mut OrphanReport) {
        let count = |outcome: &str| self.metrics.recordings_orphaned_total.with_label_values(&[outcome]).inc();
        match fate {
            Fate::Registered { id, session } => {
                count("registered");
                report.registered += 1;
                log::info!("spool: orphan {name} of session {session} registered as recording {id} (turn 0)");
            }
            Fate::Quarantined(why) => match self.quarantine(path, name) {
                Ok(to) => {
                    count("quarantined");
                    report.quarantined += 1;
                    log::warn!("spool: orphan {name} quarantined to {} ({why})", to.display());
                }
                Err(e) => {
                    report.left += 1;
                    log::error!("spool: orphan {name} ({why}) cannot be quarantined: {e}; left where it is");
                }
            },
            Fate::Removed(why) => match fs::remove_file(path) {
                Ok(()) => {
                    count("removed");
                    report.removed += 1;
                    log::info!("spool: orphan {name} removed ({why})");
                }
                Err(e) => {
                    report.left += 1;
                    log::error!("spool: orphan {name} ({why}) cannot be removed: {e}; left where it is");
                }
            },
            Fate::Left(why) => {
                report.left += 1;
                log::error!("spool: orphan {name} cannot be dealt with now ({why}); looked at again next start");
            }
        }
    }

    /// Decides what becomes of the orphan at `path`, registering it when it can be.
    async fn orphan(&self, path: &Path, name: &str) -> Fate {
        let Some(spool) = SpoolName::parse(name) else {
            return Fate::Quarantined("its name does not say whose recording it is");
        };
        match self.store.find_recording_by_key(&spool.object_key).await {
            Err(e) => return Fate::Left(format!("database: {e}")),
            Ok(Some(r)) if r.status == RecordingStatus::Uploaded => {
                return Fate::Removed("a copy of a recording already stored");
            }
            Ok(Some(_)) => return Fate::Quarantined("another file is waiting under its object key"),
            Ok(None) => {}
        }
        match self.store.find_session(&spool.session_id).await {
            Err(e) => return Fate::Left(format!("database: {e}")),
            Ok(None) => return Fate::Quarantined("its session is not in the database"),
            Ok(Some(s)) if s.user_id != spool.user_id.as_str() => {
                return Fate::Quarantined("its session belongs to another user");
            }
            Ok(Some(_)) => {}
        }
        let Some(content_type) = content_type_of(&spool.extension) else {
            return Fate::Quarantined("not a file type parley records");
        };
        if spool.partial
            && spool.extension == "wav"
            && let Err(e) = patch_wav(path)
        {
            return Fate::Left(format!("cannot patch its WAV header: {e}"));
        }
        let duration_seconds = crate::audio::file_duration_seconds(Some(content_type), path);
        let wav_without_audio = spool.extension == "wav" && duration_seconds.is_none_or(|d| d <= 0.0);
        if fs::metadata(path).is_ok_and(|m| m.len() == 0) || wav_without_audio {
            return Fate::Removed("it holds no audio");
        }
        let path = match complete(path, &spool) {
            Ok(Some(done)) => done,
            Ok(None) => return Fate::Quarantined("a complete file of the same name is already there"),
            Err(e) => return Fate::Left(format!("cannot complete the file: {e}")),
        };
        let metadata = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => return Fate::Left(format!("cannot read the file: {e}")),
        };
        let recording = NewRecording {
            session_id: spool.session_id.clone(),
            role: spool.role,
            turn_id: 0,
            object_key: spool.object_key,
            content_type: content_type.to_string(),
            size_bytes: metadata.len(),
            duration_seconds,
            backend: self.backend,
            spool_path: path.to_string_lossy().into_owned(),
            spool_offset: None,
            created_at: metadata.modified().map(DateTime::<Utc>::from).unwrap_or_else(|_| crate::db::now()),
            instance_id: self.instance.clone(),
        };
        match self.store.insert_recording(&recording).await {
            Ok(id) => Fate::Registered { id, session: spool.session_id.to_string() },
            Err(e) => Fate::Left(format!("database: {e}")),
        }
    }

    /// Moves `path` into the quarantine directory; returns where it went.
    fn quarantine(&self, path: &Path, name: &str) -> std::io::Result<PathBuf> {
        fs::create_dir_all(self.quarantine_dir)?;
        let to = self.quarantine_dir.join(name);
        fs::rename(path, &to)?;
        Ok(to)
    }
}

/// Gives a WAV file its recorder never finished the sizes its length says.
fn patch_wav(path: &Path) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new().read(true).write(true).open(path)?;
    if crate::audio::wav::repair(&mut file)? {
        log::info!("spool: the WAV header of {} was patched from its length", path.display());
    }
    Ok(())
}

/// Drops the `.part` of a file its recorder never finished. Returns the complete file, or `None` when one of
/// that name already exists (the partial one is then not renamed over it).
fn complete(path: &Path, spool: &SpoolName) -> std::io::Result<Option<PathBuf>> {
    if !spool.partial {
        return Ok(Some(path.to_path_buf()));
    }
    let done = path.with_file_name(SpoolName::for_key(&spool.object_key));
    if done.exists() {
        return Ok(None);
    }
    fs::rename(path, &done)?;
    Ok(Some(done))
}

/// The last component of a path, as text.
pub(crate) fn file_name(path: &str) -> Option<String> {
    Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests;
