//! The Media Streams messages as JSON: what the emulated Twilio sends (`connected`, `start`, `media`, `dtmf`,
//! `mark`, `stop`, shaped as Twilio's "WebSocket Messages" page shows them: numbers as strings) and what it
//! reads from the server (`media`, `mark`, `clear`). Pure code.

use base64::Engine as _;
use serde_json::{Value, json};

/// The ids every message of one stream carries.
#[derive(Debug, Clone)]
pub struct StreamIds {
    pub account_sid: String,
    pub call_sid: String,
    pub stream_sid: String,
}

/// `{"event":"connected","protocol":"Call","version":"1.0.0"}`
pub fn connected() -> Value {
    json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
}

/// `start`, with the TwiML's `<Parameter>`s as `customParameters`.
pub fn start(ids: &StreamIds, sequence: u64, parameters: &[(String, String)]) -> Value {
    let custom: serde_json::Map<String, Value> =
        parameters.iter().map(|(n, v)| (n.clone(), Value::String(v.clone()))).collect();
    json!({
        "event": "start",
        "sequenceNumber": sequence.to_string(),
        "start": {
            "accountSid": ids.account_sid,
            "streamSid": ids.stream_sid,
            "callSid": ids.call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": custom,
        },
        "streamSid": ids.stream_sid,
    })
}

/// One `media` frame of the caller's audio; `timestamp_ms` counts from the start of the stream.
pub fn media(ids: &StreamIds, sequence: u64, chunk: u64, timestamp_ms: u64, mulaw: &[u8]) -> Value {
    json!({
        "event": "media",
        "sequenceNumber": sequence.to_string(),
        "media": {
            "track": "inbound",
            "chunk": chunk.to_string(),
            "timestamp": timestamp_ms.to_string(),
            "payload": base64::engine::general_purpose::STANDARD.encode(mulaw),
        },
        "streamSid": ids.stream_sid,
    })
}

/// A key press.
pub fn dtmf(ids: &StreamIds, sequence: u64, digit: char) -> Value {
    json!({
        "event": "dtmf",
        "streamSid": ids.stream_sid,
        "sequenceNumber": sequence.to_string(),
        "dtmf": {"track": "inbound_track", "digit": digit.to_string()},
    })
}

/// A mark echoed back: the audio the server sent before it has played (or was cleared).
pub fn mark(ids: &StreamIds, sequence: u64, name: &str) -> Value {
    json!({
        "event": "mark",
        "sequenceNumber": sequence.to_string(),
        "streamSid": ids.stream_sid,
        "mark": {"name": name},
    })
}

/// The end of the stream (the caller hung up).
pub fn stop(ids: &StreamIds, sequence: u64) -> Value {
    json!({
        "event": "stop",
        "sequenceNumber": sequence.to_string(),
        "streamSid": ids.stream_sid,
        "stop": {"accountSid": ids.account_sid, "callSid": ids.call_sid},
    })
}

/// A message the server sent, as the emulated Twilio understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Audio to queue for playback.
    Media(Vec<u8>),
    /// A mark to echo once the audio before it has played.
    Mark(String),
    /// Drop the queued audio; echo pending marks now.
    Clear,
}

/// Reads a server message: `Ok` with what to do, or `Err` with what is wrong with it (an unknown event, a
/// missing field, a `streamSid` of another stream, a payload that is not base64). `expected_sid` is this
/// stream's id.
pub fn parse_incoming(message: &Value, expected_sid: &str) -> Result<Incoming, String> {
    let event = message.get("event").and_then(Value::as_str).ok_or("a message without an \"event\"")?;
    match message.get("streamSid").and_then(Value::as_str) {
        Some(sid) if sid == expected_sid => {}
        Some(sid) => return Err(format!("{event}: streamSid {sid:?} is not this stream's ({expected_sid})")),
        None => return Err(format!("{event}: no streamSid")),
    }
    match event {
        "media" => {
            let payload =
                message.pointer("/media/payload").and_then(Value::as_str).ok_or("media: no media.payload string")?;
            base64::engine::general_purpose::STANDARD
                .decode(payload)
                .map(Incoming::Media)
                .map_err(|e| format!("media: payload is not base64 ({e})"))
        }
        "mark" => message
            .pointer("/mark/name")
            .and_then(Value::as_str)
            .map(|n| Incoming::Mark(n.to_string()))
            .ok_or_else(|| "mark: no mark.name string".to_string()),
        "clear" => Ok(Incoming::Clear),
        other => Err(format!("unknown event {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> StreamIds {
        StreamIds { account_sid: "AC1".into(), call_sid: "CA1".into(), stream_sid: "MZ1".into() }
    }

    #[test]
    fn outgoing_messages_have_twilios_shapes() {
        assert_eq!(connected(), json!({"event":"connected","protocol":"Call","version":"1.0.0"}));
        let s = start(&ids(), 1, &[("agent".into(), "support".into())]);
        assert_eq!(
            s,
            json!({"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"AC1",
                "streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],
                "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},
                "customParameters":{"agent":"support"}}})
        );
        assert_eq!(
            media(&ids(), 3, 2, 20, &[0xFF, 0x7F]),
            json!({"event":"media","sequenceNumber":"3","streamSid":"MZ1",
                "media":{"track":"inbound","chunk":"2","timestamp":"20","payload":"/38="}})
        );
        assert_eq!(
            dtmf(&ids(), 5, '1'),
            json!({"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}})
        );
        assert_eq!(
            mark(&ids(), 4, "m"),
            json!({"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"m"}})
        );
        assert_eq!(
            stop(&ids(), 9),
            json!({"event":"stop","sequenceNumber":"9","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}})
        );
    }

    #[test]
    fn server_messages_parse_and_mistakes_are_named() {
        let p = |v: Value| parse_incoming(&v, "MZ1");
        assert_eq!(
            p(json!({"event":"media","streamSid":"MZ1","media":{"payload":"/38="}})),
            Ok(Incoming::Media(vec![0xFF, 0x7F]))
        );
        assert_eq!(p(json!({"event":"mark","streamSid":"MZ1","mark":{"name":"a"}})), Ok(Incoming::Mark("a".into())));
        assert_eq!(p(json!({"event":"clear","streamSid":"MZ1"})), Ok(Incoming::Clear));
        assert!(p(json!({"event":"clear","streamSid":"MZ2"})).unwrap_err().contains("not this stream"));
        assert!(p(json!({"event":"clear"})).unwrap_err().contains("no streamSid"));
        assert!(p(json!({"event":"media","streamSid":"MZ1","media":{"payload":"!!"}})).unwrap_err().contains("base64"));
        assert!(p(json!({"event":"mark","streamSid":"MZ1","mark":{}})).is_err());
        assert!(p(json!({"event":"wobble","streamSid":"MZ1"})).unwrap_err().contains("unknown"));
        assert!(p(json!({"streamSid":"MZ1"})).is_err());
    }
}
