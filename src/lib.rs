//! parley: a real-time voice agent server.
//!
//! A client streams microphone audio over a WebSocket; parley transcribes it with Deepgram, answers with an
//! OpenAI-compatible LLM, speaks the answer with ElevenLabs and streams the audio back while the rest of the
//! reply is still being generated. See README.md for the architecture and `session` for the actor tree.

pub mod api_error;
pub mod audio;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod emulate;
pub mod emulators;
pub mod http_client;
pub mod metrics;
pub mod persistence;
pub mod providers;
pub mod recording;
pub mod registry;
pub mod retry;
pub mod routes;
pub mod session;
pub mod startup;
pub mod state;
pub mod telemetry;

/// Counts live heap bytes for `/api/metrics` (see `metrics::alloc`).
#[global_allocator]
static ALLOCATOR: metrics::alloc::CountingAllocator = metrics::alloc::CountingAllocator;
