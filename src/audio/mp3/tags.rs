//! Where the audio of a tagged file starts and ends: ID3v2 tags in front (any number, with the v2.4 footer
//! flag), and ID3v1, APEv2, Lyrics3v2 and appended ID3v2.4 tags behind. The frame walk stays between the two
//! bounds, so tag bytes are never mistaken for frames, and the last real frame is recognised by ending exactly
//! at the audio end.

use std::io::{Read, Seek};

use crate::audio::source::{Source, le32_at};

/// Length of the ID3v2 tag whose 10-byte header (or v2.4 footer, `3DI`) is `b`, header and footer included;
/// `None` if `b` is not one. A size byte with its top bit set breaks the syncsafe encoding, so it is refused.
fn id3v2_len(b: [u8; 10], magic: &[u8; 3]) -> Option<u64> {
    let [m0, m1, m2, major, revision, flags, s0, s1, s2, s3] = b;
    if [m0, m1, m2] != *magic || major == 0xFF || revision == 0xFF {
        return None;
    }
    if [s0, s1, s2, s3].iter().any(|&s| s & 0x80 != 0) {
        return None;
    }
    let size = [s0, s1, s2, s3].iter().fold(0u64, |acc, &s| (acc << 7) | u64::from(s));
    let footer = if major >= 4 && flags & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

/// Offset just past any ID3v2 tags at `pos`. Each tag moves forward by at least 10 bytes and the loop stops at
/// a tag claiming to run past the end, so it ends.
pub(crate) fn skip_id3v2<R: Read + Seek>(src: &mut Source<R>, mut pos: u64) -> u64 {
    while let Some(len) = src.array_at(pos).and_then(|b| id3v2_len(b, b"ID3")) {
        match pos.checked_add(len) {
            Some(next) if next <= src.len() => pos = next,
            _ => break,
        }
    }
    pos
}

/// Offset where trailing tags begin (the file length if there are none), never before `start`.
pub(crate) fn audio_end<R: Read + Seek>(src: &mut Source<R>, start: u64) -> u64 {
    let mut end = src.len();
    // Tags stack in a few known orders (e.g. APE then Lyrics3 then ID3v1); each round strips one.
    for _ in 0..8 {
        match trailing_tag_len(src, end) {
            Some(len) if len > 0 && end.saturating_sub(len) >= start => end -= len,
            _ => break,
        }
    }
    end
}

/// Length of the tag ending at `end`, if one does.
fn trailing_tag_len<R: Read + Seek>(src: &mut Source<R>, end: u64) -> Option<u64> {
    if let Some(tag) = end.checked_sub(128).and_then(|p| src.array_at::<3>(p))
        && &tag == b"TAG"
    {
        return Some(128);
    }
    if let Some(footer) = end.checked_sub(32).and_then(|p| src.array_at::<32>(p))
        && footer.get(..8)? == b"APETAGEX"
    {
        let size = u64::from(le32_at(&footer, 12)?);
        let has_header = le32_at(&footer, 20)? & 0x8000_0000 != 0;
        return Some(size + if has_header { 32 } else { 0 });
    }
    if let Some(marker) = end.checked_sub(15).and_then(|p| src.array_at::<15>(p))
        && marker.get(6..)? == b"LYRICS200"
    {
        let digits = std::str::from_utf8(marker.get(..6)?).ok()?;
        return Some(digits.parse::<u64>().ok()? + 15);
    }
    if let Some(footer) = end.checked_sub(10).and_then(|p| src.array_at::<10>(p)) {
        return id3v2_len(footer, b"3DI");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn id3v2(major: u8, flags: u8, body_len: usize) -> Vec<u8> {
        let mut t = vec![b'I', b'D', b'3', major, 0, flags];
        let n = body_len as u32;
        t.extend([(n >> 21) as u8 & 0x7F, (n >> 14) as u8 & 0x7F, (n >> 7) as u8 & 0x7F, n as u8 & 0x7F]);
        t.resize(10 + body_len, 0);
        t
    }

    fn src(bytes: Vec<u8>) -> Source<Cursor<Vec<u8>>> {
        Source::new(Cursor::new(bytes)).unwrap()
    }

    #[test]
    fn consecutive_id3v2_tags_and_a_v24_footer_are_skipped_by_their_syncsafe_sizes() {
        let mut file = id3v2(3, 0, 300);
        let mut with_footer = id3v2(4, 0x10, 200);
        with_footer.extend_from_slice(b"3DI\x04\x00\x10\x00\x00\x01\x48");
        file.extend(with_footer);
        file.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
        assert_eq!(skip_id3v2(&mut src(file), 0), 310 + 220);
    }

    #[test]
    fn a_tag_with_a_broken_syncsafe_size_or_running_past_the_end_is_not_skipped() {
        let mut bad = id3v2(3, 0, 20);
        bad[6] = 0x80;
        assert_eq!(skip_id3v2(&mut src(bad), 0), 0);
        let mut short = id3v2(3, 0, 20);
        short.truncate(15);
        assert_eq!(skip_id3v2(&mut src(short), 0), 0);
    }

    #[test]
    fn id3v1_ape_and_lyrics3_tags_at_the_end_are_all_stripped() {
        let mut file = vec![0xAAu8; 1000];
        let mut ape = vec![0u8; 40];
        let mut footer = b"APETAGEX".to_vec();
        footer.extend_from_slice(&2000u32.to_le_bytes());
        footer.extend_from_slice(&(40u32 + 32).to_le_bytes());
        footer.extend_from_slice(&0u32.to_le_bytes());
        footer.extend_from_slice(&0u32.to_le_bytes());
        footer.resize(32, 0);
        ape.extend(footer);
        file.extend(ape);
        file.extend_from_slice(b"LYRICSBEGINxx000013LYRICS200");
        let mut v1 = b"TAG".to_vec();
        v1.resize(128, b' ');
        file.extend(v1);
        assert_eq!(audio_end(&mut src(file), 0), 1000);
    }

    #[test]
    fn trailing_tags_never_move_the_end_before_the_start() {
        let mut file = b"TAG".to_vec();
        file.resize(128, 0);
        assert_eq!(audio_end(&mut src(file.clone()), 0), 0);
        assert_eq!(audio_end(&mut src(file), 1), 128);
    }
}
