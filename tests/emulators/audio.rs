//! The audio the ElevenLabs emulator speaks, checked as a listener would: MP3 decoded by an independent
//! decoder (symphonia) to the promised duration at the promised rate, PCM and G.711 byte counts that match
//! the duration, and never silence.

use parley::emulators::ELEVENLABS_KEY;
use parley::emulators::synth::mp3;
use parley::providers::elevenlabs::ServerMessage;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::elevenlabs_http::tts;
use crate::helpers::{SOON, Ws, start};

/// With the trailing space sent after it, 47 characters: 3.13 s at 15 characters a second.
const TEXT: &str = "Your table for two is booked at eight tonight.";
const SECONDS: f64 = 47.0 / 15.0;

/// Decodes MP3 bytes with symphonia: (sample rate, seconds, RMS of the samples in [-1, 1]).
fn decode_mp3(bytes: Vec<u8>) -> (u32, f64, f64) {
    let mss = MediaSourceStream::new(Box::new(std::io::Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &FormatOptions::default(), &MetadataOptions::default())
        .expect("symphonia recognises the stream as MP3");
    let mut format = probed.format;
    let track = format.default_track().expect("a track").clone();
    let mut decoder =
        symphonia::default::get_codecs().make(&track.codec_params, &DecoderOptions::default()).expect("decoder");
    let rate = track.codec_params.sample_rate.expect("rate");
    let (mut frames, mut sum_sq, mut n) = (0u64, 0f64, 0u64);
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(symphonia::core::errors::Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => panic!("demux error: {e}"),
        };
        let decoded = decoder.decode(&packet).expect("every frame decodes");
        frames += decoded.frames() as u64;
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
        buf.copy_interleaved_ref(decoded);
        for s in buf.samples() {
            sum_sq += f64::from(*s) * f64::from(*s);
            n += 1;
        }
    }
    (rate, frames as f64 / f64::from(rate), (sum_sq / n.max(1) as f64).sqrt())
}

#[actix_web::test]
async fn every_mp3_format_decodes_independently_to_the_promised_duration_rate_and_a_voice() {
    let e = start().await;
    for (rate, kbps) in [(22050, 32), (44100, 32), (44100, 64), (44100, 96), (44100, 128), (44100, 192)] {
        let r = tts(
            &e,
            &format!("?output_format=mp3_{rate}_{kbps}"),
            &[("xi-api-key", ELEVENLABS_KEY)],
            &format!(r#"{{"text":"{TEXT} "}}"#),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("audio/mpeg"));
        let walked = mp3::duration_secs(&r.body);
        assert!((walked - SECONDS).abs() < 0.03, "{rate}/{kbps}: frame walk {walked}");
        let (decoded_rate, secs, rms) = decode_mp3(r.body.clone());
        assert_eq!(decoded_rate, rate);
        assert!((secs - SECONDS).abs() < 0.03, "{rate}/{kbps}: decoded {secs}s");
        assert!(rms > 0.02, "{rate}/{kbps}: silent ({rms})");
    }
    e.stop().await;
}

#[actix_web::test]
async fn mp3_chunks_from_the_websocket_join_into_one_decodable_stream() {
    let e = start().await;
    let url = format!(
        "{}/text-to-speech/v/stream-input?output_format=mp3_22050_32",
        e.elevenlabs_base_url().replacen("http", "ws", 1)
    );
    let mut ws = Ws::connect(&url, &[("xi-api-key", ELEVENLABS_KEY)]).await;
    ws.text(r#"{"text":" "}"#).await;
    ws.text(&format!(r#"{{"text":"{TEXT} ","flush":true}}"#)).await;
    ws.text(r#"{"text":""}"#).await;
    let (texts, _) = ws.texts_until_end(SOON).await;
    let mut bytes = Vec::new();
    for t in &texts {
        bytes.extend(ServerMessage::parse(t).unwrap().audio_bytes().unwrap());
    }
    let (rate, secs, rms) = decode_mp3(bytes);
    assert_eq!(rate, 22050);
    assert!((secs - SECONDS).abs() < 0.03 && rms > 0.02, "{secs} {rms}");
    e.stop().await;
}

#[actix_web::test]
async fn pcm_at_every_rate_has_the_exact_sample_count_and_is_not_silence() {
    let e = start().await;
    for rate in [8000u32, 16000, 22050, 24000, 32000, 44100, 48000] {
        let r = tts(
            &e,
            &format!("?output_format=pcm_{rate}"),
            &[("xi-api-key", ELEVENLABS_KEY)],
            &format!(r#"{{"text":"{TEXT} "}}"#),
        )
        .await;
        let expected = (SECONDS * f64::from(rate)).round() as usize * 2;
        assert!(r.body.len().abs_diff(expected) <= 2, "pcm_{rate}: {} bytes, expected {expected}", r.body.len());
        let samples: Vec<i16> = r.body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
        let rms = (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt();
        assert!(rms > 1000.0, "pcm_{rate}: rms {rms}");
    }
    e.stop().await;
}

/// G.711 µ-law decoding written out from the standard (independent of the emulator's table-free code).
fn ulaw(b: u8) -> f64 {
    let u = !b;
    let t = ((f64::from(u & 0x0F) * 8.0 + 132.0) * 2f64.powi(i32::from((u >> 4) & 7))) - 132.0;
    if u & 0x80 != 0 { -t } else { t }
}

/// G.711 A-law decoding written out from the standard.
fn alaw(b: u8) -> f64 {
    let a = b ^ 0x55;
    let (e, m) = (i32::from((a >> 4) & 7), f64::from(a & 0x0F));
    let t = if e == 0 { m * 16.0 + 8.0 } else { (m * 16.0 + 264.0) * 2f64.powi(e - 1) };
    if a & 0x80 != 0 { t } else { -t }
}

#[actix_web::test]
async fn ulaw_and_alaw_are_one_byte_per_sample_and_decode_to_a_voice() {
    let e = start().await;
    for (format, decode) in [("ulaw_8000", ulaw as fn(u8) -> f64), ("alaw_8000", alaw)] {
        let r = tts(
            &e,
            &format!("?output_format={format}"),
            &[("xi-api-key", ELEVENLABS_KEY)],
            &format!(r#"{{"text":"{TEXT} "}}"#),
        )
        .await;
        assert_eq!(r.body.len(), (SECONDS * 8000.0).round() as usize, "{format}");
        let rms = (r.body.iter().map(|&b| decode(b).powi(2)).sum::<f64>() / r.body.len() as f64).sqrt();
        assert!(rms > 1000.0 && rms < 20_000.0, "{format}: rms {rms}");
    }
    e.stop().await;
}
