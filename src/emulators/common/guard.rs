//! Notices a response body dropped before its end: actix drops a streaming body when the client goes away,
//! so a guard living inside the body's state runs its action on drop unless the body finished first.

/// Runs an action when dropped, unless `finish` was called.
pub struct Unfinished {
    on_drop: Option<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for Unfinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unfinished").field("armed", &self.on_drop.is_some()).finish()
    }
}

impl Unfinished {
    /// A guard that runs `on_drop` if dropped unfinished.
    pub fn new(on_drop: impl FnOnce() + Send + 'static) -> Self {
        Unfinished { on_drop: Some(Box::new(on_drop)) }
    }

    /// The body ended normally: the action will not run.
    pub fn finish(&mut self) {
        self.on_drop = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn the_action_runs_only_when_dropped_unfinished() {
        let ran = Arc::new(AtomicBool::new(false));
        let r = Arc::clone(&ran);
        let mut g = Unfinished::new(move || r.store(true, Ordering::SeqCst));
        g.finish();
        drop(g);
        assert!(!ran.load(Ordering::SeqCst));
        let r = Arc::clone(&ran);
        drop(Unfinished::new(move || r.store(true, Ordering::SeqCst)));
        assert!(ran.load(Ordering::SeqCst));
    }
}
