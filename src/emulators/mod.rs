//! Local emulators of Deepgram live STT, OpenAI-compatible chat streaming and ElevenLabs TTS, speaking the
//! real wire protocols (see `providers`), and of a Twilio caller (`twilio`: places a phone call against a
//! voice webhook and speaks Media Streams), for tests, offline development and load tests. Start them with
//! `Emulators::start`, steer each through its control handle (scripts, latencies, faults, logs,
//! `wait_until`), or run them standalone with `cli::run_cli` (`parley emulate`). README.md beside this file
//! says how to point a client at them.

pub mod cli;
pub mod common;
pub mod deepgram;
pub mod elevenlabs;
pub mod openai;
pub mod options;
pub mod running;
pub mod synth;
pub mod twilio;

pub use common::log::CLI_LOG_LIMIT;
pub use deepgram::{DeepgramConnectionLog, DeepgramControl, DeepgramFault, FinalizeReply};
pub use elevenlabs::{ElevenLabsControl, ElevenLabsFault, SentFrame, TtsHttpLog, TtsSnapshot, TtsSocketLog};
pub use openai::{ChatRequestLog, OpenAiControl, OpenAiFault, Reply, Torture};
pub use options::{
    DEEPGRAM_KEY, DeepgramOptions, ELEVENLABS_KEY, ElevenLabsOptions, EmulatorOptions, OPENAI_KEY, OpenAiOptions,
};
pub use running::Emulators;
