//! One voice session per WebSocket connection, as a tree of actors (all on the worker thread that accepted
//! the connection, so messages between them are cheap):
//!
//! ```text
//!                       ClientSocket  (the WebSocket; parent: owns session state, turns, restart policy)
//!          ┌──────────────┬───────┴───────┬──────────────┬──────────────┐
//!     DeepgramLink     LlmWorker        TtsLink        Recorder       Persister
//!     (STT socket)    (SSE stream)   (TTS socket/HTTP) (audio files)  (database writes, in order)
//! ```
//!
//! Children report to the parent through `Recipient`s; the parent talks to them through their addresses.
//! The `Registry` (outside the tree) tracks the session for metrics, history endpoints and shutdown.
//! The pure pieces the parent uses to decide things live beside it: `utterance` (when the user has finished),
//! `segmenter` (sentences for TTS), `barge_in` (when speech interrupts), `memory` (what the LLM sees),
//! `latency` (per-stage timings).

pub mod audio_clock;
pub mod barge_in;
pub mod client_socket;
pub mod deepgram_link;
pub mod latency;
pub mod llm_worker;
pub mod memory;
pub mod persister;
pub mod protocol;
pub mod segmenter;
pub mod tts_link;
pub mod upstream;
pub mod utterance;
pub mod ws_upstream;
