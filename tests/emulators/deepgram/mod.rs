//! Deepgram `/v1/listen` over a raw WebSocket client: the handshake, the transcript flow in audio time and
//! the control messages; `failures` has refusals, the idle timeout and every fault, `finalize` the late and
//! ignored `Finalize` replies.

mod failures;
mod finalize;

use std::time::{Duration, Instant};

use parley::emulators::deepgram::AuthMethod;
use parley::emulators::{DEEPGRAM_KEY, DeepgramFault, Emulators};
use parley::providers::deepgram::{NET_0001_REASON, ServerMessage};

use crate::helpers::{
    Next, RawFrame, RawNext, RawWs, SOON, Ws, authority, handshake, silence, start, stream_audio, tone, upgrade,
};

const RATE: u32 = 16_000;

const FULL: &str = "encoding=linear16&sample_rate=16000&channels=1&interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true&punctuate=true";

fn token() -> String {
    format!("Token {DEEPGRAM_KEY}")
}

async fn connect(e: &Emulators, query: &str) -> Ws {
    let url = format!("{}/listen?{query}", e.deepgram_base_url());
    Ws::connect(&url, &[("Authorization", &token())]).await
}

fn parse(texts: &[String]) -> Vec<ServerMessage> {
    texts.iter().map(|t| ServerMessage::parse(t).expect("server frame parses")).collect()
}

fn kind(m: &ServerMessage) -> &'static str {
    match m {
        ServerMessage::Results(r) if r.is_final => "final",
        ServerMessage::Results(_) => "interim",
        ServerMessage::Metadata(_) => "metadata",
        ServerMessage::UtteranceEnd(_) => "utterance_end",
        ServerMessage::SpeechStarted(_) => "speech_started",
        ServerMessage::Error(_) => "error",
        ServerMessage::Unknown(_) => "unknown",
    }
}

