//! Messages of the ElevenLabs text-to-speech WebSockets, `stream-input` (one context) and
//! `multi-stream-input` (up to five contexts). Clients send snake_case (`context_id`, `xi_api_key`); the server
//! answers in camelCase (`contextId`, `isFinal`, `charStartTimesMs`). Vendor examples and SDKs disagree on a few
//! spellings, so both are read: `isFinal`/`is_final`, `charDurationsMs`/`charsDurationsMs`,
//! `xi_api_key`/`xi-api-key`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Voice settings; only allowed in the first message (repeating them unchanged is tolerated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct VoiceSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_boost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_speaker_boost: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `generation_config`: characters that must accumulate before the 1st, 2nd, ... generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GenerationConfig {
    /// Read from any JSON numbers: the official Python SDK types it `List[float]` and sends `[120.0, 160.0]`.
    /// A fractional threshold is rounded up (a buffer of whole characters reaches 120.5 at 121); negative,
    /// non-finite and non-numeric entries are refused. The documented range is 50–500 per entry.
    #[serde(default, deserialize_with = "schedule_from_numbers", skip_serializing_if = "Option::is_none")]
    pub chunk_length_schedule: Option<Vec<u32>>,
}

/// `chunk_length_schedule` from JSON numbers of any kind (integers or floats), as character counts.
fn schedule_from_numbers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u32>>, D::Error> {
    use serde::de::Error as _;
    let Some(numbers) = Option::<Vec<serde_json::Number>>::deserialize(d)? else {
        return Ok(None);
    };
    numbers
        .iter()
        .map(|n| match n.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 && x.ceil() <= f64::from(u32::MAX) => Ok(x.ceil() as u32),
            _ => Err(D::Error::custom(format!(
                "chunk_length_schedule entries must be non-negative numbers of characters, got {n}"
            ))),
        })
        .collect::<Result<Vec<u32>, _>>()
        .map(Some)
}

/// Any client message of either socket; the constructors build the documented shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClientMessage {
    /// `" "` to initialise, text ending in a space, `""` to end (single) or keep a context alive (multi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_settings: Option<VoiceSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
    /// API key in the first message, when not sent as the `xi-api-key` header.
    #[serde(default, alias = "xi-api-key", skip_serializing_if = "Option::is_none")]
    pub xi_api_key: Option<String>,
    /// Bearer token alternative to the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub try_trigger_generation: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_context: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_socket: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pronunciation_dictionary_locators: Option<Vec<Value>>,
}

impl ClientMessage {
    /// The first message of a single-context socket (`text: " "`), or of a context when `context_id` is set.
    pub fn init(voice_settings: Option<VoiceSettings>, schedule: Option<Vec<u32>>) -> Self {
        ClientMessage {
            text: Some(" ".to_string()),
            voice_settings,
            generation_config: schedule.map(|s| GenerationConfig { chunk_length_schedule: Some(s) }),
            ..Default::default()
        }
    }

    /// A text chunk (should end with a space).
    pub fn text(text: impl Into<String>) -> Self {
        ClientMessage { text: Some(text.into()), ..Default::default() }
    }

    /// Force generation of everything buffered (with optional final text).
    pub fn flush(text: Option<String>) -> Self {
        ClientMessage { text, flush: Some(true), ..Default::default() }
    }

    /// Single-context keepalive: a single space (an empty string would end the stream).
    pub fn keepalive() -> Self {
        Self::text(" ")
    }

    /// Single-context end of input: `{"text":""}`.
    pub fn end_of_input() -> Self {
        Self::text("")
    }

    /// Multi-context keepalive for one context: `{"text":"","context_id":..}`.
    pub fn keep_context_alive(context_id: impl Into<String>) -> Self {
        Self::text("").in_context(context_id)
    }

    /// Multi-context: close one context (its `isFinal` follows after any audio in flight).
    pub fn close_context(context_id: impl Into<String>) -> Self {
        ClientMessage { close_context: Some(true), ..Default::default() }.in_context(context_id)
    }

    /// Multi-context: flush every context, then the server closes the socket.
    pub fn close_socket() -> Self {
        ClientMessage { close_socket: Some(true), ..Default::default() }
    }

    /// The same message addressed to a context.
    pub fn in_context(mut self, context_id: impl Into<String>) -> Self {
        self.context_id = Some(context_id.into());
        self
    }

    /// The JSON text of the frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Character timings of one audio chunk, in ms relative to the start of that chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Alignment {
    #[serde(default)]
    pub chars: Vec<String>,
    #[serde(rename = "charStartTimesMs", default)]
    pub char_start_times_ms: Vec<u32>,
    #[serde(rename = "charDurationsMs", alias = "charsDurationsMs", default)]
    pub char_durations_ms: Vec<u32>,
}

