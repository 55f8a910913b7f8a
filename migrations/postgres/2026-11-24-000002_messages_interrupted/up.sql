-- An assistant message the user cut short (barge-in) holds only what was generated before the interruption.
ALTER TABLE messages ADD COLUMN interrupted BOOLEAN NOT NULL DEFAULT FALSE;
