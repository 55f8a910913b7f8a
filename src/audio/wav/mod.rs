//! WAV: the container parley records raw audio in. Writing (a header for a streaming file, and a writer that
//! patches it at the end), reading (a RIFF chunk walk that yields the format and the duration) and repairing
//! (patching the header of a file whose writer died).

mod format;
mod header;
mod reader;
mod repair;
mod writer;

pub use format::{FORMAT_ALAW, FORMAT_EXTENSIBLE, FORMAT_IEEE_FLOAT, FORMAT_MULAW, FORMAT_PCM, WavEncoding, WavFormat};
pub use header::{DataLen, WavHeader};
pub(crate) use reader::info_from;
pub use reader::{WavInfo, duration_seconds, read_info};
pub use repair::repair;
pub use writer::WavWriter;

/// Why a WAV file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file system refused a write or seek; the recording is incomplete.
    #[error("writing the WAV file failed: {0}")]
    Io(#[from] std::io::Error),
    /// The data would not fit the 32-bit RIFF sizes; the caller should start a new file.
    #[error("a WAV file holds at most {max_bytes} bytes of samples")]
    TooLong { max_bytes: u32 },
    /// The requested format cannot be described by a WAV header.
    #[error("invalid WAV format: {0}")]
    InvalidFormat(&'static str),
}
