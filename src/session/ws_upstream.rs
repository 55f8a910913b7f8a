//! Opening a WebSocket to a provider with awc and attaching it to an actor: the connection's frames arrive as
//! [`Upstream`] items tagged with a generation number (so frames of a replaced connection are recognised and
//! ignored), ending with an item whose `frame` is `None`; writes go through a [`WsSink`].

use std::time::Duration;

use actix::io::SinkWrite;
use actix::prelude::*;
use awc::BoxedSocket;
use awc::error::{WsClientError, WsProtocolError};
use awc::ws::{CloseCode, CloseReason, Codec, Frame, Message as WsMessage};
use futures_util::stream::{SplitSink, StreamExt as _};

use crate::providers::{FailureKind, Provider, ProviderError};

/// Largest frame accepted from a provider (ElevenLabs audio chunks are base64 JSON of up to a few hundred KB).
pub const MAX_FRAME_BYTES: usize = 4 << 20;
/// How long opening the connection (TCP, TLS, upgrade) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The writing half of a provider socket.
pub type WsSink = SinkWrite<WsMessage, SplitSink<actix_codec::Framed<BoxedSocket, Codec>, WsMessage>>;

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

/// Splits a connection: frames go to `ctx` as [`Upstream`] items of `generation`, writes go to the sink.
pub fn attach<A>(framed: actix_codec::Framed<BoxedSocket, Codec>, generation: u64, ctx: &mut A::Context) -> WsSink
where
    A: Actor<Context = Context<A>> + StreamHandler<Upstream> + actix::io::WriteHandler<WsProtocolError>,
{
    let (sink, stream) = framed.split();
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
