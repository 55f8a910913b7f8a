//! The embedded database's one writer: a long-lived thread that runs every statement of every write, one after
//! another, on one connection.
//!
//! SQLite lets one connection write at a time. With writes spread over the pool, each statement went to
//! tokio's blocking pool (a thread picked, or started, per statement) and concurrent writers met on SQLite's
//! lock, where `busy_timeout` makes them sleep and retry (and under load some still failed with "database is
//! locked"). Now the write connection is a pool of one whose statements all run on this thread: writers queue
//! in order on the pool instead of on the file lock, and the thread stays warm. Reads keep their own
//! connections (WAL lets them run beside the writer).
//!
//! It plugs into diesel-async as the [`SpawnBlocking`] runtime of the write connection's
//! `SyncConnectionWrapper`, so query code is the same for reads, writes and PostgreSQL ([`super::with_conn!`]).

use std::error::Error;
use std::panic::AssertUnwindSafe;

use tokio::sync::mpsc;

use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;

/// The write connection: statements run on its [`WriterThread`].
pub type SqliteWriteConnection = SyncConnectionWrapper<diesel::SqliteConnection, WriterThread>;

type Job = Box<dyn FnOnce() + Send>;

/// Handle to a writer thread; the thread ends when the last handle (the connection's) is dropped.
#[derive(Clone)]
pub struct WriterThread {
    jobs: mpsc::UnboundedSender<Job>,
}

impl WriterThread {
    /// Starts a writer thread.
    pub fn start() -> WriterThread {
        // tokio's channel parks the idle thread at once; std's spins and yields first, which cost this thread
        // more CPU than its statements did.
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let spawned = std::thread::Builder::new().name("sqlite-writer".into()).spawn(move || {
            while let Some(job) = queue.blocking_recv() {
                // A panicking statement fails its own caller (its result channel is dropped), not the thread.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
            }
        });
        if let Err(e) = spawned {
            // Every statement then fails with a clear error (see `spawn_blocking`) rather than the process.
            log::error!("cannot start the database writer thread: {e}");
        }
        WriterThread { jobs }
    }
}

impl SpawnBlocking for WriterThread {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(task());
        });
        match self.jobs.send(job) {
            Ok(()) => async move {
                result
                    .await
                    .map_err(|_| Box::<dyn Error + Send + Sync>::from("the database writer dropped a statement"))
            }
            .boxed(),
            Err(_) => futures_util::future::ready(Err(Box::<dyn Error + Send + Sync>::from(
                "the database writer has stopped",
            )))
            .boxed(),
        }
    }

    fn get_runtime() -> Self {
        WriterThread::start()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn statements_run_in_order_on_one_thread_and_a_panic_fails_only_its_caller() {
        let mut writer = WriterThread::start();
        let first = writer.spawn_blocking(|| std::thread::current().id()).await.unwrap();
        let panicked = writer.spawn_blocking(|| -> u8 { panic!("a statement panicked") }).await;
        assert!(panicked.is_err(), "the caller of a panicking statement gets an error");
        let again = writer.spawn_blocking(|| std::thread::current().id()).await.unwrap();
        assert_eq!(first, again, "one thread, still alive after a panic");
        assert_ne!(first, std::thread::current().id());
        let order: Vec<_> = (0..50).map(|i| writer.spawn_blocking(move || i)).collect();
        let got: Vec<i32> = futures_util::future::join_all(order).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
    }
}
