//! The tag an encoder may put in an MP3's first frame: Xing (VBR) or Info (CBR) from LAME and most encoders,
//! with LAME's extension carrying the encoder delay and padding, or VBRI from Fraunhofer encoders. The frame
//! holds no audio; its frame count is what makes a VBR duration cheap to know.

use super::header::FrameHeader;
use crate::audio::source::be32_at;

/// Which tag the first frame carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VbrTagKind {
    /// `Xing`: written for VBR streams.
    Xing,
    /// `Info`: the same layout, written by LAME for CBR streams.
    Info,
    /// `VBRI`: Fraunhofer's layout, at a fixed offset.
    Vbri,
}

/// What the tag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VbrTag {
    pub(crate) kind: VbrTagKind,
    /// Audio frames in the stream, the tag frame excluded.
    pub(crate) frames: Option<u32>,
    /// Bytes in the stream, tag frame included; used to notice a file cut short or extended after tagging.
    pub(crate) bytes: Option<u32>,
    /// Samples the encoder added at the start and the end (LAME extension only).
    pub(crate) delay_and_padding: Option<(u16, u16)>,
}

/// Offset of the VBRI tag from the frame start: header plus 32 bytes, whatever the version or channel mode.
pub(crate) const VBRI_OFFSET: usize = 36;

/// Reads the tag in `frame` (the whole first frame, header included), if it has one.
pub(crate) fn parse(frame: &[u8], header: &FrameHeader) -> Option<VbrTag> {
    parse_xing(frame, header.xing_offset()).or_else(|| parse_vbri(frame))
}

fn parse_xing(frame: &[u8], at: usize) -> Option<VbrTag> {
    let kind = match frame.get(at..at.checked_add(4)?)? {
        b"Xing" => VbrTagKind::Xing,
        b"Info" => VbrTagKind::Info,
        _ => return None,
    };
    let flags = be32_at(frame, at + 4)?;
    let mut pos = at + 8;
    // Fields are present or absent by flag, each shifting the ones after it (and the LAME extension).
    let mut field = |present: bool, len: usize| -> Option<u32> {
        if !present {
            return None;
        }
        let value = be32_at(frame, pos);
        pos += len;
        value
    };
    let frames = field(flags & 1 != 0, 4);
    let bytes = field(flags & 2 != 0, 4);
    let _toc = field(flags & 4 != 0, 100);
    let _quality = field(flags & 8 != 0, 4);
    Some(VbrTag { kind, frames, bytes, delay_and_padding: lame_delay_and_padding(frame, pos) })
}

/// The 12-bit encoder delay and padding of a LAME (or FFmpeg's LAME-compatible) extension starting at `at`:
/// 9 bytes of encoder name, 12 bytes of other fields, then 3 bytes holding the two values.
fn lame_delay_and_padding(frame: &[u8], at: usize) -> Option<(u16, u16)> {
    let encoder = frame.get(at..at.checked_add(4)?)?;
    if !matches!(encoder, b"LAME" | b"Lavf" | b"Lavc") {
        return None;
    }
    let start = at.checked_add(21)?;
    let [a, b, c] = <[u8; 3]>::try_from(frame.get(start..start + 3)?).ok()?;
    let delay = (u16::from(a) << 4) | u16::from(b >> 4);
    let padding = (u16::from(b & 0x0F) << 8) | u16::from(c);
    Some((delay, padding))
}

/// VBRI: "VBRI", version, delay, quality (2 bytes each), then the byte and frame counts.
fn parse_vbri(frame: &[u8]) -> Option<VbrTag> {
    if frame.get(VBRI_OFFSET..VBRI_OFFSET + 4)? != b"VBRI" {
        return None;
    }
    Some(VbrTag {
        kind: VbrTagKind::Vbri,
        bytes: Some(be32_at(frame, VBRI_OFFSET + 10)?),
        frames: Some(be32_at(frame, VBRI_OFFSET + 14)?),
        delay_and_padding: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mpeg1_stereo() -> FrameHeader {
        FrameHeader::parse([0xFF, 0xFB, 0x90, 0x44]).unwrap()
    }

    /// A first frame with a Xing-layout tag `magic`, its `flags`, then `fields` in order; returns the frame
    /// and where the tag starts.
    fn xing_frame(magic: &[u8; 4], flags: u32, fields: &[u32]) -> (Vec<u8>, usize) {
        let h = mpeg1_stereo();
        let mut frame = vec![0u8; h.frame_len() as usize];
        let at = h.xing_offset();
        frame[at..at + 4].copy_from_slice(magic);
        frame[at + 4..at + 8].copy_from_slice(&flags.to_be_bytes());
        for (i, field) in fields.iter().enumerate() {
            let p = at + 8 + 4 * i;
            frame[p..p + 4].copy_from_slice(&field.to_be_bytes());
        }
        (frame, at)
    }

    #[test]
    fn a_lame_xing_tag_gives_frames_bytes_delay_and_padding() {
        let (mut frame, at) = xing_frame(b"Xing", 0x0F, &[40, 8000]);
        let lame = at + 120;
        frame[lame..lame + 9].copy_from_slice(b"LAME3.100");
        frame[lame + 21..lame + 24].copy_from_slice(&[0x24, 0x07, 0x8C]);
        let tag = parse(&frame, &mpeg1_stereo()).unwrap();
        assert_eq!(tag.kind, VbrTagKind::Xing);
        assert_eq!((tag.frames, tag.bytes), (Some(40), Some(8000)));
        assert_eq!(tag.delay_and_padding, Some((576, 1932)));
    }

    #[test]
    fn an_info_tag_without_a_frame_count_reports_none_for_it() {
        let (frame, _) = xing_frame(b"Info", 0x02, &[1234]);
        let tag = parse(&frame, &mpeg1_stereo()).unwrap();
        assert_eq!((tag.kind, tag.frames, tag.bytes), (VbrTagKind::Info, None, Some(1234)));
        assert_eq!(tag.delay_and_padding, None);
    }

    #[test]
    fn a_vbri_tag_is_found_at_its_fixed_offset() {
        let h = mpeg1_stereo();
        let mut frame = vec![0u8; h.frame_len() as usize];
        frame[36..40].copy_from_slice(b"VBRI");
        frame[46..50].copy_from_slice(&9999u32.to_be_bytes());
        frame[50..54].copy_from_slice(&77u32.to_be_bytes());
        let tag = parse(&frame, &h).unwrap();
        assert_eq!((tag.kind, tag.frames, tag.bytes), (VbrTagKind::Vbri, Some(77), Some(9999)));
    }

    #[test]
    fn a_frame_cut_inside_its_tag_yields_no_tag_and_no_panic() {
        let h = mpeg1_stereo();
        let mut frame = vec![0u8; 40];
        frame[36..40].copy_from_slice(b"Xing");
        assert_eq!(parse(&frame, &h), None);
        assert_eq!(parse(&frame[..38], &h), None);
    }
}
