//! `POST /v1/text-to-speech/{voice_id}/stream/with-timestamps`: newline-delimited JSON lines of base64 audio
//! with snake_case alignments in seconds, counted from the start of the request's audio, that cover exactly
//! the characters of the text, so "N ms heard" maps to "these characters heard".

use super::*;
use parley::providers::elevenlabs::{CharacterAlignment, TimestampedAudio};

const TEXT: &str = "Your table for two is booked at eight tonight, see you then!";

fn lines(r: &RawResponse) -> Vec<TimestampedAudio> {
    let text = String::from_utf8(r.body.clone()).expect("UTF-8 JSON lines");
    assert!(text.ends_with('\n'), "every line ends with a newline");
    text.lines().map(|l| TimestampedAudio::parse(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[actix_web::test]
async fn lines_carry_audio_and_the_alignment_of_exactly_their_characters_in_seconds_from_the_start() {
    let e = start().await;
    let (host, req) = request(&e, "stream/with-timestamps", "?output_format=pcm_16000", TEXT);
    let r = raw(&host, &req).await;
    assert_eq!(r.status, 200);
    assert!(r.complete && r.header("request-id").is_some());
    let body = String::from_utf8_lossy(&r.body).to_string();
    for key in [
        "\"audio_base64\"",
        "\"normalized_alignment\"",
        "\"character_start_times_seconds\"",
        "\"character_end_times_seconds\"",
    ] {
        assert!(body.contains(key), "snake_case key {key}");
    }
    let lines = lines(&r);
    assert!(lines.len() > 1, "several lines");
    let audio: Vec<u8> = lines.iter().flat_map(|l| l.audio_bytes().unwrap()).collect();
    assert_eq!(audio.len(), 2 * (TEXT.chars().count() as f64 / 15.0 * 16_000.0).round() as usize);
    let alignments: Vec<&CharacterAlignment> = lines.iter().map(|l| l.alignment.as_ref().unwrap()).collect();
    let spoken: String = alignments.iter().flat_map(|a| a.characters.concat().chars().collect::<Vec<_>>()).collect();
    assert_eq!(spoken, TEXT, "the alignment covers exactly the text");
    let mut clock = 0.0;
    for (line, a) in lines.iter().zip(&alignments) {
        assert_eq!(line.normalized_alignment.as_ref(), Some(*a));
        assert_eq!(a.characters.len(), a.character_start_times_seconds.len());
        assert_eq!(a.characters.len(), a.character_end_times_seconds.len());
        assert!((a.character_start_times_seconds[0] - clock).abs() < 1e-5, "cumulative: the line starts at {clock}");
        for i in 0..a.characters.len() {
            assert!(a.character_end_times_seconds[i] > a.character_start_times_seconds[i]);
            if i > 0 {
                assert!((a.character_start_times_seconds[i] - a.character_end_times_seconds[i - 1]).abs() < 1e-5);
            }
        }
        let line_secs = line.audio_bytes().unwrap().len() as f64 / 32_000.0;
        clock = *a.character_end_times_seconds.last().unwrap();
        assert!(
            (clock - a.character_start_times_seconds[0] - line_secs).abs() < 1e-3,
            "the line's times span its audio"
        );
    }
    assert!((clock - audio.len() as f64 / 32_000.0).abs() < 1e-3, "the last character ends with the audio");
    // A client that has played N ms has heard the characters that end by then.
    let ends: Vec<f64> = alignments.iter().flat_map(|a| a.character_end_times_seconds.clone()).collect();
    for (heard_ms, chars) in [(0.0, 0), (1000.0, 15), (2000.0, 30), (clock * 1000.0, TEXT.chars().count())] {
        let heard = ends.iter().filter(|&&end| end * 1000.0 <= heard_ms + 1e-6).count();
        assert_eq!(heard, chars, "after {heard_ms} ms");
    }
    let log = &e.elevenlabs().http_requests()[0];
    assert!(log.with_timestamps && log.completed);
    assert_eq!(log.bytes_sent, r.body.len());
    e.stop().await;
}

#[actix_web::test]
async fn the_timestamped_stream_checks_keys_and_bodies_like_the_audio_stream() {
    let e = start().await;
    let host = authority(&e.elevenlabs_base_url());
    let path = "/v1/text-to-speech/voice-1/stream/with-timestamps";
    let r = raw(&host, &post(path, &host, &[], r#"{"text":"Hi"}"#)).await;
    assert_eq!(r.status, 401);
    let r = raw(&host, &post(path, &host, &key(), r#"{"model_id":"m"}"#)).await;
    assert_eq!(r.status, 422);
    assert!(matches!(detail(&r), ErrorDetail::Validation(_)));
    e.elevenlabs().push_fault(ElevenLabsFault::TooManyRequests);
    assert_eq!(raw(&host, &post(path, &host, &key(), r#"{"text":"Hi"}"#)).await.status, 429);
    e.stop().await;
}
