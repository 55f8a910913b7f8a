//! Recordings in Google Cloud Storage, for real but without the internet: parley runs as a child process with
//! the unchanged `cloud-storage` crate, reaching a local fake of Google (OAuth + JSON API) through a CONNECT
//! proxy and a throwaway CA (see `helpers::gcs`). A child process, because reqwest reads the proxy
//! variables once per process.

use std::time::Duration;

use parley::emulators::{EmulatorOptions, Emulators, Reply};
use serde_json::Value;

use crate::helpers::gcs::FakeGoogle;
use crate::helpers::process::{self, parley};
use crate::helpers::voice::{Event, VoiceClient, utterance_pcm};

const BUCKET: &str = "parley-recordings";

/// parley with the emulators and the fake Google; returns it with its data directory.
async fn start_parley(emulators: &Emulators, google: &FakeGoogle) -> (process::Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(String, String)> = emulators.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    env.extend(google.env(BUCKET));
    env.push(("PARLEY_COMMIT_DELAY_MS".into(), "100".into()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    (process::start(parley(&pairs, dir.path())), dir)
}

async fn get_json(url: &str) -> Value {
    let mut res = process::client().get(url).send().await.unwrap();
    serde_json::from_slice(&res.body().limit(8 << 20).await.unwrap()).unwrap()
}

/// Polls the listing until `n` recordings are uploaded.
async fn uploaded(server: &process::Running, session: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let body = get_json(&server.url(&format!("/api/recordings?sessionId={session}"))).await;
        let all = body["recordings"].as_array().cloned().unwrap_or_default();
        if all.len() == n && all.iter().all(|r| r["status"] == "uploaded") {
            return all;
        }
        assert!(tokio::time::Instant::now() < deadline, "not all stored: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn two_spoken_turns(emulators: &Emulators, port: u16) -> VoiceClient {
    emulators.deepgram().push_script(vec!["first question".into(), "second question".into()]);
    emulators.openai().push_reply(Reply::Text("The first answer.".into()));
    emulators.openai().push_reply(Reply::Text("The second answer, a little longer.".into()));
    let mut c = VoiceClient::open(port, "userId=gcs-user").await;
    for turn in 1..=2u64 {
        c.stream_audio(&utterance_pcm(1200, 1500)).await;
        c.until("turn end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"] == turn)).await;
    }
    c
}

#[actix_web::test]
async fn recordings_are_stored_in_the_bucket_with_their_metadata_and_play_back() {
    let emulators = Emulators::start(EmulatorOptions::default()).await.unwrap();
    let google = FakeGoogle::start().await;
    let (server, dir) = start_parley(&emulators, &google).await;
    let mut c = two_spoken_turns(&emulators, server.port).await;
    let session = c.session_id();
    c.close().await;

    let listed = uploaded(&server, &session, 4).await;
    let objects = google.gcs.objects();
    assert_eq!(objects.len(), 4, "{:?}", objects.keys());
    for r in &listed {
        assert_eq!(r["backend"], "gcs");
        let key = r["objectKey"].as_str().unwrap();
        assert!(key.starts_with(&format!("audio_recordings/gcs-user/{session}/")), "{key}");
        let object = objects.get(key).unwrap_or_else(|| panic!("{key} not in the bucket"));
        assert_eq!(object.content_type, r["contentType"].as_str().unwrap());
        assert_eq!(object.bytes.len() as u64, r["sizeBytes"].as_u64().unwrap());
        let m = &object.metadata;
        assert_eq!(m["user_id"], "gcs-user");
        assert_eq!(m["session_id"], session);
        assert_eq!(m["role"], r["role"].as_str().unwrap());
        assert_eq!(m["turn"], r["turnId"].to_string());
        assert_eq!(m["content_type"], object.content_type);
        let duration: f64 = m["duration_seconds"].parse().unwrap();
        assert!((duration - r["durationSeconds"].as_f64().unwrap()).abs() < 0.001);
        assert!(m.contains_key("uploaded_at"));
        let measured =
            parley::audio::duration_seconds(Some(&object.content_type), std::io::Cursor::new(object.bytes.clone()))
                .unwrap();
        assert!((measured - duration).abs() < 0.001, "{key}: {measured} vs {duration}");
    }

    // History links play, streamed back from the bucket.
    let history = get_json(&server.url(&format!("/api/history?sessionId={session}"))).await;
    for m in history["messages"].as_array().unwrap() {
        let url = m["audioUrl"].as_str().unwrap_or_else(|| panic!("no link on {m}"));
        let mut res = process::client().get(server.url(url)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let body = res.body().limit(8 << 20).await.unwrap();
        let key = url.split('?').next().unwrap().trim_start_matches('/');
        assert_eq!(body.as_ref(), objects[key].bytes.as_slice());
    }
    // Each recording was cut out of its session's spool file, which goes once all of it is in the bucket.
    crate::helpers::spool_empties(&dir.path().join("spool")).await;
    let tunnels = google.proxy.tunnels();
    assert!(tunnels.iter().any(|t| t == "storage.googleapis.com:443"), "{tunnels:?}");
    assert!(tunnels.iter().any(|t| t == "oauth2.googleapis.com:443"), "{tunnels:?}");
    assert!(google.gcs.tokens_issued() >= 1);
    assert_eq!(google.gcs.unauthorized_requests(), 0);
    let (status, log) = server.stop(libc::SIGTERM);
    assert!(status.success(), "{log}");
    google.gcs.stop().await;
    emulators.stop().await;
}

#[actix_web::test]
async fn a_storage_outage_is_retried_until_the_bucket_is_back() {
    let emulators = Emulators::start(EmulatorOptions::default()).await.unwrap();
    let google = FakeGoogle::start().await;
    google.gcs.fail_next_uploads(3);
    let (server, _dir) = start_parley(&emulators, &google).await;
    let mut c = VoiceClient::open(server.port, "userId=gcs-outage").await;
    emulators.openai().push_reply(Reply::Text("Stored eventually.".into()));
    c.say("Keep this.").await;
    c.expect("turnEnd").await;
    let session = c.session_id();
    c.close().await;

    let listed = uploaded(&server, &session, 1).await;
    assert!(listed[0]["attempts"].as_i64().unwrap() >= 4, "{listed:?}");
    assert_eq!(google.gcs.refused_uploads(), 3);
    assert_eq!(google.gcs.objects().len(), 1);
    let mut res = process::client().get(server.url("/metrics")).send().await.unwrap();
    let metrics = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(metrics.contains("parley_recording_uploads_total{outcome=\"retried\"} 3"), "{metrics}");
    assert!(metrics.contains("parley_recordings_pending 0"), "{metrics}");
    let (status, log) = server.stop(libc::SIGTERM);
    assert!(status.success(), "{log}");
    google.gcs.stop().await;
    emulators.stop().await;
}
