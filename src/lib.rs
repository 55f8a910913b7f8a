//! parley: a real-time voice agent server.
//!
//! A client streams microphone audio over a WebSocket; parley transcribes it with Deepgram, answers with an
//! OpenAI-compatible LLM, speaks the answer with ElevenLabs and streams the audio back while the rest of the
//! reply is still being generated. See README.md for the architecture and `session` for the actor tree.

pub mod audio;
pub mod emulators;
pub mod providers;
