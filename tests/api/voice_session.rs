//! The voice session end to end over real sockets: parley between a WebSocket client and the emulated
//! Deepgram, OpenAI and ElevenLabs, with a real database.

use std::time::Duration;

use parley::emulators::Reply;
use serde_json::json;

use crate::both_backends;
use crate::helpers::TestDb;
use crate::helpers::voice::{
    Event, VoiceClient, spawn_voice_app, spawn_voice_app_with, tts_sentence_windows, utterance_pcm,
};

/// Waits until the assistant message of the latest turn is stored.
async fn assistant_saved(c: &mut VoiceClient) -> i64 {
    let e = c
        .until(
            "the assistant message to be stored",
            |e| matches!(e, Event::Json(v) if v["type"] == "messageSaved" && v["role"] == "assistant"),
        )
        .await;
    match e {
        Event::Json(v) => v["messageId"].as_i64().unwrap(),
        _ => unreachable!(),
    }
}

both_backends! {
    async fn a_typed_turn_gets_captions_audio_and_is_stored(db: TestDb) {
        let v = spawn_voice_app(db).await;
        v.emulators.openai().push_reply(Reply::Text("Paris is the capital. It is lovely in spring.".into()));
        let mut c = v.connect("userId=alice").await;
        assert_eq!(c.session["type"], "session");
        assert_eq!(c.session["outputFormat"], "mp3_44100_128");
        assert_eq!(c.session["mimeType"], "audio/mpeg");
        assert_eq!(c.session["resumed"], false);
        c.say("What is the capital of France?").await;
        let user = c.expect("userTurn").await;
        assert_eq!(user["text"], "What is the capital of France?");
        let end = c.expect("turnEnd").await;
        assert_eq!(end["interrupted"], false);
        let captions: Vec<String> =
            c.events("assistantText").iter().map(|e| e["text"].as_str().unwrap().into()).collect();
        assert_eq!(captions, ["Paris is the capital.", "It is lovely in spring."]);
        let mp3 = c.audio_of_turn(1);
        let info = parley::audio::mp3::probe(std::io::Cursor::new(&mp3)).expect("the audio is a valid MP3 stream");
        let seconds = info.duration_seconds();
        // ~15 characters a second of speech for the 45 characters spoken.
        assert!((2.0..5.0).contains(&seconds), "{seconds} s of audio");
        let latency = c.expect("latency").await;
        for figure in ["llmFirstTokenMs", "ttsFirstByteMs", "firstAudioMs"] {
            assert!(latency[figure].is_u64(), "{figure}: {latency}");
        }
        assert!(latency["sttMs"].is_null(), "a typed turn skipped speech recognition: {latency}");
        assistant_saved(&mut c).await;
        let (status, history) = v.app.get_json(&format!("/api/history?sessionId={}", c.session_id())).await;
        assert_eq!(status, 200);
        assert_eq!(history["messages"][0]["content"], "What is the capital of France?");
        assert_eq!(history["messages"][1]["content"], "Paris is the capital. It is lovely in spring.");
        assert_eq!(history["messages"][1]["interrupted"], false);
        c.close().await;
        v.stop().await;
    }

    async fn a_session_resumed_by_id_continues_with_its_history(db: TestDb) {
        let v = spawn_voice_app(db).await;
        let mut first = v.connect("userId=dora").await;
        first.say("Remember the number 42.").await;
        first.expect("turnEnd").await;
        assistant_saved(&mut first).await;
        let session_id = first.session_id();
        first.close().await;

        let mut again = v.connect(&format!("userId=dora&sessionId={session_id}")).await;
        assert_eq!(again.session["sessionId"], session_id.as_str());
        assert_eq!(again.session["resumed"], true);
        assert_eq!(again.session["historyMessages"], 2);
        again.say("Which number?").await;
        again.expect("turnEnd").await;
        let last = v.emulators.openai().requests().last().unwrap().body["messages"].clone();
        let texts: Vec<&str> = last.as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
        assert_eq!(texts[1], "Remember the number 42.");
        assert_eq!(texts.last(), Some(&"Which number?"));
        assistant_saved(&mut again).await;
        let (_, history) = v.app.get_json(&format!("/api/history?sessionId={session_id}")).await;
        assert_eq!(history["messages"].as_array().unwrap().len(), 4, "one conversation, four messages");

        let (status, sessions) = v.app.get_json("/api/sessions?userId=dora").await;
        assert_eq!(status, 200);
        assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1, "resuming did not create a second session");
        assert_eq!(sessions["sessions"][0]["messageCount"], 4);
        assert_eq!(sessions["sessions"][0]["firstWords"], "Remember the number 42.", "labelled by its first words");
        again.close().await;
        v.stop().await;
    }
}

