//! Recordings have an owner: instances sharing one database (each with its own data directory and spool) store,
//! fail and serve from their spool only the recordings they hold; another instance's still-spooled recording is
//! "not yet" (503 with `Retry-After`), never "no such recording" and never failed for a file it cannot see.

use std::time::Duration;

use parley::db::{InstanceId, NewRecording, Role, Store};
use serde_json::Value;

use crate::both_backends;
use crate::helpers::prometheus::sample;
use crate::helpers::raw_db::forget_recording_instance;
use crate::helpers::voice::{VoiceApp, spawn_voice_app_with, wait_for_live_sessions};
use crate::helpers::{TestApp, TestDb, spawn_app, start_with_env};
use crate::persistence::new_session;
use crate::recordings::wait_for_uploaded;

/// The instance id an app generated into its data directory.
fn instance_of(app: &TestApp) -> String {
    let text = std::fs::read_to_string(app.data_dir.path().join("instance-id")).expect("the instance-id file");
    text.trim().parse::<InstanceId>().expect("a UUID").to_string()
}

/// A typed turn on `v` whose recording cannot be stored (a file where the recordings directory goes), so it
/// waits in the spool; returns the session and the listed recording once an attempt has failed.
async fn recording_stuck_in_the_spool(v: &VoiceApp, user: &str) -> (String, Value) {
    std::fs::write(v.app.data_dir.path().join("audio_recordings"), b"not a directory").unwrap();
    let mut c = v.connect(&format!("userId={user}")).await;
    c.say("Remember this for later.").await;
    c.expect("turnEnd").await;
    let session = c.session_id();
    c.close().await;
    wait_for_live_sessions(&v.app, 0).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = v.app.get_json(&format!("/api/recordings?sessionId={session}")).await;
        let first = list["recordings"][0].clone();
        if first["attempts"].as_i64().unwrap_or(0) >= 1 {
            assert_eq!(first["status"], "pending", "a transient failure keeps it pending: {first}");
            return (session, first);
        }
        assert!(tokio::time::Instant::now() < deadline, "no failed attempt seen: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET `url` on `app`: status, `Retry-After`, body.
async fn fetch(app: &TestApp, url: &str) -> (u16, Option<String>, bytes::Bytes) {
    let mut res = app.client.get(app.url(url)).send().await.expect("request sent");
    let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (res.status().as_u16(), retry, res.body().limit(8 << 20).await.expect("body read"))
}

/// The upload figures of an app's `/metrics`: (pending, uploaded, retried, failed).
async fn upload_figures(app: &TestApp) -> (f64, f64, f64, f64) {
    let (_, _, text) = app.get_text("/metrics").await;
    let outcome = |o: &str| sample(&text, &format!("parley_recording_uploads_total{{outcome=\"{o}\"}}")).unwrap();
    (sample(&text, "parley_recordings_pending").unwrap(), outcome("uploaded"), outcome("retried"), outcome("failed"))
}

#[actix_web::test]
async fn a_second_instance_on_the_database_leaves_the_firsts_waiting_recording_alone_and_says_not_yet() {
    let a = spawn_voice_app_with(TestDb::Postgres, |_| {}).await;
    let (session, listed) = recording_stuck_in_the_spool(&a, "own-ann").await;
    let id = listed["id"].as_i64().unwrap();
    let url = listed["url"].as_str().unwrap().to_string();
    let held = a.app.store.find_recording(id).await.unwrap().unwrap();
    assert_eq!(held.instance_id.as_deref(), Some(instance_of(&a.app).as_str()), "the row names its holder");
    let spool = held.spool_path.clone().expect("waiting in the spool");

    // B: the same database, a data directory of its own. Everything it resumes is queued before it serves.
    let b_dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut b_env = a.app.env.clone();
    b_env.insert("PARLEY_DATA_DIR".into(), b_dir.path().display().to_string());
    let b = start_with_env(b_env, b_dir).await;
    assert_ne!(instance_of(&b), instance_of(&a.app));
    assert_eq!(upload_figures(&b).await, (0.0, 0.0, 0.0, 0.0), "B queued nothing of A's");
    let row = b.store.find_recording(id).await.unwrap().unwrap();
    assert_eq!((row.status, row.spool_path.as_deref()), (held.status, Some(spool.as_str())), "not failed by B");
    assert!(std::path::Path::new(&spool).exists(), "A's spool file is where A left it");

    // The same signed link: A plays it from its spool, B says "not yet" in parley's error style.
    let (status, _, body) = fetch(&a.app, &url).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_ref(), std::fs::read(&spool).unwrap().as_slice());
    let (status, retry_after, body) = fetch(&b, &url).await;
    assert_eq!(status, 503, "{body:?}");
    let retry_after: u64 = retry_after.expect("a Retry-After header").parse().expect("Retry-After in seconds");
    assert!(retry_after >= 1);
    let error: Value = serde_json::from_slice(&body).expect("a JSON error body");
    assert_eq!(error["error"], "recording_not_ready", "{error}");
    assert!(!error["message"].as_str().unwrap().contains('/'), "no server path in {error}");

    // A's storage comes back: A stores it; B never touched it.
    std::fs::remove_file(a.app.data_dir.path().join("audio_recordings")).unwrap();
    let stored = wait_for_uploaded(&a.app, &session, 1).await;
    assert_eq!(fetch(&a.app, stored[0]["url"].as_str().unwrap()).await.0, 200);
    assert_eq!(upload_figures(&b).await, (0.0, 0.0, 0.0, 0.0));
    b.stop().await.unwrap();
    a.stop().await;
}

both_backends! {
    async fn an_instance_resumes_its_own_waiting_recordings_and_those_from_before_instances(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("own-bo", 0);
        app.store.create_session(&s).await.unwrap();
        let mine: InstanceId = instance_of(&app).parse().unwrap();
        let other = InstanceId::generate();
        let insert = |store: Store, instance: InstanceId, n: u32| {
            let session = s.id.clone();
            async move {
                store
                    .insert_recording(&NewRecording {
                        session_id: session.clone(),
                        role: Role::User,
                        turn_id: u64::from(n),
                        object_key: format!("audio_recordings/own-bo/{session}/user_{n}.wav"),
                        content_type: "audio/wav".into(),
                        size_bytes: 44,
                        duration_seconds: Some(0.0),
                        backend: "local",
                        spool_path: format!("/elsewhere/spool/user_{n}.wav"),
                        spool_offset: None,
                        created_at: parley::db::now(),
                        instance_id: instance,
                    })
                    .await
                    .unwrap()
            }
        };
        let own = insert(app.store.clone(), mine.clone(), 1).await;
        let others = insert(app.store.clone(), other.clone(), 2).await;
        let legacy = insert(app.store.clone(), other.clone(), 3).await;
        forget_recording_instance(&app, legacy).await;

        let ids = |rows: Vec<parley::db::RecordingRecord>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(app.store.waiting_recordings(&mine).await.unwrap()), vec![own, legacy]);
        assert_eq!(ids(app.store.waiting_recordings(&other).await.unwrap()), vec![others, legacy]);
        let row = app.store.find_recording(legacy).await.unwrap().unwrap();
        assert_eq!(row.instance_id, None, "rows from before instances name none");
        app.stop().await.unwrap();
    }
}
