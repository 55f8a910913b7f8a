//! The error object of an OpenAI-compatible API: the whole body of a non-2xx response (plain JSON, never SSE,
//! even for `stream: true`) and the payload of a mid-stream `data: {"error": ...}` event.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: ApiError,
}

/// The error itself. `code` is a string at OpenAI, a number at some compatible servers: both are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ApiError {
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
}

impl ApiErrorBody {
    /// An error body with the given message, type and code.
    pub fn new(message: impl Into<String>, kind: &str, code: Option<&str>) -> Self {
        ApiErrorBody {
            error: ApiError {
                message: message.into(),
                kind: Some(kind.to_string()),
                param: None,
                code: code.map(str::to_string),
            },
        }
    }

    /// The JSON text of the body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_with_string_numeric_and_null_codes_parse() {
        let b: ApiErrorBody = serde_json::from_str(
            r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
        )
        .unwrap();
        assert_eq!(b.error.code.as_deref(), Some("invalid_api_key"));
        let b: ApiErrorBody = serde_json::from_str(r#"{"error":{"message":"x","code":500}}"#).unwrap();
        assert_eq!(b.error.code.as_deref(), Some("500"));
        let b: ApiErrorBody = serde_json::from_str(r#"{"error":{"message":"x","code":null}}"#).unwrap();
        assert_eq!(b.error.code, None);
    }
}
