//! The memory figure for clients that speak and never read (ignored by default: it takes two minutes):
//! parley (a child process; its emulated providers in another, with real-service latencies; PCM output, the
//! most bytes per second of speech) serves ten clients that stream microphone audio in real time, utterance
//! after utterance, and never read their socket. Each reply's audio waits unread, so parley must end every
//! one of them with 1008 within its write timeout (`PARLEY_CLIENT_WRITE_TIMEOUT_SECS`, 20 s) or buffer limit
//! (`PARLEY_MAX_CLIENT_BUFFER_BYTES`, 2 MiB), the defaults, rather than hold their output, and drop the
//! connection. (The close frame is queued behind the audio the client never read, so that client cannot see
//! it: the test reads the decision from parley's log and sees the connection end.) Its resident memory is
//! printed every ten seconds and at the end:
//!
//! `cargo test --test api slow_readers -- --ignored --nocapture` (`PARLEY_SLOW_READERS_SECS` sets the length).

use std::time::{Duration, Instant};

use crate::helpers::process::{self, EmulatorProcess, RssWatch, parley, rss_mib};
use crate::helpers::raw_ws::{Got, RawWs};
use crate::helpers::token_for;
use crate::helpers::voice::utterance_pcm;

const CLIENTS: usize = 10;
const DEFAULT_SECS: u64 = 120;
/// Resident memory ten non-reading clients may add: each may leave at most 2 MiB unread before it is cut.
const RSS_ALLOWANCE_MIB: f64 = 150.0;

/// Streams utterances as 20 ms frames in real time until `until` or until parley stops taking them; never
/// reads. Returns the audio seconds sent.
async fn speak_without_reading(ws: &mut RawWs, until: Instant) -> f64 {
    let utterance = utterance_pcm(2000, 2500);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut frames = 0u64;
    'speaking: loop {
        for chunk in utterance.chunks(640) {
            tick.tick().await;
            if Instant::now() >= until {
                break 'speaking;
            }
            match tokio::time::timeout(Duration::from_secs(1), ws.send(&RawWs::frame(0x2, chunk))).await {
                Ok(Ok(())) => frames += 1,
                Ok(Err(_)) | Err(_) => break 'speaking, // closed, or no longer reading us
            }
        }
    }
    frames as f64 * 0.02
}

#[actix_web::test]
#[ignore = "a two-minute figure: cargo test --test api slow_readers -- --ignored --nocapture"]
async fn clients_that_speak_and_never_read_are_closed_with_1008_and_memory_stays_bounded() {
    let secs = std::env::var("PARLEY_SLOW_READERS_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_SECS);
    let dir = tempfile::tempdir().unwrap();
    let emulators = EmulatorProcess::start(&["--realistic"]);
    let mut env = emulators.vars();
    env.extend([
        ("RUST_LOG", "info"),
        ("ELEVENLABS_OUTPUT_FORMAT", "pcm_16000"),
        ("PARLEY_CONNECT_RATE", "100000/sec"),
        ("PARLEY_CONNECT_BURST", "100000"),
    ]);
    let server = process::start(parley(&env, dir.path()));
    let (pid, port) = (server.child.id(), server.port);
    let baseline = rss_mib(pid);
    let watch = RssWatch::start(pid);
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            actix_web::rt::spawn(async move {
                let path = format!("/ws/chat-audio?token={}", token_for(&format!("slow-reader-{n}")));
                let mut ws = RawWs::connect(port, &path, &[]).await.expect("upgrade");
                let spoken = speak_without_reading(&mut ws, until).await;
                (ws, spoken)
            })
        })
        .collect();
    let mut next_print = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(secs) {
        if started.elapsed() >= next_print {
            eprintln!("slow readers: t = {:>3} s, RSS {:.1} MiB", next_print.as_secs(), rss_mib(pid));
            next_print += Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Only now are the sockets read: what parley sent, up to its close.
    let mut codes = Vec::new();
    for c in clients {
        let (mut ws, spoken) = c.await.unwrap();
        let mut audio = 0usize;
        let code = loop {
            match ws.next(Duration::from_secs(10), false).await {
                Got::Close(code, reason) => break format!("{code} ({reason})"),
                Got::Binary(n) => audio += n,
                Got::End => break "the end of the connection, no close frame".into(),
                Got::Timeout => break "nothing: still open".into(),
                _ => {}
            }
        };
        eprintln!(
            "slow readers: spoke {spoken:.0} s of audio, {} KiB of audio waited unread, then {code}",
            audio >> 10
        );
        codes.push(code);
    }
    let peak = watch.stop();
    eprintln!("slow readers: {CLIENTS} clients for {secs} s, RSS baseline {baseline:.1} MiB peak {peak:.1} MiB");
    let log = server.log.lock().unwrap().join("\n");
    let cut: Vec<&str> = log.lines().filter_map(|l| l.split("ending: NotReading").nth(1)).collect();
    let mut reasons: Vec<&str> = cut.clone();
    reasons.sort_unstable();
    reasons.dedup();
    for reason in reasons {
        let n = cut.iter().filter(|r| **r == reason).count();
        eprintln!("slow readers: {n} closed with 1008 because {}", reason.trim_matches(['(', ')', '"']));
    }
    assert_eq!(cut.len(), CLIENTS, "parley ends every client that does not read with 1008:\n{log}");
    // The close frame waits behind the output the client never read, so a client that never reads sees only
    // the end of the connection; what matters is that none is left open.
    assert!(codes.iter().all(|c| c.starts_with("1008") || c.starts_with("the end")), "{codes:#?}");
    assert!(peak - baseline < RSS_ALLOWANCE_MIB, "resident memory grew by {:.1} MiB", peak - baseline);
    let (status, log) = server.stop(libc::SIGTERM);
    assert!(status.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}
