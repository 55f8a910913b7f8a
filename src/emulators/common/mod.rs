//! Pieces every emulator uses: shared state with `wait_until`, server start/stop, WebSocket outbox and
//! reassembly, abrupt connection drops, body reading and request ids.

pub mod abort;
pub mod body;
pub mod guard;
pub mod log;
pub mod reassemble;
pub mod server;
pub mod shared;
pub mod ws;
