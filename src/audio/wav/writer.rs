//! Streams samples into a WAV file as they arrive: a placeholder header first, samples appended, the sizes
//! patched in place at the end. Memory stays at zero beyond the caller's own buffers however long the turn is,
//! and a file that is never finished (crash, vanished client) is still readable: its placeholder sizes mean
//! "to the end of the file".

use std::io::{Seek, SeekFrom, Write};

use super::WavError;
use super::format::WavFormat;
use super::header::DataLen;

/// A WAV file being written; call [`WavWriter::finish`] to patch the header.
#[derive(Debug)]
pub struct WavWriter<W: Write + Seek> {
    inner: W,
    format: WavFormat,
    /// Where the header starts in `inner` (the writer may be handed a stream that already holds data).
    start: u64,
    data_len: u64,
}

impl<W: Write + Seek> WavWriter<W> {
    /// Writes a streaming header at the current position of `inner` and returns a writer for the samples.
    pub fn new(mut inner: W, format: WavFormat) -> Result<Self, WavError> {
        let start = inner.stream_position()?;
        inner.write_all(&format.header(DataLen::Streaming))?;
        Ok(WavWriter { inner, format, start, data_len: 0 })
    }

    /// Appends sample bytes in the format's encoding (interleaved little-endian for PCM). Refused, with
    /// nothing written, if the file would pass the 4 GiB a RIFF size can describe.
    pub fn append(&mut self, samples: &[u8]) -> Result<(), WavError> {
        let new_len = self.data_len.saturating_add(samples.len() as u64);
        if new_len > u64::from(self.format.max_data_len()) {
            return Err(WavError::TooLong { max_bytes: self.format.max_data_len() });
        }
        self.inner.write_all(samples)?;
        self.data_len = new_len;
        Ok(())
    }

    /// Sample bytes written so far.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Seconds of audio written so far, exact for these constant-rate formats.
    pub fn duration_seconds(&self) -> f64 {
        self.data_len as f64 / f64::from(self.format.byte_rate())
    }

    /// The format being written.
    pub fn format(&self) -> WavFormat {
        self.format
    }

    /// Gives the stream back as it is, the header unpatched (the recording is being dropped).
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Pads an odd data chunk to even length (a RIFF rule), patches the sizes in the header and returns the
    /// stream positioned at the end of the file.
    pub fn finish(mut self) -> Result<W, WavError> {
        // `append` keeps data_len within max_data_len, which is a u32.
        let data_len =
            u32::try_from(self.data_len).map_err(|_| WavError::TooLong { max_bytes: self.format.max_data_len() })?;
        if data_len % 2 == 1 {
            self.inner.write_all(&[0])?;
        }
        let end = self.inner.stream_position()?;
        self.inner.seek(SeekFrom::Start(self.start))?;
        self.inner.write_all(&self.format.header(DataLen::Known(data_len)))?;
        self.inner.seek(SeekFrom::Start(end))?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::wav::{WavEncoding, read_info};
    use std::io::Cursor;

    fn pcm16_mono_16k() -> WavFormat {
        WavFormat::new(WavEncoding::Pcm16, 16_000, 1).unwrap()
    }

    #[test]
    fn a_finished_pcm_file_is_a_canonical_44_byte_header_plus_samples() {
        let mut w = WavWriter::new(Cursor::new(Vec::new()), pcm16_mono_16k()).unwrap();
        w.append(&[1, 0, 2, 0]).unwrap();
        w.append(&[3, 0]).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(bytes.len(), 44 + 6);
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 36 + 6);
        assert_eq!(&bytes[36..40], b"data");
        assert_eq!(u32::from_le_bytes(bytes[40..44].try_into().unwrap()), 6);
        assert_eq!(&bytes[44..], &[1, 0, 2, 0, 3, 0]);
    }

    #[test]
    fn an_odd_data_length_gets_a_pad_byte_counted_in_riff_but_not_in_data() {
        let format = WavFormat::new(WavEncoding::Ulaw, 8_000, 1).unwrap();
        let mut w = WavWriter::new(Cursor::new(Vec::new()), format).unwrap();
        w.append(&[0xFF; 3]).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(bytes.len(), format.header_len() + 4);
        let info = read_info(Cursor::new(&bytes)).unwrap();
        assert_eq!(info.data_len, 3);
        assert_eq!(info.fact_samples, Some(3));
        let riff = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(riff as usize, bytes.len() - 8);
    }

    #[test]
    fn an_unfinished_file_still_reads_to_its_end() {
        let mut w = WavWriter::new(Cursor::new(Vec::new()), pcm16_mono_16k()).unwrap();
        w.append(&[0; 32_000]).unwrap();
        // Never finished: the header still holds the streaming placeholders.
        let bytes = w.inner.into_inner();
        let info = read_info(Cursor::new(&bytes)).unwrap();
        assert_eq!(info.duration_seconds(), Some(1.0));
    }

    #[test]
    fn a_writer_placed_after_existing_bytes_patches_its_own_header() {
        let mut cursor = Cursor::new(b"prefix".to_vec());
        cursor.seek(SeekFrom::End(0)).unwrap();
        let mut w = WavWriter::new(cursor, pcm16_mono_16k()).unwrap();
        w.append(&[0; 10]).unwrap();
        assert_eq!(w.duration_seconds(), 10.0 / 32_000.0);
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(&bytes[..6], b"prefix");
        let info = read_info(Cursor::new(&bytes[6..])).unwrap();
        assert_eq!(info.data_len, 10);
    }

    #[test]
    fn appending_past_four_gibibytes_is_refused_without_writing() {
        let mut w = WavWriter::new(Cursor::new(Vec::new()), pcm16_mono_16k()).unwrap();
        w.data_len = u64::from(w.format.max_data_len()) - 1;
        let before = w.inner.get_ref().len();
        assert!(matches!(w.append(&[0, 0]), Err(WavError::TooLong { .. })));
        assert_eq!(w.inner.get_ref().len(), before);
    }
}
