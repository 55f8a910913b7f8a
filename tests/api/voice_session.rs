//! The voice session end to end over real sockets: parley between a WebSocket client and the emulated
//! Deepgram, OpenAI and ElevenLabs, with a real database.

use serde_json::json;

use crate::helpers::TestDb;
use crate::helpers::voice::{Event, spawn_voice_app, utterance_pcm};

#[actix_web::test]
async fn a_typed_turn_gets_captions_audio_and_is_stored() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators
        .openai()
        .push_reply(parley::emulators::Reply::Text("Paris is the capital. It is lovely in spring.".into()));
    let mut c = v.connect("userId=alice").await;
    assert_eq!(c.session["type"], "session");
    assert_eq!(c.session["outputFormat"], "mp3_44100_128");
    assert_eq!(c.session["mimeType"], "audio/mpeg");
    c.say("What is the capital of France?").await;
    let user = c.expect("userTurn").await;
    assert_eq!(user["text"], "What is the capital of France?");
    let end = c.expect("turnEnd").await;
    assert_eq!(end["interrupted"], false);
    let captions: Vec<String> =
        c.events("assistantText").iter().map(|e| e["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(captions, ["Paris is the capital.", "It is lovely in spring."]);
    let audio = c.audio_of_turn(1);
    assert!(audio.len() > 1000, "audio arrived: {} bytes", audio.len());
    let latency = c.expect("latency").await;
    assert!(latency["firstAudioMs"].is_u64(), "{latency}");
    let saved = c
        .until(
            "assistant saved",
            |e| matches!(e, Event::Json(v) if v["type"] == "messageSaved" && v["role"] == "assistant"),
        )
        .await;
    drop(saved);
    let (status, history) = v.app.get_json(&format!("/api/history?sessionId={}", c.session_id())).await;
    assert_eq!(status, 200);
    assert_eq!(history["messages"][0]["content"], "What is the capital of France?");
    assert_eq!(history["messages"][1]["content"], "Paris is the capital. It is lovely in spring.");
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn a_spoken_turn_goes_through_deepgram() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.deepgram().push_script(vec!["book a table for two".into()]);
    let mut c = v.connect("userId=bob").await;
    c.stream_audio(&utterance_pcm(1200, 1500)).await;
    let user = c.expect("userTurn").await;
    assert_eq!(user["text"], "book a table for two");
    assert!(!c.events("transcript").is_empty());
    c.expect("turnEnd").await;
    let request = &v.emulators.openai().requests()[0];
    let messages = request.body["messages"].as_array().unwrap();
    assert_eq!(messages.last().unwrap(), &json!({"role": "user", "content": "book a table for two"}));
    c.close().await;
    v.stop().await;
}
