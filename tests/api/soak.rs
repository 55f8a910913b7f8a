//! Memory stays flat however long a session runs: parley (a child process, so only its memory is measured, on
//! PostgreSQL as in production) takes minutes of microphone audio, sent faster than real time, with a turn
//! every ten seconds, each recorded. Recordings are streamed to disk and nothing of a finished turn is kept,
//! so once warm its heap must not grow with the number of turns.
//!
//! What is measured: the child's live heap bytes (`allocated_memory_bytes` of `/api/metrics`, counted by its
//! global allocator: exact, and blind to the allocator's caching), once after every turn at a quiet point (the
//! reply over, both recordings stored, no write waiting). The first [`WARM_UP_TURNS`] (two minutes) are the
//! warm-up: pools, caches, and the conversation memory, kept to 500 characters here so that it is full by
//! then. The growth per turn after that is the Theil–Sen estimate, the median of the slopes between every
//! pair of samples: a leak adds the same bytes every turn and moves every slope by that much, while a sample
//! caught with some connection buffer still grown (bounded, it comes and goes) moves only the few slopes it
//! is part of, not their median.
//!
//! The arithmetic (`PARLEY_SOAK_MINUTES`, default and minimum [`MINUTES`] = 10): six turns a minute, so 60
//! turns, of which 48 are measured after the warm-up. The smallest leak to catch is [`LEAK_PER_TURN`], 4 KiB
//! kept per turn (a turn's text, a few map entries); over the measured turns it adds 48 × 4 = 192 KiB. The
//! allowance is half that, `measured turns × 4 KiB / 2` = 96 KiB (2 KiB a turn at any length), so that leak
//! fails, and so does anything larger: one microphone frame kept per frame received is 500 frames of 640
//! bytes a turn, 312 KiB a turn, 15 MiB over the measured turns. What a clean run shows is the odd
//! connection buffer caught grown, steps of about 32 KiB that come and go; clean runs estimated between −2
//! and +4 KiB over the 48 turns. Five minutes would leave 18 measured turns and a 36 KiB allowance, too
//! close to one such step, hence ten. A longer run allows proportionally more in total and catches the same
//! leak per turn. Resident memory, which also sees what the counting allocator does not (thread stacks,
//! mappings), must stay within [`RSS_ALLOWANCE`] after the warm-up.
//!
//! Proven to fail with local, uncommitted changes to parley: `Box::leak` of 4 KiB per committed turn gave
//! "heap 4.0 KiB a turn, 192.0 KiB over 48 measured turns (allowance 96.0 KiB)"; leaking a copy of every
//! microphone frame gave "312.5 KiB a turn, 15000.0 KiB" (resident memory +15 MiB).
//!
//! `cargo test --test api soak -- --nocapture` shows the figures.

use std::time::Duration;

use parley::emulators::{DeepgramConnectionLog, EmulatorOptions, Emulators};

use crate::helpers::process::{self, parley};
use crate::helpers::prometheus::sample;
use crate::helpers::voice::{Event, VoiceClient, utterance_pcm};

/// The default and shortest run, minutes of audio (see the module doc for why not shorter).
const MINUTES: u64 = 10;
/// Turns in one minute of audio (3 s speech + 7 s silence each).
const TURNS_PER_MINUTE: u64 = 6;
/// Turns before the first sample that counts: two minutes.
const WARM_UP_TURNS: usize = 12;
/// The smallest leak per turn the test must catch at its default length.
const LEAK_PER_TURN: f64 = 4096.0;
/// Resident memory growth allowed after the warm-up (a coarse guard; the heap is the precise one).
const RSS_ALLOWANCE: u64 = 6 << 20;

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

/// One turn: 3 s of speech and 7 s of silence, then the reply. The audio goes in one-second bursts, each
/// sent as fast as the socket takes it and then waited for at the Deepgram emulator: many times faster than
/// real time, yet no burst piles up in parley's socket buffers, which keep their grown capacity while the
/// connection lives and would otherwise move the samples by hundreds of KiB.
async fn one_turn(c: &mut VoiceClient, emulators: &Emulators, audio: &[u8], sent: &mut u64) {
    let deepgram = emulators.deepgram();
    for second in audio.chunks(32_000) {
        c.stream_audio(second).await;
        *sent += second.len() as u64;
        let target = *sent;
        let arrived = |log: &[DeepgramConnectionLog]| log.iter().map(|c| c.audio_bytes).sum::<u64>() >= target;
        assert!(deepgram.wait_until(arrived, Duration::from_secs(30)).await, "the audio never reached Deepgram");
    }
    c.until("a turn end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd")).await;
    c.log.clear();
}

/// Waits for a quiet point (both recordings of every turn stored, no write waiting), then returns the
/// child's live heap bytes. One client throughout, so the server holds one keep-alive connection; and the
/// probes' responses do not grow with the session (a recordings listing would).
async fn quiet_heap(client: &awc::Client, server: &process::Running, turns: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let text = String::from_utf8(get(client, &server.url("/metrics")).await).unwrap();
        let stored = sample(&text, "parley_recording_uploads_total{outcome=\"uploaded\"}").unwrap_or(0.0);
        let waiting = sample(&text, "parley_recordings_pending").unwrap_or(1.0)
            + sample(&text, "parley_persist_pending_writes").unwrap_or(1.0);
        if stored as u64 == 2 * turns && waiting == 0.0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{stored} of {} recordings stored", 2 * turns);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m: serde_json::Value = serde_json::from_slice(&get(client, &server.url("/api/metrics")).await).unwrap();
    m["allocated_memory_bytes"].as_u64().unwrap()
}

