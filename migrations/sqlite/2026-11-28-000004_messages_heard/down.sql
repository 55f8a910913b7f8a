ALTER TABLE messages DROP COLUMN outcome;
ALTER TABLE messages DROP COLUMN heard_source;
ALTER TABLE messages DROP COLUMN heard_ms;
ALTER TABLE messages DROP COLUMN generated_content;
