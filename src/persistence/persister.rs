//! The Persister actor: writes a session's history (the session row, each message, last activity, the rows of
//! its recordings and the links between them) to the database in the order the session produced it, off the
//! audio path.
//!
//! Parent: the session (`session::client_socket`), which sends [`Persist`] and hears back [`Persisted`]
//! (through a `Recipient`) once a message has its id; the session's `Recorder` sends it finished recordings.
//! Every write goes through this one ordered queue, and every write is idempotent: each message gets a write
//! key when it is queued, and a message and its recording are linked by their keys (a `Link` queued behind
//! both), so a write may be repeated safely. Each stored recording is announced as [`RecordingStored`] to an
//! injected recipient (the uploader). It runs on the storage arbiter, not the connection's worker, so a
//! shutdown that stops the workers still lets it finish.
//!
//! A write the database cannot take (it is unreachable, restarting) goes to the [`Journal`] after a short
//! retry ([`WRITE_RETRY`]), and while the journal holds anything every write goes there, behind it, so
//! order holds; the journal replays them when the database is back. A write is lost (logged with the
//! session id and counted in `parley_persist_writes_lost_total`) only when the database refuses it or the
//! journal cannot take it. The actor stops by itself once its parent is gone and its queue is empty.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::PendingWrites;
use super::journal::{Journal, is_outage};
use crate::db::{MessageId, NewMessage, NewRecording, NewSession, Role, SessionId, Store, StoreError, TurnId};
use crate::metrics::Metrics;
use crate::retry::{AttemptError, Backoff, RetryPolicy};

/// Writes waiting in one session's queue beyond this are given up on (and counted).
pub const MAX_QUEUE: usize = 512;
/// How many turns back a message and its recording may still be paired.
const PAIRING_WINDOW: TurnId = 8;
/// How a write is retried before it goes to the journal (a blip, such as a connection recycled under it, is
/// over by then; an outage is not).
pub const WRITE_RETRY: RetryPolicy = RetryPolicy {
    backoff: Backoff { first: Duration::from_millis(100), max: Duration::from_millis(400) },
    max_attempts: Some(3),
    deadline: None,
    max_retry_after: Duration::ZERO,
};

/// What is known of an assistant reply beyond its stored `content` (which is what the listener heard).
pub type ReplyFacts = crate::db::ReplyRecord;

/// One write.
#[derive(Debug, Clone)]
pub enum Write {
    /// Creates the session row (first write of a new session).
    CreateSession(NewSession),
    /// Stores a message of a turn; assistant replies carry their [`ReplyFacts`]. `key` is set by the
    /// Persister when the write is queued (any value given is replaced).
    Message {
        key: String,
        turn_id: TurnId,
        role: Role,
        content: String,
        interrupted: bool,
        at: DateTime<Utc>,
        reply: Option<ReplyFacts>,
    },
    /// Records activity without a message (e.g. a resumed session reconnecting).
    Touch(DateTime<Utc>),
    /// Registers a finished recording of a turn.
    Recording { turn_id: TurnId, recording: NewRecording },
    /// Points a message (by its write key) at its recording (by its object key).
    Link { object_key: String, message_key: String, url: String },
}

impl Write {
    /// A stored message of `turn_id`; the Persister gives it its key.
    pub fn message(
        turn_id: TurnId,
        role: Role,
        content: String,
        interrupted: bool,
        at: DateTime<Utc>,
        reply: Option<ReplyFacts>,
    ) -> Write {
        Write::Message { key: String::new(), turn_id, role, content, interrupted, at, reply }
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            Write::CreateSession(_) => "session",
            Write::Message { .. } => "message",
            Write::Touch(_) => "activity",
            Write::Recording { .. } => "recording",
            Write::Link { .. } => "link",
        }
    }
}

/// Queue a write.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Persist(pub Write);

/// A message was stored (reported to the parent).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Persisted {
    pub turn_id: TurnId,
    pub role: Role,
    pub message_id: MessageId,
}

/// A recording row was stored (reported to the injected recipient, the uploader, which stores its file).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct RecordingStored(pub i64);

