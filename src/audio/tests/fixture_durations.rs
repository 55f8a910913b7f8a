//! Every fixture's duration against an outside reference.
//!
//! WAV and FLAC: exactly what `soxi -D` prints. MP3: the exact audio frame count MediaInfo reports (so the
//! walk and the tag paths are checked frame for frame), and `soxi -D` within one frame plus one millisecond:
//! sox 14.4.2 truncates MP3 durations to whole milliseconds, counts an Info tag frame as audio, and for CBR
//! extrapolates from the first ten frames and the file size. For `mp3_id3v2.mp3` sox reads the ID3v2 `TLEN`
//! frame, the length of the source audio, so that one is compared with the gapless duration.

use std::io::Cursor;

use super::support::fixture;
use crate::audio::mp3::{self, MpegVersion, VbrTagKind};
use crate::audio::wav::{self, FORMAT_ALAW, FORMAT_MULAW, FORMAT_PCM, WavEncoding, WavFormat};
use crate::audio::{Container, detect, duration_seconds, flac};

/// (fixture, `soxi -D`)
const WAV_AND_FLAC: [(&str, f64); 8] = [
    ("wav_pcm16_mono_16k.wav", 0.5),
    ("wav_pcm16_stereo_44k.wav", 0.25),
    ("wav_ulaw_8k.wav", 1.0),
    ("wav_alaw_8k.wav", 0.3),
    ("wav_pcm16_3ch_extensible_8k.wav", 0.2),
    ("wav_list_before_data.wav", 0.4),
    ("speech_16k.wav", 3.80125),
    ("flac_16k.flac", 0.75),
];

/// What sox's number measures for an MP3 fixture.
#[derive(Clone, Copy, PartialEq)]
enum Sox {
    /// The stream's playing time (frames × samples per frame), give or take its heuristics.
    Playing(f64),
    /// The source length, from an ID3v2 `TLEN` frame.
    Source(f64),
}

struct Mp3Case {
    name: &'static str,
    version: MpegVersion,
    sample_rate: u32,
    /// MediaInfo's FrameCount (audio frames, tag frame excluded).
    frames: u64,
    tag: Option<VbrTagKind>,
    sox: Sox,
    /// Length of the tone generate.sh encoded, which the LAME delay and padding give back exactly.
    source_seconds: Option<f64>,
}

use MpegVersion::{Mpeg1, Mpeg2, Mpeg25};
use Sox::{Playing, Source};
use VbrTagKind::{Info, Vbri, Xing};

const fn case(
    name: &'static str,
    (version, sample_rate): (MpegVersion, u32),
    frames: u64,
    tag: Option<VbrTagKind>,
    sox: Sox,
    source_seconds: Option<f64>,
) -> Mp3Case {
    Mp3Case { name, version, sample_rate, frames, tag, sox, source_seconds }
}

#[rustfmt::skip]
const MP3: [Mp3Case; 11] = [
    case("mp3_cbr_128k_44k.mp3",          (Mpeg1, 44_100),  40, None,       Playing(1.043991), None),
    case("mp3_cbr_info_128k_44k.mp3",     (Mpeg1, 44_100),  24, Some(Info), Playing(0.626009), Some(0.6)),
    case("mp3_vbr_xing_44k.mp3",          (Mpeg1, 44_100),  40, Some(Xing), Playing(1.043991), Some(1.0)),
    case("mp3_mpeg2_22k_mono.mp3",        (Mpeg2, 22_050),  33, None,       Playing(0.861995), None),
    case("mp3_mpeg2_24k_vbr_xing.mp3",    (Mpeg2, 24_000),  32, Some(Xing), Playing(0.768),    Some(0.7)),
    case("mp3_mpeg2_24k_info_stereo.mp3", (Mpeg2, 24_000),  23, Some(Info), Playing(0.552),    Some(0.5)),
    case("mp3_mpeg25_8k_info.mp3",        (Mpeg25, 8_000),  11, Some(Info), Playing(0.792),    Some(0.6)),
    case("mp3_mpeg25_11k_stereo.mp3",     (Mpeg25, 11_025), 20, None,       Playing(0.992018), None),
    case("mp3_id3v2.mp3",                 (Mpeg1, 44_100),  40, Some(Info), Source(1.0),       Some(1.0)),
    case("mp3_id3v1.mp3",                 (Mpeg1, 44_100),  40, None,       Playing(1.051995), None),
    case("mp3_vbri.mp3",                  (Mpeg1, 44_100),  40, Some(Vbri), Playing(1.043991), None),
];

#[test]
fn wav_and_flac_fixtures_last_exactly_what_sox_reports() {
    for (name, sox) in WAV_AND_FLAC {
        let d = duration_seconds(None, Cursor::new(fixture(name))).unwrap();
        assert!((d - sox).abs() < 1e-9, "{name}: {d} vs sox {sox}");
    }
}

