-- What an assistant reply did and cost. `tool_calls` (sealed like `content`): the tool calls made while it
-- was generated, each with its arguments and its result or error, as JSON; `llm_provider`: the provider that
-- answered (a fallback's name when the primary failed); `usage`: JSON of what the turn used (speech seconds,
-- prompt and completion tokens and whether they were estimated, synthesized characters, tool calls). NULL for
-- user messages and older rows.
ALTER TABLE messages ADD COLUMN tool_calls BLOB;
ALTER TABLE messages ADD COLUMN llm_provider TEXT;
ALTER TABLE messages ADD COLUMN usage TEXT;
