//! The 4-byte MPEG audio frame header: what version, layer, rate and size a frame has. Every reserved or
//! unsupported value (version 01, layer 00, bitrate 1111, rate 11, emphasis 10) and free-format bitrate (0000)
//! is refused, which is what lets the frame walk tell real frames from random bytes that start with a sync
//! word.

/// MPEG audio version; it fixes the sample rate family and the samples per Layer III frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MpegVersion {
    /// MPEG-1: 32, 44.1, 48 kHz.
    Mpeg1,
    /// MPEG-2 LSF: 16, 22.05, 24 kHz.
    Mpeg2,
    /// MPEG-2.5 (unofficial, universal): 8, 11.025, 12 kHz.
    Mpeg25,
}

/// MPEG audio layer; Layer III is MP3, I and II are accepted because their frames are just as easy to size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Layer I: 384 samples a frame, sized in 4-byte slots.
    I,
    /// Layer II: 1152 samples a frame.
    II,
    /// Layer III (MP3): 1152 samples a frame in MPEG-1, 576 in MPEG-2 and 2.5.
    III,
}

/// One parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub version: MpegVersion,
    pub layer: Layer,
    /// This frame's bit rate; with the rate and padding it fixes the frame's length. Varies in VBR streams.
    pub bitrate_kbps: u32,
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// One extra slot (byte, or 4 bytes in Layer I) in this frame, how encoders hit a fractional bit rate.
    pub padding: bool,
    /// A 16-bit CRC follows the header, which shifts where the side information and any VBR tag start.
    pub crc: bool,
    /// Single-channel mode; also shortens the Layer III side information.
    pub mono: bool,
}

