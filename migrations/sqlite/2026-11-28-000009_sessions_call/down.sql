ALTER TABLE sessions DROP COLUMN call_to;
ALTER TABLE sessions DROP COLUMN call_from;
ALTER TABLE sessions DROP COLUMN call_sid;
