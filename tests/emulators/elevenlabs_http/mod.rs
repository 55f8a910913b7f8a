//! ElevenLabs `POST /v1/text-to-speech/{voice_id}/stream` over raw HTTP: the chunked audio body and its
//! headers, both `detail` error shapes, 401/422/429, pacing and client disconnects; `cuts` has the three
//! ways a body is cut short, `timestamps` the `.../stream/with-timestamps` endpoint.

mod cuts;
mod timestamps;

use std::time::{Duration, Instant};

use parley::emulators::{ELEVENLABS_KEY, ElevenLabsFault, Emulators};
use parley::providers::elevenlabs::{ErrorDetail, HttpErrorBody};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{RawResponse, SOON, authority, post, raw, raw_bytes, start, timed_bytes};

pub async fn tts(e: &Emulators, query: &str, headers: &[(&str, &str)], body: &str) -> RawResponse {
    let host = authority(&e.elevenlabs_base_url());
    raw(&host, &post(&format!("/v1/text-to-speech/voice-1/stream{query}"), &host, headers, body)).await
}

/// The request for `endpoint` (`stream` or `stream/with-timestamps`) with the default key and `text`.
fn request(e: &Emulators, endpoint: &str, query: &str, text: &str) -> (String, Vec<u8>) {
    let host = authority(&e.elevenlabs_base_url());
    let body = serde_json::json!({ "text": text }).to_string();
    let req = post(&format!("/v1/text-to-speech/voice-1/{endpoint}{query}"), &host, &key(), &body);
    (host, req)
}

/// The response's head (status line and headers) and its raw body bytes, framing included.
fn split_head(bytes: &[u8]) -> (RawResponse, Vec<u8>) {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head") + 4;
    (crate::helpers::parse_response(&bytes[..end]), bytes[end..].to_vec())
}

fn key() -> [(&'static str, &'static str); 1] {
    [("xi-api-key", ELEVENLABS_KEY)]
}

fn detail(r: &RawResponse) -> ErrorDetail {
    serde_json::from_slice::<HttpErrorBody>(&r.body).expect("detail body").detail
}

#[actix_web::test]
async fn a_request_streams_chunked_audio_with_a_request_id_and_is_logged() {
    let e = start().await;
    let body = r#"{"text":"Your table is booked.","model_id":"eleven_flash_v2_5","previous_text":"Let me check.","next_text":"Anything else?","previous_request_ids":["req_a"]}"#;
    let r = tts(&e, "?output_format=pcm_16000", &key(), body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.complete);
    let id = r.header("request-id").expect("request-id header").to_string();
    assert_eq!(r.body.len(), 2 * (21.0 / 15.0 * 16_000.0_f64).round() as usize);
    assert!(r.chunks.len() > 1, "audio arrives in several chunks");
    let log = &e.elevenlabs().http_requests()[0];
    assert_eq!(log.request_id, id);
    assert_eq!(log.voice_id, "voice-1");
    assert_eq!(log.previous_text.as_deref(), Some("Let me check."));
    assert_eq!(log.next_text.as_deref(), Some("Anything else?"));
    assert_eq!(log.previous_request_ids, ["req_a"]);
    assert!(log.completed && !log.cut && !log.client_went_away);
    assert_eq!(log.bytes_sent, r.body.len());
    e.stop().await;
}

