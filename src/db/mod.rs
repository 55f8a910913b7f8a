//! Persistence: sessions and their messages, in PostgreSQL (diesel-async + deadpool) when a database URL is
//! configured, otherwise in an embedded SQLite file (diesel-async's `SyncConnectionWrapper` through the same
//! deadpool), behind one [`Store`].
//!
//! Query code is written once per operation and compiled for both backends by [`with_conn!`]; it lives with its
//! table (`sessions`, `messages`). Message content and recording links are sealed with [`crate::crypto`] before
//! they reach SQL and opened on the way out, so nothing else in parley handles ciphertext. Every function is
//! async and runs its SQL off the caller's thread: tokio-postgres I/O; for SQLite, a blocking-pool thread for
//! reads and the one writer thread for writes, except on the storage thread, which runs its own ([`writer`]).
//! An operation made of several statements runs them as one transaction on one connection
//! (`AsyncConnection::transaction` inside [`with_conn!`]), so a failure part-way leaves nothing half-written;
//! several writes can share one transaction too ([`batch`]). UPDATEs stay prepared ([`prepared`]).

pub mod batch;
pub mod ids;
pub mod messages;
pub mod migrate;
mod pool;
pub mod prepared;
pub mod recordings;
pub mod schema;
pub mod sessions;
pub mod writer;

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, SubsecRound as _, Utc};
use diesel_async::AsyncPgConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;

use crate::config::DatabaseConfig;
use crate::crypto::{Cipher, CryptoError};
pub use batch::{WriteDone, WriteOp};
pub use ids::{IdError, InstanceId, MessageId, SessionId, TurnId, UserId};
pub use messages::{
    Feedback, FeedbackOutcome, HeardSource, NewMessage, ReplyOutcome, ReplyRecord, Role, StoredMessage, ToolRecord,
    TurnUsage,
};
pub use recordings::{NewRecording, RecordingRecord, RecordingStatus};
pub use sessions::{NewSession, PhoneCall, SessionCursor, SessionPage, SessionRecord};

/// The embedded backend's connection type.
pub type SqliteConnection = SyncConnectionWrapper<diesel::SqliteConnection, writer::ReadRuntime>;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone)]
pub(crate) enum DbPool {
    Postgres(pool::Pool<AsyncPgConnection>),
    /// Readers, and the one writer ([`writer`]).
    Sqlite {
        read: pool::Pool<SqliteConnection>,
        write: pool::Pool<writer::SqliteWriteConnection>,
    },
}

/// Handle to the database: cheap to clone, shared by every request handler and session.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: DbPool,
    pub(crate) cipher: Arc<Cipher>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

/// A database operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had in time (server down, pool exhausted): retryable.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("encryption failed: {0}")]
    Crypto(#[from] CryptoError),
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A row breaks an invariant the schema promises (e.g. an unknown role).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when trying again later may succeed (used by the session's Persister).
    pub fn is_retryable(&self) -> bool {
        use diesel::result::Error as E;
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Query(E::DatabaseError(kind, _)) => matches!(
                kind,
                diesel::result::DatabaseErrorKind::SerializationFailure
                    | diesel::result::DatabaseErrorKind::ClosedConnection
                    | diesel::result::DatabaseErrorKind::UnableToSendCommand
            ),
            StoreError::Query(E::BrokenTransactionManager) => true,
            _ => false,
        }
    }
}

impl crate::retry::Retryable for StoreError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
}

