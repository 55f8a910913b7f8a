//! Preemptive generation over real sockets: the LLM is asked at `speech_final`, during the commit window, and
//! the early reply's first pieces are synthesized, their audio held; the early reply becomes the turn when the
//! user has finished (its held audio goes out at once), and when the user goes on within the window it is
//! cancelled without a trace (never shown, played, recorded, stored or counted as a turn).

use std::collections::HashMap;
use std::time::Duration;

use parley::emulators::{ElevenLabsControl, Reply};
use serde_json::Value;

use crate::helpers::TestDb;
use crate::helpers::voice::{Event, VoiceClient, spawn_voice_app_with, tts_sentence_windows, utterance_pcm};

/// The value of a counter in `/metrics` text.
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

fn last_user_message(body: &Value) -> String {
    let messages = body["messages"].as_array().unwrap();
    messages.iter().rev().find(|m| m["role"] == "user").unwrap()["content"].as_str().unwrap().to_string()
}

/// A commit window of 1.5 s (and no `UtteranceEnd` inside it), so "before the commit" has a second to spare.
fn wide_window(env: &mut HashMap<String, String>) {
    env.insert("PARLEY_COMMIT_DELAY_MS".into(), "1500".into());
    env.insert("DEEPGRAM_UTTERANCE_END_MS".into(), "5000".into());
}

/// The turn's `latency` event, with its `sttMs` (end of speech → commit) and `firstAudioMs` (→ first audio).
async fn commit_and_first_audio(c: &mut VoiceClient) -> (Value, u64, u64) {
    let Event::Json(latency) = c.until("latency", |e| matches!(e, Event::Json(v) if v["type"] == "latency")).await
    else {
        unreachable!()
    };
    let (stt, first_audio) = (latency["sttMs"].as_u64().unwrap(), latency["firstAudioMs"].as_u64().unwrap());
    (latency, stt, first_audio)
}

/// The texts ElevenLabs received, per context, in order (keepalives and flushes without text left out).
fn tts_texts(tts: &ElevenLabsControl) -> Vec<(String, String)> {
    tts.ws_connections()
        .iter()
        .flat_map(|s| s.received.clone())
        .filter_map(|m| {
            let text = m["text"].as_str()?.trim().to_string();
            (!text.is_empty()).then(|| (m["context_id"].as_str().unwrap_or_default().to_string(), text))
        })
        .collect()
}

/// Audio bytes ElevenLabs sent for `context`.
fn tts_audio_bytes(tts: &ElevenLabsControl, context: &str) -> usize {
    tts.ws_connections()
        .iter()
        .flat_map(|s| s.sent.clone())
        .filter(|f| f.context_id.as_deref() == Some(context))
        .map(|f| f.audio_bytes)
        .sum()
}

