//! The emulators' logs of connections and requests, which tests read to check what a client sent. A test's
//! emulators keep everything; `parley emulate`, which may serve a load test for hours, keeps only the most
//! recent entries ([`CLI_LOG_LIMIT`]), and the most recent items of each entry's lists (frames sent and
//! received), so its memory stays flat however long it runs.

/// How much of a log is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimit {
    /// Connections or requests.
    pub entries: usize,
    /// Items of each entry's lists (frames sent and received).
    pub items: usize,
}

/// What `parley emulate` keeps by default: the last 200 to 400 connections or requests, the last 20 to 40 frames
/// of each (see [`trim_front`]).
pub const CLI_LOG_LIMIT: LogLimit = LogLimit { entries: 200, items: 20 };

/// A log whose entries are appended, then updated by the index `push` returned.
#[derive(Debug, Clone)]
pub struct Log<T> {
    entries: Vec<T>,
    /// Entries dropped from the front.
    dropped: usize,
    limit: Option<LogLimit>,
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log { entries: Vec::new(), dropped: 0, limit: None }
    }
}

/// An entry whose lists can be cut to their most recent items.
pub trait Trim {
    fn trim(&mut self, limit: usize);
}

impl<T: Trim> Log<T> {
    /// Appends the entry `make` builds from its number (1-based, never reused); returns its index.
    pub fn push(&mut self, make: impl FnOnce(u64) -> T) -> usize {
        let index = self.dropped + self.entries.len();
        self.entries.push(make(index as u64 + 1));
        if let Some(limit) = self.limit {
            self.dropped += trim_front(&mut self.entries, limit.entries);
        }
        index
    }

    /// Changes entry `index` (nothing when it was dropped), then keeps its lists within the limit.
    pub fn update(&mut self, index: usize, f: impl FnOnce(&mut T)) {
        let Some(entry) = index.checked_sub(self.dropped).and_then(|i| self.entries.get_mut(i)) else {
            return;
        };
        f(entry);
        if let Some(limit) = self.limit {
            entry.trim(limit.items);
        }
    }

    /// Entry `index`, unless it was dropped.
    pub fn get(&self, index: usize) -> Option<&T> {
        self.entries.get(index.checked_sub(self.dropped)?)
    }

    /// The entries kept, oldest first.
    pub fn entries(&self) -> &[T] {
        &self.entries
    }

    /// Keep only about the last `limit` entries and list items from now on (`None`: everything).
    pub fn set_limit(&mut self, limit: Option<LogLimit>) {
        self.limit = limit.map(|l| LogLimit { entries: l.entries.max(1), items: l.items.max(1) });
    }
}

/// Once `v` holds twice `limit` items, drops the oldest down to `limit` (so the cost is spread over many
/// pushes); returns how many it dropped.
pub fn trim_front<T>(v: &mut Vec<T>, limit: usize) -> usize {
    if v.len() < limit.saturating_mul(2) {
        return 0;
    }
    let n = v.len() - limit;
    v.drain(..n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Entry {
        number: u64,
        frames: Vec<u32>,
    }

    impl Trim for Entry {
        fn trim(&mut self, limit: usize) {
            trim_front(&mut self.frames, limit);
        }
    }

    #[test]
    fn everything_is_kept_without_a_limit() {
        let mut log = Log::default();
        for _ in 0..5000 {
            let i = log.push(|number| Entry { number, frames: Vec::new() });
            for f in 0..10 {
                log.update(i, |e| e.frames.push(f));
            }
        }
        assert_eq!(log.entries().len(), 5000);
        assert_eq!(log.entries()[4999].number, 5000);
        assert!(log.entries().iter().all(|e| e.frames.len() == 10));
    }

    #[test]
    fn a_limited_log_keeps_the_recent_entries_and_items_and_numbers_stay_unique() {
        let mut log = Log::default();
        log.set_limit(Some(LogLimit { entries: 10, items: 10 }));
        let first = log.push(|number| Entry { number, frames: Vec::new() });
        for f in 0..1000 {
            log.update(first, |e| e.frames.push(f));
        }
        let kept = &log.entries()[0].frames;
        assert!(kept.len() < 20 && kept.last() == Some(&999), "the latest frames of a long connection: {kept:?}");
        let mut last = first;
        for _ in 0..1000 {
            last = log.push(|number| Entry { number, frames: vec![1] });
        }
        assert!(log.entries().len() < 20, "{}", log.entries().len());
        assert_eq!(log.entries().last().unwrap().number, 1001);
        log.update(first, |e| e.frames.push(7));
        assert!(log.get(first).is_none(), "a dropped entry is not updated");
        log.update(last, |e| e.frames.push(7));
        assert_eq!(log.get(last).map(|e| (e.number, e.frames.clone())), Some((1001, vec![1, 7])));
    }
}
