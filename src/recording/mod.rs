//! Recording every turn's audio: the user's utterance as WAV, the assistant's reply in the ElevenLabs output
//! format (MP3, or WAV for raw formats), streamed as it arrives to the session's spool file of its side (one
//! per session and side, each recording a byte range of it), registered in the `recordings`
//! table with its duration and metadata, and stored in the background (local directory or Google Cloud
//! Storage) without the conversation ever waiting.
//!
//! - [`recorder::Recorder`]: one per session (a child of `ClientSocket`), on the storage arbiter.
//! - [`uploader::Uploader`]: one per process, on the storage arbiter; retries with backoff, never drops a
//!   file silently, and resumes whatever was still waiting when the server last stopped.
//! - [`storage::Storage`]: the backends; [`spool`]: the sessions' spool files; [`gcs`]: the GCS client.
//! - [`instance`]: which instance holds a spool (several may share a database); [`orphans`]: recordings left
//!   in the spool without a row by a process that died, dealt with at start-up.
//!
//! Layout: `audio_recordings/{user_id}/{session_id}/{role}_{uuid}_{timestamp}.{ext}` (the timestamp is when the
//! recording began), served back at the same path (`GET /audio_recordings/...`) whichever backend holds the
//! file; while it waits in the spool of the instance that recorded it, that instance serves it from there and
//! any other answers 503 with `Retry-After`.

pub mod gcs;
pub mod instance;
pub mod orphans;
pub mod recorder;
pub mod spool;
pub mod storage;
pub mod uploader;

use chrono::{DateTime, Utc};

use crate::db::Role;
pub use crate::persistence::playback_url;
pub use storage::{RecordingMeta, Storage, StorageError};

/// The top directory (and URL path) of every recording.
pub const ROOT: &str = "audio_recordings";

/// The object key of a new recording.
pub fn object_key(user_id: &str, session_id: &str, role: Role, extension: &str, at: DateTime<Utc>) -> String {
    format!(
        "{ROOT}/{user_id}/{session_id}/{}_{}_{}.{extension}",
        role.as_str(),
        uuid::Uuid::new_v4().simple(),
        at.format("%Y%m%dT%H%M%S%3fZ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout_and_links_mirror_them() {
        let at = DateTime::parse_from_rfc3339("2026-11-24T10:11:12.345Z").unwrap().with_timezone(&Utc);
        let key = object_key("alice", "2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b", Role::User, "wav", at);
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts[..3], ["audio_recordings", "alice", "2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b"]);
        assert!(parts[3].starts_with("user_") && parts[3].ends_with("_20261124T101112345Z.wav"), "{key}");
        assert_eq!(playback_url(&key), format!("/{key}"));
        assert_ne!(key, object_key("alice", "2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b", Role::User, "wav", at));
    }
}
