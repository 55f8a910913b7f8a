//! Several of a session's writes in one transaction: what a Persister has queued (a turn's message, its
//! recording and the link between them) is committed at once instead of one transaction each. On SQLite that is
//! one commit (one WAL append and lock round) instead of several; on PostgreSQL one commit round trip.
//!
//! A batch is all or nothing: if any write fails, nothing of the batch is kept and the error is returned, so the
//! caller can tell an outage (retry, journal) from a refused write (write them one by one, so only the refused
//! one is lost).

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

    /// Rolls back what is open; a failure here leaves the connection broken, which the pool then drops.
    async fn rollback(&mut self) {
        if let Err(e) = on_write_conn!(self, conn => rollback(conn).await) {
            log::warn!("database: a batch of writes could not be rolled back: {e}");
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

    async fn write_in(&self, wc: &mut WriteConn<'_>, op: &WriteOp<'_>) -> Result<WriteDone, StoreError> {
        match op {
            WriteOp::CreateSession(s) => self.create_session_in(wc, s).await.map(|()| WriteDone::Session),
            WriteOp::Message(m) => self.insert_message_in(wc, m).await.map(WriteDone::Message),
            WriteOp::Touch { session, at } => self.touch_session_in(wc, session, *at).await.map(WriteDone::Touched),
            WriteOp::Recording(r) => self.insert_recording_in(wc, r).await.map(WriteDone::Recording),
            WriteOp::Link { object_key, message_key, url } => {
                self.link_recording_by_keys_in(wc, object_key, message_key, url).await.map(WriteDone::Linked)
            }
        }
    }
}
