//! ElevenLabs text-to-speech: the WebSocket messages of `stream-input`/`multi-stream-input` and the HTTP
//! streaming endpoint's body and errors. Used by parley's TTS client actor and by the ElevenLabs emulator.
//! The `output_format` type is `crate::audio::OutputFormat`. Spec: ElevenLabs'
//! API reference (<https://elevenlabs.io/docs/api-reference/text-to-speech>, the WebSocket and multi-context
//! WebSocket pages).

pub mod http;
pub mod timestamps;
pub mod ws;

pub use http::{
    CharacterAlignment, ErrorDetail, HttpErrorBody, StatusDetail, TimestampedAudio, TtsRequest, ValidationIssue,
};
pub use timestamps::{LineDecoder, LineError};
pub use ws::{Alignment, ClientMessage, GenerationConfig, ServerMessage, VoiceSettings};

/// Most contexts one multi-stream socket may hold open.
pub const MAX_CONTEXTS: usize = 5;
/// Longest close reason a WebSocket allows (bytes); ElevenLabs cuts its reasons there.
pub const MAX_CLOSE_REASON_BYTES: usize = 123;
/// The default `chunk_length_schedule`.
pub const DEFAULT_CHUNK_LENGTH_SCHEDULE: [u32; 4] = [120, 160, 250, 290];
