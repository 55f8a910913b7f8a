//! The client wire protocol of `/ws/chat-audio`: what a client sends ([`ClientMessage`], JSON text frames
//! tagged by `type`, plus binary frames of 16-bit little-endian mono PCM) and what parley sends back
//! ([`ServerMessage`], JSON text frames, plus binary audio frames in the announced format). README.md documents
//! the same protocol for client authors.
//!
//! Audio ordering contract: binary frames received after `audioStart{turnId}` and before `audioEnd{turnId}` or
//! `interrupt{turnId}` belong to that turn; after `interrupt{turnId}` no audio of that turn is ever sent, so a
//! client can drop everything it buffered for it.

use serde::{Deserialize, Serialize};

use crate::db::TurnId;

/// What a client sends as JSON text frames.
#[derive(Debug, Clone, PartialEq, Deserialize)]
// The tests write messages as a client would, to prove that every one of them reads back.
#[cfg_attr(test, derive(Serialize))]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMessage {
    /// End of microphone input: commit what was said now instead of waiting for a pause.
    CloseMicrophone,
    /// A typed turn (no speech recognition).
    Text {
        /// What the user typed; 1 character at least, trimmed.
        text: String,
    },
    /// Stop the assistant now (barge-in from a button rather than from speech).
    Interrupt,
    /// Liveness check; answered with `pong`.
    Ping,
    /// The answer to a `toolCall`: `result` (any JSON) or `error` (a sentence the model is given).
    #[serde(rename_all = "camelCase")]
    ToolResult {
        call_id: String,
        #[serde(default)]
        result: Option<serde_json::Value>,
        #[serde(default)]
        error: Option<String>,
    },
    /// How much of a turn's audio the listener has actually heard so far (monotonic per turn): sent every
    /// 250 ms while the turn plays, once when it has played out, and once when it is dropped on `interrupt`.
    #[serde(rename_all = "camelCase")]
    Played {
        turn_id: TurnId,
        /// Milliseconds of the turn's audio played to the listener.
        ms: u64,
    },
}

/// What parley sends as JSON text frames.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ServerMessage {
    /// First message of every connection.
    Session {
        session_id: String,
        user_id: String,
        /// The agent this session talks to (`?agent=`, the token's `agent` claim, or the default agent).
        agent: String,
        /// ElevenLabs output format of the binary audio frames, e.g. `mp3_44100_128`, `pcm_16000`.
        output_format: String,
        /// MIME type of those frames, e.g. `audio/mpeg`, `audio/pcm;rate=16000`.
        mime_type: String,
        /// Sample rate parley expects the client's PCM at.
        sample_rate: u32,
        /// True when this connection continues a stored session (`sessionId` was given).
        resumed: bool,
        /// Messages of the stored session loaded into the conversation.
        history_messages: usize,
        /// True when the providers are parley's local emulators (`--emulate`), not the real services.
        emulated: bool,
        /// Which service does each stage of this session, and whether it can: a client should not stream
        /// microphone audio while `stt` is `missing`, and can tell its user which variable the operator must set.
        /// (Boxed: the first message of a session need not make every message as large.)
        providers: Box<Providers>,
    },
    /// Live transcription of what the user is saying; `isFinal` parts will not change.
    Transcript { text: String, is_final: bool },
    /// An utterance was committed: the assistant starts answering it.
    UserTurn { turn_id: TurnId, text: String },
    /// One sentence (or clause) of the assistant's reply, as generated.
    AssistantText { turn_id: TurnId, text: String },
    /// Binary audio frames of this turn follow.
    AudioStart { turn_id: TurnId, mime_type: String },
    /// No more audio of this turn will be sent.
    AudioEnd { turn_id: TurnId },
    /// The turn is over; `interrupted` when the user cut it short.
    TurnEnd { turn_id: TurnId, interrupted: bool },
    /// Stop playing this turn now and drop everything buffered for it; no audio of it follows.
    Interrupt { turn_id: TurnId },
    /// A message of this turn was stored; `messageId` can be rated through `POST /api/feedback`.
    MessageSaved { turn_id: TurnId, role: crate::db::Role, message_id: i64 },
    /// Per-stage latency of a turn, milliseconds; absent stages are null.
    Latency {
        turn_id: TurnId,
        /// End of speech → utterance committed.
        stt_ms: Option<u64>,
        /// LLM request → first token.
        llm_first_token_ms: Option<u64>,
        /// First text to TTS → first audio byte back.
        tts_first_byte_ms: Option<u64>,
        /// End of speech (or the typed turn) → first audio frame sent.
        first_audio_ms: Option<u64>,
        /// End of speech → first audio heard by the listener (from the first `played`; null until then). When
        /// it arrives after the turn's end, a second `latency` event for the turn carries every figure again.
        heard_after_ms: Option<u64>,
    },
    /// Something worth showing the user that is not an error (e.g. a reconnect).
    Status { message: String },
    /// Something went wrong. `error` is the human-readable text (the original clients display it), `code` a
    /// stable identifier, `retryable` whether trying again may help.
    Error { error: String, code: String, retryable: bool },
    /// Answer to `ping`.
    Pong,
    /// The client is to run this tool and answer with `toolResult` (same `callId`) within the tool's timeout.
    ToolCall { turn_id: TurnId, call_id: String, name: String, arguments: serde_json::Value },
    /// How a tool call of the turn is going: `running`, `done`, `failed`, or `cancelled` (by a barge-in; any
    /// answer to it is ignored).
    Tool { turn_id: TurnId, call_id: String, name: String, status: &'static str },
    /// The agent ended the conversation; a normal close (1000) follows.
    End { reason: &'static str },
}

/// The services behind one session's three stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Providers {
    /// Speech recognition (Deepgram).
    pub stt: ProviderState,
    /// The language model (an OpenAI-compatible API; configured when any of the agent's LLMs has its key).
    pub llm: ProviderState,
    /// Speech synthesis (ElevenLabs).
    pub tts: ProviderState,
}

