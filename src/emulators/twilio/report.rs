//! What the emulated caller saw of a call: a snapshot taken by `Call::report`, and its JSON form (what
//! `parley emulate --twilio-call` prints).

use std::time::Duration;

use serde_json::{Value, json};

use super::playback::BYTES_PER_MS;

/// How the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code; `None` when the connection ended without a close frame.
    pub code: Option<u16>,
    pub reason: String,
    /// Since the stream started.
    pub at: Duration,
    /// True when the caller hung up (`Call::hang_up`); false when the server closed or the line dropped.
    pub by_caller: bool,
}

/// A snapshot of the call.
#[derive(Debug, Clone, Default)]
pub struct CallReport {
    /// µ-law audio the server sent that has played by now (cleared audio is not in it).
    pub heard: Vec<u8>,
    pub received_media_frames: usize,
    /// Names of the marks the server sent, in order.
    pub received_marks: Vec<String>,
    /// Marks echoed back, with when (since the stream started).
    pub echoed_marks: Vec<(String, Duration)>,
    /// When each `clear` arrived.
    pub clears: Vec<Duration>,
    /// Digits sent as `dtmf`, one each.
    pub dtmf_sent: Vec<String>,
    /// Every JSON message the server sent (a text frame that is not JSON is kept as a JSON string).
    pub messages: Vec<Value>,
    /// From the end of the caller's first `audio` (the stream start when it was empty) to the first `media`
    /// the server sent after it.
    pub first_audio_after_speech: Option<Duration>,
    pub closed: Option<CloseInfo>,
    /// What the server did against the protocol: unknown events, wrong `streamSid`, bad payloads, binary frames.
    pub problems: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl CallReport {
    /// Milliseconds of audio heard.
    pub fn heard_ms(&self) -> u64 {
        self.heard.len() as u64 / BYTES_PER_MS
    }

    /// The report as JSON, times in milliseconds, the heard audio as its length (not its bytes), the server's
    /// messages without their media payloads.
    pub fn to_json(&self) -> Value {
        let messages: Vec<Value> = self
            .messages
            .iter()
            .map(|m| {
                let mut m = m.clone();
                if let Some(p) = m.pointer_mut("/media/payload") {
                    let len = p.as_str().map_or(0, str::len);
                    *p = Value::String(format!("<{len} base64 chars>"));
                }
                m
            })
            .collect();
        json!({
            "heard_bytes": self.heard.len(),
            "heard_ms": self.heard_ms(),
            "received_media_frames": self.received_media_frames,
            "received_marks": self.received_marks,
            "echoed_marks": self.echoed_marks.iter().map(|(n, t)| json!({"name": n, "at_ms": ms(*t)})).collect::<Vec<_>>(),
            "clears_ms": self.clears.iter().map(|t| ms(*t)).collect::<Vec<_>>(),
            "dtmf_sent": self.dtmf_sent,
            "first_audio_after_speech_ms": self.first_audio_after_speech.map(ms),
            "closed": self.closed.as_ref().map(|c| json!({
                "code": c.code, "reason": c.reason, "at_ms": ms(c.at), "by_caller": c.by_caller
            })),
            "problems": self.problems,
            "messages": messages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_gives_times_in_ms_and_hides_payloads() {
        let r = CallReport {
            heard: vec![0xFF; 1600],
            echoed_marks: vec![("m".into(), Duration::from_micros(20500))],
            messages: vec![json!({"event":"media","media":{"payload":"AAAA"}})],
            closed: Some(CloseInfo {
                code: Some(1000),
                reason: String::new(),
                at: Duration::from_secs(1),
                by_caller: false,
            }),
            ..CallReport::default()
        };
        let j = r.to_json();
        assert_eq!(j["heard_ms"], 200);
        assert_eq!(j["echoed_marks"][0]["at_ms"], 20.5);
        assert_eq!(j["messages"][0]["media"]["payload"], "<4 base64 chars>");
        assert_eq!(j["closed"]["code"], 1000);
        assert!(j["first_audio_after_speech_ms"].is_null());
    }
}