/// What a write produced.
pub(super) enum Written {
    Nothing,
    Message(MessageId),
    Recording(i64),
}

/// Writes one session's history in order.
pub struct Persister {
    store: Store,
    session_id: SessionId,
    queue: VecDeque<Write>,
    busy: bool,
    parent: Recipient<Persisted>,
    uploader: Option<Recipient<RecordingStored>>,
    metrics: Arc<Metrics>,
    pending: Arc<PendingWrites>,
    journal: Arc<Journal>,
    /// Queued messages (their write keys) and recordings (their object keys) by turn and role, to link each
    /// pair once both are queued.
    messages: HashMap<(TurnId, Role), String>,
    recordings: HashMap<(TurnId, Role), String>,
}

impl Persister {
    pub fn new(
        store: Store,
        session_id: SessionId,
        parent: Recipient<Persisted>,
        uploader: Option<Recipient<RecordingStored>>,
        metrics: Arc<Metrics>,
        pending: Arc<PendingWrites>,
        journal: Arc<Journal>,
    ) -> Persister {
        Persister {
            store,
            session_id,
            queue: VecDeque::new(),
            busy: false,
            parent,
            uploader,
            metrics,
            pending,
            journal,
            messages: HashMap::new(),
            recordings: HashMap::new(),
        }
    }

    fn enqueue(&mut self, mut write: Write, ctx: &mut Context<Self>) {
        if self.queue.len() >= MAX_QUEUE {
            self.lost(&write, &format!("the write queue is full ({MAX_QUEUE} waiting)"));
            return;
        }
        // Keys first, so the write can be repeated and linked before anything is stored.
        let slot = match &mut write {
            Write::Message { key, turn_id, role, .. } => {
                *key = uuid::Uuid::new_v4().simple().to_string();
                self.messages.insert((*turn_id, *role), key.clone());
                Some((*turn_id, *role))
            }
            Write::Recording { turn_id, recording } => {
                self.recordings.insert((*turn_id, recording.role), recording.object_key.clone());
                Some((*turn_id, recording.role))
            }
            _ => None,
        };
        self.pending.add();
        self.metrics.persist_pending_writes.inc();
        self.queue.push_back(write);
        if let Some(slot) = slot {
            self.link_if_paired(slot, ctx);
        }
        self.pump(ctx);
    }

    /// After a message or recording of `slot` is queued: queue their link when both are (behind both).
    fn link_if_paired(&mut self, slot: (TurnId, Role), ctx: &mut Context<Self>) {
        if self.messages.contains_key(&slot)
            && self.recordings.contains_key(&slot)
            && let (Some(message_key), Some(object_key)) = (self.messages.remove(&slot), self.recordings.remove(&slot))
        {
            let url = super::playback_url(&object_key);
            self.enqueue(Write::Link { object_key, message_key, url }, ctx);
        }
        // A message without a recording (a typed turn, a reply with no audio) is never paired: forget turns well
        // behind the newest, so a long session does not accumulate them.
        if let Some(newest) = self.messages.keys().chain(self.recordings.keys()).map(|(t, _)| *t).max() {
            let keep = |(t, _): &(TurnId, Role)| *t + PAIRING_WINDOW >= newest;
            self.messages.retain(|k, _| keep(k));
            self.recordings.retain(|k, _| keep(k));
        }
    }

    fn lost(&self, write: &Write, why: &str) {
        log::error!("session {}: {} write lost: {why}", self.session_id, write.kind());
        self.metrics.persist_writes_lost_total.with_label_values(&[write.kind()]).inc();
    }