/// Any server message: an audio chunk, a final marker, or an error (`message`/`error`/`code`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServerMessage {
    /// Base64 audio in the requested output format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<String>,
    #[serde(rename = "isFinal", alias = "is_final", default, skip_serializing_if = "Option::is_none")]
    pub is_final: Option<bool>,
    #[serde(rename = "normalizedAlignment", alias = "normalized_alignment", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalized_alignment: Option<Alignment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<Alignment>,
    #[serde(rename = "contextId", alias = "context_id", default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

impl ServerMessage {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// True for the end-of-stream (or end-of-context) marker.
    pub fn is_final(&self) -> bool {
        self.is_final == Some(true)
    }

    /// True for an in-band error; a Close (usually 1008) follows.
    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }

    /// The decoded audio bytes; empty when the message carries none.
    pub fn audio_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        match self.audio.as_deref() {
            Some(a) if !a.is_empty() => base64::engine::general_purpose::STANDARD.decode(a),
            _ => Ok(Vec::new()),
        }
    }

    /// An in-band error message as the service sends it before closing.
    pub fn error(error: &str, message: &str, code: u16) -> Self {
        ServerMessage {
            message: Some(message.to_string()),
            error: Some(error.to_string()),
            code: Some(code),
            ..Default::default()
        }
    }

    /// The JSON text of the frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_final_and_durations_and_context_are_read() {
        let a = ServerMessage::parse(
            r#"{"audio":"AAE=","isFinal":null,"contextId":"t1",
                "alignment":{"chars":["H","i"],"charStartTimesMs":[0,90],"charsDurationsMs":[90,50]}}"#,
        )
        .unwrap();
        assert!(!a.is_final());
        assert_eq!(a.context_id.as_deref(), Some("t1"));
        assert_eq!(a.alignment.unwrap().char_durations_ms, vec![90, 50]);
        assert_eq!(ServerMessage::default().audio_bytes().unwrap(), Vec::<u8>::new());
        let f = ServerMessage::parse(r#"{"is_final":true,"context_id":"t1"}"#).unwrap();
        assert!(f.is_final());
        assert!(ServerMessage::parse(r#"{"isFinal":true}"#).unwrap().is_final());
    }

    #[test]
    fn audio_decodes_from_base64_and_errors_are_recognised() {
        let a = ServerMessage::parse(r#"{"audio":"AAE="}"#).unwrap();
        assert_eq!(a.audio_bytes().unwrap(), vec![0, 1]);
        let e = ServerMessage::parse(
            r#"{"message":"Have not received a new text input","error":"input_timeout_exceeded","code":1008}"#,
        )
        .unwrap();
        assert!(e.is_error());
        assert_eq!(e.code, Some(1008));
    }

    #[test]
    fn the_api_key_is_read_in_both_spellings_and_sent_as_xi_api_key() {
        let m: ClientMessage = serde_json::from_str(r#"{"text":" ","xi-api-key":"k"}"#).unwrap();
        assert_eq!(m.xi_api_key.as_deref(), Some("k"));
        let m: ClientMessage = serde_json::from_str(r#"{"text":" ","xi_api_key":"k"}"#).unwrap();
        assert!(m.to_json().contains(r#""xi_api_key":"k""#));
    }

    #[test]
    fn chunk_length_schedule_accepts_any_json_number_and_refuses_negatives_and_non_numbers() {
        let schedule = |json: &str| {
            serde_json::from_str::<ClientMessage>(json)
                .map(|m| m.generation_config.and_then(|g| g.chunk_length_schedule))
        };
        let sdk_floats = r#"{"text":" ","generation_config":{"chunk_length_schedule":[120.0,160.0,250.0,290.0]}}"#;
        assert_eq!(schedule(sdk_floats).unwrap(), Some(vec![120, 160, 250, 290]));
        let mixed = r#"{"text":" ","generation_config":{"chunk_length_schedule":[50,120.5,1e2]}}"#;
        assert_eq!(schedule(mixed).unwrap(), Some(vec![50, 121, 100]));
        assert_eq!(schedule(r#"{"text":" ","generation_config":{}}"#).unwrap(), None);
        assert_eq!(schedule(r#"{"text":" ","generation_config":{"chunk_length_schedule":null}}"#).unwrap(), None);
        for bad in ["[-50]", "[\"120\"]", "[true]", "[1e20]", "120"] {
            let json = format!(r#"{{"text":" ","generation_config":{{"chunk_length_schedule":{bad}}}}}"#);
            assert!(schedule(&json).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn constructors_build_the_documented_shapes() {
        assert_eq!(ClientMessage::end_of_input().to_json(), r#"{"text":""}"#);
        assert_eq!(ClientMessage::keepalive().to_json(), r#"{"text":" "}"#);
        assert_eq!(ClientMessage::close_context("t1").to_json(), r#"{"context_id":"t1","close_context":true}"#);
        assert_eq!(ClientMessage::keep_context_alive("t2").to_json(), r#"{"text":"","context_id":"t2"}"#);
        let init = ClientMessage::init(None, Some(vec![50, 120])).to_json();
        assert_eq!(init, r#"{"text":" ","generation_config":{"chunk_length_schedule":[50,120]}}"#);
    }
}
