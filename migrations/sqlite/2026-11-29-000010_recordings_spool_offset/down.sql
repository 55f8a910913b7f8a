ALTER TABLE recordings DROP COLUMN spool_offset;
