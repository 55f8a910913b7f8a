DROP TABLE messages;
DROP TABLE sessions;
