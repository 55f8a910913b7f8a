-- The embedded twin of migrations/postgres: same tables, columns and constraints in SQLite's types.
-- Timestamps are UTC; content and audio_url hold AES-256-GCM sealed values (see src/crypto.rs).
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_activity_at TIMESTAMP NOT NULL,
    model_id TEXT NOT NULL,
    voice_id TEXT NOT NULL
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at DESC, session_id DESC);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content BLOB NOT NULL,
    audio_url BLOB,
    feedback TEXT CHECK (feedback IN ('positive', 'negative')),
    created_at TIMESTAMP NOT NULL
);

CREATE INDEX messages_session_id_idx ON messages (session_id, id);
