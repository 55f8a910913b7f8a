//! Getting a session's history into the database without the conversation ever waiting for it: the
//! per-session [`Persister`] (an ordered, retrying write queue), the process's [`Journal`] (where writes wait,
//! on disk, while the database is unavailable), the embedded database's group commit ([`Committer`]) and
//! [`PendingWrites`] (what shutdown waits for).
//!
//! Sits right above `db`: it knows rows and retries, nothing of sessions, sockets or recordings. Whoever
//! must hear about a stored message or recording is injected as a `Recipient` ([`Persisted`] to the session,
//! [`RecordingStored`] to the uploader).

pub mod committer;
pub mod journal;
mod pending;
pub mod persister;

pub use crate::db::{HeardSource, ReplyOutcome};
pub use committer::{Committer, MarkUploaded};
pub use journal::Journal;
pub use pending::PendingWrites;
pub use persister::{Persist, Persisted, Persister, RecordingStored, ReplyFacts, Write};

/// The link under which parley serves a recording (relative to the server), as stored in a message's
/// `audio_url`.
pub fn playback_url(object_key: &str) -> String {
    format!("/{object_key}")
}
