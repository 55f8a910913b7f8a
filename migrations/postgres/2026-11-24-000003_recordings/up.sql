-- One row per recorded audio file (a user's utterance or an assistant's reply). A file waits in the spool
-- directory (spool_path) until it is stored (status pending -> uploaded); after a restart pending rows are
-- picked up again. object_key follows audio_recordings/{user_id}/{session_id}/{role}_{uuid}_{timestamp}.{ext}.
CREATE TABLE recordings (
    id BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    message_id BIGINT REFERENCES messages (id) ON DELETE SET NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    turn_id BIGINT NOT NULL,
    object_key TEXT NOT NULL UNIQUE,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    duration_seconds DOUBLE PRECISION,
    backend TEXT NOT NULL CHECK (backend IN ('local', 'gcs')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'uploaded', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    spool_path TEXT,
    created_at TIMESTAMP NOT NULL,
    uploaded_at TIMESTAMP
);

CREATE INDEX recordings_session_id_idx ON recordings (session_id, id);
CREATE INDEX recordings_waiting_idx ON recordings (status) WHERE status <> 'uploaded';
