//! Opening a WebSocket to a provider with awc and attaching it to an actor: the connection's frames arrive as
//! [`Upstream`] items tagged with a generation number (so frames of a replaced connection are recognised and
//! ignored), ending with an item whose `frame` is `None`; writes go through a [`WsSink`].
//!
//! The two halves share the connection on the actor's thread instead of through `split()`'s lock, so that the
//! read half can give back a read buffer that one large frame grew: the codec keeps the buffer's capacity for
//! the life of the connection, and an ElevenLabs audio message (base64 JSON) grows it to tens of KiB per
//! session, held through every pause.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use actix::io::SinkWrite;
use actix::prelude::*;
use awc::BoxedSocket;
use awc::error::{WsClientError, WsProtocolError};
use awc::ws::{CloseCode, CloseReason, Codec, Frame, Message as WsMessage};
use bytes::BytesMut;
use futures_util::stream::{Stream, StreamExt as _};
use futures_util::{Sink, SinkExt as _};

use crate::providers::{FailureKind, Provider, ProviderError};

/// Largest frame accepted from a provider (ElevenLabs audio chunks are base64 JSON of up to a few hundred KB).
pub const MAX_FRAME_BYTES: usize = 4 << 20;
/// How long opening the connection (TCP, TLS, upgrade) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Read buffers larger than this are given back once they are empty (the codec then reserves 8 KiB again).
/// Deepgram's results stay below it; ElevenLabs' audio messages go above it.
pub const KEEP_READ_BUFFER_BYTES: usize = 16 << 10;

type Connection = actix_codec::Framed<BoxedSocket, Codec>;

/// The writing half of a provider socket.
pub type WsSink = SinkWrite<WsMessage, Half>;

/// One half of a connection shared by the reading stream and the writing sink of one actor. Both run on the
/// actor's thread and a poll never re-enters the other half, so a `RefCell` is all the sharing needs. The
/// connection is `None` only while the read half swaps its buffer.
pub struct Half {
    connection: Rc<RefCell<Option<Connection>>>,
    /// Read half: a frame larger than [`KEEP_READ_BUFFER_BYTES`] has been read since the buffer was last
    /// swapped, so the buffer's allocation is at least that large. (`BytesMut::capacity` cannot tell: it
    /// counts only what lies after the frames already split off.)
    grown: bool,
}

fn gone() -> WsProtocolError {
    WsProtocolError::Io(std::io::Error::new(std::io::ErrorKind::NotConnected, "the connection is gone"))
}

/// The payload size of a frame.
fn frame_len(frame: &Frame) -> usize {
    match frame {
        Frame::Text(b) | Frame::Binary(b) | Frame::Ping(b) | Frame::Pong(b) => b.len(),
        Frame::Continuation(item) => match item {
            actix_http::ws::Item::FirstText(b)
            | actix_http::ws::Item::FirstBinary(b)
            | actix_http::ws::Item::Continue(b)
            | actix_http::ws::Item::Last(b) => b.len(),
        },
        Frame::Close(_) => 0,
    }
}

impl Half {
    fn on_connection<R>(&self, f: impl FnOnce(&mut Connection) -> Poll<R>, missing: impl FnOnce() -> R) -> Poll<R> {
        match self.connection.borrow_mut().as_mut() {
            Some(connection) => f(connection),
            None => Poll::Ready(missing()),
        }
    }

    /// Gives back a read buffer that a large frame grew, once it holds nothing more.
    fn shrink_read_buffer(&mut self) {
        let mut slot = self.connection.borrow_mut();
        if !slot.as_ref().is_some_and(Connection::is_read_buf_empty) {
            return;
        }
        if let Some(connection) = slot.take() {
            let mut parts = connection.into_parts();
            parts.read_buf = BytesMut::new();
            *slot = Some(Connection::from_parts(parts));
            self.grown = false;
        }
    }
}

