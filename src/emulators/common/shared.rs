//! State shared between an emulator's connections and the test (or CLI) that controls it: settings, queued
//! scripts and faults, and the log of what was received. One std `Mutex` guards it; every change bumps a
//! watch channel so `wait_until` can wake on the change instead of polling or sleeping.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

/// Cheaply clonable handle to one emulator's state.
#[derive(Debug)]
pub struct Shared<S> {
    inner: Arc<Inner<S>>,
}

#[derive(Debug)]
struct Inner<S> {
    state: Mutex<S>,
    changes: watch::Sender<u64>,
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared { inner: Arc::clone(&self.inner) }
    }
}

impl<S> Shared<S> {
    /// Wraps the initial state.
    pub fn new(state: S) -> Self {
        Shared { inner: Arc::new(Inner { state: Mutex::new(state), changes: watch::Sender::new(0) }) }
    }

    fn lock(&self) -> MutexGuard<'_, S> {
        // A panic while holding the lock cannot leave the log half-written in a way that matters to a test.
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the state and wakes every waiter.
    pub fn update<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let r = f(&mut self.lock());
        self.inner.changes.send_modify(|v| *v = v.wrapping_add(1));
        r
    }

    /// Waits until `pred` holds (checked now and after every change), or `timeout` passes; true if it held.
    pub async fn wait_until(&self, pred: impl Fn(&S) -> bool, timeout: Duration) -> bool {
        let mut changes = self.inner.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.read(&pred) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in `self`, so `changed` cannot fail; treat it like a timeout anyway.
                Ok(Err(_)) | Err(_) => return self.read(&pred),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_until_wakes_on_a_change_made_by_another_task() {
        let shared = Shared::new(0u32);
        let writer = shared.clone();
        let task = tokio::spawn(async move {
            writer.update(|n| *n = 5);
        });
        assert!(shared.wait_until(|n| *n == 5, Duration::from_secs(5)).await);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn wait_until_gives_up_after_the_timeout() {
        let shared = Shared::new(0u32);
        assert!(!shared.wait_until(|n| *n == 1, Duration::from_millis(20)).await);
    }
}
