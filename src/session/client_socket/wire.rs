//! [`Wire`]: what a transport must say to carry a conversation over a WebSocket. It translates, nothing more:
//! frames from the client into the conversation's [`Input`]s (answering malformed ones itself), and the
//! conversation's [`Event`]s into frames. Turn-taking, children, timers, registration and heartbeats are the
//! [`ClientSocket`]'s, the same for every wire.

use actix_web_actors::ws;
use bytes::Bytes;

use super::ClientSocket;
use crate::session::conversation::{Event, Input};

/// The actor context a wire writes frames to.
pub type WireContext<W> = ws::WebsocketContext<ClientSocket<W>>;

/// A transport's wire format.
pub trait Wire: Unpin + Sized + 'static {
    /// A text frame from the client: the input it stands for, if any. Malformed frames are answered on the
    /// wire (an error the client can act on) and give `None`.
    fn text(&mut self, text: &str, ctx: &mut WireContext<Self>) -> Option<Input>;

    /// A binary frame from the client.
    fn binary(&mut self, bytes: Bytes, ctx: &mut WireContext<Self>) -> Option<Input>;

    /// A continuation frame (fragmented messages): transports that do not use them say so to the client.
    fn continuation(&mut self, ctx: &mut WireContext<Self>) -> Option<Input>;

    /// Puts a conversation event on the wire; returns the bytes it wrote (for the flow accounting of
    /// `Liveness`).
    fn send(&mut self, event: Event, ctx: &mut WireContext<Self>) -> usize;

    /// The close reason when a frame was too large for the codec to read.
    fn overflow_reason(&self) -> String;
}
