//! Joins fragmented WebSocket messages (continuation frames) back into whole text or binary messages, with a
//! size limit, for the socket actors of the Deepgram and ElevenLabs emulators.

use actix_web_actors::ws::{self, CloseReason};
use bytes::{Bytes, BytesMut};

/// A whole message from the client, after reassembling fragments.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Text(String),
    Binary(Bytes),
    Close(Option<CloseReason>),
    Ping(Bytes),
    /// Pongs and partial fragments: nothing to do.
    Nothing,
    /// Fragments that do not form a valid message (bad UTF-8, continuation without a start, too large).
    Invalid(&'static str),
}

/// Joins continuation frames into whole messages.
#[derive(Debug)]
pub struct Reassembler {
    partial: Option<(bool, BytesMut)>,
    limit: usize,
}

impl Reassembler {
    /// A reassembler refusing messages over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Reassembler { partial: None, limit }
    }

    /// Feeds one decoded frame.
    pub fn feed(&mut self, msg: ws::Message) -> Incoming {
        use actix_http::ws::Item;
        match msg {
            ws::Message::Text(t) => Incoming::Text(t.to_string()),
            ws::Message::Binary(b) => Incoming::Binary(b),
            ws::Message::Close(r) => Incoming::Close(r),
            ws::Message::Ping(p) => Incoming::Ping(p),
            ws::Message::Pong(_) | ws::Message::Nop => Incoming::Nothing,
            ws::Message::Continuation(item) => match item {
                Item::FirstText(b) => self.start(true, &b),
                Item::FirstBinary(b) => self.start(false, &b),
                Item::Continue(b) => self.extend(&b),
                Item::Last(b) => match self.extend(&b) {
                    Incoming::Nothing => self.complete(),
                    other => other,
                },
            },
        }
    }

    fn start(&mut self, text: bool, b: &[u8]) -> Incoming {
        self.partial = Some((text, BytesMut::new()));
        self.extend(b)
    }

    fn extend(&mut self, b: &[u8]) -> Incoming {
        let Some((_, buf)) = self.partial.as_mut() else {
            return Incoming::Invalid("continuation frame without a first frame");
        };
        if buf.len() + b.len() > self.limit {
            self.partial = None;
            return Incoming::Invalid("message too large");
        }
        buf.extend_from_slice(b);
        Incoming::Nothing
    }

    fn complete(&mut self) -> Incoming {
        match self.partial.take() {
            Some((true, buf)) => match String::from_utf8(buf.to_vec()) {
                Ok(s) => Incoming::Text(s),
                Err(_) => Incoming::Invalid("text message is not valid UTF-8"),
            },
            Some((false, buf)) => Incoming::Binary(buf.freeze()),
            None => Incoming::Invalid("continuation frame without a first frame"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_joined_and_a_stray_continuation_is_invalid() {
        use actix_http::ws::Item;
        let mut r = Reassembler::new(100);
        let c = |i| ws::Message::Continuation(i);
        assert_eq!(r.feed(c(Item::FirstText(Bytes::from_static(b"he")))), Incoming::Nothing);
        assert_eq!(r.feed(c(Item::Continue(Bytes::from_static(b"ll")))), Incoming::Nothing);
        assert_eq!(r.feed(c(Item::Last(Bytes::from_static(b"o")))), Incoming::Text("hello".into()));
        assert!(matches!(r.feed(c(Item::Last(Bytes::new()))), Incoming::Invalid(_)));
    }
}
