//! Several of a session's writes in one transaction: what a Persister has queued (a turn's message, its
//! recording and the link between them) is committed at once instead of one transaction each. On SQLite that is
//! one commit (one WAL append and lock round) instead of several; on PostgreSQL one commit round trip.
//!
//! A batch is all or nothing: if any write fails, nothing of the batch is kept and the error is returned, so the
//! caller can tell an outage (retry, journal) from a refused write (write them one by one, so only the refused
//! one is lost).
//!
//! Several sessions' batches can share one transaction too ([`Store::write_groups`], the embedded database's
//! group commit): each batch in a savepoint of its own, so a batch the database refuses is undone alone and
//! the others are kept.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, TransactionManager};

use super::{
    MessageId, NewMessage, NewRecording, NewSession, SessionId, Store, StoreError, WriteConn, on_write_conn,
    with_write_conn,
};

/// One write, as a batch takes it.
#[derive(Debug, Clone)]
pub enum WriteOp<'a> {
    /// [`Store::create_session`].
    CreateSession(&'a NewSession),
    /// [`Store::insert_message`].
    Message(NewMessage<'a>),
    /// [`Store::touch_session`].
    Touch { session: &'a SessionId, at: DateTime<Utc> },
    /// [`Store::insert_recording`].
    Recording(&'a NewRecording),
    /// [`Store::link_recording_by_keys`].
    Link { object_key: &'a str, message_key: &'a str, url: &'a str },
    /// [`Store::recording_uploaded`].
    Uploaded { id: i64, url: &'a str, at: DateTime<Utc> },
}

/// What one write produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteDone {
    Session,
    Message(MessageId),
    /// Whether the session exists.
    Touched(bool),
    /// The recording's id.
    Recording(i64),
    /// Whether both the recording and the message were there to link.
    Linked(bool),
    /// The recording is marked stored (and its message linked to it, when known).
    Uploaded,
}

async fn begin<C: AsyncConnection>(conn: &mut C) -> diesel::QueryResult<()> {
    <C::TransactionManager as TransactionManager<C>>::begin_transaction(conn).await
}

async fn commit<C: AsyncConnection>(conn: &mut C) -> diesel::QueryResult<()> {
    <C::TransactionManager as TransactionManager<C>>::commit_transaction(conn).await
}

async fn rollback<C: AsyncConnection>(conn: &mut C) -> diesel::QueryResult<()> {
    <C::TransactionManager as TransactionManager<C>>::rollback_transaction(conn).await
}

impl WriteConn<'_> {
    async fn begin(&mut self) -> Result<(), StoreError> {
        Ok(on_write_conn!(self, conn => begin(conn).await)?)
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        Ok(on_write_conn!(self, conn => commit(conn).await)?)
    }

    /// Rolls back the innermost open transaction or savepoint; a failure here (false) leaves the connection
    /// broken, which the pool then drops.
    async fn rollback(&mut self) -> bool {
        match on_write_conn!(self, conn => rollback(conn).await) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("database: a batch of writes could not be rolled back: {e}");
                false
            }
        }
    }

    /// Rolls back `levels` open levels (savepoints, then the transaction), stopping at the first that fails.
    async fn rollback_levels(&mut self, levels: usize) {
        for _ in 0..levels {
            if !self.rollback().await {
                return;
            }
        }
    }
}

impl Store {
    /// Performs one write.
    pub async fn write(&self, op: &WriteOp<'_>) -> Result<WriteDone, StoreError> {
        with_write_conn!(self, wc => self.write_in(wc, op).await)
    }

    /// Performs `ops` in order in one transaction: all of them, or (on the first failure, returned) none.
    pub async fn write_batch(&self, ops: &[WriteOp<'_>]) -> Result<Vec<WriteDone>, StoreError> {
        if let [op] = ops {
            // A write of several statements has its own transaction already.
            return Ok(vec![self.write(op).await?]);
        }
        with_write_conn!(self, wc => {
            wc.begin().await?;
            let mut done = Vec::with_capacity(ops.len());
            for op in ops {
                match self.write_in(wc, op).await {
                    Ok(d) => done.push(d),
                    Err(e) => {
                        wc.rollback().await;
                        return Err(e);
                    }
                }
            }
            // A failed commit is rolled back by the transaction manager.
            wc.commit().await?;
            Ok(done)
        })
    }

    /// Performs several batches in one transaction, each in a savepoint of its own, and gives one result per
    /// batch, in order. A batch that fails is rolled back to its savepoint (nothing of it kept, its error in its
    /// place) and the next goes on; the others are committed together. When the transaction itself fails
    /// (begin, a savepoint, the commit: the database is out), nothing was kept and every batch gets an error
    /// (the first the real one, the others [`StoreError::Unavailable`] with its text).
    pub async fn write_groups(&self, batches: &[Vec<WriteOp<'_>>]) -> Vec<Result<Vec<WriteDone>, StoreError>> {
        match self.write_groups_or_none(batches).await {
            Ok(results) => results,
            Err(e) => {
                let text = e.to_string();
                let mut errors = vec![Err(e)];
                errors.extend((1..batches.len()).map(|_| Err(StoreError::Unavailable(text.clone()))));
                errors
            }
        }
    }

    /// [`Store::write_groups`], failing as a whole when the transaction does.
    async fn write_groups_or_none(
        &self,
        batches: &[Vec<WriteOp<'_>>],
    ) -> Result<Vec<Result<Vec<WriteDone>, StoreError>>, StoreError> {
        with_write_conn!(self, wc => {
            wc.begin().await?;
            let mut results = Vec::with_capacity(batches.len());
            for ops in batches {
                // A savepoint: diesel's transaction manager nests inside the open transaction.
                if let Err(e) = wc.begin().await {
                    wc.rollback().await;
                    return Err(e);
                }
                let mut done = Vec::with_capacity(ops.len());
                let mut failed = None;
                for op in ops {
                    match self.write_in(wc, op).await {
                        Ok(d) => done.push(d),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    None => {
                        // Releases the savepoint.
                        if let Err(e) = wc.commit().await {
                            wc.rollback_levels(2).await;
                            return Err(e);
                        }
                        results.push(Ok(done));
                    }
                    Some(e) => {
                        // Back to the savepoint; if even that fails, the connection is gone.
                        if !wc.rollback().await {
                            return Err(e);
                        }
                        results.push(Err(e));
                    }
                }
            }
            // A failed commit is rolled back by the transaction manager.
            wc.commit().await?;
            Ok(results)
        })
    }

    async fn write_in(&self, wc: &mut WriteConn<'_>, op: &WriteOp<'_>) -> Result<WriteDone, StoreError> {
        match op {
            WriteOp::CreateSession(s) => self.create_session_in(wc, s).await.map(|()| WriteDone::Session),
            WriteOp::Message(m) => self.insert_message_in(wc, m).await.map(WriteDone::Message),
            WriteOp::Touch { session, at } => self.touch_session_in(wc, session, *at).await.map(WriteDone::Touched),
            WriteOp::Recording(r) => self.insert_recording_in(wc, r).await.map(WriteDone::Recording),
            WriteOp::Link { object_key, message_key, url } => {
                self.link_recording_by_keys_in(wc, object_key, message_key, url).await.map(WriteDone::Linked)
            }
            WriteOp::Uploaded { id, url, at } => {
                self.recording_uploaded_in(wc, *id, url, *at).await.map(|()| WriteDone::Uploaded)
            }
        }
    }
}
