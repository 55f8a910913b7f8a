//! Memory stays flat however long a session runs: parley (a child process, so only its memory is measured, on
//! PostgreSQL as in production) takes minutes of microphone audio, sent faster than real time, with a turn
//! every ten seconds, each recorded. Its resident memory after the first minute and at the end must not differ
//! by more than a small constant: recordings are streamed to disk, never held in memory.
//!
//! `PARLEY_SOAK_MINUTES` (default 5) sets the length; the figures are printed
//! (`cargo test --release --test api soak -- --nocapture`).

use std::time::Duration;

use parley::emulators::{EmulatorOptions, Emulators};

use crate::helpers::process::{self, parley};
use crate::helpers::voice::{Event, VoiceClient, utterance_pcm};

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// Streams one minute: six turns of 3 s speech + 7 s silence, each sent as fast as the socket takes it once
/// the previous reply has ended.
async fn one_minute(c: &mut VoiceClient, turn: &[u8], turns: &mut u64) {
    for _ in 0..6 {
        c.stream_audio(turn).await;
        c.until("a turn end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd")).await;
        *turns += 1;
        c.log.clear();
    }
}

/// Waits until both recordings of every turn so far are stored (a quiet point to measure at).
async fn all_recorded(server: &process::Running, session: &str, turns: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let url = server.url(&format!("/api/recordings?sessionId={session}"));
        let mut res = awc::Client::new().get(url).send().await.unwrap();
        let listing: serde_json::Value = serde_json::from_slice(&res.body().limit(16 << 20).await.unwrap()).unwrap();
        let all = listing["recordings"].as_array().cloned().unwrap_or_default();
        if all.len() as u64 == 2 * turns && all.iter().all(|r| r["status"] == "uploaded") {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} of {} recordings stored", all.len(), 2 * turns);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn memory_stays_flat_over_a_long_session() {
    let minutes: u64 = std::env::var("PARLEY_SOAK_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(5).max(2);
    let emulators = Emulators::start(EmulatorOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = emulators.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.push(("PARLEY_COMMIT_DELAY_MS", "100"));
    pairs.push(("RUST_LOG", "warn,parley=info"));
    let database = crate::helpers::postgres::fresh_database().await;
    pairs.push(("PG_DB_URL", &database));
    pairs.push(("PARLEY_ENCRYPTION_KEY", crate::helpers::TEST_KEY));
    let server = process::start(parley(&pairs, dir.path()));
    let pid = server.child.id();
    let mut c = VoiceClient::open(server.port, "userId=soak").await;
    let minute = utterance_pcm(3000, 7000);
    let mut turns = 0;

    let session = c.session_id();
    one_minute(&mut c, &minute, &mut turns).await;
    all_recorded(&server, &session, turns).await;
    let warm = rss_bytes(pid);
    let heap = |server: &process::Running| {
        let url = server.url("/api/metrics");
        async move {
            let mut res = awc::Client::new().get(url).send().await.unwrap();
            let m: serde_json::Value = serde_json::from_slice(&res.body().await.unwrap()).unwrap();
            m["allocated_memory_bytes"].as_u64().unwrap()
        }
    };
    let warm_heap = heap(&server).await;
    for _ in 1..minutes {
        one_minute(&mut c, &minute, &mut turns).await;
    }
    all_recorded(&server, &session, turns).await;
    let end = rss_bytes(pid);
    let end_heap = heap(&server).await;
    eprintln!("DBG heap {warm_heap} -> {end_heap}");
    let growth = end.saturating_sub(warm);
    eprintln!(
        "soak: {minutes} min of audio, {turns} turns: resident memory {:.1} MiB after 1 min, {:.1} MiB after {minutes} min (+{:.2} MiB)",
        warm as f64 / 1048576.0,
        end as f64 / 1048576.0,
        growth as f64 / 1048576.0
    );
    // Held in memory, the recordings alone would grow by ~2.9 MiB a minute (1.9 MiB of microphone PCM, ~1 MiB
    // of replies).
    let allowance = 6 << 20;
    assert!(growth < allowance, "resident memory grew by {growth} bytes over {} more minutes", minutes - 1);
    c.close().await;
    let (status, log) = server.stop(libc::SIGTERM);
    assert!(status.success(), "{log}");
    emulators.stop().await;
}
