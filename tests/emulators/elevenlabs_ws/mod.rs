//! ElevenLabs `stream-input` over a raw WebSocket client: auth, first-message rules, buffering, flush/end,
//! alignment, timeouts, pacing and the socket faults; `auth` has the key paths, `multi` the multi-context
//! socket, `faults` the closes before any audio, `timing` alignment exactness and real-time pacing.

mod auth;
mod faults;
mod multi;
mod timing;

use std::time::{Duration, Instant};

use parley::emulators::{ELEVENLABS_KEY, ElevenLabsFault, Emulators};
use parley::providers::elevenlabs::ServerMessage;

use crate::helpers::{Next, SOON, Ws, start};

async fn single(e: &Emulators, query: &str, with_key: bool) -> Ws {
    let url =
        format!("{}/text-to-speech/voice-1/stream-input?{query}", e.elevenlabs_base_url().replacen("http", "ws", 1));
    let headers: &[(&str, &str)] = if with_key { &[("xi-api-key", ELEVENLABS_KEY)] } else { &[] };
    Ws::connect(&url, headers).await
}

async fn multi(e: &Emulators, query: &str) -> Ws {
    let url = format!(
        "{}/text-to-speech/voice-1/multi-stream-input?{query}",
        e.elevenlabs_base_url().replacen("http", "ws", 1)
    );
    Ws::connect(&url, &[("xi-api-key", ELEVENLABS_KEY)]).await
}

fn parse(texts: &[String]) -> Vec<ServerMessage> {
    texts.iter().map(|t| ServerMessage::parse(t).expect("server message parses")).collect()
}

fn spoken(msgs: &[ServerMessage]) -> String {
    msgs.iter()
        .filter_map(|m| m.alignment.as_ref())
        .flat_map(|a| a.chars.concat().chars().collect::<Vec<_>>())
        .collect()
}

fn audio_len(msgs: &[ServerMessage]) -> usize {
    msgs.iter().map(|m| m.audio_bytes().unwrap().len()).sum()
}

