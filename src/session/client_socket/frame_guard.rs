//! [`FrameGuard`]: reads the client's WebSocket byte stream frame header by frame header, so that a frame
//! announcing more than the limit is refused the moment its header is read, before any of its payload is
//! buffered.
//!
//! actix's codec checks a frame's size only once the whole frame has arrived: a header announcing 2^40 bytes
//! followed by a steady trickle grows the buffer byte for byte. The guard sits between the connection and the
//! codec, passes every byte through unchanged, and tracks where each frame's header starts; when one announces
//! a payload over the limit it passes the bytes before that header and then ends the stream with
//! [`PayloadError::Overflow`], which the session turns into a 1009 close. Nothing of the oversized frame is
//! read, so memory stays flat whatever the client sends.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;

/// Where the guard is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a header: the bytes of it seen so far.
    Header { have: usize },
    /// Inside a payload: bytes of it still to come.
    Payload { remaining: u64 },
    /// An oversized frame was announced: nothing more is read.
    Refused,
}

/// A client byte stream with frame sizes checked at the header.
pub struct FrameGuard<S> {
    inner: S,
    limit: u64,
    state: State,
    header: [u8; 14],
}

impl<S> FrameGuard<S> {
    pub fn new(inner: S, limit: usize) -> FrameGuard<S> {
        FrameGuard { inner, limit: limit as u64, state: State::Header { have: 0 }, header: [0; 14] }
    }

    /// Walks `chunk`; returns how many of its bytes may pass (all, or those before an oversized frame's header).
    fn scan(&mut self, chunk: &[u8]) -> usize {
        let mut i = 0;
        while i < chunk.len() {
            match self.state {
                State::Refused => return i,
                State::Payload { remaining } => {
                    let n = remaining.min((chunk.len() - i) as u64);
                    i += n as usize;
                    let left = remaining - n;
                    self.state = if left == 0 { State::Header { have: 0 } } else { State::Payload { remaining: left } };
                }
                State::Header { have } => {
                    self.header[have] = chunk[i];
                    i += 1;
                    let have = have + 1;
                    match header_len(&self.header[..have]) {
                        Some(needed) if have == needed => {
                            let length = payload_len(&self.header[..have]);
                            if length > self.limit {
                                self.state = State::Refused;
                                return i - have.min(i);
                            }
                            self.state = if length == 0 {
                                State::Header { have: 0 }
                            } else {
                                State::Payload { remaining: length }
                            };
                        }
                        _ => self.state = State::Header { have },
                    }
                }
            }
        }
        i
    }
}

/// The whole header's length once its first two bytes are known: 2, plus 2 or 8 for an extended length, plus
/// 4 for the mask.
fn header_len(h: &[u8]) -> Option<usize> {
    let second = *h.get(1)?;
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    Some(2 + extended + mask)
}

/// The payload length a complete header announces.
fn payload_len(h: &[u8]) -> u64 {
    match h[1] & 0x7F {
        126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
        127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
        n => u64::from(n),
    }
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.state == State::Refused {
            return Poll::Ready(Some(Err(PayloadError::Overflow)));
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let pass = self.scan(&chunk);
                if pass == chunk.len() {
                    Poll::Ready(Some(Ok(chunk)))
                } else if pass > 0 {
                    // The bytes before the oversized header still make whole frames; the refusal follows.
                    Poll::Ready(Some(Ok(chunk.slice(..pass))))
                } else {
                    Poll::Ready(Some(Err(PayloadError::Overflow)))
                }
            }
            other => other,
        }
    }
}

/// True when a WebSocket read error is the guard's refusal of an oversized frame.
pub fn is_oversized(error: &std::io::Error) -> bool {
    error.to_string() == PayloadError::Overflow.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame header announcing `len` bytes.
    fn header(len: u64) -> Vec<u8> {
        let mut h = vec![0x82];
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
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    fn frame(len: usize) -> Vec<u8> {
        let mut f = header(len as u64);
        f.extend(std::iter::repeat_n(0u8, len));
        f
    }

    #[test]
    fn frames_within_the_limit_pass_whole_however_the_bytes_are_cut() {
        let mut bytes = frame(10);
        bytes.extend(frame(300));
        bytes.extend(frame(70_000));
        bytes.extend(frame(0));
        for cut in [1, 3, 7, 1000, bytes.len()] {
            let mut g = FrameGuard::new((), 100_000);
            let passed: usize = bytes.chunks(cut).map(|c| g.scan(c)).sum();
            assert_eq!(passed, bytes.len(), "cut {cut}");
        }
    }

    #[test]
    fn an_oversized_header_stops_the_stream_before_itself_even_split_across_reads() {
        let mut bytes = frame(10);
        let start = bytes.len();
        bytes.extend(header(1 << 40));
        bytes.extend([0u8; 100]);
        let mut g = FrameGuard::new((), 65_536);
        assert_eq!(g.scan(&bytes), start, "the frames before it pass, not its header");
        assert_eq!(g.state, State::Refused);
        let mut split = FrameGuard::new((), 65_536);
        assert_eq!(split.scan(&bytes[..start + 3]), start + 3, "a header not yet complete is not judged");
        assert_eq!(split.scan(&bytes[start + 3..]), 0, "its end refuses it");
    }
}
