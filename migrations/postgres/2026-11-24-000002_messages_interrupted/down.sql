ALTER TABLE messages DROP COLUMN interrupted;
