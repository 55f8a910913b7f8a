//! The [`Journal`]: where history goes when the database cannot take it, so that a database outage loses
//! nothing.
//!
//! A write that fails because the database is unreachable (or any write made while earlier ones are still
//! waiting here) is appended to `<data dir>/journal/journal.log`: one record per write, each sealed with the
//! store's cipher (history is encrypted at rest here as in the database) and framed by its length. Appends
//! are made durable in batches (one `fdatasync` covers every record written before it started); an append
//! returns only once its record is on disk. The log is bounded (`PARLEY_JOURNAL_MAX_BYTES`): a write that
//! does not fit is refused, logged loudly and counted in `parley_persist_writes_lost_total`, the only way a
//! write is ever lost.
//!
//! A replayer drains the journal in order (the session row before its messages, messages before the links
//! to their recordings), retrying while the database is down. Every write is idempotent (sessions by id,
//! messages by their write key, recordings by object key, links by both keys), so a record replayed twice,
//! or one whose first attempt reached the database after all, is stored once. While anything waits here
//! every new write queues behind it (journal mode), which keeps each session's writes in order. A message's
//! `messageSaved` still waits for its row: the session hears [`Persisted`] when the replay stores it, and the
//! uploader hears of a replayed recording. At start-up the journal left by the last run (a crash or an
//! outage at shutdown) is read back and replayed; a torn last record (the process died while writing it) is
//! cut off, as it was never acknowledged.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use super::persister::{Write, Written, write_once};
use super::{Persisted, RecordingStored};
use crate::crypto::Cipher;
use crate::db::{InstanceId, NewRecording, NewSession, ReplyRecord, Role, SessionId, Store, StoreError, TurnId};
use crate::metrics::Metrics;

/// The cipher context every record is sealed under.
const SEAL_CONTEXT: &str = "parley.journal.v1";
/// A record's length prefix (big-endian u32).
const FRAME: usize = 4;
/// The longest record read back (a write is a few KiB; anything larger is a corrupt length).
const MAX_RECORD: usize = 16 << 20;
/// Attempts at one record, while the database answers pings, before it is taken as one the database will
/// never accept (and set aside, so it cannot block the writes behind it).
const POISON_ATTEMPTS: u32 = 8;
/// The replay's wait between attempts while the database is down.
const REPLAY_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Why a write could not be journaled.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the journal is full ({0} bytes)")]
    Full(u64),
    #[error("the journal cannot be written: {0}")]
    Io(#[from] std::io::Error),
    #[error("the write cannot be sealed: {0}")]
    Seal(String),
}

/// One journaled write, as stored (version 1 of the format).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Entry {
    Session {
        session: NewSession,
    },
    #[serde(rename_all = "camelCase")]
    Message {
        session: SessionId,
        key: String,
        turn_id: TurnId,
        role: Role,
        content: String,
        interrupted: bool,
        at: DateTime<Utc>,
        reply: Option<ReplyRecord>,
    },
    Touch {
        session: SessionId,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    Recording {
        session: SessionId,
        turn_id: TurnId,
        role: Role,
        object_key: String,
        content_type: String,
        size_bytes: u64,
        duration_seconds: Option<f64>,
        backend: String,
        spool_path: String,
        /// Where the recording starts in `spool_path` (absent in journals from before spool offsets).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spool_offset: Option<u64>,
        created_at: DateTime<Utc>,
        /// The instance whose spool holds the file (the one that journaled it).
        instance_id: InstanceId,
    },
    #[serde(rename_all = "camelCase")]
    Link {
        session: SessionId,
        object_key: String,
        message_key: String,
        url: String,
    },
}

impl Entry {
    fn from_write(session: &SessionId, write: &Write) -> Entry {
        let session = session.clone();
        match write.clone() {
            Write::CreateSession(s) => Entry::Session { session: s },
            Write::Message { key, turn_id, role, content, interrupted, at, reply } => {
                Entry::Message { session, key, turn_id, role, content, interrupted, at, reply }
            }
            Write::Touch(at) => Entry::Touch { session, at },
            Write::Recording { turn_id, recording: r } => Entry::Recording {
                session,
                turn_id,
                role: r.role,
                object_key: r.object_key,
                content_type: r.content_type,
                size_bytes: r.size_bytes,
                duration_seconds: r.duration_seconds,
                backend: r.backend.to_string(),
                spool_path: r.spool_path,
                spool_offset: r.spool_offset,
                created_at: r.created_at,
                instance_id: r.instance_id,
            },
            Write::Link { object_key, message_key, url } => Entry::Link { session, object_key, message_key, url },
        }
    }

