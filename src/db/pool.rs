//! Building the deadpool pools for both backends: bounded size, wait/create/recycle timeouts, connections
//! retired after five minutes (so PostgreSQL fail-overs and server-side limits are picked up), and the SQLite
//! pragmas every embedded connection needs.

use std::time::Duration;

use diesel::{Connection as _, ConnectionError};
use diesel_async::pooled_connection::deadpool::{Hook, HookError, Pool as DeadPool, PoolError};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::sync_connection_wrapper::SpawnBlocking as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, SimpleAsyncConnection as _};
use futures_util::FutureExt as _;

use super::writer::{SqliteWriteConnection, WriterThread};
use super::{SqliteConnection, StoreError};

pub(crate) type Pool<C> = DeadPool<C>;

/// Connections older than this are closed instead of being handed out again.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// How long a caller waits for a free connection before the store reports the database unavailable.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a new connection may take.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections that serve concurrent readers of the embedded database (writes have their own, one).
const SQLITE_MAX_CONNECTIONS: usize = 8;

pub(crate) fn unavailable(e: PoolError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn retire_old<C: Send + 'static>() -> Hook<C>
where
    AsyncDieselConnectionManager<C>:
        deadpool::managed::Manager<Type = C, Error = diesel_async::pooled_connection::PoolError>,
{
    Hook::sync_fn(|_conn, metrics| {
        if metrics.age() > MAX_CONNECTION_AGE {
            Err(HookError::message("connection reached its maximum age"))
        } else {
            Ok(())
        }
    })
}

/// The pool both backends share: bounded, with timeouts, retiring old connections.
fn build<C: Send + 'static>(manager: AsyncDieselConnectionManager<C>, max_size: usize) -> Result<Pool<C>, StoreError>
where
    AsyncDieselConnectionManager<C>:
        deadpool::managed::Manager<Type = C, Error = diesel_async::pooled_connection::PoolError>,
{
    DeadPool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(WAIT_TIMEOUT))
        .create_timeout(Some(CREATE_TIMEOUT))
        .recycle_timeout(Some(CREATE_TIMEOUT))
        .runtime(deadpool::Runtime::Tokio1)
        .pre_recycle(retire_old())
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

pub(crate) fn postgres(url: &str, max_size: usize) -> Result<Pool<AsyncPgConnection>, StoreError> {
    build(AsyncDieselConnectionManager::<AsyncPgConnection>::new(url), max_size)
}

/// What every embedded connection runs first: busy_timeout first, so nothing below fails on a lock; writers then
/// wait instead of failing. Foreign keys are off by default in SQLite. (WAL, which lets readers run beside the
/// writer, is a property of the file and is set once by the migration step.)
const SQLITE_SETUP: &str = "PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// The embedded database's read connections.
pub(crate) fn sqlite(path: &str, max_size: usize) -> Result<Pool<SqliteConnection>, StoreError> {
    let mut config = ManagerConfig::default();
    // An embedded connection cannot be lost the way a server's can, so it is handed out without a test query
    // first (each query is a trip to the blocking pool).
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(|url| {
        let url = url.to_string();
        async move {
            let mut conn = SqliteConnection::establish(&url).await?;
            conn.batch_execute(SQLITE_SETUP).await.map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<SqliteConnection>::new_with_config(path, config);
    build(manager, max_size.min(SQLITE_MAX_CONNECTIONS))
}

/// The embedded database's one write connection ([`super::writer`]): a pool of one, so writers queue here in
/// order, whose statements all run on one writer thread.
pub(crate) fn sqlite_writer(path: &str) -> Result<Pool<SqliteWriteConnection>, StoreError> {
    let writer = WriterThread::start();
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let (url, mut thread) = (url.to_string(), writer.clone());
        async move {
            let opened = thread.spawn_blocking(move || diesel::SqliteConnection::establish(&url)).await;
            let inner = opened.map_err(|e| ConnectionError::BadConnection(e.to_string()))??;
            let mut conn = SqliteWriteConnection::with_runtime(inner, thread);
            conn.batch_execute(SQLITE_SETUP).await.map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<SqliteWriteConnection>::new_with_config(path, config);
    build(manager, 1)
}
