//! The Uploader: stores finished recordings in the background, one process-wide actor on the storage arbiter.
//!
//! Sessions' persisters announce each registered recording ([`RecordingStored`], through a `Recipient`); the
//! uploader puts it into storage (cut out of its session's spool file), a few at a time, and then marks the row
//! uploaded (which links the message's `audio_url`) and tells [`SpoolLanes`], which removes a spool file once
//! everything in it is stored. A transient failure (storage down, throttled, disk full) is retried under
//! [`UPLOAD_RETRY`] for as long as it takes, the file waiting on local disk; a permanent one (refused
//! credentials, a missing spool file) marks the row failed. Either way it is logged and counted
//! (`parley_recording_uploads_total{outcome}`, `parley_recordings_pending`); nothing is dropped silently, and a
//! failure to record a failure in the database is logged too. On start it picks up every recording the last
//! run left waiting.
//!
//! It handles only the recordings whose spool file its own instance holds (`recordings.instance_id`, or rows
//! from before instances were recorded): another instance sharing the database keeps its files in a spool this
//! one cannot see, so it must neither store nor fail them.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::spool::SpoolLanes;
use super::storage::{RecordingMeta, Storage, StorageError};
use crate::db::{InstanceId, RecordingRecord, RecordingStatus, Store};
use crate::metrics::Metrics;
use crate::persistence::{Committer, MarkUploaded, RecordingStored, committer};
use crate::retry::{Backoff, RetryPolicy};

/// Uploads running at once.
pub const PARALLEL_UPLOADS: usize = 4;
/// Storage being down is retried for as long as it takes: no attempt limit, no deadline, backoff to a minute.
pub const UPLOAD_RETRY: RetryPolicy = RetryPolicy {
    backoff: Backoff { first: Duration::from_millis(500), max: Duration::from_secs(60) },
    max_attempts: None,
    deadline: None,
    max_retry_after: Duration::ZERO,
};

/// Queue every recording of this instance left waiting (sent once at start-up); answers how many were queued
/// once they are.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ResumeWaiting;

/// The process-wide uploader.
pub struct Uploader {
    store: Store,
    storage: Arc<Storage>,
    metrics: Arc<Metrics>,
    instance: InstanceId,
    /// The embedded database's group commit, which takes the "stored" marks (none: a transaction each).
    committer: Option<Addr<Committer>>,
    /// The lanes in use: told when a recording cut out of one is stored.
    lanes: Arc<SpoolLanes>,
    queue: VecDeque<i64>,
    running: usize,
    /// Recordings queued, being stored or waiting to be retried: one announced again meanwhile (a repeated
    /// write, the journal and a resume both naming it) is not stored twice at once.
    known: HashSet<i64>,
}

impl Uploader {
    pub fn new(store: Store, storage: Arc<Storage>, metrics: Arc<Metrics>, instance: InstanceId) -> Uploader {
        Uploader {
            store,
            storage,
            metrics,
            instance,
            committer: None,
            lanes: Arc::default(),
            queue: VecDeque::new(),
            running: 0,
            known: HashSet::new(),
        }
    }

    /// Marks recordings stored through the embedded database's group commit.
    pub fn with_committer(mut self, committer: Option<Addr<Committer>>) -> Uploader {
        self.committer = committer;
        self
    }

    /// Tells `lanes` when a recording cut out of a lane is stored (so the lane goes once all of it is).
    pub fn with_lanes(mut self, lanes: Arc<SpoolLanes>) -> Uploader {
        self.lanes = lanes;
        self
    }

    fn enqueue(&mut self, id: i64, ctx: &mut Context<Self>) {
        if !self.known.insert(id) {
            log::debug!("recording {id}: announced again while already on its way; not queued twice");
            return;
        }
        self.metrics.recordings_pending.inc();
        self.queue.push_back(id);
        self.pump(ctx);
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        while self.running < PARALLEL_UPLOADS {
            let Some(id) = self.queue.pop_front() else {
                return;
            };
            self.running += 1;
            let to = Marks { store: self.store.clone(), committer: self.committer.clone() };
            let (storage, instance) = (self.storage.clone(), self.instance.clone());
            ctx.spawn(upload(to, storage, instance, id).into_actor(self).map(move |outcome, this, ctx| {
                this.running -= 1;
                this.finished(id, outcome, ctx);
                this.pump(ctx);
            }));
        }
    }