    fn into_write(self) -> Result<(SessionId, Write), String> {
        Ok(match self {
            Entry::Session { session } => (session.id.clone(), Write::CreateSession(session)),
            Entry::Message { session, key, turn_id, role, content, interrupted, at, reply } => {
                (session, Write::Message { key, turn_id, role, content, interrupted, at, reply })
            }
            Entry::Touch { session, at } => (session, Write::Touch(at)),
            Entry::Recording {
                session,
                turn_id,
                role,
                object_key,
                content_type,
                size_bytes,
                duration_seconds,
                backend,
                spool_path,
                spool_offset,
                created_at,
                instance_id,
            } => {
                let backend = match backend.as_str() {
                    "local" => "local",
                    "gcs" => "gcs",
                    other => return Err(format!("unknown recording backend {other:?}")),
                };
                let recording = NewRecording {
                    session_id: session.clone(),
                    role,
                    turn_id,
                    object_key,
                    content_type,
                    size_bytes,
                    duration_seconds,
                    backend,
                    spool_path,
                    spool_offset,
                    created_at,
                    instance_id,
                };
                (session, Write::Recording { turn_id, recording })
            }
            Entry::Link { session, object_key, message_key, url } => {
                (session, Write::Link { object_key, message_key, url })
            }
        })
    }
}

/// A journaled write waiting for the database.
#[derive(Debug, Clone)]
struct Queued {
    session: SessionId,
    write: Write,
    /// Where its record ends in the log.
    end: u64,
}

/// Who hears that a journaled message reached the database.
struct Waiter {
    parent: Recipient<Persisted>,
    turn_id: TurnId,
    role: Role,
}

struct State {
    log: File,
    /// Length of the log.
    bytes: u64,
    /// Records appended (the last one's sequence number).
    appended: u64,
    queue: VecDeque<Queued>,
    waiters: HashMap<String, Waiter>,
}