#[actix_web::test]
async fn a_spoken_turn_goes_from_pcm_to_transcript_to_decodable_audio() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("ELEVENLABS_OUTPUT_FORMAT".into(), "pcm_16000".into());
    })
    .await;
    v.emulators.deepgram().push_script(vec!["book a table for two".into()]);
    let mut c = v.connect("userId=bob").await;
    assert_eq!(c.session["mimeType"], "audio/pcm;rate=16000");
    c.stream_audio(&utterance_pcm(1200, 1500)).await;
    let user = c.expect("userTurn").await;
    assert_eq!(user["text"], "book a table for two");
    let transcripts = c.events("transcript");
    assert!(transcripts.iter().any(|t| t["isFinal"] == false), "interim transcripts: {transcripts:?}");
    assert_eq!(transcripts.last().unwrap()["text"], "book a table for two");
    c.expect("turnEnd").await;
    let reply = "You said: \u{201c}book a table for two\u{201d}. That is worth talking about. Tell me more.";
    let captions: Vec<String> = c.events("assistantText").iter().map(|e| e["text"].as_str().unwrap().into()).collect();
    assert_eq!(captions.join(" "), reply);
    let pcm = c.audio_of_turn(1);
    assert_eq!(pcm.len() % 2, 0, "whole 16-bit samples");
    let seconds = pcm.len() as f64 / 32_000.0;
    let expected = reply.chars().count() as f64 / 15.0;
    assert!((seconds - expected).abs() < expected * 0.35, "{seconds} s of audio for {expected} s of text");
    let request = &v.emulators.openai().requests()[0];
    let messages = request.body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages.last().unwrap(), &json!({"role": "user", "content": "book a table for two"}));
    let dg = &v.emulators.deepgram().connections()[0];
    assert!(dg.audio_bytes > 80_000, "audio reached Deepgram: {}", dg.audio_bytes);
    assert_eq!(dg.options.sample_rate, Some(16000));
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn three_turns_carry_the_whole_conversation_to_the_llm() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    let mut c = v.connect("userId=carol").await;
    for (i, q) in ["My name is Carol.", "I live in Lyon.", "What do you know about me?"].iter().enumerate() {
        c.say(q).await;
        c.until("turn end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"] == (i as u64 + 1)))
            .await;
    }
    let requests = v.emulators.openai().requests();
    assert_eq!(requests.len(), 3);
    let roles_and_text: Vec<(String, String)> = requests[2].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap().to_string(), m["content"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(roles_and_text.len(), 6, "system + 2 exchanges + the new question: {roles_and_text:?}");
    assert_eq!(roles_and_text[0].0, "system");
    assert_eq!(roles_and_text[1], ("user".into(), "My name is Carol.".into()));
    assert_eq!(roles_and_text[2].0, "assistant");
    assert!(roles_and_text[2].1.contains("My name is Carol."), "the reply is remembered: {}", roles_and_text[2].1);
    assert_eq!(roles_and_text[3], ("user".into(), "I live in Lyon.".into()));
    assert_eq!(roles_and_text[5], ("user".into(), "What do you know about me?".into()));
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn close_microphone_commits_on_the_finalize_reply() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.deepgram().push_script(vec!["turn on the lights".into()]);
    let mut c = v.connect("userId=erin").await;
    // Speech with no trailing silence: nothing would end the utterance but the client closing its microphone.
    c.stream_audio(&utterance_pcm(1500, 0)).await;
    c.until("an interim transcript", |e| matches!(e, Event::Json(v) if v["type"] == "transcript")).await;
    c.send_json(json!({"type": "closeMicrophone"})).await;
    let user = c.expect("userTurn").await;
    assert_eq!(user["text"], "turn on the lights");
    let dg = &v.emulators.deepgram().connections()[0];
    assert!(dg.texts_received.iter().any(|t| t.text.contains("Finalize")), "{:?}", dg.texts_received);
    assert!(dg.sent.iter().any(|s| s.contains("\"from_finalize\":true")), "Deepgram answered the Finalize");
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn close_microphone_without_a_finalize_reply_still_commits_what_was_heard() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_FINALIZE_TIMEOUT_MS".into(), "300".into());
    })
    .await;
    v.emulators.deepgram().set_finalize_reply(false);
    v.emulators.deepgram().push_script(vec!["what time is it".into()]);
    let mut c = v.connect("userId=fay").await;
    c.stream_audio(&utterance_pcm(1500, 0)).await;
    c.until("an interim transcript", |e| matches!(e, Event::Json(v) if v["type"] == "transcript" && v["text"] != ""))
        .await;
    c.send_json(json!({"type": "closeMicrophone"})).await;
    let user = c.expect("userTurn").await;
    assert!(!user["text"].as_str().unwrap().is_empty(), "the interim words were kept: {user}");
    let dg = &v.emulators.deepgram().connections()[0];
    assert!(!dg.sent.iter().any(|s| s.contains("\"from_finalize\":true")), "no Finalize reply was sent");
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn http_tts_mode_sends_each_sentence_with_its_neighbours() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("ELEVENLABS_USE_WEBSOCKET".into(), "false".into());
    })
    .await;
    v.emulators.openai().push_reply(Reply::Text("First one here. Then the second. And the third.".into()));
    let mut c = v.connect("userId=gus").await;
    c.say("Tell me three things.").await;
    c.expect("turnEnd").await;
    assert!(!c.audio_of_turn(1).is_empty());
    let requests = v.emulators.elevenlabs().http_requests();
    assert_eq!(
        tts_sentence_windows(&v.emulators.elevenlabs()),
        vec![
            (None, Some("First one here.".into()), Some("Then the second.".into())),
            (Some("First one here.".into()), Some("Then the second.".into()), Some("And the third.".into())),
            (Some("Then the second.".into()), Some("And the third.".into()), None),
        ]
    );
    assert!(requests.iter().all(|r| r.completed && r.status == 200));
    assert!(v.emulators.elevenlabs().ws_connections().is_empty(), "no socket in HTTP mode");
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn the_tts_socket_gets_one_context_per_turn_closed_at_the_end() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    let mut c = v.connect("userId=hal").await;
    for turn in 1..=2u64 {
        c.say("Hello there.").await;
        c.until("turn end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"] == turn)).await;
    }
    let sockets = v.emulators.elevenlabs().ws_connections();
    assert_eq!(sockets.len(), 1, "one socket for the session");
    let s = &sockets[0];
    assert!(s.multi && s.key_in_header);
    assert_eq!(s.contexts_opened.len(), 2);
    assert_eq!(s.contexts_closed, s.contexts_opened, "every context closed eagerly");
    c.close().await;
    v.stop().await;
    let _ = Duration::ZERO;
}