const BITRATES_V1: [[u32; 15]; 3] = [
    [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
];
const BITRATES_V2: [[u32; 15]; 2] = [
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

impl FrameHeader {
    /// Parses a header; `None` unless it starts with the 11-bit sync and every field holds a usable value.
    pub fn parse(b: [u8; 4]) -> Option<FrameHeader> {
        let [b0, b1, b2, b3] = b;
        if b0 != 0xFF || b1 & 0xE0 != 0xE0 {
            return None;
        }
        let version = match (b1 >> 3) & 0b11 {
            0b00 => MpegVersion::Mpeg25,
            0b10 => MpegVersion::Mpeg2,
            0b11 => MpegVersion::Mpeg1,
            _ => return None,
        };
        let layer = match (b1 >> 1) & 0b11 {
            0b01 => Layer::III,
            0b10 => Layer::II,
            0b11 => Layer::I,
            _ => return None,
        };
        let bitrate_index = usize::from(b2 >> 4);
        let rate_index = usize::from((b2 >> 2) & 0b11);
        if (b3 & 0b11) == 0b10 {
            return None; // reserved emphasis
        }
        let row = match (version, layer) {
            (MpegVersion::Mpeg1, Layer::I) => BITRATES_V1.first(),
            (MpegVersion::Mpeg1, Layer::II) => BITRATES_V1.get(1),
            (MpegVersion::Mpeg1, Layer::III) => BITRATES_V1.get(2),
            (_, Layer::I) => BITRATES_V2.first(),
            (_, _) => BITRATES_V2.get(1),
        }?;
        let bitrate_kbps = *row.get(bitrate_index).filter(|&&k| k > 0)?;
        let base_rate = *[44_100u32, 48_000, 32_000].get(rate_index)?;
        let sample_rate = match version {
            MpegVersion::Mpeg1 => base_rate,
            MpegVersion::Mpeg2 => base_rate / 2,
            MpegVersion::Mpeg25 => base_rate / 4,
        };
        Some(FrameHeader {
            version,
            layer,
            bitrate_kbps,
            sample_rate,
            padding: b2 & 0b10 != 0,
            crc: b1 & 1 == 0,
            mono: (b3 >> 6) == 0b11,
        })
    }

    /// Bytes in this frame, header included (never less than 24 for a header `parse` accepted).
    pub fn frame_len(&self) -> u32 {
        let bits_per_second = self.bitrate_kbps * 1000;
        let pad = u32::from(self.padding);
        match (self.layer, self.version) {
            (Layer::I, _) => (12 * bits_per_second / self.sample_rate + pad) * 4,
            (Layer::III, MpegVersion::Mpeg2 | MpegVersion::Mpeg25) => 72 * bits_per_second / self.sample_rate + pad,
            _ => 144 * bits_per_second / self.sample_rate + pad,
        }
    }

    /// Samples per channel this frame decodes to.
    pub fn samples(&self) -> u32 {
        match (self.layer, self.version) {
            (Layer::I, _) => 384,
            (Layer::III, MpegVersion::Mpeg2 | MpegVersion::Mpeg25) => 576,
            _ => 1152,
        }
    }

    /// True when `other` can belong to the same stream: a stream never changes version, layer, rate or
    /// channel count, so a sync word that disagrees on any of them is noise, not the next frame.
    pub fn same_stream(&self, other: &FrameHeader) -> bool {
        self.version == other.version
            && self.layer == other.layer
            && self.sample_rate == other.sample_rate
            && self.mono == other.mono
    }

    /// Offset from the frame start to where a Xing/Info tag sits: after the header, the CRC if any, and the
    /// Layer III side information.
    pub(crate) fn xing_offset(&self) -> usize {
        let side_info = match (self.version, self.mono) {
            (MpegVersion::Mpeg1, false) => 32,
            (MpegVersion::Mpeg1, true) | (_, false) => 17,
            (_, true) => 9,
        };
        4 + if self.crc { 2 } else { 0 } + side_info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mpeg1_layer3_128k_44k_header_gives_the_textbook_frame_size() {
        let h = FrameHeader::parse([0xFF, 0xFB, 0x90, 0x64]).unwrap();
        assert_eq!(h.version, MpegVersion::Mpeg1);
        assert_eq!(h.layer, Layer::III);
        assert_eq!((h.bitrate_kbps, h.sample_rate), (128, 44_100));
        assert_eq!(h.frame_len(), 417);
        assert_eq!(h.samples(), 1152);
        let padded = FrameHeader::parse([0xFF, 0xFB, 0x92, 0x64]).unwrap();
        assert_eq!(padded.frame_len(), 418);
    }

    #[test]
    fn mpeg2_and_mpeg25_layer3_frames_hold_576_samples() {
        // MPEG-2, 64 kbps, 24 kHz, mono.
        let v2 = FrameHeader::parse([0xFF, 0xF3, 0x84, 0xC4]).unwrap();
        assert_eq!((v2.version, v2.sample_rate), (MpegVersion::Mpeg2, 24_000));
        assert_eq!(v2.frame_len(), 72 * 64_000 / 24_000);
        assert_eq!(v2.samples(), 576);
        // MPEG-2.5, 16 kbps, 8 kHz, mono.
        let v25 = FrameHeader::parse([0xFF, 0xE3, 0x28, 0xC4]).unwrap();
        assert_eq!((v25.version, v25.sample_rate), (MpegVersion::Mpeg25, 8_000));
        assert_eq!(v25.frame_len(), 144);
        assert_eq!(v25.xing_offset(), 4 + 9);
    }

    #[test]
    fn layer1_and_layer2_frames_are_sized_by_their_own_formulas() {
        let l1 = FrameHeader::parse([0xFF, 0xFF, 0x90, 0x00]).unwrap();
        assert_eq!((l1.layer, l1.bitrate_kbps), (Layer::I, 288));
        assert_eq!((l1.frame_len(), l1.samples()), (312, 384));
        let l2 = FrameHeader::parse([0xFF, 0xFD, 0x80, 0x00]).unwrap();
        assert_eq!((l2.layer, l2.bitrate_kbps), (Layer::II, 128));
        assert_eq!(l2.frame_len(), 417);
    }

    #[test]
    fn reserved_and_free_format_values_are_refused() {
        for bad in [
            [0xFF, 0xEB, 0x90, 0x64], // version 01
            [0xFF, 0xF9, 0x90, 0x64], // layer 00 (also ADTS AAC)
            [0xFF, 0xFB, 0xF0, 0x64], // bitrate 1111
            [0xFF, 0xFB, 0x00, 0x64], // free format
            [0xFF, 0xFB, 0x9C, 0x64], // rate 11
            [0xFF, 0xFB, 0x90, 0x66], // emphasis 10
            [0xFE, 0xFB, 0x90, 0x64], // no sync
        ] {
            assert_eq!(FrameHeader::parse(bad), None, "{bad:02X?}");
        }
    }
}
