//! The parsers are total: arbitrary bytes, every truncation of every fixture and random corruptions of them
//! never panic, never hang (each test finishing is the proof for its inputs; the loops' progress arguments
//! are in the parser docs), and any duration returned is finite and non-negative. Also: what the WAV writer
//! writes reads back as the same format and duration, and garbage between MP3 frames is not counted.

use std::io::Cursor;

use proptest::prelude::*;

use super::support::{FIXTURES, all_parsers_are_total, fixture};
use crate::audio::mp3;
use crate::audio::wav::{WavEncoding, WavFormat, WavWriter, read_info};
use crate::audio::{Container, detect, duration_seconds};

/// The parser a fixture's own container uses, by signature.
fn own_duration(bytes: &[u8]) -> Option<f64> {
    duration_seconds(None, Cursor::new(bytes))
}

#[test]
fn every_truncation_of_every_fixture_is_handled_by_its_own_parser() {
    for (name, bytes) in FIXTURES {
        let full = own_duration(bytes);
        for len in 0..bytes.len() {
            if let Some(d) = own_duration(&bytes[..len]) {
                assert!(d.is_finite() && d >= 0.0, "{name}[..{len}] gave {d}");
                // A WAV cut short plays the samples that are left; an MP3 loses frames. Neither gains time,
                // except an MP3 whose tag count is still trusted (cut by less than 1%).
                if detect(bytes) != Some(Container::Mp3) {
                    assert!(d <= full.unwrap_or(f64::MAX), "{name}[..{len}] grew to {d}");
                }
            }
        }
    }
}

#[test]
fn truncations_in_the_headers_and_every_97_bytes_beyond_survive_every_parser() {
    // Every parser scans the whole input for MP3 frames, so all truncations through all parsers would be
    // quadratic in the fixture sizes (minutes). The first 2 KiB hold every header, tag and tag frame the
    // parsers decide on; beyond that a stride co-prime with the frame sizes lands across frame boundaries.
    for (_, bytes) in FIXTURES {
        let head = 0..bytes.len().min(2048);
        for len in head.chain((2048..bytes.len()).step_by(97)) {
            all_parsers_are_total(&bytes[..len]);
        }
    }
}

/// Each container's opening bytes, so random bodies reach past the signature checks into the parsers.
const SIGNATURES: [&[u8]; 5] = [b"RIFF\xff\xff\xff\xffWAVE", b"fLaC", b"ID3\x04\0\0", b"\xff\xfb\x90\x64", b"OggS"];

fn corrupted_fixture() -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 1..16);
    (0..FIXTURES.len(), edits).prop_map(|(which, edits)| {
        let mut bytes = FIXTURES[which].1.to_vec();
        for (at, value, in_header) in edits {
            // Half the edits land in the first 128 bytes, where the headers and size fields are.
            let span = if in_header { bytes.len().min(128) } else { bytes.len() };
            let i = at.index(span);
            bytes[i] = value;
        }
        bytes
    })
}

proptest! {
    // No regression files: they would land outside src/audio; a failure prints its minimal input instead.
    // 256 cases by default; `PROPTEST_CASES=50000 cargo test --lib audio::tests::robustness` digs deeper.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic_any_parser(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        all_parsers_are_total(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_each_signature_never_panic(
        signature in prop::sample::select(SIGNATURES.to_vec()),
        rest in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        all_parsers_are_total(&[signature, &rest].concat());
    }

    #[test]
    fn randomly_corrupted_fixtures_never_panic_any_parser(bytes in corrupted_fixture()) {
        all_parsers_are_total(&bytes);
    }

    #[test]
    fn a_written_wav_reads_back_with_the_same_format_and_duration(
        encoding in prop::sample::select(vec![WavEncoding::Pcm16, WavEncoding::Ulaw, WavEncoding::Alaw]),
        sample_rate in 1u32..200_000,
        channels in 1u16..9,
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..700), 0..8),
    ) {
        let format = WavFormat::new(encoding, sample_rate, channels).unwrap();
        let mut writer = WavWriter::new(Cursor::new(Vec::new()), format).unwrap();
        for chunk in &chunks {
            writer.append(chunk).unwrap();
        }
        let written = writer.duration_seconds();
        let bytes = writer.finish().unwrap().into_inner();
        let data_len: usize = chunks.iter().map(Vec::len).sum();
        prop_assert_eq!(bytes.len(), format.header_len() + data_len + data_len % 2);
        let info = read_info(Cursor::new(&bytes)).unwrap();
        prop_assert_eq!(info.wav_format(), Some(format));
        prop_assert_eq!(info.data_len, data_len as u64);
        let frames = data_len / usize::from(format.block_align());
        let expected = frames as f64 / f64::from(sample_rate);
        prop_assert_eq!(duration_seconds(Some("audio/wav"), Cursor::new(&bytes)), Some(expected));
        // The writer's running figure counts partial frames too; they differ by less than one frame.
        prop_assert!((written - expected).abs() < 1.0 / f64::from(sample_rate));
    }

    #[test]
    fn garbage_between_mp3_frames_does_not_change_the_frame_count(
        gap_at in any::<prop::sample::Index>(),
        // Garbage that does not itself start with a sync byte; a sync word right after a frame is
        // indistinguishable from a frame without decoding it.
        garbage in prop::collection::vec(any::<u8>(), 1..600).prop_filter("no leading sync", |g| g[0] != 0xFF),
    ) {
        let clean = fixture("mp3_cbr_128k_44k.mp3");
        let frames = mp3::probe(Cursor::new(clean)).unwrap().frames;
        // Any frame boundary but the one after the first frame: with nothing trusted before it, a first
        // frame must be confirmed by the header right after it (see mp3::walk).
        let starts: Vec<usize> = frame_starts(clean)
            .into_iter()
            .enumerate()
            .filter(|&(i, _)| i != 1)
            .map(|(_, at)| at)
            .collect();
        let at = starts[gap_at.index(starts.len())];
        let dirty = [&clean[..at], &garbage, &clean[at..]].concat();
        prop_assert_eq!(mp3::probe(Cursor::new(&dirty)).unwrap().frames, frames);
    }
}

/// Offsets of the frames in a tag-less CBR stream, by following frame lengths from offset 0.
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut pos = 0;
    while let Some(h) = bytes.get(pos..pos + 4).and_then(|b| mp3::FrameHeader::parse(b.try_into().unwrap())) {
        starts.push(pos);
        pos += h.frame_len() as usize;
    }
    starts
}