/// The process's journal (one per data directory).
pub struct Journal {
    dir: PathBuf,
    cipher: Arc<Cipher>,
    max_bytes: u64,
    metrics: Arc<Metrics>,
    /// Something waits here: new writes queue behind it.
    active: AtomicBool,
    state: Mutex<State>,
    /// The last record known to be on disk.
    synced: watch::Sender<u64>,
    sync_wanted: Notify,
    replay_wanted: Notify,
    uploader: Mutex<Option<Recipient<RecordingStored>>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens (or creates) the journal in `dir` and reads back what the last run left in it.
    pub fn open(dir: &Path, cipher: Arc<Cipher>, max_bytes: u64, metrics: Arc<Metrics>) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("journal.log");
        let mut log = OpenOptions::new().create(true).read(true).append(true).open(&path)?;
        let mut raw = Vec::new();
        log.seek(std::io::SeekFrom::Start(0))?;
        log.read_to_end(&mut raw)?;
        let (records, good) = read_records(&raw);
        if good < raw.len() as u64 {
            log::warn!(
                "journal: {} byte(s) of an unfinished last record cut off (the process stopped while writing it)",
                raw.len() as u64 - good
            );
            log.set_len(good)?;
            log.sync_all()?;
        }
        let mut queue = VecDeque::new();
        for (record, end) in records {
            match open_record(&cipher, record) {
                Ok((session, write)) => queue.push_back(Queued { session, write, end }),
                Err(e) => {
                    log::error!("journal: a record at byte {end} cannot be read back ({e}); it is skipped");
                    metrics.persist_writes_lost_total.with_label_values(&["journal"]).inc();
                }
            }
        }
        if !queue.is_empty() {
            log::warn!("journal: {} write(s) from the last run wait for the database; replaying them", queue.len());
        }
        metrics.journal_bytes.set(good as i64);
        metrics.journal_pending_writes.set(queue.len() as i64);
        let active = AtomicBool::new(!queue.is_empty());
        Ok(Journal {
            dir: dir.to_path_buf(),
            cipher,
            max_bytes,
            metrics,
            active,
            state: Mutex::new(State { log, bytes: good, appended: 0, queue, waiters: HashMap::new() }),
            synced: watch::Sender::new(0),
            sync_wanted: Notify::new(),
            replay_wanted: Notify::new(),
            uploader: Mutex::new(None),
        })
    }

    /// Starts the syncer and the replayer on the current runtime; replayed recordings are announced to
    /// `uploader`.
    pub fn start(self: &Arc<Self>, store: Store, uploader: Option<Recipient<RecordingStored>>) {
        *self.uploader.lock().unwrap_or_else(|e| e.into_inner()) = uploader;
        let me = self.clone();
        actix::spawn(async move { me.sync_loop().await });
        let me = self.clone();
        actix::spawn(async move { me.replay_loop(store).await });
        self.replay_wanted.notify_one();
    }

    /// True while writes wait here: a new write must queue behind them.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// The object keys of the recordings whose rows wait here (they are not orphans).
    pub fn recording_keys(&self) -> std::collections::HashSet<String> {
        self.lock()
            .queue
            .iter()
            .filter_map(|q| match &q.write {
                Write::Recording { recording, .. } => Some(recording.object_key.clone()),
                _ => None,
            })
            .collect()
    }

    /// Writes waiting for the database.
    pub fn pending(&self) -> usize {
        self.lock().queue.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a write and returns once it is on disk. `parent` hears [`Persisted`] when a journaled
    /// message reaches the database.
    pub async fn append(
        &self,
        session: &SessionId,
        write: &Write,
        parent: Option<Recipient<Persisted>>,
    ) -> Result<(), JournalError> {
        let json =
            serde_json::to_vec(&Entry::from_write(session, write)).map_err(|e| JournalError::Seal(e.to_string()))?;
        let sealed = self.cipher.seal(&json, SEAL_CONTEXT).map_err(|e| JournalError::Seal(e.to_string()))?;
        let mut record = Vec::with_capacity(FRAME + sealed.len());
        record.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
        record.extend_from_slice(&sealed);
        let seq = {
            let mut state = self.lock();
            let size = state.bytes + record.len() as u64;
            if size > self.max_bytes {
                return Err(JournalError::Full(self.max_bytes));
            }
            if let Err(e) = state.log.write_all(&record) {
                // Never leave half a record for the next one to follow.
                let _ = state.log.set_len(state.bytes);
                return Err(e.into());
            }
            state.bytes = size;
            state.appended += 1;
            if let (Write::Message { key, turn_id, role, .. }, Some(parent)) = (write, parent) {
                state.waiters.insert(key.clone(), Waiter { parent, turn_id: *turn_id, role: *role });
            }
            state.queue.push_back(Queued { session: session.clone(), write: write.clone(), end: size });
            self.active.store(true, Ordering::SeqCst);
            self.metrics.journal_bytes.set(size as i64);
            self.metrics.journal_pending_writes.set(state.queue.len() as i64);
            state.appended
        };
        self.metrics.journal_writes_total.with_label_values(&["appended"]).inc();
        self.sync_wanted.notify_one();
        self.replay_wanted.notify_one();
        let mut synced = self.synced.subscribe();
        // The syncer never stops while the journal exists; an error here means the process is ending.
        let _ = synced.wait_for(|done| *done >= seq).await;
        Ok(())
    }

    /// Makes appended records durable, many at a time.
    async fn sync_loop(self: Arc<Self>) {
        loop {
            self.sync_wanted.notified().await;
            let (upto, file) = {
                let state = self.lock();
                (state.appended, state.log.try_clone())
            };
            match file {
                Ok(file) => {
                    let synced = tokio::task::spawn_blocking(move || file.sync_data()).await;
                    if let Ok(Err(e)) | Err(e) = synced.map_err(std::io::Error::other) {
                        // The records are written (the page cache has them) and stay queued for replay.
                        log::error!("journal: fdatasync failed: {e}; journaled writes may not survive a power loss");
                    }
                }
                Err(e) => log::error!("journal: cannot sync the log: {e}"),
            }
            self.synced.send_replace(upto);
        }
    }

    /// Replays queued writes in order, for as long as the process runs.
    async fn replay_loop(self: Arc<Self>, store: Store) {
        let mut attempts = 0u32;
        loop {
            let front = self.lock().queue.front().cloned();
            let Some(item) = front else {
                self.replay_wanted.notified().await;
                continue;
            };
            match write_once(&store, &item.session, &item.write).await {
                Ok(written) => {
                    attempts = 0;
                    self.replayed(&item, Some(written));
                }
                Err(e) if !is_outage(&e) => {
                    attempts = 0;
                    log::error!(
                        "journal: session {}: the database refused a journaled {} write: {e}; it is set aside",
                        item.session,
                        item.write.kind()
                    );
                    self.metrics.persist_writes_lost_total.with_label_values(&[item.write.kind()]).inc();
                    self.replayed(&item, None);
                }
                Err(e) => {
                    attempts += 1;
                    if attempts >= POISON_ATTEMPTS && store.ping().await.is_ok() {
                        log::error!(
                            "journal: session {}: a journaled {} write keeps failing while the database is up ({e}); \
                             it is set aside",
                            item.session,
                            item.write.kind()
                        );
                        self.metrics.persist_writes_lost_total.with_label_values(&[item.write.kind()]).inc();
                        attempts = 0;
                        self.replayed(&item, None);
                        continue;
                    }
                    if attempts == 1 {
                        log::warn!(
                            "journal: the database is still unavailable ({e}); {} write(s) wait",
                            self.pending()
                        );
                    }
                    let wait =
                        (Duration::from_millis(250) * 2u32.saturating_pow(attempts.min(8))).min(REPLAY_BACKOFF_MAX);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// The front write is done (stored, or set aside): tell whoever waits for it, and empty the log once
    /// nothing is left.
    fn replayed(&self, item: &Queued, written: Option<Written>) {
        let mut state = self.lock();
        state.queue.pop_front();
        if written.is_some() {
            self.metrics.journal_writes_total.with_label_values(&["replayed"]).inc();
        }
        match (&item.write, written) {
            (Write::Message { key, .. }, Some(Written::Message(message_id))) => {
                if let Some(w) = state.waiters.remove(key) {
                    w.parent.do_send(Persisted { turn_id: w.turn_id, role: w.role, message_id });
                }
            }
            (Write::Message { key, .. }, None) => {
                state.waiters.remove(key);
            }
            (Write::Recording { .. }, Some(Written::Recording(id))) => {
                if let Some(uploader) = self.uploader.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    uploader.do_send(RecordingStored(id));
                }
            }
            _ => {}
        }
        self.metrics.journal_pending_writes.set(state.queue.len() as i64);
        if state.queue.is_empty() {
            // Everything is in the database: start the log afresh. Appends take the same lock, so none is
            // lost between the check and the truncation.
            match state.log.set_len(0).and_then(|()| state.log.sync_all()) {
                Ok(()) => {
                    log::info!("journal: every journaled write is in the database");
                    state.bytes = 0;
                    self.metrics.journal_bytes.set(0);
                    self.active.store(false, Ordering::SeqCst);
                }
                Err(e) => {
                    // Replaying the same records again later is harmless (every write is idempotent); stay in
                    // journal mode so order holds.
                    log::error!("journal: cannot empty the log after replaying it: {e}");
                }
            }
        } else if item.end > 0 && state.queue.len().is_multiple_of(256) {
            log::info!("journal: replaying, {} write(s) left", state.queue.len());
        }
    }
}

/// True when a failed write may succeed once the database is back (it is unreachable, restarting, out of
/// connections...), as opposed to one the database refuses (a constraint, a value it cannot store).
pub fn is_outage(e: &StoreError) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    match e {
        StoreError::Unavailable(_) => true,
        StoreError::Query(E::DatabaseError(kind, _)) => !matches!(
            kind,
            K::UniqueViolation | K::CheckViolation | K::NotNullViolation | K::RestrictViolation | K::ExclusionViolation
        ),
        StoreError::Query(E::BrokenTransactionManager | E::AlreadyInTransaction | E::RollbackErrorOnCommit { .. }) => {
            true
        }
        StoreError::Query(_) | StoreError::Crypto(_) | StoreError::Migration(_) | StoreError::Corrupt(_) => false,
    }
}

/// The complete records in `raw` (with where each ends) and the length of the good prefix.
fn read_records(raw: &[u8]) -> (Vec<(&[u8], u64)>, u64) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while raw.len() - at >= FRAME {
        let len = u32::from_be_bytes(raw[at..at + FRAME].try_into().unwrap_or_default()) as usize;
        if len == 0 || len > MAX_RECORD || raw.len() - at - FRAME < len {
            break;
        }
        let end = at + FRAME + len;
        out.push((&raw[at + FRAME..end], end as u64));
        at = end;
    }
    (out, at as u64)
}

fn open_record(cipher: &Cipher, sealed: &[u8]) -> Result<(SessionId, Write), String> {
    let json = cipher.open(sealed, SEAL_CONTEXT).map_err(|e| e.to_string())?;
    let entry: Entry = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
    entry.into_write()
}

#[cfg(test)]
mod tests;