/// The body of a GET, asked again when the kept-alive connection was closed under it: the server closes an
/// idle connection (its keep-alive timeout runs out during a turn), and a request written at that moment is
/// answered with a reset, which is the client's to retry (the GET is idempotent).
async fn get(client: &awc::Client, url: &str) -> Vec<u8> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match client.get(url).send().await {
            Ok(mut res) => res.body().limit(1 << 20).await.map(|b| b.to_vec()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(body) => return body,
            Err(e) if attempt < 3 => {
                eprintln!("GET {url} failed ({e}); asking again");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("GET {url} failed {attempt} times: {e}"),
        }
    }
}

/// Theil–Sen: the median of the slopes between every pair of samples, in bytes per sample.
fn growth_per_turn(samples: &[u64]) -> f64 {
    let mut slopes = Vec::new();
    for (i, &a) in samples.iter().enumerate() {
        for (j, &b) in samples.iter().enumerate().skip(i + 1) {
            slopes.push((b as f64 - a as f64) / (j - i) as f64);
        }
    }
    slopes.sort_by(f64::total_cmp);
    match slopes.len() {
        0 => 0.0,
        n if n % 2 == 1 => slopes[n / 2],
        n => (slopes[n / 2 - 1] + slopes[n / 2]) / 2.0,
    }
}

#[test]
fn theil_sen_follows_a_steady_leak_and_ignores_a_few_outliers() {
    let leak: Vec<u64> = (0..18).map(|i| 1_000_000 + 4096 * i).collect();
    assert_eq!(growth_per_turn(&leak), 4096.0);
    let mut noisy = vec![1_000_000; 18];
    noisy[5] += 300_000;
    noisy[16] += 300_000;
    noisy[17] += 300_000;
    assert_eq!(growth_per_turn(&noisy), 0.0);
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

#[actix_web::test]
async fn memory_stays_flat_over_a_long_session() {
    let minutes: u64 =
        std::env::var("PARLEY_SOAK_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(MINUTES).max(MINUTES);
    let emulators = Emulators::start(EmulatorOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = emulators.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.push(("PARLEY_COMMIT_DELAY_MS", "100"));
    pairs.push(("PARLEY_HISTORY_MAX_CHARS", "500"));
    // One database connection: a pool that opens another one at some turn (its buffers and statement cache
    // are tens of KiB) would look like growth.
    pairs.push(("PARLEY_DB_POOL_MAX", "1"));
    pairs.push(("RUST_LOG", "warn,parley=info"));
    let database = crate::helpers::postgres::fresh_database().await;
    pairs.push(("PG_DB_URL", &database));
    pairs.push(("PARLEY_ENCRYPTION_KEY", crate::helpers::TEST_KEY));
    let server = process::start(parley(&pairs, dir.path()));
    let pid = server.child.id();
    let mut c = VoiceClient::open(server.port, "userId=soak").await;
    let audio = utterance_pcm(3000, 7000);
    let client = process::client();
    let mut sent = 0;
    let mut heap = Vec::new();
    let mut rss = Vec::new();
    for turn in 1..=minutes * TURNS_PER_MINUTE {
        one_turn(&mut c, &emulators, &audio, &mut sent).await;
        heap.push(quiet_heap(&client, &server, turn).await);
        rss.push(rss_bytes(pid));
    }

    let measured = &heap[WARM_UP_TURNS..];
    let turns = measured.len() as f64;
    let slope = growth_per_turn(measured);
    let (growth, allowance) = (slope * turns, LEAK_PER_TURN * turns / 2.0);
    let rss_growth = rss.last().copied().unwrap_or(0).saturating_sub(rss[WARM_UP_TURNS - 1]);
    eprintln!(
        "soak: {minutes} min of audio, {} turns; heap after each measured turn (KiB): {:?}",
        heap.len(),
        measured.iter().map(|&b| b / 1024).collect::<Vec<_>>()
    );
    eprintln!(
        "soak: heap {} a turn, {} over {turns} measured turns (allowance {}); resident {:.1} -> {:.1} MiB",
        kib(slope),
        kib(growth),
        kib(allowance),
        rss[WARM_UP_TURNS - 1] as f64 / 1048576.0,
        rss.last().copied().unwrap_or(0) as f64 / 1048576.0,
    );
    assert!(growth < allowance, "the heap grows by {} a turn: something is kept per turn", kib(slope));
    assert!(rss_growth < RSS_ALLOWANCE, "resident memory grew by {rss_growth} bytes after the warm-up");
    c.close().await;
    let (status, log) = server.stop(libc::SIGTERM);
    assert!(status.success(), "{log}");
    emulators.stop().await;
}
