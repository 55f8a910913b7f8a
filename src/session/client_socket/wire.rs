//! [`Wire`]: what a transport must say to carry a conversation over a WebSocket. It translates, nothing more:
//! frames from the client into the conversation's [`Input`]s (answering malformed ones itself), and the
//! conversation's [`Event`]s into frames. Turn-taking, children, timers, registration and heartbeats are the
//! [`ClientSocket`]'s, the same for every wire.

use std::time::Duration;

use actix_web_actors::ws;
use bytes::Bytes;

use super::ClientSocket;
use crate::session::conversation::{Event, Input};
use crate::session::settings::SessionParams;

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

    /// Whether the wire knows who the session is, completing `params` if it has just learnt it. The browser
    /// knows at the upgrade (the default); a phone stream learns it from its `start` message. Until this says
    /// true, the session is not registered and the conversation does not start; it is asked again after
    /// every frame.
    fn open(&mut self, _params: &mut SessionParams) -> bool {
        true
    }

    /// When the agent has ended the conversation: the longest the wire needs before the socket closes (a
    /// phone lets the goodbye play out and closes the stream itself once it has been heard); `None` closes at
    /// once.
    fn close_after_goodbye(&self) -> Option<Duration> {
        None
    }
}

/// How long a client that has to say who it is (see [`Wire::open`]) has to do so.
pub const OPENING_TIMEOUT: Duration = Duration::from_secs(10);
