//! Audio formats parley reads and writes: the ElevenLabs output formats, WAV/MP3/FLAC containers and their
//! durations. Pure code, no I/O beyond what a caller hands in; every parser is total (bad input gives `None` or
//! an error, never a panic).

pub mod output_format;

pub use output_format::{Encoding, OutputFormat};
