DROP INDEX messages_write_key_idx;
ALTER TABLE messages DROP COLUMN write_key;
