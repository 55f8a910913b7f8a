-- Which parley instance holds a waiting recording's spool file. Instances that share this database each have
-- their own data directory (and spool): an instance stores, fails or serves from its spool only the rows it
-- holds. NULL for rows written before instances were recorded: whichever instance starts takes care of them,
-- as before.
ALTER TABLE recordings ADD COLUMN instance_id TEXT;
