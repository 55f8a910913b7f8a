//! The committed fixtures (tests/fixtures/audio, made by its generate.sh), compiled into the test binary so
//! no test depends on the working directory, and one call that runs every parser over a byte string.

use std::io::Cursor;

use crate::audio::{detect, duration_seconds, flac, mp3, wav};

macro_rules! fixture {
    ($name:literal) => {
        ($name, include_bytes!(concat!("../../../tests/fixtures/audio/", $name)) as &[u8])
    };
}

/// Every fixture by file name.
pub(super) const FIXTURES: &[(&str, &[u8])] = &[
    fixture!("flac_16k.flac"),
    fixture!("mp3_cbr_128k_44k.mp3"),
    fixture!("mp3_cbr_info_128k_44k.mp3"),
    fixture!("mp3_id3v1.mp3"),
    fixture!("mp3_id3v2.mp3"),
    fixture!("mp3_mpeg25_11k_stereo.mp3"),
    fixture!("mp3_mpeg25_8k_info.mp3"),
    fixture!("mp3_mpeg2_22k_mono.mp3"),
    fixture!("mp3_mpeg2_24k_info_stereo.mp3"),
    fixture!("mp3_mpeg2_24k_vbr_xing.mp3"),
    fixture!("mp3_vbr_xing_44k.mp3"),
    fixture!("mp3_vbri.mp3"),
    fixture!("speech_16k.wav"),
    fixture!("wav_alaw_8k.wav"),
    fixture!("wav_list_before_data.wav"),
    fixture!("wav_pcm16_3ch_extensible_8k.wav"),
    fixture!("wav_pcm16_mono_16k.wav"),
    fixture!("wav_pcm16_stereo_44k.wav"),
    fixture!("wav_ulaw_8k.wav"),
];

/// The bytes of fixture `name`.
pub(super) fn fixture(name: &str) -> &'static [u8] {
    FIXTURES.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes).unwrap_or_else(|| panic!("no fixture {name}"))
}

/// Content types the recorder may pass, including vague and wrong ones.
const CONTENT_TYPES: [Option<&str>; 6] = [
    None,
    Some("audio/wav"),
    Some("audio/mpeg"),
    Some("audio/flac"),
    Some("audio/ogg"),
    Some("application/octet-stream"),
];

/// Runs every parser over `bytes` and checks that each duration it returns is finite and non-negative. A
/// panic or a hang inside fails the calling test.
pub(super) fn all_parsers_are_total(bytes: &[u8]) {
    let check = |what: &str, d: Option<f64>| {
        if let Some(d) = d {
            assert!(d.is_finite() && d >= 0.0, "{what} gave {d}");
        }
    };
    let _ = detect(bytes);
    check("wav", wav::duration_seconds(Cursor::new(bytes)));
    let _ = wav::read_info(Cursor::new(bytes)).and_then(|i| i.wav_format());
    if let Some(info) = mp3::probe(Cursor::new(bytes)) {
        check("mp3", Some(info.duration_seconds()));
        check("mp3 gapless", Some(info.gapless_duration_seconds()));
    }
    check("flac", flac::duration_seconds(Cursor::new(bytes)));
    for ct in CONTENT_TYPES {
        check("sniffed", duration_seconds(ct, Cursor::new(bytes)));
    }
}

#[test]
fn every_file_in_the_fixture_directory_is_listed_here() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".sh") && !n.ends_with(".py"))
        .collect();
    on_disk.sort();
    let listed: Vec<String> = FIXTURES.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(on_disk, listed);
}
