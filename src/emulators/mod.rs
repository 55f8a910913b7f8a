//! Local emulators of Deepgram live STT, OpenAI-compatible chat streaming and ElevenLabs TTS, speaking the
//! real wire protocols (see `providers`), for tests, offline development and load tests.

pub mod common;
pub mod deepgram;
pub mod openai;
pub mod synth;
