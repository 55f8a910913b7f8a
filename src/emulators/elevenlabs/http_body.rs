//! The body of an ElevenLabs HTTP response, paced and possibly cut short. Its pieces (audio, or JSON lines
//! with timestamps) each leave at their own due time, counted from the start of the response: the first
//! after the time to first byte and, with real-time pacing, each next one only once the audio before it has
//! played. A cut fault ends it one of three ways: at a chunk boundary without the terminating chunk, inside
//! a chunk whose announced size never arrives, or short of the `Content-Length` it announced. The log gets
//! the bytes sent, whether the body completed or was cut, and a client that went away first.

use std::collections::VecDeque;
use std::time::Duration;

use actix_web::http::header::{HeaderValue, TRANSFER_ENCODING};
use actix_web::{HttpResponse, HttpResponseBuilder};
use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::control::ElevenLabsControl;
use crate::emulators::common::guard::Unfinished;

/// One piece of the body and when it is due, counted from the start of the response.
#[derive(Debug, Clone)]
pub struct Piece {
    pub bytes: Bytes,
    pub due: Duration,
}

/// Where a cut falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutKind {
    /// After a whole chunk, without the terminating `0\r\n\r\n`.
    ChunkBoundary,
    /// Inside a chunk: its full size is announced, fewer bytes follow.
    InsideChunk,
    /// A `Content-Length` body that ends early.
    ContentLength,
}

/// A body cut after `after_bytes` body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub after_bytes: usize,
    pub kind: CutKind,
}

/// How the pieces are framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Chunked by actix, one HTTP chunk per piece.
    Chunked,
    /// Chunked by hand (`no_chunking`), so a chunk can be announced and left unfinished.
    HandChunked,
    /// Raw bytes after a `Content-Length`.
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Sending,
    Cutting,
    Done,
}

/// The streaming body of request `index`.
struct Body {
    pieces: VecDeque<Piece>,
    start: Instant,
    cut: Option<Cut>,
    framing: Framing,
    sent: usize,
    state: State,
    control: ElevenLabsControl,
    index: usize,
    guard: Unfinished,
}

/// Streams `pieces` as the body of `builder`'s response, cut as `cut` says.
pub fn respond(
    mut builder: HttpResponseBuilder,
    pieces: Vec<Piece>,
    cut: Option<Cut>,
    control: ElevenLabsControl,
    index: usize,
) -> HttpResponse {
    let framing = match cut.map(|c| c.kind) {
        None | Some(CutKind::ChunkBoundary) => Framing::Chunked,
        Some(CutKind::InsideChunk) => Framing::HandChunked,
        Some(CutKind::ContentLength) => Framing::Raw,
    };
    let c = control.clone();
    let guard = Unfinished::new(move || c.shared.update(|s| s.http.update(index, |l| l.client_went_away = true)));
    let total: usize = pieces.iter().map(|p| p.bytes.len()).sum();
    let body = Body {
        pieces: pieces.into(),
        start: Instant::now(),
        cut,
        framing,
        sent: 0,
        state: State::Sending,
        control,
        index,
        guard,
    };
    if framing == Framing::Raw {
        builder.no_chunking(total as u64);
    }
    let mut resp = builder.streaming(futures_util::stream::unfold(body, next));
    if framing == Framing::HandChunked {
        resp.head_mut().no_chunking(true);
        resp.headers_mut().insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    }
    resp
}

async fn next(mut b: Body) -> Option<(Result<Bytes, std::io::Error>, Body)> {
    match b.state {
        State::Done => None,
        State::Cutting => Some(cut(b).await),
        State::Sending => {
            let budget = b.cut.map(|c| c.after_bytes.saturating_sub(b.sent));
            // Never yield an empty piece: actix would write it as the terminating chunk.
            if budget == Some(0) && (b.framing != Framing::HandChunked || b.pieces.is_empty()) {
                return Some(cut(b).await);
            }
            let Some(piece) = b.pieces.pop_front() else {
                b.state = State::Done;
                b.guard.finish();
                let i = b.index;
                b.control.shared.update(|s| s.http.update(i, |l| l.completed = true));
                return (b.framing == Framing::HandChunked).then(|| (Ok(Bytes::from_static(b"0\r\n\r\n")), b));
            };
            tokio::time::sleep_until(b.start + piece.due).await;
            let len = piece.bytes.len();
            let take = budget.map_or(len, |budget| budget.min(len));
            let mut out = BytesMut::new();
            if b.framing == Framing::HandChunked {
                // The chunk's full size, even when fewer bytes of it will follow.
                out.extend_from_slice(format!("{len:x}\r\n").as_bytes());
            }
            out.extend_from_slice(&piece.bytes[..take]);
            if take < len {
                b.state = State::Cutting;
            } else if b.framing == Framing::HandChunked {
                out.extend_from_slice(b"\r\n");
            }
            b.sent += take;
            let i = b.index;
            b.control.shared.update(|s| s.http.update(i, |l| l.bytes_sent += take));
            Some((Ok(out.freeze()), b))
        }
    }
}

/// Ends the body with an error, so actix drops the connection without finishing the body.
async fn cut(mut b: Body) -> (Result<Bytes, std::io::Error>, Body) {
    // Let what was written reach the client first: on an error the server discards its unwritten buffer.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    b.state = State::Done;
    b.guard.finish();
    let i = b.index;
    b.control.shared.update(|s| {
        s.http.update(i, |l| {
            l.cut = true;
            l.completed = true;
        });
    });
    (Err(std::io::Error::other("emulated cut of the response body")), b)
}
