//! What an SSE event of a chat-completions stream means, and a whole-stream decoder on top of `SseDecoder`
//! that refuses to call a stream complete unless it saw `[DONE]`: a stream cut before `[DONE]` is a
//! truncation (an error), never a short successful answer.

use super::error::ApiErrorBody;
use super::response::ChatChunk;
use super::sse::{IncompleteTail, SseDecoder, SseEvent};

/// The meaning of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// A `chat.completion.chunk` (possibly the usage chunk with no choices).
    Chunk(ChatChunk),
    /// `data: [DONE]`: the stream ended normally.
    Done,
    /// A mid-stream error object (`{"error": ...}`); the HTTP status was already 200.
    Error(ApiErrorBody),
    /// An event with a name other than `message` (chat completions send none): nothing to do.
    Ignored,
    /// A data payload that is neither JSON of a known shape nor `[DONE]`.
    Invalid { data: String, reason: String },
}

/// Classifies one event.
pub fn classify(event: &SseEvent) -> StreamItem {
    if event.event.as_deref().is_some_and(|e| e != "message" && e != "error") {
        return StreamItem::Ignored;
    }
    let data = event.data.trim_start();
    if data.starts_with("[DONE]") {
        return StreamItem::Done;
    }
    let value: serde_json::Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => {
            return StreamItem::Invalid { data: event.data.clone(), reason: e.to_string() };
        }
    };
    let parsed = if value.get("error").is_some() {
        serde_json::from_value(value).map(StreamItem::Error)
    } else {
        serde_json::from_value(value).map(StreamItem::Chunk)
    };
    parsed.unwrap_or_else(|e| StreamItem::Invalid { data: event.data.clone(), reason: e.to_string() })
}

/// How a stream ended badly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamEnd {
    /// The body ended before `[DONE]`.
    #[error("stream ended without [DONE] ({0})")]
    Truncated(String),
}

/// Bytes in, classified items out; `finish` says whether the stream ended properly.
#[derive(Debug, Default)]
pub struct ChatStreamDecoder {
    sse: SseDecoder,
    done: bool,
}

impl ChatStreamDecoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one read. Items after `[DONE]` are not returned.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<StreamItem> {
        let mut out = Vec::new();
        for event in self.sse.push(bytes) {
            if self.done {
                break;
            }
            let item = classify(&event);
            if item == StreamItem::Done {
                self.done = true;
            }
            out.push(item);
        }
        out
    }

    /// True once `[DONE]` was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// At end of body: `Ok` only if `[DONE]` was seen.
    pub fn finish(&mut self) -> Result<(), StreamEnd> {
        let tail = self.sse.finish();
        if self.done {
            return Ok(());
        }
        Err(StreamEnd::Truncated(match tail {
            Ok(()) => "body ended between events".to_string(),
            Err(IncompleteTail { pending_bytes, .. }) => {
                format!("body ended mid-event with {pending_bytes} bytes pending")
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(data: &str) -> SseEvent {
        SseEvent { data: data.to_string(), ..Default::default() }
    }

    #[test]
    fn done_chunks_and_error_payloads_are_told_apart() {
        assert_eq!(classify(&ev("[DONE]")), StreamItem::Done);
        let chunk = classify(&ev(r#"{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#));
        assert!(matches!(chunk, StreamItem::Chunk(c) if c.content() == Some("Hi")));
        let err = classify(&ev(r#"{"error":{"message":"boom","type":"server_error"}}"#));
        assert!(matches!(err, StreamItem::Error(e) if e.error.message == "boom"));
        assert!(matches!(classify(&ev("{not json")), StreamItem::Invalid { .. }));
    }

    #[test]
    fn named_events_other_than_message_are_ignored() {
        let e = SseEvent { event: Some("ping".into()), data: "{}".into(), id: None };
        assert_eq!(classify(&e), StreamItem::Ignored);
    }

    #[test]
    fn a_stream_without_done_is_reported_as_truncated() {
        let mut d = ChatStreamDecoder::new();
        let items = d.push(b"data: {\"choices\":[]}\n\n");
        assert_eq!(items.len(), 1);
        assert!(matches!(d.finish(), Err(StreamEnd::Truncated(_))));

        let mut d = ChatStreamDecoder::new();
        d.push(b"data: {\"choices\":[]}\n\ndata: [DO");
        assert!(matches!(d.finish(), Err(StreamEnd::Truncated(m)) if m.contains("mid-event")));
    }

    #[test]
    fn a_stream_with_done_finishes_cleanly_and_ignores_what_follows() {
        let mut d = ChatStreamDecoder::new();
        let items = d.push(b"data: [DONE]\n\ndata: {\"choices\":[]}\n\n");
        assert_eq!(items, vec![StreamItem::Done]);
        assert!(d.is_done());
        assert!(d.finish().is_ok());
    }
}
