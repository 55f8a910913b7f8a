//! Every word exact: what the user said and heard is exactly what parley answers, stores and remembers, when
//! the providers do what their published behaviour allows (answer a `Finalize` late or never, drop a socket
//! mid-utterance, close the TTS socket before any audio).

use std::time::Duration;

use parley::emulators::{DeepgramFault, ElevenLabsFault, FinalizeReply, Reply};
use serde_json::{Value, json};

use crate::helpers::TestDb;
use crate::helpers::voice::{Event, VoiceClient, spawn_voice_app_with, utterance_pcm};

/// The user messages the LLM was sent in its last request.
fn last_user_messages(requests: &[parley::emulators::ChatRequestLog]) -> Vec<String> {
    let body = &requests.last().expect("an LLM request").body;
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn wait_transcript_containing(c: &mut VoiceClient, word: &str) {
    c.until(
        &format!("a transcript with {word:?}"),
        |e| matches!(e, Event::Json(v) if v["type"] == "transcript" && v["text"].as_str().unwrap_or("").contains(word)),
    )
    .await;
}

#[actix_web::test]
async fn a_late_finalize_reply_is_neither_a_barge_in_nor_repeated_in_the_next_question() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_FINALIZE_TIMEOUT_MS".into(), "300".into());
    })
    .await;
    let (dg, openai) = (v.emulators.deepgram(), v.emulators.openai());
    dg.set_finalize(FinalizeReply::Late(Duration::from_millis(2500)));
    dg.push_script(vec!["what is the weather".into(), "and tomorrow".into()]);
    // A reply that is still being spoken when the late reply arrives.
    openai.push_reply(Reply::Text("Sunny. ".repeat(40)));
    openai.set_timing(Duration::from_millis(10), Duration::from_millis(60));
    let mut c = v.connect("userId=late").await;
    c.stream_audio(&utterance_pcm(1500, 0)).await;
    wait_transcript_containing(&mut c, "weather").await;
    c.send_json(json!({"type": "closeMicrophone"})).await;
    let first = c.expect("userTurn").await;
    assert_eq!(first["text"], "what is the weather", "committed by the fallback with the words heard");
    c.expect("audioStart").await;
    // Deepgram's reply to the Finalize comes 2.5 s later, about the same words.
    assert!(
        dg.wait_until(|c| c[0].sent.iter().any(|s| s.contains("\"from_finalize\":true")), Duration::from_secs(10))
            .await,
        "the late reply was sent"
    );
    let end = c.expect("turnEnd").await;
    assert_eq!(end["interrupted"], false, "the late reply was not taken as speech over the answer: {:?}", c.summary());
    // A pause, then the next question: only its new words.
    c.stream_audio(&utterance_pcm(0, 1000)).await;
    c.stream_audio(&utterance_pcm(1200, 1500)).await;
    let second = c
        .until("the second turn", |e| matches!(e, Event::Json(v) if v["type"] == "userTurn" && v["turnId"] == 2))
        .await;
    let Event::Json(second) = second else { unreachable!() };
    assert_eq!(second["text"], "and tomorrow");
    c.expect("turnEnd").await;
    let users = last_user_messages(&openai.requests());
    assert_eq!(users, ["what is the weather", "and tomorrow"], "each question once");
    v.stop().await;
}

#[actix_web::test]
async fn an_unanswered_finalize_does_not_bring_its_words_back_in_the_next_turn() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_FINALIZE_TIMEOUT_MS".into(), "300".into());
    })
    .await;
    let (dg, openai) = (v.emulators.deepgram(), v.emulators.openai());
    dg.set_finalize(FinalizeReply::Ignored);
    dg.push_script(vec!["turn off the lights".into(), "in the kitchen".into()]);
    let mut c = v.connect("userId=ignored").await;
    c.stream_audio(&utterance_pcm(1500, 0)).await;
    wait_transcript_containing(&mut c, "lights").await;
    c.send_json(json!({"type": "closeMicrophone"})).await;
    assert_eq!(c.expect("userTurn").await["text"], "turn off the lights");
    c.expect("turnEnd").await;
    // Audio resumes: Deepgram finalizes its buffer (the old words again), then hears the next question.
    c.stream_audio(&utterance_pcm(0, 1000)).await;
    c.stream_audio(&utterance_pcm(1200, 1500)).await;
    let second = c
        .until("the second turn", |e| matches!(e, Event::Json(v) if v["type"] == "userTurn" && v["turnId"] == 2))
        .await;
    let Event::Json(second) = second else { unreachable!() };
    assert_eq!(second["text"], "in the kitchen");
    let finals: Vec<String> = dg.connections()[0]
        .sent
        .iter()
        .filter(|s| s.contains("\"is_final\":true") && s.contains("lights"))
        .cloned()
        .collect();
    assert!(!finals.is_empty(), "Deepgram did send the old words again");
    c.expect("turnEnd").await;
    assert_eq!(last_user_messages(&openai.requests()), ["turn off the lights", "in the kitchen"]);
    v.stop().await;
}