#[test]
fn mp3_fixtures_have_mediainfos_frame_count_and_sox_duration_within_a_frame() {
    for c in MP3 {
        let info = mp3::probe(Cursor::new(fixture(c.name))).unwrap();
        assert_eq!(
            (info.version, info.sample_rate, info.frames, info.vbr_tag),
            (c.version, c.sample_rate, c.frames, c.tag),
            "{}",
            c.name
        );
        let frame = f64::from(info.samples_per_frame) / f64::from(info.sample_rate);
        let by_frames = (c.frames * u64::from(info.samples_per_frame)) as f64 / f64::from(c.sample_rate);
        assert_eq!(info.duration_seconds(), by_frames, "{}", c.name);
        let (ours, sox) = match c.sox {
            Playing(s) => (info.duration_seconds(), s),
            Source(s) => (info.gapless_duration_seconds(), s),
        };
        assert!((ours - sox).abs() <= frame + 0.001, "{}: {ours} vs sox {sox}", c.name);
        if let Some(source) = c.source_seconds {
            let gapless = info.gapless_duration_seconds();
            assert!((gapless - source).abs() < 1e-9, "{}: gapless {gapless}", c.name);
        }
    }
}

#[test]
fn vbr_fixtures_are_timed_from_their_tag_and_cbr_ones_by_walking() {
    for c in MP3 {
        let info = mp3::probe(Cursor::new(fixture(c.name))).unwrap();
        assert_eq!(info.frames_from_tag, c.tag.is_some(), "{}", c.name);
    }
}

#[test]
fn each_fixture_is_sniffed_as_its_container_and_agrees_with_its_content_type() {
    let cases = WAV_AND_FLAC.iter().map(|(n, _)| *n).chain(MP3.iter().map(|c| c.name));
    for name in cases {
        let bytes = fixture(name);
        let (container, ct) = match name.rsplit('.').next() {
            Some("wav") => (Container::Wav, "audio/wav"),
            Some("mp3") => (Container::Mp3, "audio/mpeg"),
            _ => (Container::Flac, "audio/flac"),
        };
        assert_eq!(detect(bytes), Some(container), "{name}");
        assert_eq!(
            duration_seconds(Some(ct), Cursor::new(bytes)),
            duration_seconds(None, Cursor::new(bytes)),
            "{name}"
        );
    }
}

#[test]
fn wav_fixtures_report_the_format_sox_wrote() {
    let info = |name| wav::read_info(Cursor::new(fixture(name))).unwrap();
    let ulaw = info("wav_ulaw_8k.wav");
    assert_eq!((ulaw.format_tag, ulaw.fact_samples), (FORMAT_MULAW, Some(8000)));
    assert_eq!(info("wav_alaw_8k.wav").format_tag, FORMAT_ALAW);
    let ext = info("wav_pcm16_3ch_extensible_8k.wav");
    assert!(ext.extensible);
    assert_eq!((ext.format_tag, ext.channels), (FORMAT_PCM, 3));
    let stereo = info("wav_pcm16_stereo_44k.wav");
    assert_eq!(stereo.wav_format(), Some(WavFormat::new(WavEncoding::Pcm16, 44_100, 2).unwrap()));
}

#[test]
fn flac_fixture_streaminfo_matches_its_encoding() {
    let info = flac::read_info(Cursor::new(fixture("flac_16k.flac"))).unwrap();
    assert_eq!((info.sample_rate, info.channels, info.bits_per_sample, info.total_samples), (16_000, 1, 16, 12_000));
}

#[test]
fn speech_fixture_is_16k_mono_pcm16_ending_in_a_second_and_a_half_of_silence() {
    let bytes = fixture("speech_16k.wav");
    let info = wav::read_info(Cursor::new(bytes)).unwrap();
    assert_eq!(info.wav_format(), Some(WavFormat::new(WavEncoding::Pcm16, 16_000, 1).unwrap()));
    let duration = info.duration_seconds().unwrap();
    assert!((3.0..=4.0).contains(&duration), "{duration}");
    let data = &bytes[bytes.len() - info.data_len as usize..];
    let tail = &data[data.len() - 2 * 24_000..];
    assert!(tail.iter().all(|&b| b == 0), "the last 1.5 s must be silent");
    let speech = &data[..data.len() - 2 * 24_000];
    assert!(speech.iter().any(|&b| b != 0), "the first part must hold speech");
}

#[test]
fn a_vbr_file_cut_short_after_tagging_is_walked_not_believed() {
    let bytes = fixture("mp3_vbr_xing_44k.mp3");
    let info = mp3::probe(Cursor::new(&bytes[..bytes.len() / 2])).unwrap();
    assert!(!info.frames_from_tag);
    assert!((15..=25).contains(&info.frames), "{}", info.frames);
}

#[test]
fn two_tagged_files_joined_together_are_walked_to_the_end() {
    let bytes = fixture("mp3_vbr_xing_44k.mp3");
    let joined = [bytes, bytes].concat();
    let info = mp3::probe(Cursor::new(&joined)).unwrap();
    assert!(!info.frames_from_tag);
    // The second part's tag frame is no more audio than the first's.
    assert_eq!(info.frames, 2 * 40);
}
