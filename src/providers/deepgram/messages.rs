//! Deepgram live-listen messages the server sends as text frames.
//! Server frames are discriminated by `type`; a `type` this module does not know is kept as raw JSON
//! (`ServerMessage::Unknown`) because Deepgram adds new ones over time and a client must not fail on them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One timed word of a transcript (times in seconds of audio stream time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Word {
    pub word: String,
    pub start: f64,
    pub end: f64,
    #[serde(default)]
    pub confidence: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub punctuated_word: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<u32>,
}

/// One transcription hypothesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Alternative {
    pub transcript: String,
    #[serde(default)]
    pub confidence: f64,
    #[serde(default)]
    pub words: Vec<Word>,
}

/// The `channel` object of a `Results` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResultChannel {
    #[serde(default)]
    pub alternatives: Vec<Alternative>,
}

/// `model_info` inside a result's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ModelInfo {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub arch: String,
}

/// The `metadata` object of a `Results` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResultsMetadata {
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub model_uuid: String,
    #[serde(default)]
    pub model_info: ModelInfo,
}

/// A transcript for a span of audio. `start`/`duration` are audio-stream seconds, not wall clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResultsMessage {
    /// `[this_channel, total_channels]`.
    #[serde(default)]
    pub channel_index: Vec<u32>,
    pub start: f64,
    pub duration: f64,
    /// False for an interim hypothesis that will be revised.
    #[serde(default)]
    pub is_final: bool,
    /// End-of-turn hint from endpointing; only ever true together with `is_final`.
    #[serde(default)]
    pub speech_final: bool,
    /// This final answers a client `Finalize`.
    #[serde(default)]
    pub from_finalize: bool,
    #[serde(default)]
    pub channel: ResultChannel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ResultsMetadata>,
}

impl ResultsMessage {
    /// The best transcript (first alternative), `""` when there is none. Empty finals are normal.
    pub fn transcript(&self) -> &str {
        self.channel.alternatives.first().map(|a| a.transcript.as_str()).unwrap_or("")
    }
}

/// Summary sent after `CloseStream`, just before the server's Close 1000.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MetadataMessage {
    #[serde(default)]
    pub transaction_key: String,
    #[serde(default)]
    pub request_id: String,
    /// Hex SHA-256 of the audio received.
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub created: String,
    /// Seconds of audio received.
    #[serde(default)]
    pub duration: f64,
    #[serde(default)]
    pub channels: u32,
}

/// Sent when `utterance_end_ms` of silence followed the last finalized word (needs `interim_results`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UtteranceEnd {
    #[serde(default)]
    pub channel: Vec<u32>,
    pub last_word_end: f64,
}

/// Sent when speech begins (needs `vad_events=true`); `timestamp` is audio-stream seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SpeechStarted {
    #[serde(default)]
    pub channel: Vec<u32>,
    pub timestamp: f64,
}

/// The rare in-band error frame; its shape is loosely documented, so every field is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ErrorMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err_msg: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type")]
enum Known {
    Results(ResultsMessage),
    Metadata(MetadataMessage),
    UtteranceEnd(UtteranceEnd),
    SpeechStarted(SpeechStarted),
    Error(ErrorMessage),
}

const KNOWN_TYPES: [&str; 5] = ["Results", "Metadata", "UtteranceEnd", "SpeechStarted", "Error"];

/// What the server sends as a text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    Results(ResultsMessage),
    Metadata(MetadataMessage),
    UtteranceEnd(UtteranceEnd),
    SpeechStarted(SpeechStarted),
    Error(ErrorMessage),
    /// A frame whose `type` is missing or not one of the above, kept whole. Not an error.
    Unknown(Value),
}

