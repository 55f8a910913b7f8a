-- Conversations and their turns. Timestamps are UTC (TIMESTAMP without zone, the type both backends share).
-- content and audio_url hold AES-256-GCM sealed values (see src/crypto.rs), never plaintext.
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_activity_at TIMESTAMP NOT NULL,
    model_id TEXT NOT NULL,
    voice_id TEXT NOT NULL
);

-- Serves GET /api/sessions?userId= (newest first, keyset pagination).
CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at DESC, session_id DESC);

CREATE TABLE messages (
    id BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content BYTEA NOT NULL,
    audio_url BYTEA,
    feedback TEXT CHECK (feedback IN ('positive', 'negative')),
    created_at TIMESTAMP NOT NULL
);

CREATE INDEX messages_session_id_idx ON messages (session_id, id);