impl Stream for Half {
    type Item = Result<Frame, WsProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let polled = this.on_connection(|connection| connection.poll_next_unpin(cx), || None);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            this.grown |= frame_len(frame) > KEEP_READ_BUFFER_BYTES;
            if this.grown {
                this.shrink_read_buffer();
            }
        }
        polled
    }
}

impl Sink<WsMessage> for Half {
    type Error = WsProtocolError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.on_connection(|connection| connection.poll_ready_unpin(cx), || Err(gone()))
    }

    fn start_send(self: Pin<&mut Self>, item: WsMessage) -> Result<(), Self::Error> {
        match self.connection.borrow_mut().as_mut() {
            Some(connection) => connection.start_send_unpin(item),
            None => Err(gone()),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.on_connection(|connection| connection.poll_flush_unpin(cx), || Err(gone()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.on_connection(|connection| connection.poll_close_unpin(cx), || Err(gone()))
    }
}

/// A frame of connection `generation`, or its end (`None`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Upstream {
    pub generation: u64,
    pub frame: Option<Result<Frame, WsProtocolError>>,
}

/// Opens `url` with `headers`; refusals become a [`ProviderError`] of the right kind.
pub async fn connect(
    client: &awc::Client,
    provider: Provider,
    url: &str,
    headers: &[(&str, String)],
) -> Result<actix_codec::Framed<BoxedSocket, Codec>, ProviderError> {
    let mut request = client.ws(url).max_frame_size(MAX_FRAME_BYTES);
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, request.connect()).await {
        Err(_) => Err(ProviderError::new(provider, FailureKind::Timeout, "connecting took too long")),
        Ok(Ok((_, framed))) => Ok(framed),
        Ok(Err(WsClientError::InvalidResponseStatus(status))) => Err(ProviderError::new(
            provider,
            FailureKind::from_status(status.as_u16()),
            format!("upgrade refused with HTTP {status}"),
        )),
        Ok(Err(e)) => Err(ProviderError::new(provider, FailureKind::Connect, e.to_string())),
    }
}

/// The writing and the reading half of a connection.
fn halves(framed: Connection) -> (Half, Half) {
    let shared = Rc::new(RefCell::new(Some(framed)));
    (Half { connection: Rc::clone(&shared), grown: false }, Half { connection: shared, grown: false })
}

/// Splits a connection: frames go to `ctx` as [`Upstream`] items of `generation`, writes go to the sink.
pub fn attach<A>(framed: actix_codec::Framed<BoxedSocket, Codec>, generation: u64, ctx: &mut A::Context) -> WsSink
where
    A: Actor<Context = Context<A>> + StreamHandler<Upstream> + actix::io::WriteHandler<WsProtocolError>,
{
    let (sink, stream) = halves(framed);
    let frames = stream
        .map(move |frame| Upstream { generation, frame: Some(frame) })
        .chain(futures_util::stream::once(async move { Upstream { generation, frame: None } }));
    ctx.add_stream(frames);
    SinkWrite::new(sink, ctx)
}

/// What a failure to read the provider's socket means: a transport error (a reset, a broken pipe) is a lost
/// connection, which reconnecting can fix; anything else is a frame parley could not understand.
pub fn read_failure(provider: Provider, error: &WsProtocolError) -> ProviderError {
    let kind = match error {
        WsProtocolError::Io(_) => FailureKind::Connect,
        _ => FailureKind::Protocol,
    };
    ProviderError::new(provider, kind, error.to_string())
}

