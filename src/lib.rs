//! parley: a real-time voice agent server.
//!
//! A client streams microphone audio over a WebSocket; parley transcribes it with Deepgram, answers with an
//! OpenAI-compatible LLM, speaks the answer with ElevenLabs and streams the audio back while the rest of the
//! reply is still being generated. See README.md for the architecture and `session` for the actor tree.
//!
//! Dependencies run one way, from the bottom up; a module uses only modules of the layers below it
//! ([`layering`] holds the table and a test that fails on any import against it, which also rules out
//! cycles):
//!
//! ```text
//!  cli                      the command line
//!  startup                  builds everything from a Config, binds, serves, drains
//!  routes                   HTTP and WebSocket endpoints, one file per resource
//!  state                    AppState: what handlers get (one style: web::Data<AppState>)
//!  session                  voice sessions: conversation core, ClientSocket<Wire>, children, transports
//!  recording  registry      audio to storage (Recorder, Uploader) · live sessions
//!  persistence  emulate     ordered history writes (Persister, PendingWrites) · in-process emulators
//!  metrics  api_error  auth  emulators  agents    · agent profiles (the agents file, validated)
//!  db  tools                Store over PostgreSQL or SQLite, tables, ids · tool definitions, argument checks
//!  crypto  providers  limits    encryption · provider wire types, ProviderError · token buckets
//!  config                   the one typed Config
//!  audio  retry  telemetry  http_client  build_info    · version and commit of this binary
//! ```

pub mod agents;
pub mod api_error;
pub mod audio;
pub mod auth;
pub mod build_info;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod emulate;
pub mod emulators;
pub mod http_client;
pub mod layering;
pub mod limits;
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
pub mod tools;

/// Counts live heap bytes for `/api/metrics` (see `metrics::alloc`).
#[global_allocator]
static ALLOCATOR: metrics::alloc::CountingAllocator = metrics::alloc::CountingAllocator;
