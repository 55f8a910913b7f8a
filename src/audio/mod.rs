//! Audio formats parley reads and writes: the ElevenLabs output formats, WAV/MP3/FLAC containers and their
//! durations. Pure code, no I/O beyond what a caller hands in; every parser is total (bad input gives `None` or
//! an error, never a panic).
//!
//! - [`output_format`]: the ElevenLabs `output_format` values.
//! - [`wav`]: WAV headers and a streaming writer for recordings; the RIFF chunk reader.
//! - [`mp3`], [`flac`]: durations of the compressed containers.
//! - [`sniff`]: which container a content type or a file's first bytes name.
//! - [`duration`]: one call from a recording to its duration in seconds.
//! - `source` (private): the fixed-size window every parser reads through.

pub mod duration;
pub mod flac;
pub mod g711;
pub mod level;
pub mod meter;
pub mod mp3;
pub mod output_format;
pub mod sniff;
mod source;
pub mod wav;

pub use duration::{duration_seconds, file_duration_seconds};
pub use output_format::{Encoding, OutputFormat};
pub use sniff::{Container, detect};

#[cfg(test)]
mod tests;