/// Pool occupancy, for the metrics gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend the store uses. The body is
/// compiled once per backend, so it may use any diesel query both backends support. `write` marks a body that
/// writes: on SQLite it gets the one write connection ([`writer`]); on PostgreSQL any pooled connection.
macro_rules! with_conn {
    ($store:expr, $conn:ident => $body:expr) => {
        $crate::db::with_conn!(@on $store, read, $crate::db::SqliteConnection, $conn => $body)
    };
    ($store:expr, write $conn:ident => $body:expr) => {
        $crate::db::with_conn!(@on $store, write, $crate::db::writer::SqliteWriteConnection, $conn => $body)
    };
    (@on $store:expr, $sqlite:ident, $sqlite_conn:ty, $conn:ident => $body:expr) => {
        match &$store.pool {
            $crate::db::DbPool::Postgres(pool) => {
                let mut guard = pool.get().await.map_err($crate::db::pool::unavailable)?;
                let $conn: &mut diesel_async::AsyncPgConnection = &mut guard;
                $body
            }
            $crate::db::DbPool::Sqlite { $sqlite, .. } => {
                let mut guard = $sqlite.get().await.map_err($crate::db::pool::unavailable)?;
                let $conn: &mut $sqlite_conn = &mut guard;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

/// The write connection of either backend, for code that runs several writes on one connection (one
/// transaction: [`batch`]). Its bodies are compiled once per backend by [`on_write_conn!`].
pub(crate) enum WriteConn<'c> {
    Postgres(&'c mut AsyncPgConnection),
    Sqlite(&'c mut writer::SqliteWriteConnection),
}

impl<'c> From<&'c mut AsyncPgConnection> for WriteConn<'c> {
    fn from(conn: &'c mut AsyncPgConnection) -> Self {
        WriteConn::Postgres(conn)
    }
}

impl<'c> From<&'c mut writer::SqliteWriteConnection> for WriteConn<'c> {
    fn from(conn: &'c mut writer::SqliteWriteConnection) -> Self {
        WriteConn::Sqlite(conn)
    }
}

/// Runs `$body` with `$conn` bound to the connection inside a [`WriteConn`], compiled once per backend.
macro_rules! on_write_conn {
    ($wc:expr, $conn:ident => $body:expr) => {
        match $wc {
            $crate::db::WriteConn::Postgres(c) => {
                let $conn: &mut diesel_async::AsyncPgConnection = &mut **c;
                $body
            }
            $crate::db::WriteConn::Sqlite(c) => {
                let $conn: &mut $crate::db::writer::SqliteWriteConnection = &mut **c;
                $body
            }
        }
    };
}
pub(crate) use on_write_conn;

/// Runs `$body` with `$wc` bound to a [`WriteConn`] on the store's write connection (SQLite's one writer, or a
/// pooled PostgreSQL connection).
macro_rules! with_write_conn {
    ($store:expr, $wc:ident => $body:expr) => {
        $crate::db::with_conn!($store, write conn => {
            let mut wc = $crate::db::WriteConn::from(conn);
            let $wc = &mut wc;
            $body
        })
    };
}
pub(crate) use with_write_conn;

impl Store {
    /// Connects to the configured backend and brings its schema up to date (on a separate thread: diesel's
    /// migration harness is synchronous).
    pub async fn connect(config: &DatabaseConfig, cipher: Cipher) -> Result<Store, StoreError> {
        let pool = match &config.postgres_url {
            Some(url) => {
                migrate::run_postgres(url.clone()).await?;
                DbPool::Postgres(pool::postgres(url, config.pool_max)?)
            }
            None => {
                std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", config.data_dir.display()))
                })?;
                let path = config.data_dir.join("parley.sqlite3");
                let path = path.to_string_lossy().into_owned();
                migrate::run_sqlite(path.clone()).await?;
                DbPool::Sqlite { read: pool::sqlite(&path, config.pool_max)?, write: pool::sqlite_writer(&path)? }
            }
        };
        Ok(Store { pool, cipher: Arc::new(cipher) })
    }

    /// The cipher history is sealed with (the write journal seals its records with it too).
    pub fn cipher(&self) -> Arc<Cipher> {
        self.cipher.clone()
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            DbPool::Postgres(_) => Backend::Postgres,
            DbPool::Sqlite { .. } => Backend::Sqlite,
        }
    }

    pub fn pool_status(&self) -> PoolStatus {
        let s = match &self.pool {
            DbPool::Postgres(p) => p.status(),
            DbPool::Sqlite { read, .. } => read.status(),
        };
        PoolStatus { max_size: s.max_size, size: s.size, available: s.available, waiting: s.waiting }
    }

    /// Round trip to the database (readiness probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        use diesel_async::RunQueryDsl as _;
        with_conn!(self, conn => {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
                .get_result::<i32>(conn)
                .await?;
        });
        Ok(())
    }

    /// Closes the pool: idle connections are dropped and no new ones are handed out.
    pub fn close(&self) {
        match &self.pool {
            DbPool::Postgres(p) => p.close(),
            DbPool::Sqlite { read, write } => {
                read.close();
                write.close();
            }
        }
    }
}

/// Asserts that `query` builds the same SQL every time on both databases, so its prepared statement is cached.
#[cfg(test)]
pub(crate) fn assert_statement_cached<Q>(query: &Q)
where
    Q: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>
        + diesel::query_builder::QueryFragment<diesel::pg::Pg>,
{
    use diesel::query_builder::QueryFragment;
    assert!(
        QueryFragment::<diesel::sqlite::Sqlite>::is_safe_to_cache_prepared(query, &diesel::sqlite::Sqlite).unwrap()
    );
    assert!(QueryFragment::<diesel::pg::Pg>::is_safe_to_cache_prepared(query, &diesel::pg::Pg).unwrap());
}

/// A store in an embedded database in `dir` holding one conversation of `user` (for unit tests).
#[cfg(test)]
pub(crate) async fn embedded_for_tests(dir: &std::path::Path, user: &str) -> (Store, SessionId) {
    let config =
        DatabaseConfig { postgres_url: None, pool_max: 2, data_dir: dir.to_path_buf(), journal_max_bytes: 1 << 20 };
    let cipher = Cipher::new(1, &crate::config::KeyBytes([7; 32]), &[]);
    let store = Store::connect(&config, cipher).await.expect("an embedded database opens");
    let session = SessionId::generate();
    let row = NewSession {
        id: session.clone(),
        user_id: user.parse().expect("a valid user id"),
        created_at: now(),
        model_id: "m".into(),
        voice_id: "v".into(),
        call: None,
    };
    store.create_session(&row).await.expect("the session is stored");
    (store, session)
}

/// Now, at the precision both backends store (microseconds), so a value reads back exactly as written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) fn to_db_time(t: DateTime<Utc>) -> NaiveDateTime {
    t.trunc_subsecs(6).naive_utc()
}

pub(crate) fn from_db_time(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}