impl ServerMessage {
    /// Parses one text frame. Fails only on invalid JSON or a known `type` with a malformed body.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let value: Value = serde_json::from_str(text)?;
        let known = value.get("type").and_then(Value::as_str).is_some_and(|t| KNOWN_TYPES.contains(&t));
        if !known {
            return Ok(ServerMessage::Unknown(value));
        }
        Ok(match serde_json::from_value::<Known>(value)? {
            Known::Results(m) => ServerMessage::Results(m),
            Known::Metadata(m) => ServerMessage::Metadata(m),
            Known::UtteranceEnd(m) => ServerMessage::UtteranceEnd(m),
            Known::SpeechStarted(m) => ServerMessage::SpeechStarted(m),
            Known::Error(m) => ServerMessage::Error(m),
        })
    }

    /// The JSON text of the frame (with its `type`).
    pub fn to_json(&self) -> String {
        let known = match self.clone() {
            ServerMessage::Results(m) => Known::Results(m),
            ServerMessage::Metadata(m) => Known::Metadata(m),
            ServerMessage::UtteranceEnd(m) => Known::UtteranceEnd(m),
            ServerMessage::SpeechStarted(m) => Known::SpeechStarted(m),
            ServerMessage::Error(m) => Known::Error(m),
            ServerMessage::Unknown(v) => return v.to_string(),
        };
        serde_json::to_string(&known).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_results_frame_parses_with_its_transcript_and_word_times() {
        let text = r#"{"type":"Results","channel_index":[0,1],"start":3.02,"duration":1.08,
            "is_final":true,"speech_final":false,"from_finalize":false,
            "channel":{"alternatives":[{"transcript":"book a table","confidence":0.98,
            "words":[{"word":"book","start":3.10,"end":3.32,"confidence":0.99,"punctuated_word":"Book"}]}]},
            "metadata":{"request_id":"r","model_uuid":"u","model_info":{"name":"n","version":"v","arch":"a"}}}"#;
        let ServerMessage::Results(r) = ServerMessage::parse(text).unwrap() else { panic!("not results") };
        assert_eq!(r.transcript(), "book a table");
        assert!(r.is_final && !r.speech_final);
        assert_eq!(r.channel.alternatives[0].words[0].end, 3.32);
    }

    #[test]
    fn unknown_and_untyped_frames_are_kept_not_rejected() {
        let m = ServerMessage::parse(r#"{"type":"SomethingNew","x":1}"#).unwrap();
        assert!(matches!(m, ServerMessage::Unknown(v) if v["x"] == 1));
        assert!(matches!(ServerMessage::parse(r#"{"x":1}"#).unwrap(), ServerMessage::Unknown(_)));
    }

    #[test]
    fn utterance_end_speech_started_metadata_and_error_parse() {
        let m = ServerMessage::parse(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":4.38}"#);
        assert!(matches!(m.unwrap(), ServerMessage::UtteranceEnd(u) if u.last_word_end == 4.38));
        let m = ServerMessage::parse(r#"{"type":"SpeechStarted","channel":[0,1],"timestamp":0.48}"#);
        assert!(matches!(m.unwrap(), ServerMessage::SpeechStarted(s) if s.timestamp == 0.48));
        let m = ServerMessage::parse(
            r#"{"type":"Metadata","transaction_key":"deprecated","request_id":"r","sha256":"ab","created":"c","duration":12.5,"channels":1}"#,
        );
        assert!(matches!(m.unwrap(), ServerMessage::Metadata(d) if d.duration == 12.5));
        let m = ServerMessage::parse(r#"{"type":"Error","description":"bad","variant":"x"}"#);
        assert!(matches!(m.unwrap(), ServerMessage::Error(e) if e.description.as_deref() == Some("bad")));
    }

    #[test]
    fn server_messages_serialize_with_their_type_tag() {
        let m = ServerMessage::SpeechStarted(SpeechStarted { channel: vec![0, 1], timestamp: 1.5 });
        let back = ServerMessage::parse(&m.to_json()).unwrap();
        assert_eq!(back, m);
        assert!(m.to_json().contains(r#""type":"SpeechStarted""#));
    }
}
