//! Walking MPEG audio frames from header to header, resynchronising over garbage.
//!
//! A sync word is trusted as a frame only when its header is valid and either directly follows a trusted frame,
//! or is followed by another header of the same stream exactly one frame length later (or by the end of the
//! audio). The first frame of a stream has no trusted predecessor, so it needs its successor: a first frame
//! followed by garbage is not counted (one frame lost rather than noise counted). Random bytes pass the header
//! check about once in tens of thousands of positions and both checks about once in billions, so noise between
//! frames is skipped rather than counted. Every step moves forward (a frame is at least 24 bytes, a failed
//! position advances one byte), so the walk ends after at most one step per byte.

use std::io::{Read, Seek};

use super::header::FrameHeader;
use super::vbr;
use crate::audio::source::Source;

/// The header at `pos`, if one parses there.
pub(crate) fn header_at<R: Read + Seek>(src: &mut Source<R>, pos: u64) -> Option<FrameHeader> {
    src.array_at(pos).and_then(FrameHeader::parse)
}

/// The first trusted frame at or after `pos` that ends by `end`, belonging to `stream` if given.
pub(crate) fn next_trusted<R: Read + Seek>(
    src: &mut Source<R>,
    mut pos: u64,
    end: u64,
    stream: Option<&FrameHeader>,
) -> Option<(u64, FrameHeader)> {
    while pos.saturating_add(4) <= end {
        pos = src.find(0xFF, pos, end - 3)?;
        if let Some(h) = header_at(src, pos)
            && stream.is_none_or(|s| s.same_stream(&h))
        {
            let next = pos + u64::from(h.frame_len());
            let confirmed = next == end || (next < end && header_at(src, next).is_some_and(|n| n.same_stream(&h)));
            if confirmed {
                return Some((pos, h));
            }
        }
        pos += 1;
    }
    None
}

/// Frames of `stream` from the trusted frame at `pos` to `end`, following frame lengths and resynchronising
/// after garbage. A frame followed by something other than a frame is kept unless a trusted frame starts
/// inside it (then it was a cut-off frame or noise that happened to look like a header). A frame cut off by
/// `end` is not counted: no decoder can play it. Nor is a Xing/Info/VBRI tag frame, wherever it is: files
/// joined together carry one per part, and none of them is audio.
pub(crate) fn count_frames<R: Read + Seek>(src: &mut Source<R>, mut pos: u64, end: u64, stream: &FrameHeader) -> u64 {
    let mut frames = 0;
    loop {
        let fits = header_at(src, pos)
            .filter(|h| stream.same_stream(h))
            .map(|h| (h, pos + u64::from(h.frame_len())))
            .filter(|&(_, next)| next <= end);
        let Some((header, next)) = fits else {
            match next_trusted(src, pos + 1, end, Some(stream)) {
                Some((found, _)) => pos = found,
                None => return frames,
            }
            continue;
        };
        let audio = u64::from(!is_tag_frame(src, pos, &header));
        if next == end || header_at(src, next).is_some_and(|n| stream.same_stream(&n)) {
            frames += audio;
            pos = next;
            continue;
        }
        match next_trusted(src, pos + 1, end, Some(stream)) {
            Some((found, _)) if found < next => pos = found,
            Some((found, _)) => {
                frames += audio;
                pos = found;
            }
            None => return frames + audio,
        }
    }
}

/// Whether the frame at `pos` carries a Xing, Info or VBRI tag (4 bytes at each place one can be, if the
/// frame is long enough to hold them).
fn is_tag_frame<R: Read + Seek>(src: &mut Source<R>, pos: u64, header: &FrameHeader) -> bool {
    let mut magic_at = |offset: usize| {
        (offset + 4 <= header.frame_len() as usize).then(|| src.array_at::<4>(pos + offset as u64)).flatten()
    };
    let xing = magic_at(header.xing_offset());
    let vbri = magic_at(vbr::VBRI_OFFSET);
    xing.is_some_and(|m| &m == b"Xing" || &m == b"Info") || vbri.is_some_and(|m| &m == b"VBRI")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A 417-byte MPEG-1 Layer III frame (128 kbps, 44.1 kHz), payload filled with `fill`.
    fn frame(fill: u8) -> Vec<u8> {
        let mut f = vec![0xFF, 0xFB, 0x90, 0x64];
        f.resize(417, fill);
        f
    }

    fn walk(bytes: Vec<u8>) -> u64 {
        let mut src = Source::new(Cursor::new(bytes)).unwrap();
        let end = src.len();
        match next_trusted(&mut src, 0, end, None) {
            Some((pos, h)) => count_frames(&mut src, pos, end, &h),
            None => 0,
        }
    }

    #[test]
    fn back_to_back_frames_are_all_counted() {
        assert_eq!(walk([frame(0), frame(1), frame(2)].concat()), 3);
    }

    #[test]
    fn garbage_before_between_and_after_frames_is_skipped() {
        let noise = vec![0xFF, 0xFB, 0x90, 0x64, 0xFF, 0x00, 0x12];
        let file = [noise.clone(), frame(0), frame(0), noise.clone(), frame(0), frame(0), noise].concat();
        assert_eq!(walk(file), 4);
    }

    #[test]
    fn a_first_frame_followed_by_garbage_is_not_trusted_but_later_ones_are() {
        let file = [frame(0), vec![0x11], frame(0), frame(0), vec![0x11], frame(0)].concat();
        assert_eq!(walk(file), 3);
    }

    #[test]
    fn a_lone_sync_word_in_noise_is_not_a_frame() {
        let mut bytes = vec![0x11u8; 4000];
        bytes[100..104].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
        assert_eq!(walk(bytes), 0);
    }

    #[test]
    fn frames_of_another_stream_inside_the_walk_are_not_counted() {
        // Two MPEG-2 24 kHz frames wedged between 44.1 kHz frames.
        let mut other = vec![0xFF, 0xF3, 0x84, 0xC4];
        other.resize(192, 0);
        let file = [frame(0), frame(0), other.clone(), other, frame(0), frame(0)].concat();
        assert_eq!(walk(file), 4);
    }

    #[test]
    fn a_cut_off_frame_followed_by_a_new_stream_is_dropped_for_the_frame_inside_it() {
        let cut = frame(0)[..200].to_vec();
        let file = [frame(0), cut, frame(0), frame(0)].concat();
        assert_eq!(walk(file), 3);
    }

    #[test]
    fn a_truncated_last_frame_is_not_counted_but_an_exact_last_frame_is() {
        let mut file = [frame(0), frame(0), frame(0)].concat();
        assert_eq!(walk(file.clone()), 3);
        file.truncate(417 * 3 - 1);
        assert_eq!(walk(file), 2);
    }
}
