-- The embedded twin of migrations/postgres/..._recordings_spool_offset (see there).
ALTER TABLE recordings ADD COLUMN spool_offset BIGINT;
