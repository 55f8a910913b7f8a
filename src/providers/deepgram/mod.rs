//! Deepgram live speech-to-text (`wss://api.deepgram.com/v1/listen`): the query options a stream is opened
//! with and the JSON frames exchanged on it. Used by parley's STT client actor and by the Deepgram emulator.
//! Spec: Deepgram's
//! live-streaming API reference (<https://developers.deepgram.com/reference/speech-to-text-api/listen-streaming>).

pub mod client;
pub mod messages;
pub mod options;

pub use client::{ClientMessage, ErrorBody};
pub use messages::{
    Alternative, ErrorMessage, MetadataMessage, ModelInfo, ResultChannel, ResultsMessage, ResultsMetadata,
    ServerMessage, SpeechStarted, UtteranceEnd, Word,
};
pub use options::{Endpointing, InvalidListenOption, ListenOptions};

/// Close code and reason prefix the server uses when no audio or text arrived within the idle window.
pub const NET_0001_REASON: &str =
    "Deepgram did not receive audio data or a text message within the timeout window. See https://dpgr.am/net0001";
/// Close reason when the server produced no response within its window (code 1011).
pub const NET_0000_REASON: &str =
    "Deepgram did not provide a response message within the timeout window. See https://dpgr.am/net0000";
/// Close reason when the payload could not be decoded as audio (code 1008).
pub const DATA_0000_REASON: &str = "DATA-0000: The payload cannot be decoded as audio. See https://dpgr.am/data0000";