    fn finished(&mut self, id: i64, outcome: Outcome, ctx: &mut Context<Self>) {
        if !matches!(outcome, Outcome::Retry { .. }) {
            self.known.remove(&id);
        }
        let count = |o: &str| self.metrics.recording_uploads_total.with_label_values(&[o]).inc();
        match outcome {
            Outcome::Stored { lane } => {
                count("uploaded");
                self.metrics.recordings_pending.dec();
                if let Some(lane) = lane {
                    self.lanes.stored(&lane);
                }
            }
            Outcome::Gone => {
                count("uploaded");
                self.metrics.recordings_pending.dec();
            }
            Outcome::Elsewhere(owner) => {
                // Not an upload attempt: nothing is counted but the queue it leaves.
                self.metrics.recordings_pending.dec();
                log::warn!("recording {id}: its spool file is held by instance {owner}; left to it");
            }
            Outcome::Retry { attempts, error } => {
                count("retried");
                let delay =
                    UPLOAD_RETRY.next_delay(attempts, Duration::ZERO, true, None).unwrap_or(UPLOAD_RETRY.backoff.max);
                log::warn!("recording {id}: storing failed (attempt {attempts}): {error}; retrying in {delay:?}");
                // Still pending: the gauge keeps counting it while it waits.
                ctx.run_later(delay, move |this, ctx| {
                    this.queue.push_back(id);
                    this.pump(ctx);
                });
            }
            Outcome::Failed(error) => {
                count("failed");
                self.metrics.recordings_pending.dec();
                log::error!(
                    "recording {id}: cannot be stored: {error}; it stays in the spool and is retried at the next start"
                );
            }
        }
    }
}

enum Outcome {
    /// Stored now; `lane` is the lane it was cut out of, if it was.
    Stored {
        lane: Option<PathBuf>,
    },
    /// Already stored, or the row no longer exists (its session was deleted).
    Gone,
    /// Another instance holds the file (named): not this uploader's to store or to fail.
    Elsewhere(String),
    Retry {
        attempts: u32,
        error: String,
    },
    Failed(String),
}

/// Where a recording is marked stored: the database, through the group commit when there is one.
struct Marks {
    store: Store,
    committer: Option<Addr<Committer>>,
}

impl Marks {
    async fn uploaded(&self, id: i64, url: &str) -> Result<(), crate::db::StoreError> {
        let at = crate::db::now();
        match &self.committer {
            Some(committer) => committer::through(committer, MarkUploaded { id, url: url.to_string(), at }).await,
            None => self.store.recording_uploaded(id, url, at).await,
        }
    }
}

async fn upload(to: Marks, storage: Arc<Storage>, instance: InstanceId, id: i64) -> Outcome {
    let store = &to.store;
    let record = match store.find_recording(id).await {
        Ok(Some(r)) if r.status == RecordingStatus::Uploaded => return Outcome::Gone,
        Ok(Some(r)) if !instance.holds(r.instance_id.as_deref()) => {
            return Outcome::Elsewhere(r.instance_id.unwrap_or_default());
        }
        Ok(Some(r)) => r,
        Ok(None) => return Outcome::Gone,
        Err(e) => return Outcome::Retry { attempts: 1, error: format!("database: {e}") },
    };
    let Some(spool) = record.spool_path.clone().map(PathBuf::from) else {
        return failed(store, id, "no spool file recorded".into()).await;
    };
    if !spool.exists() {
        if storage.holds_moved(&record.object_key).await {
            // An earlier attempt moved the file into place but could not mark the row (the database was down):
            // only the row is left to do.
            let url = super::playback_url(&record.object_key);
            return match to.uploaded(id, &url).await {
                Ok(()) => Outcome::Stored { lane: None },
                Err(e) => Outcome::Retry { attempts: record.attempts as u32 + 1, error: format!("database: {e}") },
            };
        }
        log::warn!("recording {id}: spool file {} is missing", spool.display());
        return failed(store, id, "its spool file is missing".into()).await;
    }
    match storage.put(&record.object_key, &spool, record.spool_offset, &meta(&record)).await {
        Ok(()) => {
            let url = super::playback_url(&record.object_key);
            if let Err(e) = to.uploaded(id, &url).await {
                // Stored, but the row still says pending: the next attempt finds the object and says so again.
                return Outcome::Retry { attempts: record.attempts as u32 + 1, error: format!("database: {e}") };
            }
            if record.spool_offset.is_some() {
                // Cut out of a lane, which goes once all of it is stored.
                return Outcome::Stored { lane: Some(spool) };
            }
            if !storage.moves_files()
                && let Err(e) = tokio::fs::remove_file(&spool).await
            {
                // Stored and linked; only disk space is lost until someone cleans the spool.
                log::warn!("recording {id}: stored, but its spool file {} stays: {e}", spool.display());
            }
            Outcome::Stored { lane: None }
        }
        Err(StorageError { transient: true, message }) => {
            note_attempt(store, id, &message, false).await;
            Outcome::Retry { attempts: record.attempts as u32 + 1, error: message }
        }
        Err(StorageError { transient: false, message }) => failed(store, id, message).await,
    }
}

