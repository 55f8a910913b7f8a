//! The JSON text frames of a bidirectional Media Stream (Twilio's "Media Streams - WebSocket Messages"),
//! both ways. Fields parley does not use are left out; unknown fields are ignored, as Twilio adds some.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// What Twilio sends, by its `event` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum FromTwilio {
    /// First message: the protocol.
    Connected {
        #[serde(default)]
        protocol: String,
        #[serde(default)]
        version: String,
    },
    /// The stream began: who calls, in what format, with the TwiML `<Parameter>`s.
    Start {
        #[serde(rename = "streamSid")]
        stream_sid: String,
        start: Start,
    },
    /// Caller audio.
    Media {
        #[serde(rename = "streamSid", default)]
        stream_sid: String,
        media: MediaIn,
    },
    /// A key the caller pressed.
    Dtmf {
        #[serde(rename = "streamSid", default)]
        stream_sid: String,
        dtmf: Dtmf,
    },
    /// The audio sent before the mark of this name has been played (or was cleared).
    Mark {
        #[serde(rename = "streamSid", default)]
        stream_sid: String,
        mark: Mark,
    },
    /// The call or the stream ended.
    Stop {
        #[serde(rename = "streamSid", default)]
        stream_sid: String,
    },
}

/// The `start` message's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    #[serde(default)]
    pub account_sid: String,
    #[serde(default)]
    pub call_sid: String,
    #[serde(default)]
    pub tracks: Vec<String>,
    pub media_format: MediaFormat,
    /// The TwiML `<Parameter>`s, as the webhook wrote them.
    #[serde(default)]
    pub custom_parameters: BTreeMap<String, String>,
}

/// `{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    pub encoding: String,
    pub sample_rate: u32,
    pub channels: u32,
}

impl MediaFormat {
    /// The one format a phone call streams in.
    pub fn is_mulaw_8k_mono(&self) -> bool {
        self.encoding == "audio/x-mulaw" && self.sample_rate == 8000 && self.channels == 1
    }
}

/// One frame of caller audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaIn {
    /// `inbound` for the caller (absent on single-track streams).
    #[serde(default)]
    pub track: Option<String>,
    /// Base64 of raw μ-law bytes.
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dtmf {
    #[serde(default)]
    pub track: Option<String>,
    pub digit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub name: String,
}

/// What parley sends to Twilio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum ToTwilio {
    /// Audio to play, queued after what was sent before.
    Media {
        #[serde(rename = "streamSid")]
        stream_sid: String,
        media: MediaOut,
    },
    /// Echoed back when everything sent before it has played.
    Mark {
        #[serde(rename = "streamSid")]
        stream_sid: String,
        mark: Mark,
    },
    /// Drops every queued frame (barge-in); pending marks come back at once.
    Clear {
        #[serde(rename = "streamSid")]
        stream_sid: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaOut {
    /// Base64 of raw μ-law 8 kHz mono bytes, no header.
    pub payload: String,
}

impl ToTwilio {
    pub fn media(stream_sid: &str, mulaw: &[u8]) -> ToTwilio {
        ToTwilio::Media {
            stream_sid: stream_sid.to_string(),
            media: MediaOut { payload: base64::engine::general_purpose::STANDARD.encode(mulaw) },
        }
    }

    pub fn mark(stream_sid: &str, name: impl Into<String>) -> ToTwilio {
        ToTwilio::Mark { stream_sid: stream_sid.to_string(), mark: Mark { name: name.into() } }
    }

    pub fn to_json(&self) -> String {
        // Plain strings and structs: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The audio of a `media` message, decoded.
pub fn decode_payload(payload: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilios_documented_messages_parse() {
        let start = r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"AC1",
            "streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw",
            "sampleRate":8000,"channels":1},"customParameters":{"agent":"support"}}}"#;
        let FromTwilio::Start { stream_sid, start } = serde_json::from_str(start).unwrap() else { panic!() };
        assert_eq!(stream_sid, "MZ1");
        assert_eq!(start.call_sid, "CA1");
        assert!(start.media_format.is_mulaw_8k_mono());
        assert_eq!(start.custom_parameters["agent"], "support");

        let media = r#"{"event":"media","sequenceNumber":"3","streamSid":"MZ1","media":{"track":"inbound",
            "chunk":"2","timestamp":"20","payload":"/38="}}"#;
        let FromTwilio::Media { media, .. } = serde_json::from_str(media).unwrap() else { panic!() };
        assert_eq!(decode_payload(&media.payload).unwrap(), vec![0xFF, 0x7F]);

        let dtmf =
            r#"{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}"#;
        assert!(matches!(serde_json::from_str(dtmf).unwrap(), FromTwilio::Dtmf { dtmf, .. } if dtmf.digit == "1"));
        let mark = r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"t3:1240"}}"#;
        assert!(matches!(serde_json::from_str(mark).unwrap(), FromTwilio::Mark { mark, .. } if mark.name == "t3:1240"));
        let stop =
            r#"{"event":"stop","sequenceNumber":"9","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}"#;
        assert!(matches!(serde_json::from_str(stop).unwrap(), FromTwilio::Stop { .. }));
        let connected = r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#;
        assert!(matches!(serde_json::from_str(connected).unwrap(), FromTwilio::Connected { .. }));
    }

    #[test]
    fn outgoing_messages_are_twilios_shape() {
        assert_eq!(
            ToTwilio::media("MZ1", &[0xFF, 0x7F]).to_json(),
            r#"{"event":"media","streamSid":"MZ1","media":{"payload":"/38="}}"#
        );
        assert_eq!(
            ToTwilio::mark("MZ1", "t1:20").to_json(),
            r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"t1:20"}}"#
        );
        assert_eq!(ToTwilio::Clear { stream_sid: "MZ1".into() }.to_json(), r#"{"event":"clear","streamSid":"MZ1"}"#);
    }
}
