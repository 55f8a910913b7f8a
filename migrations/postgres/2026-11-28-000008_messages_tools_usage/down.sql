ALTER TABLE messages DROP COLUMN usage;
ALTER TABLE messages DROP COLUMN llm_provider;
ALTER TABLE messages DROP COLUMN tool_calls;
