//! The ElevenLabs HTTP streaming endpoints `POST /v1/text-to-speech/{voice_id}/stream` (raw audio) and
//! `.../stream/with-timestamps` (newline-delimited JSON lines of base64 audio with character timings): the
//! JSON request body, the lines of the timestamped stream, and the error body, whose `detail` is either an
//! object (`{"status","message"}`) or a FastAPI validation array (`[{"loc","msg","type"}]`). Clients must
//! accept both.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ws::VoiceSettings;

/// The request body; only `text` is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TtsRequest {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_settings: Option<VoiceSettings>,
    /// Text spoken before this one, for prosody stitching (ignored when `previous_request_ids` is sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_text: Option<String>,
    /// `request-id` headers of up to three earlier requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_request_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_request_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_text_normalization: Option<String>,
}

/// Character timings of the `with-timestamps` endpoints: snake_case and seconds, unlike the WebSocket's
/// camelCase milliseconds. On the streaming endpoint every line's times count from the start of the
/// request's audio, not from the start of the line's own audio (the WebSocket's convention): pipecat's HTTP
/// service, for one, uses them as they come within a request and offsets only later requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CharacterAlignment {
    #[serde(default)]
    pub characters: Vec<String>,
    #[serde(default)]
    pub character_start_times_seconds: Vec<f64>,
    #[serde(default)]
    pub character_end_times_seconds: Vec<f64>,
}

/// One line of `POST /v1/text-to-speech/{voice_id}/stream/with-timestamps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TimestampedAudio {
    /// Base64 audio in the requested output format.
    #[serde(default)]
    pub audio_base64: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<CharacterAlignment>,
    /// The same for the normalised text (numbers spelled out etc.).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized_alignment: Option<CharacterAlignment>,
}

impl TimestampedAudio {
    /// Parses one line of the stream (surrounding whitespace allowed).
    pub fn parse(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line.trim())
    }

    /// The decoded audio bytes.
    pub fn audio_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.audio_base64)
    }

    /// The line as sent: the JSON object and its newline.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

/// One FastAPI validation issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ValidationIssue {
    #[serde(default)]
    pub loc: Vec<Value>,
    #[serde(default)]
    pub msg: String,
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// The object form of `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StatusDetail {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub message: String,
}

/// `detail`, in whichever shape the server chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorDetail {
    Status(StatusDetail),
    Validation(Vec<ValidationIssue>),
    /// A string or a shape newer than this type.
    Other(Value),
}

/// `{"detail": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpErrorBody {
    pub detail: ErrorDetail,
}

impl HttpErrorBody {
    /// An object-form error.
    pub fn status(status: &str, message: &str) -> Self {
        HttpErrorBody {
            detail: ErrorDetail::Status(StatusDetail { status: status.to_string(), message: message.to_string() }),
        }
    }

    /// An array-form (validation) error with one issue.
    pub fn validation(loc: &[&str], msg: &str, kind: &str) -> Self {
        HttpErrorBody {
            detail: ErrorDetail::Validation(vec![ValidationIssue {
                loc: loc.iter().map(|l| Value::String(l.to_string())).collect(),
                msg: msg.to_string(),
                kind: kind.to_string(),
            }]),
        }
    }

    /// A readable summary whatever the shape.
    pub fn message(&self) -> String {
        match &self.detail {
            ErrorDetail::Status(s) => format!("{}: {}", s.status, s.message),
            ErrorDetail::Validation(issues) => issues
                .iter()
                .map(|i| {
                    let loc: Vec<String> =
                        i.loc.iter().map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_string)).collect();
                    format!("{}: {}", loc.join("."), i.msg)
                })
                .collect::<Vec<_>>()
                .join("; "),
            ErrorDetail::Other(v) => v.as_str().map_or_else(|| v.to_string(), str::to_string),
        }
    }

    /// The JSON text of the body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_detail_shapes_parse_and_summarise() {
        let b: HttpErrorBody =
            serde_json::from_str(r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key","extra":1}}"#)
                .unwrap();
        assert_eq!(b.message(), "invalid_api_key: Invalid API key");
        let b: HttpErrorBody =
            serde_json::from_str(r#"{"detail":[{"loc":["body","text"],"msg":"Field required","type":"missing"}]}"#)
                .unwrap();
        assert_eq!(b.message(), "body.text: Field required");
        let b: HttpErrorBody = serde_json::from_str(r#"{"detail":"Not Found"}"#).unwrap();
        assert_eq!(b.message(), "Not Found");
    }

    #[test]
    fn a_timestamped_line_round_trips_in_snake_case_seconds() {
        let line = r#"{"audio_base64":"AAE=","alignment":{"characters":["H","i"],"character_start_times_seconds":[0.0,0.07],"character_end_times_seconds":[0.07,0.13]},"normalized_alignment":null}"#;
        let t = TimestampedAudio::parse(&format!("{line}\n")).unwrap();
        assert_eq!(t.audio_bytes().unwrap(), vec![0, 1]);
        let a = t.alignment.as_ref().unwrap();
        assert_eq!(a.characters, ["H", "i"]);
        assert_eq!(a.character_end_times_seconds, [0.07, 0.13]);
        assert!(t.normalized_alignment.is_none());
        let out = t.to_line();
        assert!(out.ends_with("}\n") && out.contains(r#""character_start_times_seconds":[0.0,0.07]"#));
    }

    #[test]
    fn a_request_needs_only_text_and_keeps_stitching_fields() {
        let r: TtsRequest = serde_json::from_str(r#"{"text":"Hi. ","previous_text":"Hello."}"#).unwrap();
        assert_eq!(r.previous_text.as_deref(), Some("Hello."));
        assert!(serde_json::from_str::<TtsRequest>(r#"{"model_id":"m"}"#).is_err());
    }
}
