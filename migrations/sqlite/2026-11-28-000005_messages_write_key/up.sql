-- A key the writer chooses for each message before it is stored, so a write can be repeated safely: a write
-- replayed from the journal after a database outage (or one whose acknowledgement was lost) finds its row
-- instead of storing it twice, and a recording is linked to its message by key. NULL for older rows.
ALTER TABLE messages ADD COLUMN write_key TEXT;
CREATE UNIQUE INDEX messages_write_key_idx ON messages (write_key);