/// What a close frame from the provider means: `None` for a normal close (1000), otherwise the failure.
pub fn close_failure(provider: Provider, reason: Option<&CloseReason>) -> Option<ProviderError> {
    let (code, text) = match reason {
        None => (1005, String::new()),
        Some(r) => (u16::from(r.code), r.description.clone().unwrap_or_default()),
    };
    if code == u16::from(CloseCode::Normal) {
        return None;
    }
    Some(ProviderError::new(provider, FailureKind::from_close_code(code), format!("closed with {code} {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// A client connection over an in-memory pipe, and the server's end of it.
    fn pipe() -> (Connection, actix_codec::Framed<tokio::io::DuplexStream, Codec>) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let socket: BoxedSocket = Box::new(client);
        let client = actix_codec::Framed::new(socket, Codec::new().client_mode().max_size(MAX_FRAME_BYTES));
        (client, actix_codec::Framed::new(server, Codec::new().max_size(MAX_FRAME_BYTES)))
    }

    /// The size of the read buffer's allocation, as the codec would find it on its next read (`reserve`
    /// reclaims the space of the frames already split off and dropped).
    fn retained(connection: Connection) -> (Connection, usize) {
        let mut parts = connection.into_parts();
        parts.read_buf.reserve(1);
        let capacity = parts.read_buf.capacity();
        (Connection::from_parts(parts), capacity)
    }

    fn read_buffer_capacity(half: &Half) -> usize {
        let mut slot = half.connection.borrow_mut();
        let (connection, capacity) = retained(slot.take().unwrap());
        *slot = Some(connection);
        capacity
    }

    fn text(frame: Option<Result<Frame, WsProtocolError>>) -> Bytes {
        match frame {
            Some(Ok(Frame::Text(bytes))) => bytes,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    #[actix::test]
    async fn a_large_frame_arrives_whole_and_its_read_buffer_is_given_back() {
        let large = "a".repeat(200 << 10);
        let (connection, mut server) = pipe();
        let (mut sink, mut stream) = halves(connection);
        // Two frames in one read: the buffer is not empty after the first, so it is kept until the second.
        server.send(WsMessage::Text(large.clone().into())).await.unwrap();
        server.send(WsMessage::Text("small".into())).await.unwrap();
        assert_eq!(text(stream.next().await), large.as_bytes());
        assert_eq!(text(stream.next().await), "small".as_bytes());
        assert!(read_buffer_capacity(&stream) <= KEEP_READ_BUFFER_BYTES, "the grown buffer is given back");
        // The writing half shares the connection.
        sink.send(WsMessage::Text("to the provider".into())).await.unwrap();
        assert_eq!(text(server.next().await.map(|f| f.map_err(|e| panic!("{e}")))), "to the provider".as_bytes());
        // And the connection goes on reading after the swap.
        server.send(WsMessage::Text(large.clone().into())).await.unwrap();
        assert_eq!(text(stream.next().await), large.as_bytes());
        assert!(read_buffer_capacity(&stream) <= KEEP_READ_BUFFER_BYTES);

        // Without the swap, the codec keeps what the large frame grew (what this test guards against).
        let (mut plain, mut server) = pipe();
        server.send(WsMessage::Text(large.clone().into())).await.unwrap();
        assert_eq!(text(plain.next().await), large.as_bytes());
        assert!(retained(plain).1 > large.len());
    }

    #[actix::test]
    async fn small_frames_keep_their_buffer_and_the_end_of_the_connection_ends_the_stream() {
        let (connection, mut server) = pipe();
        let (_sink, mut stream) = halves(connection);
        server.send(WsMessage::Text("{}".into())).await.unwrap();
        assert_eq!(text(stream.next().await), "{}".as_bytes());
        let kept = read_buffer_capacity(&stream);
        assert!(kept > 0 && kept <= KEEP_READ_BUFFER_BYTES, "{kept}");
        server.send(WsMessage::Text("{}".into())).await.unwrap();
        assert_eq!(text(stream.next().await), "{}".as_bytes());
        let again = read_buffer_capacity(&stream);
        assert!(again > 0 && again <= KEEP_READ_BUFFER_BYTES, "a small buffer is kept: {again}");
        drop(server);
        assert!(stream.next().await.is_none(), "a closed pipe ends the stream");
    }
}