#[actix_web::test]
async fn a_single_context_stream_speaks_its_text_with_chunk_relative_alignment_then_ends_cleanly() {
    let e = start().await;
    let mut ws = single(&e, "model_id=eleven_flash_v2_5&output_format=pcm_16000", true).await;
    ws.text(r#"{"text":" ","voice_settings":{"stability":0.5,"similarity_boost":0.8},"generation_config":{"chunk_length_schedule":[50]}}"#).await;
    ws.text(r#"{"text":"Sure, "}"#).await;
    ws.text(r#"{"text":"your table "}"#).await;
    ws.text(r#"{"text":"is booked. ","flush":true}"#).await;
    ws.text(r#"{"text":""}"#).await;
    let (texts, end) = ws.texts_until_end(SOON).await;
    assert_eq!(end, Next::Close(Some((1000, String::new()))));
    let msgs = parse(&texts);
    assert!(msgs.last().unwrap().is_final(), "isFinal comes last");
    assert_eq!(spoken(&msgs), "Sure, your table is booked. ");
    let secs = audio_len(&msgs) as f64 / 32_000.0;
    assert!((secs - 28.0 / 15.0).abs() < 0.01, "{secs}s of pcm_16000 for 28 characters");
    for m in msgs.iter().filter(|m| m.audio.is_some()) {
        let a = m.alignment.as_ref().unwrap();
        assert_eq!(a.char_start_times_ms[0], 0, "times are relative to the chunk");
        assert_eq!(a.chars.len(), a.char_durations_ms.len());
        assert_eq!(m.normalized_alignment.as_ref(), Some(a));
        assert!(m.context_id.is_none());
    }
    let log = &e.elevenlabs().ws_connections()[0];
    assert!(log.key_in_header && !log.multi && log.received.len() == 5);
    assert_eq!(log.close_sent, Some((1000, String::new())));
    e.stop().await;
}

#[actix_web::test]
async fn text_waits_in_the_buffer_until_the_schedule_threshold_or_flush() {
    let e = start().await;
    let mut ws = single(&e, "output_format=pcm_8000", true).await;
    ws.text(r#"{"text":" ","generation_config":{"chunk_length_schedule":[50,60]}}"#).await;
    ws.text(r#"{"text":"Thirty characters of text here "}"#).await;
    ws.text(r#"{"text":"and thirty more to pass it. "}"#).await;
    ws.text(r#"{"text":"tail without space"}"#).await;
    ws.text(r#"{"text":""}"#).await;
    let (texts, _) = ws.texts_until_end(SOON).await;
    let msgs = parse(&texts);
    let first: String = msgs[0].alignment.as_ref().unwrap().chars.concat();
    assert!(first.starts_with("Thirty characters"), "first generation waited for the threshold: {first:?}");
    assert_eq!(spoken(&msgs), "Thirty characters of text here and thirty more to pass it. tail without space");
    e.stop().await;
}

#[actix_web::test]
async fn try_trigger_generation_speaks_once_enough_text_is_buffered() {
    let e = start().await;
    let mut ws = single(&e, "output_format=ulaw_8000", true).await;
    ws.text(r#"{"text":" ","generation_config":{"chunk_length_schedule":[500]}}"#).await;
    ws.text(r#"{"text":"This sentence is long enough to pass the internal minimum. ","try_trigger_generation":true}"#)
        .await;
    let texts = ws.texts_until(SOON, |t| t.contains("\"audio\"")).await;
    assert!(!parse(&texts)[0].is_final());
    e.stop().await;
}

async fn expect_policy_close(ws: &mut Ws, error: &str) -> String {
    let (texts, end) = ws.texts_until_end(SOON).await;
    let err =
        parse(&texts).into_iter().find(|m| m.is_error()).unwrap_or_else(|| panic!("no error message in {texts:?}"));
    assert_eq!(err.error.as_deref(), Some(error));
    assert_eq!(err.code, Some(1008));
    let Next::Close(Some((1008, reason))) = end else { panic!("{end:?}") };
    assert!(reason.len() <= 123);
    let message = err.message.unwrap();
    assert!(message.starts_with(&reason), "the reason repeats the message, cut to 123 bytes");
    message
}

#[actix_web::test]
async fn the_first_message_must_be_a_single_space_and_settings_must_not_change() {
    let e = start().await;
    let mut ws = single(&e, "", true).await;
    ws.text(r#"{"text":"Hello"}"#).await;
    expect_policy_close(&mut ws, "invalid_request").await;
    let mut ws = single(&e, "", true).await;
    ws.text(r#"{"text":" ","voice_settings":{"stability":0.5}}"#).await;
    ws.text(r#"{"text":"Same. ","voice_settings":{"stability":0.5}}"#).await;
    ws.text(r#"{"text":"Changed. ","voice_settings":{"stability":0.9}}"#).await;
    let msg = expect_policy_close(&mut ws, "invalid_request").await;
    assert!(msg.starts_with("voice_settings field must be provided in the first message"));
    e.stop().await;
}

#[actix_web::test]
async fn inactivity_closes_with_input_timeout_exceeded_and_a_reason_cut_to_123_bytes() {
    let e = start().await;
    e.elevenlabs().set_inactivity_timeout(Some(Duration::from_millis(500)));
    let mut ws = single(&e, "output_format=pcm_16000", true).await;
    ws.text(r#"{"text":" "}"#).await;
    let opened = Instant::now();
    let mut last_keepalive = opened;
    while opened.elapsed() < Duration::from_millis(1000) {
        ws.text(r#"{"text":" "}"#).await;
        last_keepalive = Instant::now();
        assert_eq!(ws.next(Duration::from_millis(150)).await, Next::Timeout, "a space is a keepalive");
    }
    let msg = expect_policy_close(&mut ws, "input_timeout_exceeded").await;
    assert!(last_keepalive.elapsed() >= Duration::from_millis(490));
    assert!(msg.len() > 123, "the full message is longer than the close reason");
    e.stop().await;
}

#[actix_web::test]
async fn the_inactivity_timeout_query_parameter_is_honoured() {
    let e = start().await;
    let mut ws = single(&e, "inactivity_timeout=1", true).await;
    ws.text(r#"{"text":" "}"#).await;
    let t = Instant::now();
    expect_policy_close(&mut ws, "input_timeout_exceeded").await;
    assert!(t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    e.stop().await;
}

#[actix_web::test]
async fn something_went_wrong_and_drop_faults_end_the_socket_their_way() {
    let e = start().await;
    e.elevenlabs().push_fault(ElevenLabsFault::SomethingWentWrong);
    let mut ws = single(&e, "", true).await;
    ws.text(r#"{"text":" "}"#).await;
    ws.text(r#"{"text":"Hi. "}"#).await;
    let msg = expect_policy_close(&mut ws, "internal_error").await;
    assert!(msg.starts_with("We are sorry, something went wrong."));
    e.elevenlabs().push_fault(ElevenLabsFault::DropMidStream);
    let mut ws = single(&e, "output_format=pcm_16000", true).await;
    ws.text(r#"{"text":" "}"#).await;
    ws.text(r#"{"text":"A sentence long enough for several chunks of audio. ","flush":true}"#).await;
    let (texts, end) = ws.texts_until_end(SOON).await;
    assert_eq!(end, Next::Ended, "no Close frame");
    assert_eq!(texts.len(), 1, "dropped right after the first audio frame");
    e.stop().await;
}

#[actix_web::test]
async fn binary_frames_malformed_json_and_bad_formats_are_refused_in_band() {
    let e = start().await;
    let mut ws = single(&e, "", true).await;
    ws.binary(vec![1, 2, 3]).await;
    expect_policy_close(&mut ws, "invalid_message").await;
    let mut ws = single(&e, "", true).await;
    ws.text("{nope").await;
    expect_policy_close(&mut ws, "invalid_message").await;
    let mut ws = single(&e, "output_format=wav_99", true).await;
    expect_policy_close(&mut ws, "invalid_output_format").await;
    let mut ws = single(&e, "output_format=opus_48000_64", true).await;
    expect_policy_close(&mut ws, "invalid_output_format").await;
    e.stop().await;
}

#[actix_web::test]
async fn time_to_first_byte_and_real_time_pacing_shape_audio_delivery() {
    let e = start().await;
    e.elevenlabs().set_time_to_first_byte(Duration::from_millis(300));
    e.elevenlabs().set_realtime_pacing(true);
    let mut ws = single(&e, "output_format=pcm_16000", true).await;
    ws.text(r#"{"text":" "}"#).await;
    let text = "Thirty characters, two seconds.";
    let sent = Instant::now();
    ws.text(&format!(r#"{{"text":"{text} ","flush":true}}"#)).await;
    ws.texts_until(SOON, |t| t.contains("\"audio\"")).await;
    let first = sent.elapsed();
    assert!(first >= Duration::from_millis(300), "{first:?}");
    ws.text(r#"{"text":""}"#).await;
    ws.texts_until_end(SOON).await;
    let total = sent.elapsed();
    // 32 characters ≈ 2.1 s of audio in 1 s chunks: the last chunk leaves about 1 s after the first.
    assert!(total >= first + Duration::from_millis(900), "{first:?} {total:?}");
    e.stop().await;
}

#[actix_web::test]
async fn buffering_more_than_the_character_limit_is_refused_in_band() {
    let e = start().await;
    let mut ws = single(&e, "", true).await;
    ws.text(r#"{"text":" ","generation_config":{"chunk_length_schedule":[500]}}"#).await;
    let chunk = format!(r#"{{"text":"{}"}}"#, "x".repeat(1_000));
    for _ in 0..6 {
        if !ws.text(&chunk).await {
            break;
        }
    }
    expect_policy_close(&mut ws, "max_character_limit_exceeded").await;
    e.stop().await;
}

#[actix_web::test]
async fn a_chunk_length_schedule_of_floats_as_the_sdk_sends_it_is_accepted_and_used() {
    let e = start().await;
    let mut ws = single(&e, "output_format=pcm_8000", true).await;
    // elevenlabs-python's GenerationConfig types the schedule List[float], so it serialises 50 as 50.0.
    ws.text(r#"{"text":" ","generation_config":{"chunk_length_schedule":[50.0,120.5]}}"#).await;
    ws.text(r#"{"text":"Thirty characters of text here "}"#).await;
    ws.text(r#"{"text":"and thirty more to pass it. "}"#).await;
    let first = parse(&ws.texts_until(SOON, |t| t.contains("\"audio\"")).await);
    let spoken_first: String = first[0].alignment.as_ref().unwrap().chars.concat();
    assert!(spoken_first.starts_with("Thirty characters"), "the 50.0 threshold applied: {spoken_first:?}");
    ws.text(r#"{"text":""}"#).await;
    let (_, end) = ws.texts_until_end(SOON).await;
    assert_eq!(end, Next::Close(Some((1000, String::new()))));
    for bad in ["[-50]", r#"["fifty"]"#] {
        let mut ws = single(&e, "", true).await;
        ws.text(&format!(r#"{{"text":" ","generation_config":{{"chunk_length_schedule":{bad}}}}}"#)).await;
        let message = expect_policy_close(&mut ws, "invalid_message").await;
        assert!(message.contains("chunk_length_schedule") || message.contains("invalid type"), "{message}");
    }
    e.stop().await;
}
