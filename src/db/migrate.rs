//! Schema migrations, embedded in the binary: `migrations/postgres` and its SQLite twin `migrations/sqlite`.
//!
//! diesel's migration harness is synchronous and diesel-async's wrapper panics on actix's current-thread
//! runtime, so migrations run on a dedicated OS thread (with its own connection) while start-up awaits them.

use diesel::Connection as _;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};

use super::StoreError;

pub const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Brings a PostgreSQL database up to date.
pub async fn run_postgres(url: String) -> Result<(), StoreError> {
    on_thread(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        conn.run_pending_migrations(POSTGRES)
            .map(|applied| log_applied(applied.len()))
            .map_err(|e| StoreError::Migration(e.to_string()))
    })
    .await
}

/// Brings the embedded SQLite file at `path` up to date (creating it if needed).
pub async fn run_sqlite(path: String) -> Result<(), StoreError> {
    on_thread(move || {
        let mut conn = diesel::SqliteConnection::establish(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {path}: {e}")))?;
        // Write-ahead logging lets readers run beside the writer; it is stored in the file, so set it once here.
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;",
        )
        .map_err(|e| StoreError::Migration(format!("cannot enable WAL on {path}: {e}")))?;
        conn.run_pending_migrations(SQLITE)
            .map(|applied| log_applied(applied.len()))
            .map_err(|e| StoreError::Migration(e.to_string()))
    })
    .await
}

fn log_applied(n: usize) {
    if n > 0 {
        log::info!("applied {n} database migration(s)");
    }
}

async fn on_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("parley-migrate".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| StoreError::Migration(format!("cannot start the migration thread: {e}")))?;
    rx.await.map_err(|_| StoreError::Migration("the migration thread panicked".into()))?
}
