//! Test clients: start the emulators on port 0, a WebSocket client that reads and writes raw frames, a raw
//! HTTP/1.1 client that keeps chunk boundaries, and audio to feed the Deepgram emulator.

use std::time::{Duration, Instant};

use actix_codec::Framed;
use awc::BoxedSocket;
use awc::ws::{Codec, Frame, Message};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use parley::emulators::{EmulatorOptions, Emulators};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Generous bound for anything that should happen "soon".
pub const SOON: Duration = Duration::from_secs(5);

/// Emulators with default options on free ports.
pub async fn start() -> Emulators {
    start_with(EmulatorOptions::default()).await
}

/// Emulators with `opts`.
pub async fn start_with(opts: EmulatorOptions) -> Emulators {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Emulators::start(opts).await.expect("emulators start")
}

/// `host:port` of a base URL.
pub fn authority(base: &str) -> String {
    let u = url::Url::parse(base).expect("base url");
    format!(
        "{}:{}",
        u.host_str().expect("host"),
        u.port().expect("port")
    )
}

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
        self.framed
            .send(Message::Text(s.to_string().into()))
            .await
            .is_ok()
    }

    /// Sends a binary frame; false if the connection is already gone.
    pub async fn binary(&mut self, b: Vec<u8>) -> bool {
        self.framed
            .send(Message::Binary(Bytes::from(b)))
            .await
            .is_ok()
    }

    /// Sends a Close frame.
    pub async fn close(&mut self, code: u16, reason: &str) {
        let reason = awc::ws::CloseReason {
            code: code.into(),
            description: Some(reason.to_string()),
        };
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
                        return Next::Close(
                            r.map(|r| (u16::from(r.code), r.description.unwrap_or_default())),
                        );
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
    pub async fn texts_until(
        &mut self,
        timeout: Duration,
        stop: impl Fn(&str) -> bool,
    ) -> Vec<String> {
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

/// A raw HTTP response, chunk boundaries kept.
#[derive(Debug, Clone, Default)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The data of each HTTP chunk, in order (empty when not chunked).
    pub chunks: Vec<Vec<u8>>,
    /// A chunked body ended with its terminating zero-size chunk.
    pub complete: bool,
}

impl RawResponse {
    /// A header value (name lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends `request` bytes as they are and reads the whole response until the server closes.
pub async fn raw(authority: &str, request: &[u8]) -> RawResponse {
    let mut s = TcpStream::connect(authority).await.expect("connect");
    s.write_all(request).await.expect("write request");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    match read {
        Ok(Ok(_)) | Ok(Err(_)) => {}
        Err(_) => panic!("response did not end: {:?}", String::from_utf8_lossy(&buf)),
    }
    parse_response(&buf)
}

/// A POST with a JSON body and `Connection: close`.
pub fn post(path: &str, host: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

/// A WebSocket upgrade GET, for checking what the server answers to the handshake itself.
pub fn upgrade(path: &str, host: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut r = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// Sends an upgrade request and returns the status line and headers (the socket is then dropped).
pub async fn handshake(authority: &str, request: &[u8]) -> RawResponse {
    let mut s = TcpStream::connect(authority).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(SOON, s.read(&mut chunk))
            .await
            .expect("handshake answer")
            .expect("read");
        buf.extend_from_slice(&chunk[..n]);
        if n == 0 || buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let mut r = parse_response(&buf);
    if r.status != 101 {
        // A refusal: read its body too.
        let _ = tokio::time::timeout(SOON, s.read_to_end(&mut buf)).await;
        r = parse_response(&buf);
    }
    r
}

/// Parses status, headers and a chunked or plain body.
pub fn parse_response(buf: &[u8]) -> RawResponse {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = buf.get(split + 4..).unwrap_or(&[]);
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let mut r = RawResponse {
        status,
        headers,
        ..Default::default()
    };
    if !chunked {
        r.body = rest.to_vec();
        r.complete = true;
        return r;
    }
    let mut at = 0;
    while let Some(eol) = rest[at..].windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[at..at + eol]).to_string();
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        at += eol + 2;
        if size == 0 {
            r.complete = true;
            break;
        }
        if at + size > rest.len() {
            r.body.extend_from_slice(&rest[at..]);
            break;
        }
        r.chunks.push(rest[at..at + size].to_vec());
        r.body.extend_from_slice(&rest[at..at + size]);
        at += size + 2;
    }
    r
}

/// `secs` of a 300 Hz tone (clearly speech-loud) as 16-bit little-endian PCM at `rate`.
pub fn tone(secs: f64, rate: u32) -> Vec<u8> {
    (0..(secs * f64::from(rate)).round() as u64)
        .flat_map(|n| {
            let v =
                (2.0 * std::f64::consts::PI * 300.0 * n as f64 / f64::from(rate)).sin() * 8000.0;
            (v as i16).to_le_bytes()
        })
        .collect()
}

/// `secs` of digital silence as 16-bit PCM at `rate`.
pub fn silence(secs: f64, rate: u32) -> Vec<u8> {
    vec![0; 2 * (secs * f64::from(rate)).round() as usize]
}

/// Sends `pcm` in 20 ms binary frames (as fast as the socket takes them: audio time, not wall clock).
pub async fn stream_audio(ws: &mut Ws, pcm: &[u8], rate: u32) {
    let frame = (rate as usize / 50) * 2;
    for chunk in pcm.chunks(frame) {
        ws.binary(chunk.to_vec()).await;
    }
}