#[actix_web::test]
async fn a_long_silence_goes_to_deepgram_in_fewer_writes_and_speech_after_it_is_not_held_back() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    let dg = v.emulators.deepgram();
    dg.push_script(vec!["first words".into(), "second words".into()]);
    for text in ["One.", "Two."] {
        v.emulators.openai().push_reply(Reply::Text(text.into()));
    }
    let mut c = v.connect("userId=hush").await;
    // Open the Deepgram connection first: audio that arrives while it opens is replayed frame by frame.
    c.stream_audio(&utterance_pcm(0, 200)).await;
    assert!(dg.wait_until(|c| c.first().is_some_and(|c| c.audio_bytes == 6400), Duration::from_secs(10)).await);
    // 1 s of speech, then 4 s of digital silence: the silence past Deepgram's utterance-end window (1 s) plus a
    // second is held and written 100 ms at a time.
    c.stream_audio(&utterance_pcm(1000, 4000)).await;
    assert_eq!(c.expect("userTurn").await["text"], "first words");
    // Speech after the held silence: its first frame takes what is held with it, and it is heard at once.
    c.stream_audio(&utterance_pcm(1000, 2580)).await;
    assert_eq!(c.expect("userTurn").await["text"], "second words");
    c.until("turn 2 ends", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"] == 2)).await;
    c.close().await;
    assert!(dg.wait_until(|c| !c[0].open, Duration::from_secs(10)).await, "{:?}", dg.connections());

    let conn = &dg.connections()[0];
    let frames = (200 + 1000 + 4000 + 1000 + 2580) / 20;
    assert_eq!(conn.audio_bytes, frames * 640, "every byte of audio, in order");
    // Sent one by one: the first 10, then 50 speech and ~100 early-silence frames, twice; the rest in blocks of
    // five (~25 blocks, and what was held when speech or the end came).
    assert!((330..=340).contains(&conn.audio_frames), "{} writes for {frames} frames", conn.audio_frames);
    // What was still held when the session ended went out before CloseStream.
    let close = conn.texts_received.iter().find(|t| t.text.contains("CloseStream")).expect("CloseStream");
    assert!((close.audio_time - 8.78).abs() < 1e-6, "CloseStream after all the audio: {}", close.audio_time);
    v.stop().await;
}