    /// Starts the next write if none is running.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        let Some(write) = self.queue.pop_front() else {
            return;
        };
        self.busy = true;
        let store = self.store.clone();
        let session = self.session_id.clone();
        let metrics = self.metrics.clone();
        let journal = self.journal.clone();
        let parent = self.parent.clone();
        let work = async move {
            let outcome = store_or_journal(&store, &journal, &session, &write, parent, &metrics).await;
            (write, outcome)
        };
        ctx.spawn(work.into_actor(self).map(|(write, outcome), this, ctx| {
            match (outcome, write) {
                (Outcome::Stored(Written::Message(message_id)), Write::Message { turn_id, role, .. }) => {
                    // The parent may be gone (session over); the write itself is done.
                    this.parent.do_send(Persisted { turn_id, role, message_id });
                }
                (Outcome::Stored(Written::Recording(id)), Write::Recording { .. }) => {
                    if let Some(uploader) = &this.uploader {
                        uploader.do_send(RecordingStored(id));
                    }
                }
                (Outcome::Stored(_) | Outcome::Journaled, _) => {}
                (Outcome::Lost(why), write) => this.lost(&write, &why),
            }
            this.busy = false;
            this.pending.done();
            this.metrics.persist_pending_writes.dec();
            this.pump(ctx);
        }));
    }
}

/// Where a write ended up.
enum Outcome {
    Stored(Written),
    /// In the journal, on disk: it reaches the database when the database is back.
    Journaled,
    Lost(String),
}

/// Stores `write` now, or journals it when the database cannot take it (or the journal already holds writes
/// it must follow).
async fn store_or_journal(
    store: &Store,
    journal: &Journal,
    session: &SessionId,
    write: &Write,
    parent: Recipient<Persisted>,
    metrics: &Metrics,
) -> Outcome {
    let why = if journal.is_active() {
        None
    } else {
        match write_with_retry(store, session, write, metrics).await {
            Ok(written) => return Outcome::Stored(written),
            Err(e) if is_outage(&e) => Some(e),
            Err(e) => return Outcome::Lost(format!("the database refused it: {e}")),
        }
    };
    match journal.append(session, write, Some(parent)).await {
        Ok(()) => {
            if let Some(e) = why {
                log::warn!("session {session}: {} write journaled, the database is unavailable: {e}", write.kind());
            }
            Outcome::Journaled
        }
        Err(e) => Outcome::Lost(format!("{e} (and the database is unavailable)")),
    }
}

/// Performs one write, retrying transient failures under [`WRITE_RETRY`].
async fn write_with_retry(
    store: &Store,
    session: &SessionId,
    write: &Write,
    metrics: &Metrics,
) -> Result<Written, StoreError> {
    let attempt = |_| async { write_once(store, session, write).await.map_err(AttemptError::new) };
    let on_retry = |e: &StoreError, attempt: u32, _| {
        log::warn!("session {session}: {} write failed (attempt {attempt}), retrying: {e}", write.kind());
        metrics.persist_retries_total.inc();
    };
    WRITE_RETRY.run(attempt, on_retry).await.map_err(|f| f.error)
}

/// Performs one write once. Every write is idempotent: repeating one that was stored stores nothing more.
pub(super) async fn write_once(store: &Store, session: &SessionId, write: &Write) -> Result<Written, StoreError> {
    match write {
        Write::CreateSession(s) => store.create_session(s).await.map(|()| Written::Nothing),
        Write::Message { key, role, content, interrupted, at, reply, .. } => store
            .insert_message(&NewMessage {
                session_id: session,
                role: *role,
                content,
                audio_url: None,
                created_at: *at,
                interrupted: *interrupted,
                reply: reply.as_ref(),
                write_key: Some(key),
            })
            .await
            .map(Written::Message),
        Write::Touch(at) => store.touch_session(session, *at).await.map(|_| Written::Nothing),
        Write::Recording { recording, .. } => store.insert_recording(recording).await.map(Written::Recording),
        Write::Link { object_key, message_key, url } => {
            let linked = store.link_recording_by_keys(object_key, message_key, url).await?;
            if !linked {
                log::warn!("session {session}: recording {object_key} has no stored message to link to");
            }
            Ok(Written::Nothing)
        }
    }
}

impl Actor for Persister {
    type Context = Context<Self>;

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        // Addresses are gone but writes remain: keep going until the queue is empty.
        if self.busy || !self.queue.is_empty() { Running::Continue } else { Running::Stop }
    }
}

impl Handler<Persist> for Persister {
    type Result = ();

    fn handle(&mut self, msg: Persist, ctx: &mut Context<Self>) {
        self.enqueue(msg.0, ctx);
    }
}
