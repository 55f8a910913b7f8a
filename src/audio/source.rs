//! Random access to a recording through a small fixed window, shared by every container parser.
//!
//! Parsers ask for a few bytes at an absolute offset; the window refills from the underlying `Read + Seek` when
//! the request falls outside it. Memory is one fixed buffer whatever the file's size or the size fields inside
//! it claim, and a failed read or seek looks exactly like the end of the file, so parsers have one case to
//! handle ("not there") instead of an I/O error per field.

use std::io::{Read, Seek, SeekFrom};

/// Bytes held in memory at once; larger than any single header a parser reads (the biggest is an MP3 frame,
/// under 3 KiB), small enough to keep memory flat.
const WINDOW: usize = 64 * 1024;

/// A windowed view of a seekable byte stream of known length.
pub(crate) struct Source<R> {
    inner: R,
    len: u64,
    window: Vec<u8>,
    window_start: u64,
}

impl<R: Read + Seek> Source<R> {
    /// Wraps `inner`, measuring its length by seeking to the end. `None` if the stream cannot seek.
    pub(crate) fn new(mut inner: R) -> Option<Self> {
        let len = inner.seek(SeekFrom::End(0)).ok()?;
        Some(Source { inner, len, window: Vec::new(), window_start: 0 })
    }

    /// Total length of the stream in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Fills `out` with the bytes at `pos`; false if any of them lie past the end (or cannot be read).
    pub(crate) fn read_at(&mut self, pos: u64, out: &mut [u8]) -> bool {
        let Some(end) = pos.checked_add(out.len() as u64) else {
            return false;
        };
        if end > self.len || out.len() > WINDOW {
            return false;
        }
        if !self.window_holds(pos, end) && !self.refill(pos) {
            return false;
        }
        let Some(offset) = pos.checked_sub(self.window_start).and_then(|o| usize::try_from(o).ok()) else {
            return false;
        };
        match self.window.get(offset..offset + out.len()) {
            Some(bytes) => {
                out.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }

    /// The `N` bytes at `pos`, if they all exist.
    pub(crate) fn array_at<const N: usize>(&mut self, pos: u64) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        self.read_at(pos, &mut out).then_some(out)
    }

    /// Offset of the first `byte` in `[pos, end)`, scanning the window rather than reading byte by byte, so a
    /// resynchronising walk over a long run of garbage stays cheap.
    pub(crate) fn find(&mut self, byte: u8, mut pos: u64, end: u64) -> Option<u64> {
        let end = end.min(self.len);
        while pos < end {
            if !self.window_holds(pos, pos + 1) && !self.refill(pos) {
                return None;
            }
            let offset = usize::try_from(pos.checked_sub(self.window_start)?).ok()?;
            let held = self.window.get(offset..)?;
            let limit = usize::try_from(end - pos).map_or(held.len(), |n| n.min(held.len()));
            if limit == 0 {
                return None; // the read came back empty: treat as the end
            }
            match held.get(..limit)?.iter().position(|&b| b == byte) {
                Some(i) => return Some(pos + i as u64),
                None => pos += limit as u64,
            }
        }
        None
    }

    fn window_holds(&self, pos: u64, end: u64) -> bool {
        pos >= self.window_start && end <= self.window_start + self.window.len() as u64
    }

    /// Loads the window starting at `pos`; false on a seek or read error.
    fn refill(&mut self, pos: u64) -> bool {
        self.window.clear();
        self.window_start = pos;
        if self.inner.seek(SeekFrom::Start(pos)).is_err() {
            return false;
        }
        let want = usize::try_from(self.len - pos).map_or(WINDOW, |left| left.min(WINDOW));
        self.window.resize(want, 0);
        let mut filled = 0;
        while filled < want {
            match self.inner.read(&mut self.window[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.window.truncate(filled);
        true
    }
}

/// Little-endian `u16` at `at` in `b`, if there.
pub(crate) fn le16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

/// Little-endian `u32` at `at` in `b`, if there.
pub(crate) fn le32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Big-endian `u32` at `at` in `b`, if there.
pub(crate) fn be32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_inside_and_across_window_boundaries() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut src = Source::new(Cursor::new(&data)).unwrap();
        assert_eq!(src.len(), 200_000);
        for pos in [0u64, 10, 65_530, 65_536, 131_070, 199_996] {
            let got: [u8; 4] = src.array_at(pos).unwrap();
            let p = pos as usize;
            assert_eq!(&got[..], &data[p..p + 4]);
        }
    }

    #[test]
    fn find_locates_a_byte_across_windows_and_respects_the_end() {
        let mut data = vec![0u8; 150_000];
        data[70_000] = 0xFF;
        data[140_000] = 0xFF;
        let mut src = Source::new(Cursor::new(&data)).unwrap();
        assert_eq!(src.find(0xFF, 0, 150_000), Some(70_000));
        assert_eq!(src.find(0xFF, 70_001, 150_000), Some(140_000));
        assert_eq!(src.find(0xFF, 70_001, 140_000), None);
        assert_eq!(src.find(0xFF, 140_001, u64::MAX), None);
    }

    #[test]
    fn reads_past_the_end_or_overflowing_offsets_are_absent() {
        let mut src = Source::new(Cursor::new(vec![1u8, 2, 3])).unwrap();
        assert_eq!(src.array_at::<2>(1), Some([2, 3]));
        assert_eq!(src.array_at::<2>(2), None);
        assert_eq!(src.array_at::<1>(u64::MAX), None);
        let mut big = vec![0u8; WINDOW + 1];
        assert!(!src.read_at(0, &mut big));
    }
}
