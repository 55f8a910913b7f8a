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

/// A pending user or assistant WAV recording of `turn_id` in `session`, as the tests register them.
#[cfg(test)]
pub(crate) fn test_recording(
    session: &crate::db::SessionId,
    turn_id: u64,
    role: crate::db::Role,
) -> crate::db::NewRecording {
    crate::db::NewRecording {
        session_id: session.clone(),
        role,
        turn_id,
        object_key: format!("audio_recordings/alice/{session}/{}_{turn_id}.wav", role.as_str()),
        content_type: "audio/wav".into(),
        size_bytes: 44,
        duration_seconds: Some(0.0),
        backend: "local",
        spool_path: "/spool/x.wav".into(),
        spool_offset: None,
        created_at: crate::db::now(),
        instance_id: crate::db::InstanceId::generate(),
    }
}

/// The link under which parley serves a recording (relative to the server), as stored in a message's
/// `audio_url`.
pub fn playback_url(object_key: &str) -> String {
    format!("/{object_key}")
}
