//! Group commit for the embedded database: the sessions' Persisters hand their batches to one Committer, which
//! commits whatever has gathered in [`GROUP_WINDOW`] in one transaction ([`Store::write_groups`]).
//!
//! SQLite has one writer and every Persister already runs on the storage thread, so the sessions' transactions
//! queued one behind the other anyway; each paid its own `BEGIN`/`COMMIT`, its own locks on the WAL index, and
//! wrote its own copy of the pages every session touches (the last leaf of `messages`, of `recordings`, of their
//! indexes) to the WAL. Grouped, a busy server writes those pages once a group instead of once a session.
//!
//! Each batch is a savepoint of its own, so the outcome of a batch is exactly what it was alone: a batch the
//! database refuses is undone alone and its Persister writes it again one by one (only the refused write is
//! lost), the other batches of the group are kept; when the database is out, nothing of the group is kept and
//! every Persister retries and journals its own writes, in its own order, as before.
//!
//! The Uploader's "stored" marks ([`MarkUploaded`]) join the groups too: two a turn, as many as the sessions'
//! own transactions were before.
//!
//! Only for the embedded database: PostgreSQL keeps its pool (a session's batch is one transaction on a
//! connection of its own), so one slow transaction there never holds up the others.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use chrono::{DateTime, Utc};

use super::persister::{Write, op};
use crate::db::{SessionId, Store, StoreError, WriteDone, WriteOp};
use crate::metrics::Metrics;
use std::sync::Arc;

/// How long the first batch of a group waits for others to join it.
pub const GROUP_WINDOW: Duration = Duration::from_millis(10);
/// The most writes committed in one group (a longer queue goes on in the next group, at once).
pub const MAX_GROUP_WRITES: usize = 1024;

/// One session's batch, committed with whatever else is waiting; answers what the batch alone would have.
#[derive(Message)]
#[rtype(result = "Result<Vec<WriteDone>, StoreError>")]
pub struct Commit {
    pub session: SessionId,
    pub writes: Vec<Write>,
}

/// A recording is stored at `url` ([`crate::db::Store::recording_uploaded`]), committed with the next group.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct MarkUploaded {
    pub id: i64,
    pub url: String,
    pub at: DateTime<Utc>,
}

/// What a group holds.
enum Entry {
    Batch(Commit),
    Uploaded(MarkUploaded),
}

impl Entry {
    fn len(&self) -> usize {
        match self {
            Entry::Batch(c) => c.writes.len(),
            Entry::Uploaded(_) => 1,
        }
    }

    fn ops(&self) -> Vec<WriteOp<'_>> {
        match self {
            Entry::Batch(c) => c.writes.iter().map(|w| op(&c.session, w)).collect(),
            Entry::Uploaded(u) => vec![WriteOp::Uploaded { id: u.id, url: &u.url, at: u.at }],
        }
    }
}

type Waiting = (Entry, oneshot::Sender<Result<Vec<WriteDone>, StoreError>>);

/// The process-wide group committer (one, on the storage arbiter).
pub struct Committer {
    store: Store,
    metrics: Arc<Metrics>,
    waiting: Vec<Waiting>,
    /// A group is being gathered or committed: what arrives meanwhile goes in the next.
    busy: bool,
}

impl Committer {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> Committer {
        Committer { store, metrics, waiting: Vec::new(), busy: false }
    }

    /// Commits what is waiting (up to [`MAX_GROUP_WRITES`] writes, whole batches) as one group, then goes on
    /// with what arrived meanwhile, at once (it has waited already). Runs with `busy` set.
    fn commit_waiting(&mut self, ctx: &mut Context<Self>) {
        let mut take = 0;
        let mut writes = 0;
        for (entry, _) in &self.waiting {
            if take > 0 && writes + entry.len() > MAX_GROUP_WRITES {
                break;
            }
            writes += entry.len();
            take += 1;
        }
        let group: Vec<Waiting> = self.waiting.drain(..take).collect();
        if group.is_empty() {
            self.busy = false;
            return;
        }
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        let work = async move {
            let batches: Vec<Vec<_>> = group.iter().map(|(entry, _)| entry.ops()).collect();
            let results = store.write_groups(&batches).await;
            drop(batches);
            if results.iter().any(Result::is_ok) {
                metrics.persist_transactions_total.inc();
            }
            for ((_, reply), result) in group.into_iter().zip(results) {
                // The Persister may have stopped waiting (its actor is gone); the outcome is in the database.
                let _ = reply.send(result);
            }
        };
        ctx.spawn(work.into_actor(self).map(|(), this, ctx| this.commit_waiting(ctx)));
    }
}

/// Sends `msg` to `committer` and waits for its outcome; a committer that is gone counts as the database
/// being out (the caller retries, then journals).
pub async fn through<M, T>(committer: &Addr<Committer>, msg: M) -> Result<T, StoreError>
where
    M: Message<Result = Result<T, StoreError>> + Send + 'static,
    T: Send + 'static,
    Committer: Handler<M>,
{
    committer.send(msg).await.unwrap_or_else(|e| Err(StoreError::Unavailable(format!("the group commit is gone: {e}"))))
}

impl Actor for Committer {
    type Context = Context<Self>;
}

impl Handler<Commit> for Committer {
    type Result = ResponseFuture<Result<Vec<WriteDone>, StoreError>>;

    fn handle(&mut self, msg: Commit, ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(self.join(Entry::Batch(msg), ctx))
    }
}