#[actix_web::test]
async fn the_reply_is_asked_for_and_spoken_during_the_commit_window_and_its_audio_goes_out_at_the_commit() {
    // A wide window, so "asked before the commit" is seen with a second to spare.
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        wide_window(env);
    })
    .await;
    let (dg, openai, tts) = (v.emulators.deepgram(), v.emulators.openai(), v.emulators.elevenlabs());
    // A slow voice: spoken after the commit, its first audio would come 800 ms after it.
    tts.set_time_to_first_byte(Duration::from_millis(800));
    dg.push_script(vec!["what time is it".into()]);
    openai.push_reply(Reply::Text("It is noon. Anything else?".into()));
    let mut c = v.connect("userId=early").await;
    c.stream_audio_in_real_time(&utterance_pcm(1200, 2500)).await;
    let turn = c.expect("userTurn").await;
    assert_eq!(turn["text"], "what time is it");
    assert_eq!(openai.requests().len(), 1, "the LLM was asked before the commit, once: {:?}", c.summary());
    // ElevenLabs had the reply's two pieces before the turn was committed, in one context.
    let early = tts_texts(&tts);
    let texts: Vec<&str> = early.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["It is noon.", "Anything else?"], "spoken early: {early:?}");
    let context = early[0].0.clone();
    assert!(early.iter().all(|(c, _)| *c == context), "{early:?}");
    assert!(c.events("audioStart").is_empty(), "no audio before the turn");

    c.until("the turn's end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd")).await;
    let said: Vec<String> = c.events("assistantText").iter().map(|e| e["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(said.join(" "), "It is noon. Anything else?");
    // All of the context's audio reached the listener as turn 1, and nothing was sent to ElevenLabs twice.
    assert_eq!(tts_texts(&tts).len(), 2, "{:?}", tts_texts(&tts));
    assert_eq!(c.audio_of_turn(1).len(), tts_audio_bytes(&tts, &context), "{:?}", c.summary());
    assert!(!c.audio_of_turn(1).is_empty(), "spoken");
    // The held audio went out at the commit, not a first byte's wait after it.
    let (latency, stt, first_audio) = commit_and_first_audio(&mut c).await;
    assert!(stt >= 1500, "{latency}");
    assert!(
        first_audio < stt + 500,
        "first audio {first_audio} ms after the end of speech, committed at {stt}: {latency}"
    );

    let (_, _, metrics) = v.app.get_text("/metrics").await;
    assert_eq!(counter(&metrics, "parley_preemptive_used_total"), 1.0);
    assert_eq!(counter(&metrics, "parley_preemptive_discarded_total"), 0.0);
    assert_eq!(counter(&metrics, "parley_preemptive_discarded_tts_characters_total"), 0.0);
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn with_early_speech_off_only_the_llm_starts_before_the_commit() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        wide_window(env);
        env.insert("PARLEY_PREEMPTIVE_TTS".into(), "false".into());
    })
    .await;
    let (dg, openai, tts) = (v.emulators.deepgram(), v.emulators.openai(), v.emulators.elevenlabs());
    tts.set_time_to_first_byte(Duration::from_millis(800));
    dg.push_script(vec!["what time is it".into()]);
    openai.push_reply(Reply::Text("It is noon. Anything else?".into()));
    let mut c = v.connect("userId=later").await;
    c.stream_audio_in_real_time(&utterance_pcm(1200, 2500)).await;
    c.expect("userTurn").await;
    assert_eq!(openai.requests().len(), 1, "the LLM was asked early");
    c.until("the turn's end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd")).await;
    assert!(!c.audio_of_turn(1).is_empty(), "spoken after the commit");
    // The voice was asked only at the commit: its first audio came a first byte's wait after it.
    let (latency, stt, first_audio) = commit_and_first_audio(&mut c).await;
    assert!(first_audio >= stt + 800, "{latency}");
    assert_eq!(tts_texts(&tts).len(), 2);
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn a_user_who_pauses_within_the_window_and_goes_on_is_answered_once_for_all_their_words() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        wide_window(env);
    })
    .await;
    let (dg, openai, tts) = (v.emulators.deepgram(), v.emulators.openai(), v.emulators.elevenlabs());
    dg.push_script(vec!["book a table".into(), "for two".into()]);
    openai.push_reply(Reply::Text("EARLY reply nobody may hear. ".repeat(3)));
    openai.push_reply(Reply::Text("Booked for two.".into()));
    let mut c = v.connect("userId=pauser").await;
    // Speech, a pause longer than Deepgram's endpointing (speech_final) but shorter than the window, speech.
    let mut audio = utterance_pcm(1000, 800);
    audio.extend(utterance_pcm(1000, 2500));
    c.stream_audio_in_real_time(&audio).await;
    let turn = c.expect("userTurn").await;
    assert_eq!(turn["text"], "book a table for two", "one turn, all the words: {:?}", c.summary());
    c.until("the turn's end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd")).await;
    c.until(
        "the reply saved",
        |e| matches!(e, Event::Json(v) if v["type"] == "messageSaved" && v["role"] == "assistant"),
    )
    .await;

    let requests = openai.requests();
    assert_eq!(requests.len(), 2, "asked early at the pause, then again for all the words: {:?}", c.summary());
    assert_eq!(last_user_message(&requests[0].body), "book a table");
    assert_eq!(last_user_message(&requests[1].body), "book a table for two");
    // The early reply reached no one: not the client, not the store.
    assert_eq!(c.events("userTurn").len(), 1);
    for e in c.events("assistantText") {
        assert!(!e["text"].as_str().unwrap().contains("EARLY"), "{e}");
    }
    let (_, history) = v.app.get_json(&format!("/api/history?sessionId={}", c.session_id())).await;
    let stored: Vec<(String, String)> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap().to_string(), m["content"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        stored,
        [("user".to_string(), "book a table for two".to_string()), ("assistant".into(), "Booked for two.".into())]
    );
    let (_, _, metrics) = v.app.get_text("/metrics").await;
    assert_eq!(counter(&metrics, "parley_preemptive_discarded_total"), 1.0);
    assert_eq!(counter(&metrics, "parley_preemptive_used_total"), 1.0);
    assert!(metrics.contains(r#"parley_turns_total{outcome="completed"} 1"#), "one turn counted");
    // The early reply's first two sentences were synthesized, in a context of their own that was then closed;
    // none of its audio reached the listener or the recordings.
    let texts = tts_texts(&tts);
    let early: Vec<&(String, String)> = texts.iter().filter(|(_, t)| t.contains("EARLY")).collect();
    assert_eq!(early.len(), 2, "{texts:?}");
    let early_context = early[0].0.clone();
    assert!(
        tts.ws_connections().iter().any(|s| s.contexts_closed.contains(&early_context)),
        "the early context is closed"
    );
    let spoken: Vec<&(String, String)> = texts.iter().filter(|(c, _)| *c != early_context).collect();
    assert_eq!(spoken.len(), 1, "{texts:?}");
    assert_eq!(spoken[0].1, "Booked for two.");
    assert_eq!(
        counter(&metrics, "parley_preemptive_discarded_tts_characters_total"),
        2.0 * "EARLY reply nobody may hear.".len() as f64
    );
    let heard = c.audio_of_turn(1).len();
    assert_eq!(heard, tts_audio_bytes(&tts, &spoken[0].0), "only the turn's own audio was played");
    let audio_frames: usize = c.summary().iter().filter(|e| e.starts_with("<audio")).count();
    assert!(audio_frames > 0 && c.events("audioStart").len() == 1, "{:?}", c.summary());
    let session = c.session_id();
    let recordings = crate::recordings::wait_for_uploaded(&v.app, &session, 2).await;
    let assistant: Vec<&Value> = recordings.iter().filter(|r| r["role"] == "assistant").collect();
    assert_eq!(assistant.len(), 1, "{recordings:?}");
    assert_eq!(
        assistant[0]["sizeBytes"].as_u64(),
        Some(heard as u64),
        "the recording is what was played: {recordings:?}"
    );
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn turned_off_the_llm_is_asked_only_after_the_commit() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        wide_window(env);
        env.insert("PARLEY_PREEMPTIVE".into(), "false".into());
    })
    .await;
    let (dg, openai) = (v.emulators.deepgram(), v.emulators.openai());
    dg.push_script(vec!["what time is it".into()]);
    let mut c = v.connect("userId=patient").await;
    c.stream_audio_in_real_time(&utterance_pcm(1200, 400)).await;
    // The commit comes 1.5 s after speech_final; until then the LLM has not been asked.
    c.until(
        "the final transcript",
        |e| matches!(e, Event::Json(v) if v["type"] == "transcript" && v["isFinal"] == true),
    )
    .await;
    assert!(openai.requests().is_empty(), "asked before the commit");
    c.stream_audio_in_real_time(&utterance_pcm(0, 2100)).await;
    c.expect("userTurn").await;
    c.until("the turn's end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd")).await;
    assert_eq!(openai.requests().len(), 1);
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn over_http_the_first_sentence_is_requested_during_the_window_and_never_twice() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        wide_window(env);
        env.insert("ELEVENLABS_USE_WEBSOCKET".into(), "false".into());
    })
    .await;
    let (dg, openai, tts) = (v.emulators.deepgram(), v.emulators.openai(), v.emulators.elevenlabs());
    tts.set_time_to_first_byte(Duration::from_millis(800));
    dg.push_script(vec!["tell me three things".into()]);
    openai.push_reply(Reply::Text("First one here. Then the second. And the third.".into()));
    let mut c = v.connect("userId=early-http").await;
    c.stream_audio_in_real_time(&utterance_pcm(1200, 2500)).await;
    c.expect("userTurn").await;
    // The first sentence (sent with the next as context) was requested and answered during the window: at
    // the commit its audio (800 ms to the first byte) is complete.
    let first = tts.http_requests()[0].clone();
    assert_eq!(first.text.as_deref(), Some("First one here."));
    assert!(first.completed && first.bytes_sent > 0, "{first:?}");
    c.until("the turn's end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd")).await;
    let requests = tts.http_requests();
    assert_eq!(
        tts_sentence_windows(&tts),
        vec![
            (None, Some("First one here.".into()), Some("Then the second.".into())),
            (Some("First one here.".into()), Some("Then the second.".into()), Some("And the third.".into())),
            (Some("Then the second.".into()), Some("And the third.".into()), None),
        ],
        "each sentence once, with its neighbours"
    );
    assert!(requests.iter().all(|r| r.completed && r.status == 200));
    assert!(!c.audio_of_turn(1).is_empty());
    let (latency, stt, first_audio) = commit_and_first_audio(&mut c).await;
    assert!(first_audio < stt + 500, "the first sentence's audio was waiting at the commit: {latency}");
    c.close().await;
    v.stop().await;
}
