//! The ElevenLabs HTTP streaming endpoint `POST /v1/text-to-speech/{voice_id}/stream`: its JSON body and its
//! error body, whose `detail` is either an object (`{"status","message"}`) or a FastAPI validation array
//! (`[{"loc","msg","type"}]`). Clients must accept both.

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
    fn a_request_needs_only_text_and_keeps_stitching_fields() {
        let r: TtsRequest = serde_json::from_str(r#"{"text":"Hi. ","previous_text":"Hello."}"#).unwrap();
        assert_eq!(r.previous_text.as_deref(), Some("Hello."));
        assert!(serde_json::from_str::<TtsRequest>(r#"{"model_id":"m"}"#).is_err());
    }
}