#[actix_web::test]
async fn an_utterance_cut_by_a_dropped_deepgram_connection_is_transcribed_whole_once() {
    for fault in [
        DeepgramFault::ResetAfterAudio(Duration::from_millis(900)),
        DeepgramFault::DropAfterAudio(Duration::from_millis(900)),
    ] {
        let v = spawn_voice_app_with(TestDb::Sqlite, |_| {}).await;
        let dg = v.emulators.deepgram();
        let sentence = "What is the weather like in Paris today?";
        // The first connection dies mid-utterance; the second hears the replayed audio.
        dg.push_script(vec![sentence.into()]);
        dg.push_script(vec![sentence.into()]);
        dg.push_fault(fault.clone());
        let mut c = v.connect("userId=dropped").await;
        c.stream_audio(&utterance_pcm(3000, 1500)).await;
        let user = c.expect("userTurn").await;
        assert_eq!(user["text"], sentence, "{fault:?}: {:?}", c.summary());
        assert_eq!(dg.connections().len(), 2, "{fault:?}: reconnected once");
        for conn in dg.connections() {
            // Audio kept for replay (or while connecting) goes out in 20 ms frames, as the client sent it.
            assert_eq!(conn.audio_bytes, 640 * conn.audio_frames, "{fault:?}: frames of 640 bytes");
        }
        c.expect("turnEnd").await;
        let users = last_user_messages(&v.emulators.openai().requests());
        assert_eq!(users, [sentence], "{fault:?}");
        assert_eq!(c.events("userTurn").len(), 1, "{fault:?}: once");
        v.stop().await;
    }
}

#[actix_web::test]
async fn a_tts_socket_lost_before_the_first_audio_speaks_the_turn_whole_on_a_new_one() {
    for fault in [ElevenLabsFault::DropBeforeAudio, ElevenLabsFault::CloseBeforeAudio] {
        let v = spawn_voice_app_with(TestDb::Sqlite, |_| {}).await;
        let (tts, openai) = (v.emulators.elevenlabs(), v.emulators.openai());
        openai.push_reply(Reply::Text("First sentence here. And a second one.".into()));
        // The warm socket is the first connection; the fault hits the one the turn's text goes to.
        let mut c = v.connect("userId=tts-lost").await;
        tts.push_fault(fault.clone());
        c.say("Talk to me.").await;
        let end = c.expect("turnEnd").await;
        assert_eq!(end["interrupted"], false);
        assert!(c.events("error").is_empty(), "{fault:?}: retried, not reported: {:?}", c.summary());
        assert!(!c.audio_of_turn(1).is_empty(), "{fault:?}: the turn was spoken");
        let sockets = tts.ws_connections();
        let texts: Vec<String> =
            sockets.last().unwrap().received.iter().filter_map(|m| m["text"].as_str().map(str::to_string)).collect();
        assert!(texts.concat().contains("First sentence here."), "{fault:?}: the text was sent again: {texts:?}");
        assert!(texts.concat().contains("And a second one."), "{fault:?}: {texts:?}");
        v.stop().await;
    }
}

#[actix_web::test]
async fn a_tts_socket_that_cannot_be_reopened_speaks_the_turn_over_http() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |_| {}).await;
    let (tts, openai) = (v.emulators.elevenlabs(), v.emulators.openai());
    openai.push_reply(Reply::Text("First sentence here. And a second one.".into()));
    // Every socket the turn's text goes to drops before any audio: more drops than the socket retries. Set
    // before the session opens, so that a socket opened early (at the session's start) is one of them.
    for _ in 0..4 {
        tts.push_fault(ElevenLabsFault::DropBeforeAudio);
    }
    let mut c = v.connect("userId=tts-http").await;
    c.say("Talk to me.").await;
    let end = c.expect("turnEnd").await;
    assert_eq!(end["interrupted"], false, "{:?}", c.summary());
    assert!(c.events("error").is_empty(), "fell back, not reported: {:?}", c.summary());
    assert!(!c.audio_of_turn(1).is_empty(), "the turn was spoken");
    let spoken: Vec<String> =
        tts.http_requests().iter().filter_map(|r| r.body["text"].as_str().map(str::to_string)).collect();
    assert!(spoken.concat().contains("First sentence here."), "spoken over HTTP: {spoken:?}");
    assert!(spoken.concat().contains("And a second one."), "{spoken:?}");
    v.stop().await;
}

