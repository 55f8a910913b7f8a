//! A raw WebSocket client on awc: the test writes every text and binary frame itself and sees every frame
//! (and a connection that ends without a Close frame) as it comes.

use std::time::{Duration, Instant};

use actix_codec::Framed;
use awc::BoxedSocket;
use awc::ws::{Codec, Frame, Message};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};

use super::SOON;

/// What came next on a WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Text(String),
    Binary(Bytes),
    Close(Option<(u16, String)>),
    /// The connection ended without a Close frame (what a client reports as 1006).
    Ended,
    Timeout,
}

/// A raw WebSocket client.
pub struct Ws {
    framed: Framed<BoxedSocket, Codec>,
}

impl Ws {
    /// Connects to `url` with extra request headers; panics if the upgrade is refused.
    pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Ws {
        let client = awc::Client::builder().timeout(SOON).finish();
        let mut req = client.ws(url).max_frame_size(16 * 1024 * 1024);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (_, framed) = req.connect().await.expect("websocket upgrade");
        Ws { framed }
    }

    /// Sends a text frame; false if the connection is already gone (a server may close mid-stream).
    pub async fn text(&mut self, s: &str) -> bool {
        self.framed.send(Message::Text(s.to_string().into())).await.is_ok()
    }

    /// Sends a binary frame; false if the connection is already gone.
    pub async fn binary(&mut self, b: Vec<u8>) -> bool {
        self.framed.send(Message::Binary(Bytes::from(b))).await.is_ok()
    }

    /// Sends a Close frame.
    pub async fn close(&mut self, code: u16, reason: &str) {
        let reason = awc::ws::CloseReason { code: code.into(), description: Some(reason.to_string()) };
        let _ = self.framed.send(Message::Close(Some(reason))).await;
    }

    /// The next text, binary or close (pings skipped), waiting at most `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.framed.next()).await {
                Err(_) => return Next::Timeout,
                Ok(None) | Ok(Some(Err(_))) => return Next::Ended,
                Ok(Some(Ok(frame))) => match frame {
                    Frame::Text(t) => return Next::Text(String::from_utf8_lossy(&t).into_owned()),
                    Frame::Binary(b) => return Next::Binary(b),
                    Frame::Close(r) => {
                        return Next::Close(r.map(|r| (u16::from(r.code), r.description.unwrap_or_default())));
                    }
                    _ => {}
                },
            }
        }
    }

    /// Every text until the socket closes or ends; returns them and how it ended.
    pub async fn texts_until_end(&mut self, timeout: Duration) -> (Vec<String>, Next) {
        let deadline = Instant::now() + timeout;
        let mut texts = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Next::Text(t) => texts.push(t),
                Next::Binary(_) => {}
                end => return (texts, end),
            }
        }
    }

    /// Texts until one satisfies `stop` (included), or panics after `timeout`.
    pub async fn texts_until(&mut self, timeout: Duration, stop: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut texts = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Next::Text(t) => {
                    let done = stop(&t);
                    texts.push(t);
                    if done {
                        return texts;
                    }
                }
                Next::Binary(_) => {}
                other => {
                    panic!("socket ended ({other:?}) before the awaited message; got {texts:#?}")
                }
            }
        }
    }
}
