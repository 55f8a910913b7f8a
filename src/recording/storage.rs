//! Where finished recordings go, behind one interface: a directory under the data directory (the default)
//! or a Google Cloud Storage bucket. Both take a recording from the spool (a file, or its byte range of a
//! session's spool file) and put it under its object key as a file of its own;
//! both give it back for playback through parley's own `/audio_recordings/...` route, so links work whichever
//! backend holds the file.

use std::path::{Path, PathBuf};

use super::gcs::Gcs;
use crate::config::Config;

/// Facts stored with every recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingMeta {
    pub user_id: String,
    pub session_id: String,
    pub role: String,
    pub turn_id: u64,
    pub duration_seconds: Option<f64>,
    pub size_bytes: u64,
    pub content_type: String,
}

/// A failed storage operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    /// Trying again later may succeed (network, 5xx, 429, a full disk).
    pub transient: bool,
    pub message: String,
}

impl StorageError {
    pub fn transient(message: impl Into<String>) -> StorageError {
        StorageError { transient: true, message: message.into() }
    }
    pub fn permanent(message: impl Into<String>) -> StorageError {
        StorageError { transient: false, message: message.into() }
    }
}

/// The configured backend.
#[derive(Debug)]
pub enum Storage {
    /// Files under `<data dir>/<object key>`.
    Local {
        root: PathBuf,
    },
    Gcs(Gcs),
}

/// Why the storage backend could not be set up (reported at start-up).
#[derive(Debug, thiserror::Error)]
#[error("recording storage: {0}")]
pub struct StorageSetupError(pub String);

impl Storage {
    /// The backend the configuration asks for; for GCS the credentials are read and checked now.
    pub fn from_config(config: &Config) -> Result<Storage, StorageSetupError> {
        match (&config.storage.gcs_bucket, &config.storage.gcs_credentials_path) {
            (Some(bucket), Some(credentials)) => Ok(Storage::Gcs(Gcs::new(bucket, credentials)?)),
            _ => Ok(Storage::Local { root: config.database.data_dir.clone() }),
        }
    }

    /// `local` or `gcs`, as recorded in the database.
    pub fn backend(&self) -> &'static str {
        match self {
            Storage::Local { .. } => "local",
            Storage::Gcs(_) => "gcs",
        }
    }

    /// Stores the recording waiting in the spool file `file` under `key`: the whole file, or `meta.size_bytes`
    /// bytes of it from `offset` (a recording in a lane). The local backend moves a whole file, or copies the
    /// range, blocking the calling thread (call it from the storage thread); GCS uploads it (the caller deletes
    /// a whole spool file afterwards).
    pub async fn put(
        &self,
        key: &str,
        file: &Path,
        offset: Option<u64>,
        meta: &RecordingMeta,
    ) -> Result<(), StorageError> {
        match self {
            Storage::Local { root } => {
                // A rename or a copy (and a mkdir for a session's first recording), run where it is called: the
                // Uploader's storage thread, which does the spool's blocking file work, rather than a trip to
                // tokio's blocking pool and back.
                let target = root.join(key);
                let place = || match offset {
                    None => std::fs::rename(file, &target),
                    Some(offset) => copy_range(file, offset, meta.size_bytes, &target),
                };
                let moved = match place() {
                    Err(e)
                        if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory)
                            && file.exists() =>
                    {
                        let dir = target.parent().unwrap_or(Path::new("."));
                        std::fs::create_dir_all(dir)
                            .map_err(|e| {
                                // What is stored with the recording (and shown by the API) names no server path;
                                // the log does.
                                log::warn!("cannot create {}: {e}", dir.display());
                                format!("cannot create the recording's directory: {e}")
                            })
                            .and_then(|()| place().map_err(|e| format!("cannot move the recording into place: {e}")))
                    }
                    other => other.map_err(|e| format!("cannot move the recording into place: {e}")),
                };
                moved.map_err(StorageError::transient)
            }
            Storage::Gcs(gcs) => gcs.put(key, file, offset, meta).await,
        }
    }

    /// The stored bytes of `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        match self {
            Storage::Local { root } => tokio::fs::read(root.join(key))
                .await
                .map_err(|e| StorageError::permanent(format!("cannot read the recording: {e}"))),
            Storage::Gcs(gcs) => gcs.get(key).await,
        }
    }

    /// Whether a moving backend already holds `key`: an earlier `put` moved the spool file into place (a GCS
    /// upload leaves the spool file, so this is false there).
    pub async fn holds_moved(&self, key: &str) -> bool {
        match self {
            Storage::Local { root } => tokio::fs::try_exists(root.join(key)).await.unwrap_or(false),
            Storage::Gcs(_) => false,
        }
    }

    /// True when `put` consumed a whole spool file (so there is nothing left to delete).
    pub fn moves_files(&self) -> bool {
        matches!(self, Storage::Local { .. })
    }
}

/// Copies `len` bytes of `from` at `offset` to `to`, whole or not at all: written under a temporary name and
/// renamed into place, so a copy cut short (a crash, a full disk) is never taken for the stored recording.
fn copy_range(from: &Path, offset: u64, len: u64, to: &Path) -> std::io::Result<()> {
    let mut part = to.as_os_str().to_owned();
    part.push(super::spool::PARTIAL);
    let part = PathBuf::from(part);
    let copied = super::spool::copy_out(from, offset, len, &part).and_then(|n| {
        if n == len {
            return Ok(());
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the spool file holds {n} of the recording's {len} bytes"),
        ))
    });
    match copied.and_then(|()| std::fs::rename(&part, to)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}
