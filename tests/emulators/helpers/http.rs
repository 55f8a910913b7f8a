//! A raw HTTP/1.1 client over a TCP stream: requests written byte for byte, responses read to the end with
//! their chunk boundaries kept, so tests see exactly what the emulator wrote and how it split it.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::SOON;

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
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends `request` bytes as they are and reads the whole response until the server closes.
pub async fn raw(authority: &str, request: &[u8]) -> RawResponse {
    parse_response(&raw_bytes(authority, request).await)
}

/// Sends `request` and returns every byte of the response, as it came, until the server closes.
pub async fn raw_bytes(authority: &str, request: &[u8]) -> Vec<u8> {
    timed_bytes(authority, request).await.into_iter().flat_map(|(_, bytes)| bytes).collect()
}

/// Sends `request` and returns each read of the response with the time it arrived (since the request was
/// written), until the server closes: what a client can have played by when.
pub async fn timed_bytes(authority: &str, request: &[u8]) -> Vec<(Duration, Vec<u8>)> {
    let mut s = TcpStream::connect(authority).await.expect("connect");
    s.write_all(request).await.expect("write request");
    let sent = tokio::time::Instant::now();
    let deadline = sent + Duration::from_secs(20);
    let mut reads = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return reads,
            Ok(Ok(n)) => reads.push((sent.elapsed(), chunk[..n].to_vec())),
            Err(_) => panic!("response did not end: {reads:?}"),
        }
    }
}

/// A POST with a JSON body and `Connection: close`.
pub fn post(path: &str, host: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    request("POST", path, host, headers, body)
}

/// A request of any method with a JSON body (possibly empty) and `Connection: close`.
pub fn request(method: &str, path: &str, host: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
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
        let n = tokio::time::timeout(SOON, s.read(&mut chunk)).await.expect("handshake answer").expect("read");
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
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]);
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = buf.get(split + 4..).unwrap_or(&[]);
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let mut r = RawResponse { status, headers, ..Default::default() };
    if !chunked {
        r.body = rest.to_vec();
        r.complete = true;
        return r;
    }
    let mut at = 0;
    while let Some(eol) = rest[at..].windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[at..at + eol]).to_string();
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else {
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
