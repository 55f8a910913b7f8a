//! Preemptive generation over real sockets: the LLM is asked at `speech_final`, during the commit window; the
//! early reply becomes the turn when the user has finished, and when the user goes on within the window it is
//! cancelled without a trace (never shown, spoken, stored or counted as a turn).

use parley::emulators::Reply;
use serde_json::Value;

use crate::helpers::TestDb;
use crate::helpers::voice::{Event, spawn_voice_app_with, utterance_pcm};

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

#[actix_web::test]
async fn the_reply_is_asked_for_during_the_commit_window_and_becomes_the_turn() {
    // A wide window, so "asked before the commit" is seen with a second to spare.
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_COMMIT_DELAY_MS".into(), "1500".into());
        env.insert("DEEPGRAM_UTTERANCE_END_MS".into(), "5000".into());
    })
    .await;
    let (dg, openai) = (v.emulators.deepgram(), v.emulators.openai());
    dg.push_script(vec!["what time is it".into()]);
    openai.push_reply(Reply::Text("It is noon. Anything else?".into()));
    let mut c = v.connect("userId=early").await;
    c.stream_audio_in_real_time(&utterance_pcm(1200, 2500)).await;
    let turn = c.expect("userTurn").await;
    assert_eq!(turn["text"], "what time is it");
    assert_eq!(openai.requests().len(), 1, "the LLM was asked before the commit, once: {:?}", c.summary());
    c.until("the turn's end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd")).await;
    let said: Vec<String> = c.events("assistantText").iter().map(|e| e["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(said.join(" "), "It is noon. Anything else?");
    assert!(!c.audio_of_turn(1).is_empty(), "spoken");

    let (_, _, metrics) = v.app.get_text("/metrics").await;
    assert_eq!(counter(&metrics, "parley_preemptive_used_total"), 1.0);
    assert_eq!(counter(&metrics, "parley_preemptive_discarded_total"), 0.0);
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn a_user_who_pauses_within_the_window_and_goes_on_is_answered_once_for_all_their_words() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_COMMIT_DELAY_MS".into(), "1500".into());
        env.insert("DEEPGRAM_UTTERANCE_END_MS".into(), "5000".into());
    })
    .await;
    let (dg, openai) = (v.emulators.deepgram(), v.emulators.openai());
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
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn turned_off_the_llm_is_asked_only_after_the_commit() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_COMMIT_DELAY_MS".into(), "1500".into());
        env.insert("DEEPGRAM_UTTERANCE_END_MS".into(), "5000".into());
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
