-- Where a recording starts in its spool file. Recordings are written one after another into one spool file per
-- session and side (see src/recording/spool.rs): a row with an offset is the `size_bytes` bytes of `spool_path`
-- from there, a complete file of its own. NULL: the spool file is the recording (rows from before, and orphans
-- recovered into files of their own).
ALTER TABLE recordings ADD COLUMN spool_offset BIGINT;
