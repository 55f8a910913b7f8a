//! Synthetic audio for the emulators: the tone the fake voice speaks, G.711 companding, MPEG Layer III frame
//! handling and a renderer that produces any supported ElevenLabs output format continuously.

/// G.711 now lives with the rest of parley's audio code; the emulators use it from there.
pub use crate::audio::g711;
pub mod mp3;
pub mod render;
pub mod tone;

pub use render::{Renderer, UnsupportedFormat};
