//! MP3 (MPEG audio) durations: skip the tags at both ends, find the first real frame, then either trust the
//! Xing/Info/VBRI frame count in it or walk every frame.
//!
//! The duration is `audio frames × samples per frame / rate`, tag frames not counted. That is what the file
//! plays for and what MediaInfo reports (sox's heuristics land within a frame of it). It includes the
//! encoder's delay and padding, because a stream without a LAME tag (ElevenLabs streams none) gives no way to
//! know them, and a duration should mean the same thing for every file. When a LAME tag gives them,
//! [`Mp3Info::gapless_duration_seconds`] has the length of the audio that was encoded.
//!
//! A tag's frame count is trusted only when it is plausible for the bytes on disk (its byte count, if any,
//! within 1% of the stream's length, and the frames able to fit), so a file cut short or appended to after
//! tagging is walked instead of believed.

mod header;
mod tags;
mod vbr;
mod walk;

use std::io::{Read, Seek};

pub use header::{FrameHeader, Layer, MpegVersion};
pub(crate) use tags::skip_id3v2;
pub use vbr::VbrTagKind;

use crate::audio::source::Source;
use vbr::VbrTag;

/// Largest frame `FrameHeader` can describe (Layer II, 160 kbps, 8 kHz, padded).
const MAX_FRAME: usize = 2881;

/// What an MP3 stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp3Info {
    pub version: MpegVersion,
    pub layer: Layer,
    /// Samples per second per channel.
    pub sample_rate: u32,
    pub mono: bool,
    /// Frames of audio, the Xing/Info/VBRI tag frame excluded.
    pub frames: u64,
    /// Samples each frame decodes to (per channel): what `frames` is multiplied by.
    pub samples_per_frame: u32,
    /// The tag the first frame carried, if any.
    pub vbr_tag: Option<VbrTagKind>,
    /// True when `frames` came from the tag rather than from walking the file.
    pub frames_from_tag: bool,
    /// Samples the encoder added before and after the audio (from a LAME tag).
    pub encoder_delay_and_padding: Option<(u16, u16)>,
}

impl Mp3Info {
    /// Seconds the stream plays for, encoder delay and padding included.
    pub fn duration_seconds(&self) -> f64 {
        self.total_samples() as f64 / f64::from(self.sample_rate)
    }

    /// Seconds of the audio that was encoded: the duration less the LAME encoder delay and padding when the
    /// tag gives them and the file is as the encoder left it (its frame count trusted: a cut or joined file's
    /// padding is not where the tag says), else the same as `duration_seconds`.
    pub fn gapless_duration_seconds(&self) -> f64 {
        let total = self.total_samples();
        let trimmed = match self.encoder_delay_and_padding.filter(|_| self.frames_from_tag) {
            Some((delay, padding)) => total.checked_sub(u64::from(delay) + u64::from(padding)).unwrap_or(total),
            None => total,
        };
        trimmed as f64 / f64::from(self.sample_rate)
    }

    fn total_samples(&self) -> u64 {
        self.frames.saturating_mul(u64::from(self.samples_per_frame))
    }
}

/// Reads an MP3 stream's layout; `None` when no run of valid frames is found.
pub fn probe<R: Read + Seek>(reader: R) -> Option<Mp3Info> {
    probe_from(&mut Source::new(reader)?)
}

/// Seconds an MP3 stream plays for (see the module doc for what is counted).
pub fn duration_seconds<R: Read + Seek>(reader: R) -> Option<f64> {
    Some(probe(reader)?.duration_seconds())
}

/// The probe over an already wrapped source.
pub(crate) fn probe_from<R: Read + Seek>(src: &mut Source<R>) -> Option<Mp3Info> {
    let start = tags::skip_id3v2(src, 0);
    let end = tags::audio_end(src, start);
    let (first_pos, first) = walk::next_trusted(src, start, end, None)?;
    let tag = read_tag(src, first_pos, &first);
    let stream_len = end - first_pos;
    let trusted = tag.and_then(|t| t.frames.filter(|_| plausible(&t, &first, stream_len)));
    let frames = match trusted {
        Some(n) => u64::from(n),
        None => walk::count_frames(src, first_pos, end, &first),
    };
    Some(Mp3Info {
        version: first.version,
        layer: first.layer,
        sample_rate: first.sample_rate,
        mono: first.mono,
        frames,
        samples_per_frame: first.samples(),
        vbr_tag: tag.map(|t| t.kind),
        frames_from_tag: trusted.is_some(),
        encoder_delay_and_padding: tag.and_then(|t| t.delay_and_padding),
    })
}

/// The Xing/Info/VBRI tag in the frame at `pos`, if any.
fn read_tag<R: Read + Seek>(src: &mut Source<R>, pos: u64, header: &FrameHeader) -> Option<VbrTag> {
    let mut frame = [0u8; MAX_FRAME];
    let len = usize::try_from(header.frame_len()).ok()?;
    let frame = frame.get_mut(..len)?;
    src.read_at(pos, frame).then_some(())?;
    vbr::parse(frame, header)
}

/// Whether a tag's counts fit the `stream_len` bytes actually there (tag frame to audio end).
fn plausible(tag: &VbrTag, first: &FrameHeader, stream_len: u64) -> bool {
    let Some(frames) = tag.frames.filter(|&n| n > 0) else {
        return false;
    };
    let smallest = FrameHeader { bitrate_kbps: lowest_bitrate(first), padding: false, ..*first };
    let fits = u64::from(frames) * u64::from(smallest.frame_len()) <= stream_len;
    let bytes_agree = tag.bytes.is_none_or(|b| {
        let b = u64::from(b);
        b.abs_diff(stream_len) <= b.max(stream_len) / 100
    });
    fits && bytes_agree
}

fn lowest_bitrate(h: &FrameHeader) -> u32 {
    match (h.version, h.layer) {
        (MpegVersion::Mpeg1, _) | (_, Layer::I) => 32,
        _ => 8,
    }
}
