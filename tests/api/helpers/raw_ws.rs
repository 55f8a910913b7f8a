//! A hostile WebSocket client on a bare TCP stream: it writes any bytes it likes (a frame header announcing
//! 2^40 bytes, text that is not UTF-8, fragments, odd close codes) and reads the server's frames one by one,
//! seeing the close code and the end of the TCP connection that a WebSocket library would hide.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// One frame from the server, or the end of the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    Text(String),
    Binary(usize),
    Close(u16, String),
    Ping(Vec<u8>),
    Pong,
    /// The TCP connection ended.
    End,
    Timeout,
}

pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Opens `path` on 127.0.0.1:`port`; `Err(status line)` unless the server answers 101.
    pub async fn connect(port: u16, path: &str, headers: &[(&str, &str)]) -> Result<RawWs, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        );
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
                .await
                .map_err(|_| "no answer to the upgrade".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("closed during the handshake: {}", String::from_utf8_lossy(&buf)));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(head.lines().next().unwrap_or_default().to_string());
        }
        Ok(RawWs { stream, buf: buf.split_off(end) })
    }

    /// A masked client frame header: `opcode` (with FIN unless `more`), announcing `len` bytes.
    pub fn header(opcode: u8, len: u64, more: bool) -> Vec<u8> {
        let mut h = vec![if more { opcode } else { 0x80 | opcode }];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xFFFF => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[0, 0, 0, 0]); // a zero mask: the payload goes as is
        h
    }

    /// A whole masked frame.
    pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = RawWs::header(opcode, payload.len() as u64, false);
        f.extend_from_slice(payload);
        f
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next frame (answering pings on the way unless `answer_pings` is false), within `wait`.
    pub async fn next(&mut self, wait: Duration, answer_pings: bool) -> Got {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                if let (Got::Ping(p), true) = (&frame, answer_pings) {
                    let pong = RawWs::frame(0xA, p);
                    let _ = self.stream.write_all(&pong).await;
                    continue;
                }
                return frame;
            }
            let mut chunk = [0u8; 65536];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Got::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Got::End,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until a close frame or the end; returns the close code (None when the connection just ended).
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        loop {
            match self.next(wait, true).await {
                Got::Close(code, _) => return Some(code),
                Got::End | Got::Timeout => return None,
                _ => {}
            }
        }
    }
}

/// One server frame at the start of `buf` and the bytes it took, if complete.
fn parse(buf: &[u8]) -> Option<(Got, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0F;
    let (len, mut at) = match buf[1] & 0x7F {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    if buf[1] & 0x80 != 0 {
        at += 4; // servers do not mask, but be lenient
    }
    let payload = buf.get(at..at + len)?;
    let frame = match opcode {
        0x1 => Got::Text(String::from_utf8_lossy(payload).into_owned()),
        0x2 => Got::Binary(payload.len()),
        0x8 if payload.len() >= 2 => Got::Close(
            u16::from_be_bytes([payload[0], payload[1]]),
            String::from_utf8_lossy(&payload[2..]).into_owned(),
        ),
        0x8 => Got::Close(1005, String::new()),
        0x9 => Got::Ping(payload.to_vec()),
        _ => Got::Pong,
    };
    Some((frame, at + len))
}
