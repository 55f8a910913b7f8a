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
//! Most writes come from the storage thread (the Persister, the Uploader, the write journal all live there). A
//! thread marked with [`run_writes_here`] runs its own statements itself, at once, on the same connection: no
//! hop to the writer thread and back (two cross-thread wake-ups per statement, four statements a message). It
//! already does blocking file work, and a write in WAL mode without a checkpoint is a few page writes. Other
//! callers (a rating over REST, a CLI command) still go to the writer thread. The connection is a pool of one,
//! so a caller holds it for all its statements, wherever they run; two never interleave.
//!
//! It plugs into diesel-async as the [`SpawnBlocking`] runtime of the write connection's
//! `SyncConnectionWrapper`, so query code is the same for reads, writes and PostgreSQL ([`super::with_conn!`]).

use std::cell::Cell;
use std::error::Error;
use std::panic::AssertUnwindSafe;

use tokio::sync::mpsc;

use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;

/// The write connection: statements run on its [`WriterThread`].
pub type SqliteWriteConnection = SyncConnectionWrapper<diesel::SqliteConnection, WriterThread>;

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// Whether this thread runs its own writes ([`run_writes_here`]).
    static WRITES_HERE: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as one that runs its own embedded-database statements (writes, and reads:
/// [`ReadRuntime`]) instead of handing each to another thread. For a thread that may block briefly on disk (the storage thread), never for one that
/// serves sockets.
pub fn run_writes_here() {
    WRITES_HERE.with(|here| here.set(true));
}

fn dropped() -> Box<dyn Error + Send + Sync> {
    Box::from("the database writer dropped a statement")
}

/// What a statement's runtime gives back.
type Ran<'a, R> = BoxFuture<'a, Result<R, Box<dyn Error + Send + Sync + 'static>>>;

/// Runs `task` at once when the calling thread runs its own statements ([`run_writes_here`]), or gives it
/// back to be handed over. A panicking statement fails its own caller, as on another thread.
fn run_here<'a, R, F>(task: F) -> Result<Ran<'a, R>, F>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    if !WRITES_HERE.with(Cell::get) {
        return Err(task);
    }
    let ran = std::panic::catch_unwind(AssertUnwindSafe(task)).map_err(|_| dropped());
    Ok(futures_util::future::ready(ran).boxed())
}

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
    fn spawn_blocking<'a, R>(&mut self, task: impl FnOnce() -> R + Send + 'static) -> Ran<'a, R>
    where
        R: Send + 'static,
    {
        let task = match run_here(task) {
            Ok(ran) => return ran,
            Err(task) => task,
        };
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(task());
        });
        match self.jobs.send(job) {
            Ok(()) => async move { result.await.map_err(|_| dropped()) }.boxed(),
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

/// The runtime of the embedded database's read connections: a thread marked with [`run_writes_here`] (the
/// storage thread, whose Uploader and journal read rows as they go) runs its reads itself too, at once, instead
/// of handing each statement to tokio's blocking pool and waiting to be woken; every other thread (an HTTP
/// worker serving a REST read) hands them over, as diesel-async's default runtime does.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadRuntime;

impl SpawnBlocking for ReadRuntime {
    fn spawn_blocking<'a, R>(&mut self, task: impl FnOnce() -> R + Send + 'static) -> Ran<'a, R>
    where
        R: Send + 'static,
    {
        let task = match run_here(task) {
            Ok(ran) => return ran,
            Err(task) => task,
        };
        tokio::task::spawn_blocking(task).map(|ran| ran.map_err(Box::<dyn Error + Send + Sync>::from)).boxed()
    }

    fn get_runtime() -> Self {
        ReadRuntime
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

    #[test]
    fn a_thread_that_runs_its_own_writes_runs_them_at_once_and_survives_a_panic() {
        let mut writer = WriterThread::start();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let elsewhere = runtime.block_on(writer.spawn_blocking(|| std::thread::current().id())).unwrap();
        assert_ne!(elsewhere, std::thread::current().id(), "an unmarked thread hands statements over");
        let marked = std::thread::spawn(move || {
            run_writes_here();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let here = runtime.block_on(writer.spawn_blocking(|| std::thread::current().id())).unwrap();
            assert_eq!(here, std::thread::current().id(), "a marked thread runs its statements itself");
            let panicked = runtime.block_on(writer.spawn_blocking(|| -> u8 { panic!("a statement panicked") }));
            assert!(panicked.is_err(), "the caller of a panicking statement gets an error");
            runtime.block_on(writer.spawn_blocking(|| 7)).unwrap()
        });
        assert_eq!(marked.join().unwrap(), 7, "the thread goes on after a panic");
    }

    #[test]
    fn a_marked_thread_runs_its_reads_itself_and_others_hand_them_over() {
        // Statements are handed over from inside the runtime, as diesel-async does when a query is polled.
        fn run<R: Send + 'static>(
            task: impl FnOnce() -> R + Send + 'static,
        ) -> Result<R, Box<dyn Error + Send + Sync>> {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async move { ReadRuntime.spawn_blocking(task).await })
        }
        let elsewhere = run(|| std::thread::current().id()).unwrap();
        assert_ne!(elsewhere, std::thread::current().id(), "an unmarked thread hands reads to the blocking pool");
        let marked = std::thread::spawn(|| {
            run_writes_here();
            let here = run(|| std::thread::current().id()).unwrap();
            assert_eq!(here, std::thread::current().id(), "a marked thread runs its reads itself");
            assert!(
                run(|| -> u8 { panic!("a read panicked") }).is_err(),
                "the caller of a panicking read gets an error"
            );
            run(|| 7).unwrap()
        });
        assert_eq!(marked.join().unwrap(), 7, "the thread goes on after a panic");
    }
}
