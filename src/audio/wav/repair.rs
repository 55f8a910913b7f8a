//! Finishing a WAV file whose writer never did (the process died mid-recording): its header still holds the
//! streaming placeholders, so the sizes are patched from the file's length, as [`super::WavWriter::finish`]
//! would have: whole sample frames only (a frame cut by the crash is dropped), a pad byte after an odd data
//! chunk. Readers already take the placeholders as "to the end of the file"; players are less forgiving.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};

use super::format::{FORMAT_ALAW, FORMAT_MULAW, FORMAT_PCM};
use super::header::DataLen;
use super::{WavEncoding, WavFormat, read_info};

/// Patches `file`'s header if it is an unfinished file of a format parley writes; returns whether it did.
/// A complete file, or one parley did not write, is left as it is.
pub fn repair(file: &mut File) -> std::io::Result<bool> {
    let Some(format) = parley_format(file)? else {
        return Ok(false);
    };
    let header_len = format.header_len() as u64;
    let len = file.metadata()?.len();
    let mut head = vec![0u8; format.header_len()];
    if len < header_len {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut head)?;
    if head[..] != format.header(DataLen::Streaming)[..] {
        return Ok(false); // finished, or not written by parley
    }
    let align = u64::from(format.block_align().max(1));
    let data_len = ((len - header_len).min(u64::from(format.max_data_len())) / align) * align;
    // max_data_len fits a u32.
    let data = u32::try_from(data_len).unwrap_or_else(|_| format.max_data_len());
    file.set_len(header_len + data_len)?;
    if data_len % 2 == 1 {
        file.seek(SeekFrom::End(0))?;
        file.write_all(&[0])?;
    }
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&format.header(DataLen::Known(data)))?;
    file.sync_all()?;
    Ok(true)
}

/// The format of `file` if it is one parley writes.
fn parley_format(file: &mut File) -> std::io::Result<Option<WavFormat>> {
    file.seek(SeekFrom::Start(0))?;
    let Some(info) = read_info(&mut *file) else {
        return Ok(None);
    };
    let encoding = match (info.format_tag, info.bits_per_sample) {
        (FORMAT_PCM, 16) => WavEncoding::Pcm16,
        (FORMAT_MULAW, 8) => WavEncoding::Ulaw,
        (FORMAT_ALAW, 8) => WavEncoding::Alaw,
        _ => return Ok(None),
    };
    Ok(WavFormat::new(encoding, info.sample_rate, info.channels).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::wav::WavWriter;

    /// A file as a writer leaves it when the process dies: header placeholders, then `samples`.
    fn unfinished(format: WavFormat, samples: &[u8]) -> (tempfile::NamedTempFile, Vec<u8>) {
        let mut w = WavWriter::new(std::io::Cursor::new(Vec::new()), format).unwrap();
        w.append(samples).unwrap();
        let finished = w.finish().unwrap().into_inner();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&format.header(DataLen::Streaming)).unwrap();
        file.write_all(samples).unwrap();
        (file, finished)
    }

    #[test]
    fn an_unfinished_file_gets_the_header_its_writer_would_have_written() {
        let pcm = WavFormat::new(WavEncoding::Pcm16, 16_000, 1).unwrap();
        let (file, finished) = unfinished(pcm, &[7u8; 3200]);
        assert!(repair(&mut file.reopen().unwrap()).unwrap());
        assert_eq!(std::fs::read(file.path()).unwrap(), finished);
        assert!(!repair(&mut file.reopen().unwrap()).unwrap(), "a finished file is left alone");
        assert_eq!(std::fs::read(file.path()).unwrap(), finished);
    }

    #[test]
    fn a_frame_cut_by_the_crash_is_dropped_and_an_odd_g711_chunk_padded() {
        let pcm = WavFormat::new(WavEncoding::Pcm16, 16_000, 1).unwrap();
        let (file, finished) = unfinished(pcm, &[1u8; 3200]);
        file.as_file().set_len(44 + 3201).unwrap(); // half a sample more
        assert!(repair(&mut file.reopen().unwrap()).unwrap());
        let repaired = std::fs::read(file.path()).unwrap();
        assert_eq!(repaired.len(), finished.len());
        assert_eq!(&repaired[..44], &finished[..44]);

        let ulaw = WavFormat::new(WavEncoding::Ulaw, 8_000, 1).unwrap();
        let (file, finished) = unfinished(ulaw, &[0xFF; 801]);
        assert!(repair(&mut file.reopen().unwrap()).unwrap());
        assert_eq!(std::fs::read(file.path()).unwrap(), finished);
        let d = crate::audio::file_duration_seconds(Some("audio/wav"), file.path()).unwrap();
        assert!((d - 801.0 / 8000.0).abs() < 1e-9, "{d}");
    }

    #[test]
    fn files_parley_did_not_write_are_left_alone() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"ID3 not a wav at all").unwrap();
        assert!(!repair(&mut file.reopen().unwrap()).unwrap());
        assert_eq!(std::fs::read(file.path()).unwrap(), b"ID3 not a wav at all");
    }
}