/// One stage's service, as the `session` message tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderState {
    /// `deepgram`, `openai` or `elevenlabs`.
    pub provider: &'static str,
    /// `configured` (its key is set), `emulated` (parley's local emulator, `--emulate`) or `missing` (no key:
    /// the stage fails with a `*_not_configured` error when it is needed).
    pub status: &'static str,
    /// The environment variable the key is read from: what the operator sets when `status` is `missing`.
    pub key_variable: String,
}

impl ServerMessage {
    pub fn error(code: &str, error: impl Into<String>, retryable: bool) -> ServerMessage {
        ServerMessage::Error { error: error.into(), code: code.to_string(), retryable }
    }

    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        // Serialising these plain data types cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","error":"encoding failed","code":"internal","retryable":false}"#.into()
        })
    }
}

/// Why a client text frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("message is not JSON: {0}")]
    Malformed(String),
    #[error("unknown message type {0:?}; expected closeMicrophone, text, interrupt, played, toolResult or ping")]
    UnknownType(String),
    #[error("message is missing its \"type\" field")]
    MissingType,
    #[error("invalid {kind} message: {reason}")]
    Invalid { kind: String, reason: String },
}

impl ProtocolError {
    /// The `code` of the error event.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::Malformed(_) => "invalid_json",
            ProtocolError::UnknownType(_) => "unknown_message_type",
            ProtocolError::MissingType => "missing_type",
            ProtocolError::Invalid { .. } => "invalid_message",
        }
    }
}

/// Parses a client text frame, telling apart bad JSON, unknown types and bad fields.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ProtocolError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    let kind = match value.get("type") {
        Some(serde_json::Value::String(k)) => k.clone(),
        Some(_) | None => return Err(ProtocolError::MissingType),
    };
    if !["closeMicrophone", "text", "interrupt", "played", "toolResult", "ping"].contains(&kind.as_str()) {
        return Err(ProtocolError::UnknownType(kind));
    }
    let message: ClientMessage = serde_json::from_value(value)
        .map_err(|e| ProtocolError::Invalid { kind: kind.clone(), reason: e.to_string() })?;
    if let ClientMessage::Text { text } = &message
        && text.trim().is_empty()
    {
        return Err(ProtocolError::Invalid { kind, reason: "text is empty".into() });
    }
    if let ClientMessage::ToolResult { call_id, .. } = &message
        && call_id.is_empty()
    {
        return Err(ProtocolError::Invalid { kind, reason: "callId is empty".into() });
    }
    Ok(message)
}

#[cfg(test)]
mod tests;