#[actix_web::test]
async fn a_missing_or_wrong_key_is_401_with_an_object_detail() {
    let e = start().await;
    for headers in [vec![], vec![("xi-api-key", "wrong")]] {
        let r = tts(&e, "", &headers, r#"{"text":"Hi"}"#).await;
        assert_eq!(r.status, 401);
        let ErrorDetail::Status(s) = detail(&r) else { panic!() };
        assert_eq!(s.status, "invalid_api_key");
    }
    e.stop().await;
}

#[actix_web::test]
async fn missing_text_bad_json_and_bad_formats_are_422_validation_arrays() {
    let e = start().await;
    for (query, body, loc) in [
        ("", r#"{"model_id":"m"}"#, "text"),
        ("", "{oops", "0"),
        ("?output_format=mp3_1_1", r#"{"text":"Hi"}"#, "output_format"),
        ("?output_format=opus_48000_64", r#"{"text":"Hi"}"#, "output_format"),
    ] {
        let r = tts(&e, query, &key(), body).await;
        assert_eq!(r.status, 422, "{body}");
        let ErrorDetail::Validation(issues) = detail(&r) else { panic!("{body}") };
        assert_eq!(issues[0].loc.last().and_then(|l| l.as_str()), Some(loc));
    }
    e.stop().await;
}

#[actix_web::test]
async fn injected_401_403_422_and_429_use_the_documented_detail_shapes() {
    let e = start().await;
    let c = e.elevenlabs();
    c.push_fault(ElevenLabsFault::Unauthorized);
    c.push_fault(ElevenLabsFault::Forbidden);
    c.push_fault(ElevenLabsFault::Unprocessable { array: false });
    c.push_fault(ElevenLabsFault::Unprocessable { array: true });
    c.push_fault(ElevenLabsFault::TooManyRequests);
    let ok = r#"{"text":"Hi"}"#;
    assert_eq!(tts(&e, "", &key(), ok).await.status, 401);
    let r = tts(&e, "", &key(), ok).await;
    assert_eq!(r.status, 403);
    assert!(matches!(detail(&r), ErrorDetail::Status(s) if s.status == "only_for_creator+"));
    let r = tts(&e, "", &key(), ok).await;
    assert!(r.status == 422 && matches!(detail(&r), ErrorDetail::Status(_)));
    let r = tts(&e, "", &key(), ok).await;
    assert!(r.status == 422 && matches!(detail(&r), ErrorDetail::Validation(_)));
    let r = tts(&e, "", &key(), ok).await;
    assert_eq!(r.status, 429);
    assert!(matches!(detail(&r), ErrorDetail::Status(s) if s.status == "too_many_concurrent_requests"));
    assert_eq!(tts(&e, "", &key(), ok).await.status, 200);
    e.stop().await;
}

#[actix_web::test]
async fn time_to_first_byte_and_real_time_pacing_apply_to_the_body() {
    let e = start().await;
    e.elevenlabs().set_time_to_first_byte(Duration::from_millis(300));
    e.elevenlabs().set_realtime_pacing(true);
    let t = Instant::now();
    let r = tts(&e, "?output_format=mp3_44100_128", &key(), r#"{"text":"Thirty characters take 2 secs."}"#).await;
    assert!(r.complete);
    // mp3_44100_128 carries 30 characters per chunk, so pacing adds little here; TTFB must show.
    assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
    let t = Instant::now();
    let r = tts(&e, "?output_format=pcm_16000", &key(), r#"{"text":"Thirty characters take 2 secs."}"#).await;
    assert!(r.complete);
    assert!(t.elapsed() >= Duration::from_millis(300 + 900), "{:?}", t.elapsed());
    e.stop().await;
}

#[actix_web::test]
async fn a_client_that_hangs_up_mid_body_is_logged() {
    let e = start().await;
    e.elevenlabs().set_realtime_pacing(true);
    let host = authority(&e.elevenlabs_base_url());
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    let text = "word ".repeat(30);
    s.write_all(&post(
        "/v1/text-to-speech/v/stream?output_format=pcm_16000",
        &host,
        &key(),
        &format!(r#"{{"text":"{text}"}}"#),
    ))
    .await
    .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(SOON, s.read(&mut buf)).await.unwrap().unwrap();
    assert!(n > 0);
    drop(s);
    assert!(e.elevenlabs().wait_until(|s| s.http[0].client_went_away, SOON).await);
    assert!(!e.elevenlabs().http_requests()[0].completed);
    e.stop().await;
}

#[actix_web::test]
async fn text_over_the_character_limit_is_refused_with_400() {
    let e = start().await;
    let body = format!(r#"{{"text":"{}"}}"#, "a".repeat(5_001));
    let r = tts(&e, "", &key(), &body).await;
    assert_eq!(r.status, 400);
    assert!(matches!(detail(&r), ErrorDetail::Status(s) if s.status == "max_character_limit_exceeded"));
    e.stop().await;
}

#[actix_web::test]
async fn paced_requests_deliver_audio_no_faster_than_it_plays_each_on_its_own_clock() {
    let e = start().await;
    e.elevenlabs().set_time_to_first_byte(Duration::from_millis(200));
    e.elevenlabs().set_realtime_pacing(true);
    // pcm_16000 speaks 15 characters (1 s, 32 000 bytes) a chunk: 45 characters are 3 chunks, 30 are 2.
    let (host, long) = request(&e, "stream", "?output_format=pcm_16000", &"Fifteen chars. ".repeat(3));
    let (_, short) = request(&e, "stream", "?output_format=pcm_16000", &"Fifteen chars. ".repeat(2));
    let (long, short) = tokio::join!(timed_bytes(&host, &long), timed_bytes(&host, &short));
    for (reads, chunks) in [(&long, 3.0), (&short, 2.0)] {
        let all: Vec<u8> = reads.iter().flat_map(|(_, b)| b.clone()).collect();
        assert_eq!(split_head(&all).0.status, 200);
        let body_start = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let (mut received, mut first, mut last) = (0usize, None, Duration::ZERO);
        for (at, bytes) in reads.iter() {
            received += bytes.len();
            let body = received.saturating_sub(body_start);
            if body == 0 {
                continue;
            }
            let first = *first.get_or_insert(*at);
            // Chunk framing (a few bytes a chunk) counts as audio here, which only makes the check stricter.
            let audio_ms = body as f64 / 32.0;
            let played_ms = (*at - first).as_secs_f64() * 1000.0;
            assert!(audio_ms <= played_ms + 1000.0 + 60.0, "{audio_ms} ms of audio after {played_ms} ms of play");
            last = *at;
        }
        let first = first.expect("a body");
        assert!(first >= Duration::from_millis(190), "time to first byte: {first:?}");
        let span = (last - first).as_secs_f64();
        assert!(span >= chunks - 1.0 - 0.05, "the last chunk waits for the ones before it to play: {span}");
    }
    let (long_end, short_end) = (long.last().unwrap().0, short.last().unwrap().0);
    assert!(short_end < long_end, "{short_end:?} {long_end:?}");
    assert!(long_end < Duration::from_millis(2900), "each request has its own clock: {long_end:?}");
    e.stop().await;
}
