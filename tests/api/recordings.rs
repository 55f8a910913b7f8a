//! Recordings over real sockets: every turn's user and assistant audio ends up in storage with the right
//! duration, linked from the history, playable from its link; storage outages are retried and survive
//! restarts; memory stays flat however long the session.

use std::time::Duration;

use parley::emulators::Reply;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::voice::{
    Event, VoiceApp, VoiceClient, spawn_voice_app_with, utterance_pcm, wait_for_live_sessions,
};
use crate::helpers::{TestApp, TestDb, start_with_env};

/// Polls `/api/recordings` until `n` recordings of the session are uploaded; returns them.
pub async fn wait_for_uploaded(app: &TestApp, session: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = app.get_json(&format!("/api/recordings?sessionId={session}")).await;
        assert_eq!(status, 200, "{body}");
        let all = body["recordings"].as_array().cloned().unwrap_or_default();
        let uploaded = all.iter().filter(|r| r["status"] == "uploaded").count();
        if all.len() == n && uploaded == n {
            return all;
        }
        assert!(tokio::time::Instant::now() < deadline, "recordings never all uploaded: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Two spoken turns; returns the client (its log holds the audio received).
async fn two_spoken_turns(v: &VoiceApp, user: &str) -> (VoiceClient, f64) {
    v.emulators.deepgram().push_script(vec!["first question".into(), "second question".into()]);
    v.emulators.openai().push_reply(Reply::Text("A first short answer.".into()));
    v.emulators.openai().push_reply(Reply::Text("And a second one, a little longer than the first.".into()));
    let mut c = v.connect(&format!("userId={user}")).await;
    let utterance = utterance_pcm(1200, 1500);
    for turn in 1..=2u64 {
        c.stream_audio(&utterance).await;
        c.until("turn end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"] == turn)).await;
    }
    let sent_seconds = 2.0 * utterance.len() as f64 / 32_000.0;
    (c, sent_seconds)
}

/// The audio of a WAV file: the bytes of its `data` chunk.
fn wav_data(wav: &[u8]) -> &[u8] {
    let at = wav.windows(4).position(|w| w == b"data").expect("a data chunk");
    let len = u32::from_le_bytes(wav[at + 4..at + 8].try_into().unwrap()) as usize;
    &wav[at + 8..at + 8 + len]
}

/// A signed link without its signature: links signed by two requests differ in their expiry when a second
/// passes between them, and name the same recording.
fn unsigned(url: &str) -> &str {
    url.split_once('?').map_or(url, |(path, _)| path)
}

fn recording<'a>(all: &'a [Value], role: &str, turn: u64) -> &'a Value {
    all.iter().find(|r| r["role"] == role && r["turnId"] == turn).unwrap_or_else(|| panic!("{role} {turn} in {all:?}"))
}

