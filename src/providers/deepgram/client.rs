//! What a Deepgram live-listen client sends as text frames (audio goes in binary frames), and the JSON body
//! of a refused upgrade (401/400/429... before any WebSocket exists).

use serde::{Deserialize, Serialize};

/// What a client sends as a text frame. Audio goes in binary frames and never through this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ClientMessage {
    /// No reply; resets the server's idle timer (send every 3–5 s while no audio flows).
    KeepAlive,
    /// Flush buffered audio; the resulting final carries `from_finalize: true` (or nothing comes back).
    Finalize {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<u32>,
    },
    /// Finish: remaining finals, then `Metadata`, then Close 1000.
    CloseStream,
}

impl ClientMessage {
    /// The JSON text of the frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The JSON body (and `dg-error` text) of a refused upgrade. Some 4xx bodies carry only `message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ErrorBody {
    #[serde(default)]
    pub err_code: String,
    #[serde(default)]
    pub err_msg: String,
    #[serde(default)]
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ErrorBody {
    /// The human-readable text, whichever field carries it.
    pub fn text(&self) -> &str {
        if self.err_msg.is_empty() { self.message.as_deref().unwrap_or("") } else { &self.err_msg }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_are_the_documented_json() {
        assert_eq!(ClientMessage::KeepAlive.to_json(), r#"{"type":"KeepAlive"}"#);
        assert_eq!(ClientMessage::CloseStream.to_json(), r#"{"type":"CloseStream"}"#);
        assert_eq!(ClientMessage::Finalize { channel: None }.to_json(), r#"{"type":"Finalize"}"#);
        let parsed: ClientMessage = serde_json::from_str(r#"{"type":"Finalize","channel":0}"#).unwrap();
        assert_eq!(parsed, ClientMessage::Finalize { channel: Some(0) });
    }

    #[test]
    fn refused_upgrade_bodies_of_both_shapes_give_their_text() {
        let b: ErrorBody =
            serde_json::from_str(r#"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.","request_id":"x"}"#)
                .unwrap();
        assert_eq!(b.text(), "Invalid credentials.");
        let b: ErrorBody = serde_json::from_str(r#"{"message":"Insufficient scope"}"#).unwrap();
        assert_eq!(b.text(), "Insufficient scope");
    }
}
