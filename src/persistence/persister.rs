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
use super::committer::{Commit, Committer};
use super::journal::{Journal, is_outage};
use crate::db::{
    MessageId, NewMessage, NewRecording, NewSession, Role, SessionId, Store, StoreError, TurnId, WriteDone, WriteOp,
};
use crate::metrics::Metrics;
use crate::retry::{AttemptError, Backoff, RetryPolicy};

/// Writes waiting in one session's queue beyond this are given up on (and counted).
pub const MAX_QUEUE: usize = 512;
/// How long a write that finds the queue idle waits for the rest of its turn (the recording the Recorder is
/// finishing, the link behind both) so that they are committed together, in one transaction.
pub const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// The most writes committed in one transaction.
pub const MAX_BATCH: usize = 64;
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
    /// The embedded database's group commit, which takes this Persister's batches (none: its own transactions).
    committer: Option<Addr<Committer>>,
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
            committer: None,
            metrics,
            pending,
            journal,
            messages: HashMap::new(),
            recordings: HashMap::new(),
        }
    }

    /// Hands the batches to the embedded database's group commit instead of committing each on its own.
    pub fn with_committer(mut self, committer: Option<Addr<Committer>>) -> Persister {
        self.committer = committer;
        self
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
        if !self.busy {
            // Idle: give the rest of the turn a moment to join this write's transaction.
            self.busy = true;
            ctx.run_later(BATCH_WINDOW, |this, ctx| this.write_queued(ctx));
        }
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

    /// Writes what is queued (up to [`MAX_BATCH`] writes, in one transaction), then goes on with what was
    /// queued meanwhile. Runs with `busy` set.
    fn write_queued(&mut self, ctx: &mut Context<Self>) {
        let batch: Vec<Write> = self.queue.drain(..self.queue.len().min(MAX_BATCH)).collect();
        if batch.is_empty() {
            self.busy = false;
            return;
        }
        let store = self.store.clone();
        let session = self.session_id.clone();
        let metrics = self.metrics.clone();
        let journal = self.journal.clone();
        let parent = self.parent.clone();
        let committer = self.committer.clone();
        let work = async move {
            let to = Target { store: &store, committer: committer.as_ref(), metrics: &metrics };
            let outcomes = store_or_journal_all(to, &journal, &session, &batch, parent).await;
            (batch, outcomes)
        };
        ctx.spawn(work.into_actor(self).map(|(batch, outcomes), this, ctx| {
            for (write, outcome) in batch.into_iter().zip(outcomes) {
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
                this.pending.done();
                this.metrics.persist_pending_writes.dec();
            }
            // What was queued meanwhile has waited already: on at once.
            this.write_queued(ctx);
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

/// Stores `writes` in order, in one transaction when there are several, or journals them when the database
/// cannot take them. One outcome per write, in order.
async fn store_or_journal_all(
    to: Target<'_>,
    journal: &Journal,
    session: &SessionId,
    writes: &[Write],
    parent: Recipient<Persisted>,
) -> Vec<Outcome> {
    if writes.len() > 1 && !journal.is_active() {
        let what = format!("batch of {} writes", writes.len());
        match with_retry(session, &what, to.metrics, || to.commit(session, writes)).await {
            Ok(done) => {
                return writes.iter().zip(done).map(|(w, d)| Outcome::Stored(written(session, w, d))).collect();
            }
            Err(e) if is_outage(&e) => {
                let mut outcomes = Vec::with_capacity(writes.len());
                for write in writes {
                    outcomes.push(journal_write(journal, session, write, parent.clone(), Some(&e)).await);
                }
                return outcomes;
            }
            // Nothing of the batch was kept: one by one, so that only the write refused is lost.
            Err(e) => log::warn!("session {session}: the database refused a {what} ({e}); writing them one by one"),
        }
    }
    let mut outcomes = Vec::with_capacity(writes.len());
    for write in writes {
        outcomes.push(store_or_journal(to, journal, session, write, parent.clone()).await);
    }
    outcomes
}

/// Where a Persister's writes go: the database, through the group commit when there is one.
#[derive(Clone, Copy)]
struct Target<'a> {
    store: &'a Store,
    committer: Option<&'a Addr<Committer>>,
    metrics: &'a Metrics,
}

impl Target<'_> {
    /// Commits `writes` in order, all or nothing: in the next group, or in a transaction of their own.
    async fn commit(&self, session: &SessionId, writes: &[Write]) -> Result<Vec<WriteDone>, StoreError> {
        match self.committer {
            Some(committer) => {
                super::committer::through(committer, Commit { session: session.clone(), writes: writes.to_vec() }).await
            }
            None => {
                let ops: Vec<WriteOp> = writes.iter().map(|w| op(session, w)).collect();
                let done = self.store.write_batch(&ops).await?;
                self.metrics.persist_transactions_total.inc();
                Ok(done)
            }
        }
    }
}

/// Stores `write` now, or journals it when the database cannot take it (or the journal already holds writes
/// it must follow).
async fn store_or_journal(
    to: Target<'_>,
    journal: &Journal,
    session: &SessionId,
    write: &Write,
    parent: Recipient<Persisted>,
) -> Outcome {
    if journal.is_active() {
        return journal_write(journal, session, write, parent, None).await;
    }
    let what = format!("{} write", write.kind());
    let once = || async {
        let done = to.commit(session, std::slice::from_ref(write)).await?;
        let done = done.into_iter().next().ok_or_else(|| StoreError::Corrupt("a write gave no outcome".into()))?;
        Ok::<_, StoreError>(written(session, write, done))
    };
    match with_retry(session, &what, to.metrics, once).await {
        Ok(written) => Outcome::Stored(written),
        Err(e) if is_outage(&e) => journal_write(journal, session, write, parent, Some(&e)).await,
        Err(e) => Outcome::Lost(format!("the database refused it: {e}")),
    }
}

/// Puts `write` in the journal (`why`: the database failure that sent it there, if any).
async fn journal_write(
    journal: &Journal,
    session: &SessionId,
    write: &Write,
    parent: Recipient<Persisted>,
    why: Option<&StoreError>,
) -> Outcome {
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

/// Runs `f` (a write, or a batch of them, named `what` in the log), retrying transient failures under
/// [`WRITE_RETRY`].
async fn with_retry<T, F, Fut>(session: &SessionId, what: &str, metrics: &Metrics, mut f: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let attempt = |_| {
        let run = f();
        async move { run.await.map_err(AttemptError::new) }
    };
    let on_retry = |e: &StoreError, attempt: u32, _| {
        log::warn!("session {session}: {what} failed (attempt {attempt}), retrying: {e}");
        metrics.persist_retries_total.inc();
    };
    WRITE_RETRY.run(attempt, on_retry).await.map_err(|f| f.error)
}

/// The database operation of `write`.
pub(super) fn op<'a>(session: &'a SessionId, write: &'a Write) -> WriteOp<'a> {
    match write {
        Write::CreateSession(s) => WriteOp::CreateSession(s),
        Write::Message { key, role, content, interrupted, at, reply, .. } => WriteOp::Message(NewMessage {
            session_id: session,
            role: *role,
            content,
            audio_url: None,
            created_at: *at,
            interrupted: *interrupted,
            reply: reply.as_ref(),
            write_key: Some(key),
        }),
        Write::Touch(at) => WriteOp::Touch { session, at: *at },
        Write::Recording { recording, .. } => WriteOp::Recording(recording),
        Write::Link { object_key, message_key, url } => WriteOp::Link { object_key, message_key, url },
    }
}

/// What `write` produced, from what the database did.
fn written(session: &SessionId, write: &Write, done: WriteDone) -> Written {
    match (done, write) {
        (WriteDone::Message(id), _) => Written::Message(id),
        (WriteDone::Recording(id), _) => Written::Recording(id),
        (WriteDone::Linked(false), Write::Link { object_key, .. }) => {
            log::warn!("session {session}: recording {object_key} has no stored message to link to");
            Written::Nothing
        }
        _ => Written::Nothing,
    }
}

/// Performs one write once. Every write is idempotent: repeating one that was stored stores nothing more.
pub(super) async fn write_once(store: &Store, session: &SessionId, write: &Write) -> Result<Written, StoreError> {
    store.write(&op(session, write)).await.map(|done| written(session, write, done))
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::crypto::Cipher;
    use crate::db::{NewSession, UserId};

    /// The session's side: what it heard back.
    struct Parent(Arc<Mutex<Vec<Persisted>>>);

    impl Actor for Parent {
        type Context = Context<Self>;
    }

    impl Handler<Persisted> for Parent {
        type Result = ();
        fn handle(&mut self, msg: Persisted, _: &mut Context<Self>) {
            self.0.lock().unwrap().push(msg);
        }
    }

    #[actix::test]
    async fn a_turns_writes_are_committed_together_and_a_refused_one_is_lost_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (store, session) = crate::db::embedded_for_tests(dir.path(), "alice").await;
        let metrics = Arc::new(Metrics::new().unwrap());
        let cipher = Arc::new(Cipher::new(1, &crate::config::KeyBytes([7; 32]), &[]));
        let journal = Arc::new(Journal::open(&dir.path().join("journal"), cipher, 1 << 20, metrics.clone()).unwrap());
        let pending = Arc::new(PendingWrites::default());
        let heard = Arc::new(Mutex::new(Vec::new()));
        let parent = Parent(heard.clone()).start();
        let persister = Persister::new(
            store.clone(),
            session.clone(),
            parent.recipient(),
            None,
            metrics.clone(),
            pending.clone(),
            journal,
        )
        .start();
        let transactions = || metrics.persist_transactions_total.get();
        let lost = |kind: &str| metrics.persist_writes_lost_total.with_label_values(&[kind]).get();

        // A turn: the message, then its recording as the Recorder finishes it, then (queued by the Persister)
        // their link: one transaction.
        let user_rec = crate::persistence::test_recording(&session, 1, Role::User);
        persister.do_send(Persist(Write::message(1, Role::User, "hello".into(), false, crate::db::now(), None)));
        // `send` returns once the write is queued, and so counted as pending.
        persister.send(Persist(Write::Recording { turn_id: 1, recording: user_rec.clone() })).await.unwrap();
        assert_eq!(pending.wait_idle(Duration::from_secs(10)).await, 0);
        assert_eq!(transactions(), 1, "message, recording and link in one transaction");
        let messages = store.session_messages(&session).await.unwrap();
        assert_eq!(messages.len(), 1);
        let stored = store.find_recording_by_key(&user_rec.object_key).await.unwrap().expect("the recording is stored");
        assert_eq!(stored.message_id, Some(messages[0].id.0), "linked to its message");
        let persisted = heard.lock().unwrap().clone();
        assert_eq!(persisted.len(), 1, "the session hears the message's id once it is committed");
        assert_eq!((persisted[0].turn_id, persisted[0].role, persisted[0].message_id), (1, Role::User, messages[0].id));

        // A batch holding a write the database refuses (the session as another user's): the batch is undone and
        // written one by one, so only the refused write is lost.
        let other = NewSession {
            id: session.clone(),
            user_id: "mallory".parse::<UserId>().unwrap(),
            created_at: crate::db::now(),
            model_id: "m".into(),
            voice_id: "v".into(),
            call: None,
        };
        persister.do_send(Persist(Write::message(2, Role::Assistant, "hi".into(), false, crate::db::now(), None)));
        persister.do_send(Persist(Write::CreateSession(other)));
        persister.send(Persist(Write::Touch(crate::db::now()))).await.unwrap();
        assert_eq!(pending.wait_idle(Duration::from_secs(10)).await, 0);
        assert_eq!((lost("session"), lost("message"), lost("activity")), (1, 0, 0));
        assert_eq!(transactions(), 3, "after the refused batch, the message and the touch on their own");
        let contents: Vec<String> =
            store.session_messages(&session).await.unwrap().into_iter().map(|m| m.content.unwrap()).collect();
        assert_eq!(contents, ["hello", "hi"]);
        assert_eq!(heard.lock().unwrap().len(), 2);
    }
}
