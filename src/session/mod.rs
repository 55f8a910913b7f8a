//! One voice session per client connection, as a tree of actors (all on the worker thread that accepted the
//! connection, so messages between them are cheap), around a conversation core that knows no transport:
//!
//! ```text
//!   transport wire (browser::BrowserWire, twilio::TwilioWire)   frames <-> conversation events
//!                                      │
//!                       ClientSocket<W>  (the WebSocket; parent: registry, heartbeat, drain, timers)
//!                                      │ owns
//!                       Conversation  (the core: turns, barge-in, memory, supervision, latency; plain state)
//!                                      │ commands                 ▲ reports (Recipients)
//!          ┌──────────────┬────────────┴──┬──────────────┬────────┴─────┐
//!     DeepgramLink     LlmWorker        TtsLink        Recorder       Persister
//!     (STT socket)    (SSE stream)   (TTS socket/HTTP) (audio files)  (database writes, in order)
//! ```
//!
//! - [`conversation`]: the core, driven by plain inputs and answering with plain effects; unit-tested
//!   without any socket. It imports the children's message types and nothing of the transports.
//! - [`client_socket`]: the actor that runs a conversation over a WebSocket for any [`client_socket::Wire`];
//!   [`children`] starts the child actors and carries the conversation's commands to them.
//! - [`browser`]: parley's own JSON + binary protocol, a wire and nothing more.
//! - [`twilio`]: a phone call's Twilio Media Stream (μ-law in and out, marks for what was heard), the same.
//! - [`deepgram_link`], [`llm_worker`], [`tts_link`]: the provider clients (children), over
//!   [`ws_upstream`] for sockets; the Recorder and Persister live in `recording` and `persistence`.
//! - [`settings`]: what a session is given (settings, dependencies, parameters), built by `startup` and the
//!   route; a session never sees the whole application.
//!
//! Dependencies inside run one way: providers' clients ← conversation ← children/client_socket ← browser.
//! The Registry (outside the tree) tracks the session for metrics, history endpoints and shutdown.

pub mod browser;
pub mod children;
pub mod client_socket;
pub mod conversation;
pub mod deepgram_link;
pub mod llm_worker;
pub mod settings;
pub mod tts_link;
pub mod twilio;
pub mod ws_upstream;
