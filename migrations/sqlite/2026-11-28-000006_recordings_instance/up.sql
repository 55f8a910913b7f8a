-- The embedded twin of migrations/postgres/..._recordings_instance (see there).
ALTER TABLE recordings ADD COLUMN instance_id TEXT;