both_backends! {
    async fn a_two_turn_session_produces_four_recordings_with_the_durations_sent_and_received(db: TestDb) {
        let v = spawn_voice_app_with(db, |env| {
            env.insert("ELEVENLABS_OUTPUT_FORMAT".into(), "pcm_16000".into());
        })
        .await;
        let (mut c, sent_seconds) = two_spoken_turns(&v, "rec-ann").await;
        let session = c.session_id();
        c.close().await;
        let all = wait_for_uploaded(&v.app, &session, 4).await;

        let user: Vec<f64> = (1..=2).map(|t| recording(&all, "user", t)["durationSeconds"].as_f64().unwrap()).collect();
        for d in &user {
            assert!((1.2..=5.4).contains(d), "a user recording holds its utterance: {user:?}");
        }
        // Byte for byte: the user's recordings, in turn order, are the start of what the client sent (audio
        // after the last commit belongs to no turn), and each reply's is exactly the audio the client received.
        let file = |r: &Value| std::fs::read(v.app.data_dir.path().join(r["objectKey"].as_str().unwrap())).unwrap();
        let user_audio: Vec<u8> =
            (1..=2).flat_map(|t| wav_data(&file(recording(&all, "user", t))).to_vec()).collect();
        let sent = utterance_pcm(1200, 1500).repeat(2);
        assert!(!user_audio.is_empty() && sent.starts_with(&user_audio), "the user's audio, unchanged and in order");
        for turn in 1..=2u64 {
            let stored = file(recording(&all, "assistant", turn));
            assert!(wav_data(&stored) == c.audio_of_turn(turn).as_slice(), "turn {turn}: the reply as it was heard");
            assert_eq!(recording(&all, "assistant", turn)["sizeBytes"].as_u64(), Some(stored.len() as u64));
        }
        let total: f64 = user.iter().sum();
        assert!(
            total <= sent_seconds + 1e-6 && total >= sent_seconds - 1.5,
            "{total} s recorded of {sent_seconds} s sent"
        );
        for turn in 1..=2u64 {
            let r = recording(&all, "assistant", turn);
            let received = c.audio_of_turn(turn).len() as f64 / 32_000.0;
            assert!(
                (r["durationSeconds"].as_f64().unwrap() - received).abs() < 1e-6,
                "turn {turn}: {r} vs {received} s received"
            );
            assert_eq!(r["contentType"], "audio/wav");
            assert_eq!(r["backend"], "local");
            assert_eq!(r["userId"], "rec-ann");
            assert_eq!(r["sessionId"], session.as_str());
            assert!(r["sizeBytes"].as_u64().unwrap() > 44);
            assert!(r["uploadedAt"].is_string());
            let key = r["objectKey"].as_str().unwrap();
            assert!(
                key.starts_with(&format!("audio_recordings/rec-ann/{session}/assistant_")) && key.ends_with(".wav"),
                "{key}"
            );
            assert!(v.app.data_dir.path().join(key).exists(), "the file is in the local store");
        }

        // The history links every message to its recording, and the links play.
        let (_, history) = v.app.get_json(&format!("/api/history?sessionId={session}")).await;
        let messages = history["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 4);
        for m in messages {
            let url = m["audioUrl"].as_str().unwrap_or_else(|| panic!("no link on {m}"));
            let mut res = v.app.client.get(v.app.url(url)).send().await.unwrap();
            assert_eq!(res.status().as_u16(), 200, "{url}");
            let wav = res.body().limit(8 << 20).await.unwrap();
            let d = parley::audio::duration_seconds(Some("audio/wav"), std::io::Cursor::new(wav.to_vec())).unwrap();
            let listed = all.iter().find(|r| unsigned(r["url"].as_str().unwrap()) == unsigned(url)).unwrap();
            assert!((d - listed["durationSeconds"].as_f64().unwrap()).abs() < 1e-6);
        }
        let (status, body) = v.app.get_json("/audio_recordings/rec-ann/x/none.wav").await;
        assert_eq!((status, body["error"].as_str()), (403, Some("link_invalid")), "an unsigned link");
        // The session's spool files (one per side, every turn in it) go once it is over and all is stored.
        crate::helpers::spool_empties(&v.app.data_dir.path().join("spool")).await;
        v.stop().await;
    }

    async fn storage_failing_then_recovering_stores_everything_and_a_restart_picks_up_the_rest(db: TestDb) {
        let v = spawn_voice_app_with(db, |_| {}).await;
        // A file where the recordings directory should be: every store attempt fails until it is removed.
        let blocker = v.app.data_dir.path().join("audio_recordings");
        std::fs::write(&blocker, b"not a directory").unwrap();
        let mut c = v.connect("userId=rec-cy").await;
        c.say("Remember this.").await;
        c.expect("turnEnd").await;
        let session = c.session_id();
        c.close().await;
        wait_for_live_sessions(&v.app, 0).await;

        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, _, metrics) = v.app.get_text("/metrics").await;
            let (_, list) = v.app.get_json(&format!("/api/recordings?sessionId={session}")).await;
            let retried = metrics.contains("parley_recording_uploads_total{outcome=\"retried\"}")
                && !metrics.contains("parley_recording_uploads_total{outcome=\"retried\"} 0");
            if retried && list["recordings"][0]["attempts"].as_i64().unwrap_or(0) >= 2 {
                assert_eq!(list["recordings"][0]["status"], "pending", "a transient failure keeps it pending");
                assert!(list["recordings"][0]["lastError"].as_str().unwrap().contains("cannot create"));
                assert!(metrics.contains("parley_recordings_pending 1"), "{metrics}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no retries seen: {list}\n{metrics}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // It plays from the spool while it waits: its own bytes, cut out of the session's spool file.
        let (_, list) = v.app.get_json(&format!("/api/recordings?sessionId={session}")).await;
        let url = list["recordings"][0]["url"].as_str().unwrap().to_string();
        let mut res = v.app.client.get(v.app.url(&url)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let played = res.body().limit(8 << 20).await.unwrap();
        assert_eq!(Some(played.len() as u64), list["recordings"][0]["sizeBytes"].as_u64());
        let seconds = parley::audio::duration_seconds(Some("audio/wav"), std::io::Cursor::new(played.to_vec()));
        assert_eq!(seconds, list["recordings"][0]["durationSeconds"].as_f64());

        // Stop with the recording still waiting; fix storage; start again on the same data: it is stored.
        let crate::helpers::voice::VoiceApp { app, emulators } = v;
        let (env, dir) = (app.env.clone(), app.data_dir.clone());
        app.stop().await.unwrap();
        std::fs::remove_file(&blocker).unwrap();
        let again = start_with_env(env, dir).await;
        let stored = wait_for_uploaded(&again, &session, 1).await;
        assert_eq!(stored[0]["role"], "assistant");
        let (_, history) = again.get_json(&format!("/api/history?sessionId={session}")).await;
        let link = history["messages"][1]["audioUrl"].as_str().unwrap();
        assert_eq!(unsigned(link), unsigned(stored[0]["url"].as_str().unwrap()));
        // The spool file it waited in, kept across the restart, goes once it is stored.
        crate::helpers::spool_empties(&again.data_dir.path().join("spool")).await;
        again.stop().await.unwrap();
        emulators.stop().await;
    }

    async fn recordings_listing_rejects_bad_input(db: TestDb) {
        let v = spawn_voice_app_with(db, |_| {}).await;
        for (path, status, code) in [
            ("/api/recordings", 400, "missing_session_id"),
            ("/api/recordings?sessionId=nope", 400, "invalid_session_id"),
            ("/api/recordings?sessionId=2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b", 404, "session_not_found"),
        ] {
            let (got, body) = v.app.get_json(path).await;
            assert_eq!((got, body["error"].as_str()), (status, Some(code)), "{path}: {body}");
        }
        v.stop().await;
    }
}

#[actix_web::test]
async fn mp3_replies_are_kept_as_mp3_with_their_frame_duration() {
    let v = spawn_voice_app_with(TestDb::Postgres, |_| {}).await;
    let (mut c, _) = two_spoken_turns(&v, "rec-bo").await;
    let session = c.session_id();
    c.close().await;
    let all = wait_for_uploaded(&v.app, &session, 4).await;
    for turn in 1..=2u64 {
        let r = recording(&all, "assistant", turn);
        assert_eq!(r["contentType"], "audio/mpeg");
        assert!(r["objectKey"].as_str().unwrap().ends_with(".mp3"));
        let received = c.audio_of_turn(turn);
        let expected = parley::audio::mp3::probe(std::io::Cursor::new(received)).unwrap().duration_seconds();
        assert!((r["durationSeconds"].as_f64().unwrap() - expected).abs() < 1e-6, "{r} vs {expected}");
    }
    assert_eq!(recording(&all, "user", 1)["contentType"], "audio/wav");
    v.stop().await;
}
