-- A session that is a phone call: Twilio's CallSid and the caller's and called numbers as Twilio gave them
-- (E.164 normally). NULL for browser sessions and older rows.
ALTER TABLE sessions ADD COLUMN call_sid TEXT;
ALTER TABLE sessions ADD COLUMN call_from TEXT;
ALTER TABLE sessions ADD COLUMN call_to TEXT;
