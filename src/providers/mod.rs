//! Wire types of the upstream providers (and of Twilio, the phone carrier), one module each, shared by parley's client actors
//! (`crate::session`) and the local emulators (`crate::emulators`). Parsing is pure code with unit tests; no
//! socket is needed to test a parser.

pub mod deepgram;
pub mod elevenlabs;
pub mod error;
pub mod openai;
pub mod twilio;

pub use error::{FailureKind, Provider, ProviderError};
