//! Sessions beginning and ending: a client that vanishes mid-turn leaves nothing behind (every upstream
//! socket closed, the registry back to zero, the partial reply stored), shutdown drains live sessions, and
//! many sessions at once never see each other's conversations.

use std::time::Duration;

use parley::emulators::Reply;

use crate::both_backends;
use crate::helpers::TestDb;
use crate::helpers::voice::{Event, spawn_voice_app, utterance_pcm, wait_for_live_sessions};

both_backends! {
    async fn a_client_vanishing_mid_turn_closes_every_upstream_and_keeps_the_history(db: TestDb) {
        let v = spawn_voice_app(db).await;
        let (dg, openai, tts) = (v.emulators.deepgram(), v.emulators.openai(), v.emulators.elevenlabs());
        let count = "One. Two. Three. Four. Five. Six. Seven. Eight. Nine. Ten. Eleven. Twelve.";
        openai.push_reply(Reply::Text(count.into()));
        openai.set_timing(Duration::from_millis(10), Duration::from_millis(150));
        tts.set_realtime_pacing(true);
        let mut c = v.connect("userId=mo").await;
        c.stream_audio(&utterance_pcm(0, 300)).await;
        c.say("Count to twelve.").await;
        c.expect("audioStart").await;
        let session_id = c.session_id();
        drop(c); // no close frame: the TCP connection just goes away

        wait_for_live_sessions(&v.app, 0).await;
        assert!(openai.wait_until(|r| r[0].client_went_away, Duration::from_secs(10)).await, "{:?}", openai.requests());
        assert!(dg.wait_until(|c| c.iter().all(|c| !c.open), Duration::from_secs(10)).await, "{:?}", dg.connections());
        assert!(
            dg.connections()[0].texts_received.iter().any(|t| t.text.contains("CloseStream")),
            "the Deepgram stream was closed properly"
        );
        assert!(tts.wait_until(|s| s.sockets.iter().all(|s| !s.open), Duration::from_secs(10)).await);

        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let reply = loop {
            let (_, history) = v.app.get_json(&format!("/api/history?sessionId={session_id}")).await;
            if let Some(m) = history["messages"].as_array().and_then(|m| m.get(1)).cloned() {
                break m;
            }
            assert!(tokio::time::Instant::now() < deadline, "the partial reply was never stored: {history}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(reply["role"], "assistant");
        assert_eq!(reply["interrupted"], true);
        // Nobody acknowledged anything: what was heard is the server's estimate from the audio sent (paced in
        // real time from its first byte), and everything generated is kept beside it.
        assert_eq!(reply["heardSource"], "estimate", "{reply}");
        let heard = reply["content"].as_str().unwrap();
        let generated = reply["generatedContent"].as_str().unwrap_or(heard);
        assert!(generated.starts_with("One.") && generated.starts_with(heard), "{reply}");
        // The part of the reply that was sent before the client vanished is recorded too.
        let stored = crate::recordings::wait_for_uploaded(&v.app, &session_id, 1).await;
        assert_eq!(stored[0]["role"], "assistant");
        assert!(stored[0]["durationSeconds"].as_f64().unwrap() > 0.0);
        v.stop().await;
    }
}

#[actix_web::test]
async fn shutdown_lets_the_live_turn_finish_then_closes_with_going_away() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.openai().set_timing(Duration::from_millis(10), Duration::from_millis(20));
    let mut c = v.connect("userId=ned").await;
    c.say("Say something before you go.").await;
    c.expect("assistantText").await;
    let crate::helpers::voice::VoiceApp { app, emulators } = v;
    let (env, data_dir) = (app.env.clone(), app.data_dir.clone());
    let stopping = actix_web::rt::spawn(app.stop());
    let status = c.expect("status").await;
    assert!(status["message"].as_str().unwrap().contains("restarting"), "{status}");
    let end = c.expect("turnEnd").await;
    assert_eq!(end["interrupted"], false, "the turn in progress finished");
    let closed = c.until("the close", |e| matches!(e, Event::Closed(_))).await;
    assert!(matches!(closed, Event::Closed(Some(1001))), "{closed:?}");
    stopping.await.unwrap().expect("clean exit");
    // Start again on the same database: both messages were flushed before the exit.
    let again = crate::helpers::start_with_env(env, data_dir).await;
    let session = c.session_id().parse().unwrap();
    let stored = again.store.session_messages(&session).await.unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    again.stop().await.unwrap();
    emulators.stop().await;
}

#[actix_web::test]
async fn fifty_concurrent_sessions_each_get_their_own_answer() {
    let v = spawn_voice_app(TestDb::Postgres).await;
    let sessions = (0..50).map(|i| {
        let v = &v;
        async move {
            let mut c = v.connect(&format!("userId=caller-{i}")).await;
            let question = format!("I am caller number {i}.");
            c.say(&question).await;
            let user = c.expect("userTurn").await;
            c.expect("turnEnd").await;
            c.until(
                "stored",
                |e| matches!(e, Event::Json(v) if v["type"] == "messageSaved" && v["role"] == "assistant"),
            )
            .await;
            let captions: Vec<String> =
                c.events("assistantText").iter().map(|e| e["text"].as_str().unwrap().to_string()).collect();
            let audio = c.audio_of_turn(1).len();
            c.close().await;
            (i, question, user["text"].as_str().unwrap().to_string(), captions.join(" "), audio, c.session_id())
        }
    });
    let results = futures_util::future::join_all(sessions).await;
    let mut ids = std::collections::HashSet::new();
    for (i, question, heard, reply, audio, session_id) in results {
        assert_eq!(heard, question);
        assert!(reply.contains(&format!("caller number {i}.")), "caller {i} got {reply:?}");
        for other in [i + 1, i + 10] {
            assert!(!reply.contains(&format!("number {other}.")), "caller {i} got caller {other}'s answer");
        }
        assert!(audio > 0, "caller {i} got audio");
        let (_, history) = v.app.get_json(&format!("/api/history?sessionId={session_id}&userId=caller-{i}")).await;
        assert_eq!(history["messages"][0]["content"], question.as_str());
        assert!(ids.insert(session_id));
    }
    wait_for_live_sessions(&v.app, 0).await;
    let (_, m) = v.app.get_json("/api/metrics").await;
    assert_eq!(m["total_connections"], 50);
    v.stop().await;
}
