-- What the listener heard of an assistant reply, beside what was generated. `content` holds the heard part
-- (cut at the last whole word) when a reply was cut short; `generated_content` (sealed like `content`) the
-- whole generated text when it differs; `heard_ms` how much of its audio was heard and `heard_source` who says
-- so (`client` acknowledgements or a server `estimate`); `outcome` how it ended (`completed`, `interrupted`,
-- `partial` for a reply cut by a provider failure). All are NULL for user messages and older rows.
ALTER TABLE messages ADD COLUMN generated_content BYTEA;
ALTER TABLE messages ADD COLUMN heard_ms BIGINT;
ALTER TABLE messages ADD COLUMN heard_source TEXT;
ALTER TABLE messages ADD COLUMN outcome TEXT;
