//! Orphan recordings after kill -9: a parley child process is killed mid-utterance (its recording open in the
//! session's spool file, the WAV header never patched, no row) three times on the same data directory. After each restart the
//! orphans are registered (the cut utterance, stored and playable) or quarantined (a file of a session that
//! never reached the database) and counted in `parley_recordings_orphaned_total`, and the spool is empty again:
//! it does not grow from one kill to the next.

use std::path::Path;
use std::time::Duration;

use parley::emulators::{EmulatorOptions, Emulators, Reply};
use parley::recording::spool;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::process::{self, parley};
use crate::helpers::prometheus::sample;
use crate::helpers::voice::{Event, VoiceClient, utterance_pcm};
use crate::helpers::{TEST_KEY, TestDb};

/// How long a test waits for a child to do something it is expected to do.
const PATIENCE: Duration = Duration::from_secs(60);

async fn get(server: &process::Running, path: &str) -> (u16, bytes::Bytes) {
    let mut res = process::client().get(server.url(path)).send().await.unwrap();
    (res.status().as_u16(), res.body().limit(8 << 20).await.unwrap())
}

/// Polls the listing until the session has `n` recordings, all stored.
async fn stored(server: &process::Running, session: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, body) = get(server, &format!("/api/recordings?sessionId={session}")).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        let all = body["recordings"].as_array().cloned().unwrap_or_default();
        if all.len() == n && all.iter().all(|r| r["status"] == "uploaded") {
            return all;
        }
        assert!(tokio::time::Instant::now() < deadline, "not {n} stored: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The files directly in `dir` (none when it does not exist), with their sizes.
fn files(dir: &Path) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
        .collect()
}