#[actix_web::test]
async fn an_utterance_gives_speech_started_interims_a_speech_final_and_utterance_end_in_audio_time() {
    let e = start().await;
    e.deepgram().push_script(vec!["Book a table for two.".into()]);
    let mut ws = connect(&e, FULL).await;
    let mut audio = silence(0.5, RATE);
    audio.extend(tone(1.5, RATE));
    audio.extend(silence(2.0, RATE));
    stream_audio(&mut ws, &audio, RATE).await;
    let texts = ws.texts_until(SOON, |t| t.contains("UtteranceEnd")).await;
    let msgs = parse(&texts);
    let kinds: Vec<_> = msgs.iter().map(kind).collect();
    assert_eq!(kinds, ["speech_started", "interim", "interim", "interim", "final", "utterance_end"]);
    let ServerMessage::SpeechStarted(s) = &msgs[0] else { unreachable!() };
    assert_eq!(s.timestamp, 0.5);
    let ServerMessage::Results(fin) = &msgs[4] else { unreachable!() };
    assert!(fin.speech_final && !fin.from_finalize);
    assert_eq!(fin.transcript(), "Book a table for two.");
    assert_eq!(fin.channel_index, vec![0, 1]);
    let words = &fin.channel.alternatives[0].words;
    assert_eq!(words.len(), 5);
    assert_eq!(words[0].punctuated_word.as_deref(), Some("Book"));
    assert!(words[0].start >= 0.5 && words[4].end <= 2.0, "{words:?}");
    assert!((fin.start + fin.duration - 2.3).abs() < 0.02, "final covers audio up to the endpoint");
    let ServerMessage::UtteranceEnd(u) = &msgs[5] else { unreachable!() };
    assert_eq!(u.last_word_end, words[4].end);

    ws.text(r#"{"type":"CloseStream"}"#).await;
    let (texts, end) = ws.texts_until_end(SOON).await;
    let ServerMessage::Metadata(meta) = &parse(&texts)[0] else { panic!("{texts:?}") };
    assert_eq!(meta.duration, 4.0);
    assert_eq!(meta.sha256.len(), 64);
    assert_eq!(end, Next::Close(Some((1000, String::new()))));
    let log = &e.deepgram().connections()[0];
    assert_eq!(log.auth, AuthMethod::Header("Token".into()));
    assert_eq!(log.audio_bytes, audio.len() as u64);
    assert_eq!(log.texts_received[0].audio_time, 4.0);
    e.stop().await;
}

#[actix_web::test]
async fn events_the_query_did_not_ask_for_are_never_sent() {
    let e = start().await;
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000&endpointing=200").await;
    let mut audio = tone(1.0, RATE);
    audio.extend(silence(2.0, RATE));
    stream_audio(&mut ws, &audio, RATE).await;
    ws.text(r#"{"type":"CloseStream"}"#).await;
    let (texts, _) = ws.texts_until_end(SOON).await;
    let kinds: Vec<_> = parse(&texts).iter().map(kind).collect::<Vec<_>>();
    assert_eq!(kinds, ["final", "metadata"]);
    let ServerMessage::Results(r) = &parse(&texts)[0] else { unreachable!() };
    assert_eq!(r.transcript(), "this is caller 1 turn 1 speaking", "unpunctuated default transcript");
    e.stop().await;
}

#[actix_web::test]
async fn concurrent_connections_hear_distinct_default_transcripts() {
    let e = start().await;
    let mut a = connect(&e, "encoding=linear16&sample_rate=16000").await;
    let mut b = connect(&e, "encoding=linear16&sample_rate=16000&punctuate=true").await;
    let mut audio = tone(0.5, RATE);
    audio.extend(silence(0.2, RATE));
    stream_audio(&mut a, &audio, RATE).await;
    stream_audio(&mut b, &audio, RATE).await;
    let ta = a.texts_until(SOON, |t| t.contains("\"is_final\":true")).await;
    let tb = b.texts_until(SOON, |t| t.contains("\"is_final\":true")).await;
    assert!(ta.last().unwrap().contains("this is caller 1 turn 1 speaking"));
    assert!(tb.last().unwrap().contains("This is caller 2, turn 1, speaking."));
    e.stop().await;
}

#[actix_web::test]
async fn the_subprotocol_key_is_accepted_and_token_echoed_with_a_request_id() {
    let e = start().await;
    let host = authority(&e.deepgram_base_url());
    let proto = format!("token, {DEEPGRAM_KEY}");
    let r = handshake(
        &host,
        &upgrade("/v1/listen?encoding=linear16&sample_rate=8000", &host, &[("Sec-WebSocket-Protocol", &proto)]),
    )
    .await;
    assert_eq!(r.status, 101);
    assert_eq!(r.header("sec-websocket-protocol"), Some("token"));
    assert!(r.header("dg-request-id").is_some_and(|v| v.len() == 36));
    assert!(e.deepgram().wait_until(|c| c.first().is_some_and(|c| c.auth == AuthMethod::Subprotocol), SOON).await);
    e.stop().await;
}

#[actix_web::test]
async fn finalize_answers_with_from_finalize_unless_told_not_to_reply() {
    let e = start().await;
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000&endpointing=500").await;
    stream_audio(&mut ws, &tone(0.4, RATE), RATE).await;
    ws.text(r#"{"type":"Finalize"}"#).await;
    let texts = ws.texts_until(SOON, |t| t.contains("Results")).await;
    let ServerMessage::Results(r) = ServerMessage::parse(&texts[0]).unwrap() else { panic!() };
    assert!(r.from_finalize && r.is_final && !r.transcript().is_empty());

    e.deepgram().set_finalize_reply(false);
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000&endpointing=500").await;
    stream_audio(&mut ws, &tone(0.4, RATE), RATE).await;
    ws.text(r#"{"type":"Finalize"}"#).await;
    ws.text(r#"{"type":"CloseStream"}"#).await;
    let (texts, end) = ws.texts_until_end(SOON).await;
    let msgs = parse(&texts);
    assert_eq!(msgs.iter().map(kind).collect::<Vec<_>>(), ["final", "metadata"]);
    assert!(matches!(&msgs[0], ServerMessage::Results(r) if !r.from_finalize), "Finalize must not be answered");
    assert_eq!(end, Next::Close(Some((1000, String::new()))));
    e.stop().await;
}

#[actix_web::test]
async fn an_empty_binary_frame_ends_the_stream_like_close_stream() {
    let e = start().await;
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000").await;
    stream_audio(&mut ws, &silence(0.3, RATE), RATE).await;
    ws.binary(Vec::new()).await;
    let (texts, end) = ws.texts_until_end(SOON).await;
    assert_eq!(parse(&texts).iter().map(kind).collect::<Vec<_>>(), ["metadata"]);
    assert_eq!(end, Next::Close(Some((1000, String::new()))));
    e.stop().await;
}

#[actix_web::test]
async fn reply_latency_delays_each_result_after_its_audio() {
    let e = start().await;
    e.deepgram().set_reply_latency(Duration::from_millis(400));
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000&endpointing=100").await;
    let mut audio = tone(0.3, RATE);
    audio.extend(silence(0.2, RATE));
    stream_audio(&mut ws, &audio, RATE).await;
    let sent = Instant::now();
    ws.texts_until(SOON, |t| t.contains("\"is_final\":true")).await;
    assert!(sent.elapsed() >= Duration::from_millis(350), "{:?}", sent.elapsed());
    e.stop().await;
}

#[actix_web::test]
async fn a_client_close_is_answered_and_logged() {
    let e = start().await;
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000").await;
    ws.close(1000, "bye").await;
    assert!(matches!(ws.next(SOON).await, Next::Close(Some((1000, _)))));
    assert!(e.deepgram().wait_until(|c| c[0].close_received == Some((1000, "bye".into())) && !c[0].open, SOON).await);
    e.stop().await;
}

#[actix_web::test]
async fn bearer_and_lowercase_token_schemes_are_accepted() {
    let e = start().await;
    let host = authority(&e.deepgram_base_url());
    for scheme in ["Bearer", "token"] {
        let auth = format!("{scheme} {DEEPGRAM_KEY}");
        let r = handshake(&host, &upgrade("/v1/listen", &host, &[("Authorization", &auth)])).await;
        assert_eq!(r.status, 101, "{scheme}");
    }
    let c = e.deepgram().connections();
    assert_eq!(c[0].auth, AuthMethod::Header("Bearer".into()));
    assert_eq!(c[1].auth, AuthMethod::Header("token".into()));
    e.stop().await;
}