impl Handler<MarkUploaded> for Committer {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: MarkUploaded, ctx: &mut Context<Self>) -> Self::Result {
        let done = self.join(Entry::Uploaded(msg), ctx);
        Box::pin(async move { done.await.map(|_| ()) })
    }
}

impl Committer {
    /// Adds `entry` to the group being gathered (starting one if none is); resolves with its outcome.
    fn join(
        &mut self,
        entry: Entry,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<Vec<WriteDone>, StoreError>> + 'static {
        let (reply, answer) = oneshot::channel();
        self.waiting.push((entry, reply));
        if !self.busy {
            self.busy = true;
            ctx.run_later(GROUP_WINDOW, |this, ctx| this.commit_waiting(ctx));
        }
        async move { answer.await.unwrap_or_else(|_| Err(StoreError::Unavailable("the group commit stopped".into()))) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{NewSession, Role, UserId};

    fn message(key: &str, turn_id: u64, content: &str) -> Write {
        let Write::Message { turn_id, role, content, interrupted, at, reply, .. } =
            Write::message(turn_id, Role::User, content.into(), false, crate::db::now(), None)
        else {
            unreachable!()
        };
        Write::Message { key: key.into(), turn_id, role, content, interrupted, at, reply }
    }

    fn session_row(id: &SessionId, user: &str) -> NewSession {
        NewSession {
            id: id.clone(),
            user_id: user.parse::<UserId>().unwrap(),
            created_at: crate::db::now(),
            model_id: "m".into(),
            voice_id: "v".into(),
            call: None,
        }
    }

    #[actix::test]
    async fn sessions_batches_share_one_transaction_and_a_refused_one_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (store, alice) = crate::db::embedded_for_tests(dir.path(), "alice").await;
        let bob = SessionId::generate();
        store.create_session(&session_row(&bob, "bob")).await.unwrap();
        let metrics = Arc::new(Metrics::new().unwrap());
        let committer = Committer::new(store.clone(), metrics.clone()).start();
        let transactions = || metrics.persist_transactions_total.get();
        let contents = |session: SessionId| {
            let store = store.clone();
            async move {
                let messages = store.session_messages(&session).await.unwrap();
                messages.into_iter().map(|m| m.content.unwrap()).collect::<Vec<String>>()
            }
        };

        // Two sessions' batches sent together: one group, one transaction, each batch answered for itself.
        let a = committer.send(Commit {
            session: alice.clone(),
            writes: vec![message("a1", 1, "hello"), Write::Touch(crate::db::now())],
        });
        let b = committer.send(Commit { session: bob.clone(), writes: vec![message("b1", 1, "hi")] });
        let (a, b) = futures_util::future::join(a, b).await;
        let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
        assert!(matches!(a[..], [WriteDone::Message(_), WriteDone::Touched(true)]), "{a:?}");
        assert!(matches!(b[..], [WriteDone::Message(_)]), "{b:?}");
        assert_eq!(transactions(), 1, "both batches in one transaction");
        assert_eq!(contents(alice.clone()).await, ["hello"]);
        assert_eq!(contents(bob.clone()).await, ["hi"]);

        // In the next group Alice's batch holds a write the database refuses (her session as Mallory's): her
        // batch is undone alone (its message too), Bob's is kept.
        let a = committer.send(Commit {
            session: alice.clone(),
            writes: vec![message("a2", 2, "lost with its batch"), Write::CreateSession(session_row(&alice, "mallory"))],
        });
        let b = committer.send(Commit { session: bob.clone(), writes: vec![message("b2", 2, "kept")] });
        let (a, b) = futures_util::future::join(a, b).await;
        let error = a.unwrap().expect_err("the refused batch fails");
        assert!(!crate::persistence::journal::is_outage(&error), "a refusal, not an outage: {error}");
        assert!(matches!(b.unwrap().unwrap()[..], [WriteDone::Message(_)]));
        assert_eq!(transactions(), 2);
        assert_eq!(contents(alice.clone()).await, ["hello"], "nothing of the refused batch is kept");
        assert_eq!(contents(bob.clone()).await, ["hi", "kept"]);

        // The same message again (its key already stored) is stored once: a group may be repeated safely.
        let again = committer.send(Commit { session: bob.clone(), writes: vec![message("b2", 2, "kept")] }).await;
        assert!(matches!(again.unwrap().unwrap()[..], [WriteDone::Message(_)]));
        assert_eq!(contents(bob.clone()).await, ["hi", "kept"]);

        // The uploader's mark joins a group like a batch: the recording is stored and its message links to it.
        let kept = store.session_messages(&bob).await.unwrap().pop().unwrap();
        let recording = crate::persistence::test_recording(&bob, 2, Role::User);
        let id = store.insert_recording(&recording).await.unwrap();
        store.link_recording(id, kept.id, "/pending").await.unwrap();
        let url = format!("/{}", recording.object_key);
        let mark = committer.send(MarkUploaded { id, url: url.clone(), at: crate::db::now() });
        let batch = committer.send(Commit { session: bob.clone(), writes: vec![Write::Touch(crate::db::now())] });
        let (mark, batch) = futures_util::future::join(mark, batch).await;
        mark.unwrap().unwrap();
        batch.unwrap().unwrap();
        assert_eq!(transactions(), 4, "the mark and the batch in one transaction");
        let stored = store.find_recording(id).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.spool_path), (crate::db::RecordingStatus::Uploaded, None));
        let message = store.session_messages(&bob).await.unwrap().pop().unwrap();
        assert_eq!(message.audio_url.map(Result::unwrap), Some(url));
    }
}