/// The characters the emulator said end within the first `ms` of context `id`'s audio (16 kHz PCM), cut back
/// to the last whole word, as the listener heard them.
fn heard_by_alignment(frames: &[parley::emulators::SentFrame], id: &str, ms: f64) -> String {
    let mut offset = 0.0;
    let mut heard = String::new();
    let mut next = None;
    for f in frames.iter().filter(|f| f.context_id.as_deref() == Some(id)) {
        if let Some(a) = &f.alignment {
            for (i, c) in a.chars.iter().enumerate() {
                let end = offset + f64::from(a.char_start_times_ms[i]) + f64::from(a.char_durations_ms[i]);
                if end <= ms && next.is_none() {
                    heard.push_str(c);
                } else if next.is_none() {
                    next = c.chars().next();
                }
            }
        }
        offset += f.audio_bytes as f64 / 32.0; // 16 kHz, 16-bit: 32 bytes a millisecond
    }
    let whole = next.is_none_or(|c| c.is_whitespace() || ",.!?;:".contains(c));
    let cut = if whole { heard.as_str() } else { heard.rfind(char::is_whitespace).map_or("", |i| &heard[..i]) };
    cut.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[actix_web::test]
async fn an_interrupted_reply_is_stored_and_remembered_as_the_words_heard_in_the_acknowledged_time() {
    // Real pacing on both sides: the reply is still going out when the listener cuts it short.
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("ELEVENLABS_OUTPUT_FORMAT".into(), "pcm_16000".into());
        env.insert("PARLEY_AUDIO_LEAD_MS".into(), "500".into());
    })
    .await;
    let (tts, openai) = (v.emulators.elevenlabs(), v.emulators.openai());
    tts.set_realtime_pacing(true);
    let reply = "Once upon a time there was a fox who lived by the river. Every morning it went down to drink. \
                 One day it met a heron standing in the reeds.";
    openai.push_reply(Reply::Text(reply.into()));
    let mut c = v.connect("userId=heard").await;
    c.say("Tell me a story.").await;
    c.expect("audioStart").await;
    while c.audio_of_turn(1).len() < 2_300 * 32 {
        c.until("more audio", |e| matches!(e, Event::Audio(_))).await;
    }
    // The listener heard 2.1 s of it, then interrupted.
    c.send_json(json!({"type": "played", "turnId": 1, "ms": 1500})).await;
    c.send_json(json!({"type": "interrupt"})).await;
    c.until("the turn's end", |e| e.kind() == Some("turnEnd")).await;
    c.send_json(json!({"type": "played", "turnId": 1, "ms": 2100})).await;
    c.until("stored", |e| matches!(e, Event::Json(v) if v["type"] == "messageSaved" && v["role"] == "assistant")).await;

    let context = tts.ws_connections()[0].contexts_opened[0].clone();
    let frames: Vec<_> = tts.ws_connections().iter().flat_map(|s| s.sent.clone()).collect();
    let expected = heard_by_alignment(&frames, &context, 2100.0);
    let (_, history) = v.app.get_json(&format!("/api/history?sessionId={}", c.session_id())).await;
    let stored: &Value = &history["messages"][1];
    assert_eq!(stored["content"], expected.as_str(), "{stored}");
    assert!(!expected.is_empty() && reply.starts_with(&expected), "{expected:?}");
    assert_eq!(stored["generatedContent"], reply);
    assert_eq!((stored["heardMs"].as_u64(), stored["heardSource"].as_str()), (Some(2100), Some("client")));
    assert_eq!(stored["outcome"], "interrupted");
    eprintln!(
        "heard 2100 ms: {} characters heard of {} generated: {expected:?}",
        expected.chars().count(),
        reply.chars().count()
    );

    // The next question is asked with only what was heard.
    openai.push_reply(Reply::Text("Fine.".into()));
    c.say("Go on.").await;
    c.until("turn 2 ends", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"] == 2)).await;
    let body = openai.requests().last().unwrap().body.clone();
    let remembered = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "assistant")
        .and_then(|m| m["content"].as_str())
        .unwrap()
        .to_string();
    assert!(remembered.starts_with(&format!("{expected}…")), "{remembered}");
    assert!(!remembered.contains("heron"), "nothing unheard is remembered: {remembered}");
    v.stop().await;
}
