//! The Persister actor: writes a session's history (the session row, each message, last activity, the rows of
//! its recordings and the links between them) to the database in the order the session produced it, off the
//! audio path.
//!
//! Parent: the session (`session::client_socket`), which sends [`Persist`] and hears back [`Persisted`]
//! (through a `Recipient`) once a message has its id; the session's `Recorder` sends it finished recordings.
//! Because every write goes through this one ordered queue, a recording is never written before its session,
//! and a message and its recording are linked (`messages.audio_url`) whichever is stored first; each stored
//! recording is announced as [`RecordingStored`] to an injected recipient (the uploader). It runs on the
//! storage arbiter, not the connection's worker, so a shutdown that stops the workers still lets it finish:
//! writes are retried under [`WRITE_RETRY`] when the failure is transient, the queue is bounded, and a write
//! that is finally given up on is logged with the session id and counted (`parley_persist_writes_lost_total`),
//! never dropped silently. The actor stops by itself once its parent is gone and its queue is empty.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::PendingWrites;
use crate::db::{MessageId, NewMessage, NewRecording, NewSession, Role, SessionId, Store, StoreError, TurnId};
use crate::metrics::Metrics;
use crate::retry::{AttemptError, Backoff, RetryPolicy};

/// Writes waiting in one session's queue beyond this are given up on (and counted).
pub const MAX_QUEUE: usize = 512;
/// How many turns back a message and its recording may still be paired.
const PAIRING_WINDOW: TurnId = 8;
/// How a write is retried before it is given up on.
pub const WRITE_RETRY: RetryPolicy = RetryPolicy {
    backoff: Backoff { first: Duration::from_millis(100), max: Duration::from_secs(2) },
    max_attempts: Some(6),
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
    /// Stores a message of a turn; assistant replies carry their [`ReplyFacts`].
    Message {
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
    /// Points a message at its stored recording.
    Link { recording_id: i64, message_id: MessageId, url: String },
}

impl Write {
    fn kind(&self) -> &'static str {
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
enum Written {
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
    /// Stored messages and recordings by turn and role, to link each pair once both exist.
    messages: HashMap<(TurnId, Role), MessageId>,
    recordings: HashMap<(TurnId, Role), (i64, String)>,
}

impl Persister {
    pub fn new(
        store: Store,
        session_id: SessionId,
        parent: Recipient<Persisted>,
        uploader: Option<Recipient<RecordingStored>>,
        metrics: Arc<Metrics>,
        pending: Arc<PendingWrites>,
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
            messages: HashMap::new(),
            recordings: HashMap::new(),
        }
    }

    fn enqueue(&mut self, write: Write, ctx: &mut Context<Self>) {
        if self.queue.len() >= MAX_QUEUE {
            self.lost(&write, &format!("the write queue is full ({MAX_QUEUE} waiting)"));
            return;
        }
        self.pending.add();
        self.metrics.persist_pending_writes.inc();
        self.queue.push_back(write);
        self.pump(ctx);
    }

    /// After a message or recording of `slot` is stored: link the pair when both are there.
    fn link_if_paired(&mut self, slot: (TurnId, Role), ctx: &mut Context<Self>) {
        if self.messages.contains_key(&slot) && self.recordings.contains_key(&slot) {
            if let (Some(message_id), Some((recording_id, key))) =
                (self.messages.remove(&slot), self.recordings.remove(&slot))
            {
                let link = Write::Link { recording_id, message_id, url: super::playback_url(&key) };
                self.enqueue(link, ctx);
            }
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
        let work = async move {
            let result = write_with_retry(&store, &session, &write, &metrics).await;
            (write, result)
        };
        ctx.spawn(work.into_actor(self).map(|(write, result), this, ctx| {
            match (result, write) {
                (Ok(Written::Message(message_id)), Write::Message { turn_id, role, .. }) => {
                    // The parent may be gone (session over); the write itself is done.
                    this.parent.do_send(Persisted { turn_id, role, message_id });
                    this.messages.insert((turn_id, role), message_id);
                    this.link_if_paired((turn_id, role), ctx);
                }
                (Ok(Written::Recording(id)), Write::Recording { turn_id, recording }) => {
                    if let Some(uploader) = &this.uploader {
                        uploader.do_send(RecordingStored(id));
                    }
                    let slot = (turn_id, recording.role);
                    this.recordings.insert(slot, (id, recording.object_key));
                    this.link_if_paired(slot, ctx);
                }
                (Ok(_), _) => {}
                (Err(e), write) => this.lost(&write, &e.to_string()),
            }
            this.busy = false;
            this.pending.done();
            this.metrics.persist_pending_writes.dec();
            this.pump(ctx);
        }));
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

async fn write_once(store: &Store, session: &SessionId, write: &Write) -> Result<Written, StoreError> {
    match write {
        Write::CreateSession(s) => store.create_session(s).await.map(|()| Written::Nothing),
        Write::Message { role, content, interrupted, at, reply, .. } => store
            .insert_message(&NewMessage {
                session_id: session,
                role: *role,
                content,
                audio_url: None,
                created_at: *at,
                interrupted: *interrupted,
                reply: reply.as_ref(),
            })
            .await
            .map(Written::Message),
        Write::Touch(at) => store.touch_session(session, *at).await.map(|_| Written::Nothing),
        Write::Recording { recording, .. } => store.insert_recording(recording).await.map(Written::Recording),
        Write::Link { recording_id, message_id, url } => {
            store.link_recording(*recording_id, *message_id, url).await.map(|()| Written::Nothing)
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