/// Waits until a lane in `dir` holds an open recording of at least `bytes` (it has reached the disk).
async fn open_recording_on_disk(dir: &Path, bytes: u64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let open = |(name, len): &(String, u64)| {
        name.ends_with(spool::LANE)
            && spool::read_index(&dir.join(name)).is_ok_and(|index| {
                index.last().is_some_and(|e| e.state == spool::EntryState::Open && len - e.offset >= bytes)
            })
    };
    while !files(dir).iter().any(open) {
        assert!(tokio::time::Instant::now() < deadline, "no open recording in the spool: {:?}", files(dir));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A spool file as a session whose row never reached the database would leave.
fn plant_stranger(spool: &Path) -> String {
    let name =
        format!("kill-9+{}+user_{}_20261128T000000000Z.wav", uuid::Uuid::new_v4(), uuid::Uuid::new_v4().simple());
    std::fs::write(spool.join(&name), b"RIFF....WAVE").unwrap();
    name
}

both_backends! {
    async fn orphans_of_three_kill_9_rounds_are_registered_or_quarantined_and_the_spool_does_not_grow(db: TestDb) {
        let emulators = Emulators::start(EmulatorOptions::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = emulators.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        env.push(("PARLEY_COMMIT_DELAY_MS".into(), "100".into()));
        env.push(("PARLEY_AUDIO_LEAD_MS".into(), "60000".into()));
        if db == TestDb::Postgres {
            env.push(("PG_DB_URL".into(), crate::helpers::postgres::fresh_database().await));
            env.push(("PARLEY_ENCRYPTION_KEY".into(), TEST_KEY.into()));
        }
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (spool, quarantine) = (dir.path().join("spool"), dir.path().join("spool-quarantine"));
        let mut server = process::start(parley(&pairs, dir.path()));
        let (mut registered, mut quarantined) = (0.0, 0.0);
        for round in 1..=3 {
            // One whole turn, stored; then speech that never ends, its recording open when the process dies.
            emulators.deepgram().push_script(vec![format!("question number {round}")]);
            emulators.openai().push_reply(Reply::Text(format!("Answer number {round}.")));
            let mut c = VoiceClient::open(server.port, "userId=kill-9").await;
            let session = c.session_id();
            c.stream_audio(&utterance_pcm(1200, 1500)).await;
            c.until("turn end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"] == 1)).await;
            for role in ["user", "assistant"] {
                let saved = |e: &Event| {
                    matches!(e, Event::Json(v) if v["type"] == "messageSaved" && v["turnId"] == 1 && v["role"] == role)
                };
                if !c.log.iter().any(saved) {
                    c.until("messageSaved", saved).await;
                }
            }
            stored(&server, &session, 2).await;
            c.stream_audio(&utterance_pcm(3000, 0)).await;
            open_recording_on_disk(&spool, 44 + 32 * 1024).await;
            let stranger = plant_stranger(&spool);
            let left = files(&spool);
            let (status, _) = server.stop(libc::SIGKILL);
            assert!(!status.success());
            drop(c);

            server = process::start(parley(&pairs, dir.path()));
            let (_, metrics) = get(&server, "/metrics").await;
            let metrics = String::from_utf8(metrics.to_vec()).unwrap();
            let count = |o: &str| sample(&metrics, &format!("parley_recordings_orphaned_total{{outcome=\"{o}\"}}"));
            assert_eq!((count("registered"), count("quarantined")), (Some(1.0), Some(1.0)), "{left:?}");
            assert_eq!(count("removed"), Some(0.0));
            registered += count("registered").unwrap();
            quarantined += count("quarantined").unwrap();

            // Both messages confirmed (`messageSaved`) before the kill are in the history, in order, with their text.
            let (status, history) = get(&server, &format!("/api/history?sessionId={session}")).await;
            assert_eq!(status, 200);
            let history: Value = serde_json::from_slice(&history).unwrap();
            let said: Vec<(&str, &str)> = history["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
                .collect();
            let question = format!("question number {round}");
            let answer = format!("Answer number {round}.");
            assert_eq!(said, [("user", question.as_str()), ("assistant", answer.as_str())], "round {round}");

            // The cut utterance is a recording of its session: turn 0, no message, stored and playable.
            let all = stored(&server, &session, 3).await;
            let cut = all.iter().find(|r| r["turnId"] == 0).unwrap_or_else(|| panic!("no orphan in {all:?}"));
            assert_eq!((cut["role"].as_str(), cut["contentType"].as_str()), (Some("user"), Some("audio/wav")));
            assert_eq!(cut["messageId"], Value::Null);
            let seconds = cut["durationSeconds"].as_f64().unwrap();
            assert!(seconds >= 1.0, "at least the 32 KiB seen on disk: {cut}");
            let (status, wav) = get(&server, cut["url"].as_str().unwrap()).await;
            assert_eq!(status, 200);
            assert_eq!(u32::from_le_bytes(wav[40..44].try_into().unwrap()) as usize, wav.len() - 44, "patched sizes");
            let played = parley::audio::duration_seconds(Some("audio/wav"), std::io::Cursor::new(wav.to_vec())).unwrap();
            assert!((played - seconds).abs() < 1e-6);

            let now = files(&spool);
            assert!(now.is_empty(), "round {round}: the spool is empty again: {now:?}");
            let kept: Vec<String> = files(&quarantine).into_iter().map(|(n, _)| n).collect();
            assert!(kept.contains(&stranger) && kept.len() == round, "round {round}: quarantine holds {kept:?}");
            eprintln!(
                "kill -9 round {round}: {} file(s) in the spool at the kill; after the restart {} registered, {} \
                 quarantined, {} in the spool",
                left.len(),
                count("registered").unwrap(),
                count("quarantined").unwrap(),
                now.len()
            );
        }
        eprintln!(
            "orphan files after three kill -9 rounds ({db:?}): {registered} registered, {quarantined} quarantined, \
             {} left in the spool",
            files(&spool).len()
        );
        let (status, log) = server.stop(libc::SIGTERM);
        assert!(status.success(), "{log}");
        emulators.stop().await;
    }
}
