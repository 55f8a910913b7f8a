ALTER TABLE recordings DROP COLUMN instance_id;
