//! A WebSocket client on a bare TCP stream, frame by frame: it sees what a WebSocket library hides, namely
//! when the server ends the TCP connection after the closing handshake and whether it ended with a FIN or a
//! reset. Client frames are masked as RFC 6455 requires.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{SOON, parse_response, upgrade};

/// One frame from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum RawFrame {
    Text(String),
    Binary(Vec<u8>),
    /// Code and reason (1005 and empty when the frame had no payload).
    Close(u16, String),
    Ping(Vec<u8>),
    Pong,
}

/// What came next on the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum RawNext {
    Frame(RawFrame),
    /// An orderly end of the TCP stream (FIN).
    Eof,
    /// The connection was reset (RST).
    Reset,
    /// Any other read error.
    Failed(std::io::ErrorKind),
    Timeout,
}

/// A WebSocket client writing and reading raw frames.
pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Opens `path` on `authority` with extra headers; panics unless the server answers 101.
    pub async fn connect(authority: &str, path: &str, headers: &[(&str, &str)]) -> RawWs {
        let mut stream = TcpStream::connect(authority).await.expect("connect");
        stream.write_all(&upgrade(path, authority, headers)).await.expect("write the upgrade");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = tokio::time::timeout(SOON, stream.read(&mut chunk)).await.expect("handshake").expect("read");
            assert!(n > 0, "connection ended during the handshake: {:?}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = parse_response(&buf[..head_end]);
        assert_eq!(head.status, 101, "upgrade refused: {:?}", String::from_utf8_lossy(&buf));
        RawWs { stream, buf: buf.split_off(head_end) }
    }

    /// Sends a masked text frame; false if the connection is gone.
    pub async fn send_text(&mut self, text: &str) -> bool {
        self.send(0x1, text.as_bytes()).await
    }

    /// Sends a masked binary frame; false if the connection is gone.
    pub async fn send_binary(&mut self, bytes: &[u8]) -> bool {
        self.send(0x2, bytes).await
    }

    /// Sends a masked Close frame with `code` and `reason`; false if the connection is gone.
    pub async fn send_close(&mut self, code: u16, reason: &str) -> bool {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.send(0x8, &payload).await
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) -> bool {
        const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&MASK);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        self.stream.write_all(&frame).await.is_ok()
    }

    /// The next frame or end of the connection, waiting at most `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> RawNext {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(frame) = self.take_frame() {
                return RawNext::Frame(frame);
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return RawNext::Timeout,
                Ok(Ok(0)) => return RawNext::Eof,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return RawNext::Reset,
                Ok(Err(e)) => return RawNext::Failed(e.kind()),
            }
        }
    }

    /// Frames until the connection ends (or `timeout`); returns them and how it ended.
    pub async fn frames_until_end(&mut self, timeout: Duration) -> (Vec<RawFrame>, RawNext) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut frames = Vec::new();
        loop {
            match self.next(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
                RawNext::Frame(f) => frames.push(f),
                end => return (frames, end),
            }
        }
    }

    fn take_frame(&mut self) -> Option<RawFrame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let opcode = b[0] & 0x0f;
        let masked = b[1] & 0x80 != 0;
        let (len, mut at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().ok()?) as usize, 10),
            126 | 127 => return None,
            n => (usize::from(n), 2),
        };
        let mask = if masked {
            let m: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
            at += 4;
            Some(m)
        } else {
            None
        };
        if b.len() < at + len {
            return None;
        }
        let mut payload = b[at..at + len].to_vec();
        if let Some(m) = mask {
            payload.iter_mut().enumerate().for_each(|(i, x)| *x ^= m[i % 4]);
        }
        self.buf.drain(..at + len);
        Some(match opcode {
            0x1 => RawFrame::Text(String::from_utf8_lossy(&payload).into_owned()),
            0x8 if payload.len() >= 2 => RawFrame::Close(
                u16::from_be_bytes([payload[0], payload[1]]),
                String::from_utf8_lossy(&payload[2..]).into_owned(),
            ),
            0x8 => RawFrame::Close(1005, String::new()),
            0x9 => RawFrame::Ping(payload),
            0xA => RawFrame::Pong,
            _ => RawFrame::Binary(payload),
        })
    }
}
