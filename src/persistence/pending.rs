//! [`PendingWrites`]: how many database writes (and open recordings) are still on their way, process-wide,
//! so a graceful shutdown can wait for them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Writes queued across all sessions; shutdown waits for it to reach zero.
#[derive(Debug, Default)]
pub struct PendingWrites {
    count: AtomicUsize,
    idle: Notify,
}

impl PendingWrites {
    /// One more write (or writer) to wait for.
    pub fn add(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// One write (or writer) finished.
    pub fn done(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no write is pending or `timeout` passes; returns the writes still pending.
    pub async fn wait_idle(&self, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix::test]
    async fn waiting_ends_when_the_last_write_is_done_or_reports_what_remains() {
        let p = std::sync::Arc::new(PendingWrites::default());
        assert_eq!(p.wait_idle(Duration::from_millis(1)).await, 0);
        p.add();
        p.add();
        assert_eq!(p.wait_idle(Duration::from_millis(20)).await, 2);
        let q = p.clone();
        let waiter = actix::spawn(async move { q.wait_idle(Duration::from_secs(10)).await });
        p.done();
        p.done();
        assert_eq!(waiter.await.unwrap(), 0);
    }
}