/// Marks the row failed (it is retried at the next start) and reports the failure.
async fn failed(store: &Store, id: i64, message: String) -> Outcome {
    note_attempt(store, id, &message, true).await;
    Outcome::Failed(message)
}

/// Records a failed attempt on the row; if even that fails, the log says so (the upload outcome is counted
/// either way).
async fn note_attempt(store: &Store, id: i64, message: &str, permanent: bool) {
    if let Err(e) = store.recording_attempt_failed(id, message, permanent).await {
        log::warn!("recording {id}: the failed attempt ({message}) could not be recorded in the database: {e}");
    }
}

fn meta(r: &RecordingRecord) -> RecordingMeta {
    RecordingMeta {
        user_id: r.user_id.clone(),
        session_id: r.session_id.clone(),
        role: r.role.as_str().to_string(),
        turn_id: r.turn_id as u64,
        duration_seconds: r.duration_seconds,
        size_bytes: r.size_bytes as u64,
        content_type: r.content_type.clone(),
    }
}

impl Actor for Uploader {
    type Context = Context<Self>;
}

impl Handler<RecordingStored> for Uploader {
    type Result = ();

    fn handle(&mut self, msg: RecordingStored, ctx: &mut Context<Self>) {
        self.enqueue(msg.0, ctx);
    }
}

impl Handler<ResumeWaiting> for Uploader {
    /// Atomic: nothing else is handled until the waiting rows are queued, so none is queued twice.
    type Result = AtomicResponse<Self, usize>;

    fn handle(&mut self, _: ResumeWaiting, _: &mut Context<Self>) -> Self::Result {
        let (store, instance) = (self.store.clone(), self.instance.clone());
        AtomicResponse::new(Box::pin(async move { store.waiting_recordings(&instance).await }.into_actor(self).map(
            |result, this, ctx| match result {
                Ok(waiting) => {
                    if !waiting.is_empty() {
                        log::info!("{} recording(s) from an earlier run are waiting to be stored", waiting.len());
                    }
                    let queued = waiting.len();
                    for r in waiting {
                        this.enqueue(r.id, ctx);
                    }
                    queued
                }
                Err(e) => {
                    log::error!("cannot list recordings waiting to be stored: {e}");
                    0
                }
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{NewRecording, Role};

    #[actix::test]
    async fn a_recording_announced_twice_is_stored_once() {
        stored_once(false).await;
    }

    #[actix::test]
    async fn a_recording_is_marked_stored_through_the_group_commit() {
        stored_once(true).await;
    }

    async fn stored_once(group_commit: bool) {
        let dir = tempfile::tempdir().unwrap();
        let (store, session) = crate::db::embedded_for_tests(dir.path(), "alice").await;
        let instance = InstanceId::generate();
        let spool = dir.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let key = super::super::object_key("alice", session.as_str(), Role::User, "wav", crate::db::now());
        let file = spool.join(super::super::spool::SpoolName::for_key(&key));
        std::fs::write(&file, b"RIFF....WAVE").unwrap();
        let id = store
            .insert_recording(&NewRecording {
                session_id: session.clone(),
                role: Role::User,
                turn_id: 1,
                object_key: key.clone(),
                content_type: "audio/wav".into(),
                size_bytes: 12,
                duration_seconds: Some(0.0),
                backend: "local",
                spool_path: file.to_string_lossy().into_owned(),
                spool_offset: None,
                created_at: crate::db::now(),
                instance_id: instance.clone(),
            })
            .await
            .unwrap();
        let metrics = Arc::new(Metrics::new().unwrap());
        let storage = Arc::new(Storage::Local { root: dir.path().to_path_buf() });
        let committer = group_commit.then(|| Committer::new(store.clone(), metrics.clone()).start());
        let uploader =
            Uploader::new(store.clone(), storage, metrics.clone(), instance).with_committer(committer).start();
        uploader.do_send(RecordingStored(id));
        uploader.do_send(RecordingStored(id));
        let count = |outcome: &str| metrics.recording_uploads_total.with_label_values(&[outcome]).get();
        // Every announcement counts as pending until its upload ends: pending back at 0 means every upload
        // that was started (one, or two without the fix) has finished.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while (count("uploaded") == 0 || metrics.recordings_pending.get() != 0) && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!((count("uploaded"), count("retried"), count("failed")), (1, 0, 0));
        assert_eq!(metrics.recordings_pending.get(), 0);
        assert!(dir.path().join(&key).exists(), "stored in place");
        assert_eq!(store.find_recording(id).await.unwrap().unwrap().status, RecordingStatus::Uploaded);
        let transactions = metrics.persist_transactions_total.get();
        assert_eq!(transactions, u64::from(group_commit), "the mark is a group of its own when grouped");
    }
}
