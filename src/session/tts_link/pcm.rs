//! Keeps raw 16-bit PCM in whole samples: a provider chunk may end in the middle of a sample (an odd byte
//! count), so the odd byte is carried into the next chunk instead of shifting every later sample.

use bytes::{Bytes, BytesMut};

/// Carries a trailing half sample between chunks (only for 16-bit PCM output).
#[derive(Debug, Default)]
pub struct SampleAligner {
    carry: Option<u8>,
}

impl SampleAligner {
    /// `chunk` with any carried byte in front, cut to whole samples when `pcm16` is true.
    pub fn align(&mut self, chunk: Bytes, pcm16: bool) -> Bytes {
        if !pcm16 {
            return chunk;
        }
        let mut out = BytesMut::with_capacity(chunk.len() + 1);
        if let Some(b) = self.carry.take() {
            out.extend_from_slice(&[b]);
        }
        out.extend_from_slice(&chunk);
        if out.len() % 2 == 1 {
            self.carry = out.last().copied();
            out.truncate(out.len() - 1);
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_chunks_are_rejoined_into_whole_samples() {
        let mut a = SampleAligner::default();
        assert_eq!(&a.align(Bytes::from_static(&[1, 2, 3]), true)[..], &[1, 2]);
        assert_eq!(&a.align(Bytes::from_static(&[4, 5, 6]), true)[..], &[3, 4, 5, 6]);
        assert_eq!(&a.align(Bytes::from_static(&[7]), true)[..], &[] as &[u8]);
        assert_eq!(&a.align(Bytes::from_static(&[8]), true)[..], &[7, 8]);
        assert_eq!(&a.align(Bytes::from_static(&[9]), false)[..], &[9], "MP3 passes through untouched");
    }
}
