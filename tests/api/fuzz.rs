//! A bounded, seeded fuzz of the voice WebSocket: parley (a child process, so that a crash is seen as an exit;
//! its emulated providers in another, so that only parley's memory is measured) takes thousands of random and
//! malformed frames over eight concurrent lanes of sessions (`helpers::fuzz_frames` makes them and says how
//! each must be taken).
//! Every session must end in a well-defined way: still working after its frames (a `ping` is answered, a
//! normal close echoed) or closed with the code its last frame calls for (1002, 1007, 1009, the echo of a
//! valid close). Afterwards the process is alive, has logged no panic, holds no session, completes a typed
//! and a spoken turn end to end, and its resident memory stayed within [`RSS_ALLOWANCE_MIB`] of its baseline.
//! Its live heap is printed too: what it holds after the run is mostly history writes still queued in the
//! journal (thousands of short sessions write faster than a debug build's SQLite takes them; the replay
//! drains them afterwards).
//!
//! `PARLEY_FUZZ_FRAMES` (default [`DEFAULT_FRAMES`]) and `PARLEY_FUZZ_SEED` (default [`DEFAULT_SEED`]) set
//! the run; the seed is printed first, and a failure names the seed, lane, session and the frames that led to
//! it, so `PARLEY_FUZZ_SEED=S cargo test --test api fuzz -- --nocapture` replays it.

use std::time::Duration;

use crate::helpers::fuzz_frames::{Generator, Limits, Rng, Shot, Verdict, frame};
use crate::helpers::process::{self, EmulatorProcess, RssWatch, parley, rss_mib};
use crate::helpers::raw_ws::{Got, RawWs};
use crate::helpers::token_for;
use crate::helpers::voice::{Event, VoiceClient, utterance_pcm};

const DEFAULT_FRAMES: u64 = 3000;
const DEFAULT_SEED: u64 = 20_261_128;
/// Concurrent lanes; each opens sessions one after the other until its share of the frames is sent.
const LANES: u64 = 8;
/// Frames of a session before it is ended normally (if no frame ended it first).
const MAX_FRAMES_PER_SESSION: u64 = 300;
/// How often a frame is one that ends the connection.
const FATAL_PERCENT: u64 = 2;
/// Resident memory the fuzz may add to the server's baseline.
const RSS_ALLOWANCE_MIB: f64 = 200.0;
/// The text frame limit of the server under test: large enough that 10,000 levels of nesting reach the parser.
const TEXT_LIMIT: usize = 65_536;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}")),
        Err(_) => default,
    }
}

/// What the lanes did.
#[derive(Debug, Default)]
struct Tally {
    frames: u64,
    sessions: u64,
}

/// Opens a session as `user` on a raw socket and reads its `session` message.
async fn open(port: u16, user: &str) -> Result<RawWs, String> {
    let mut ws = RawWs::connect(port, &format!("/ws/chat-audio?token={}", token_for(user)), &[]).await?;
    match ws.next(Duration::from_secs(15), true).await {
        Got::Text(t) if t.contains("\"session\"") => Ok(ws),
        other => Err(format!("expected the session message, got {other:?}")),
    }
}

/// Every text frame parley sends is a JSON object with a `type`.
fn check_text(t: &str) -> Result<(), String> {
    match serde_json::from_str::<serde_json::Value>(t) {
        Ok(v) if v["type"].is_string() => Ok(()),
        _ => Err(format!("the server sent a text frame that is not a typed JSON message: {t:.200}")),
    }
}

/// Reads what has already arrived (answering pings); the session must still be open.
async fn drain(ws: &mut RawWs) -> Result<(), String> {
    loop {
        match ws.next(Duration::ZERO, true).await {
            Got::Timeout => return Ok(()),
            Got::Text(t) => check_text(&t)?,
            Got::Binary(_) | Got::Ping(_) | Got::Pong => {}
            Got::Close(code, reason) => return Err(format!("the server closed with {code} ({reason})")),
            Got::End => return Err("the connection ended without a close frame".into()),
        }
    }
}

/// Reads until the close frame; its code (1005 when it has none), or what came instead.
async fn closing_code(ws: &mut RawWs) -> Result<u16, String> {
    loop {
        match ws.next(Duration::from_secs(15), true).await {
            Got::Close(code, _) => return Ok(code),
            Got::Text(t) => check_text(&t)?,
            Got::Binary(_) | Got::Ping(_) | Got::Pong => {}
            Got::End => return Err("the connection ended without a close frame".into()),
            Got::Timeout => return Err("no close within 15 s".into()),
        }
    }
}

async fn write(ws: &mut RawWs, shot: &Shot) -> std::io::Result<()> {
    match shot.dribble {
        None => ws.send(&shot.bytes).await,
        Some(n) => {
            for piece in shot.bytes.chunks(n).take(64) {
                ws.send(piece).await?;
                tokio::task::yield_now().await;
            }
            let rest = shot.bytes.len().min(64 * n);
            ws.send(&shot.bytes[rest..]).await
        }
    }
}

/// A session that survived its frames still works: a `ping` is answered and a normal close is echoed.
async fn end_normally(ws: &mut RawWs, generator: &Generator, rng: &mut Rng) -> Result<(), String> {
    if generator.in_fragment() {
        ws.send(&frame(rng, true, 0, 0x0, b"", true)).await.map_err(|e| e.to_string())?;
    }
    ws.send(&frame(rng, true, 0, 0x1, br#"{"type":"ping"}"#, true)).await.map_err(|e| e.to_string())?;
    loop {
        match ws.next(Duration::from_secs(15), true).await {
            Got::Text(t) if t.contains(r#""type":"pong""#) => break,
            Got::Text(t) => check_text(&t)?,
            Got::Binary(_) | Got::Ping(_) | Got::Pong => {}
            other => return Err(format!("no pong to a ping: {other:?}")),
        }
    }
    ws.send(&frame(rng, true, 0, 0x8, &1000u16.to_be_bytes(), true)).await.map_err(|e| e.to_string())?;
    match closing_code(ws).await? {
        1000 => Ok(()),
        code => Err(format!("a normal close was answered with {code}")),
    }
}

/// One lane: sessions one after the other, `budget` frames in all.
async fn lane(port: u16, seed: u64, lane: u64, budget: u64, tally: &mut Tally) -> Result<(), String> {
    let mut rng = Rng::new(seed ^ (lane + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    let limits = Limits { text: TEXT_LIMIT, codec: TEXT_LIMIT * 4 };
    let mut sent = 0;
    while sent < budget {
        tally.sessions += 1;
        let session = tally.sessions;
        let at = |n: u64, kinds: &[&str], what: String| {
            let recent = &kinds[kinds.len().saturating_sub(8)..];
            format!("seed {seed}, lane {lane}, session {session}, frame {n}: {what}; the last frames: {recent:?}")
        };
        let mut ws = open(port, &format!("fuzz-{lane}-{session}")).await.map_err(|e| at(0, &[], e))?;
        let mut generator = Generator::new(limits);
        let mut kinds = Vec::new();
        let length = rng.range(1, MAX_FRAMES_PER_SESSION);
        let mut ended = false;
        for n in 1..=length {
            if sent >= budget {
                break;
            }
            let shot = generator.next(&mut rng, FATAL_PERCENT);
            sent += 1;
            tally.frames += 1;
            kinds.push(shot.kind);
            if let Err(e) = write(&mut ws, &shot).await
                && shot.verdict == Verdict::Stays
            {
                let why = closing_code(&mut ws).await.map(|c| format!("closed with {c}")).unwrap_or_else(|e| e);
                return Err(at(n, &kinds, format!("the write failed ({e}): {why}")));
            }
            match shot.verdict {
                Verdict::Stays => drain(&mut ws).await.map_err(|e| at(n, &kinds, e))?,
                Verdict::Closes(expected) => {
                    let code = closing_code(&mut ws).await.map_err(|e| at(n, &kinds, e))?;
                    let expected = expected.unwrap_or(1005);
                    if code != expected {
                        return Err(at(n, &kinds, format!("closed with {code}, expected {expected}")));
                    }
                    ended = true;
                    break;
                }
                Verdict::Dropped => {
                    ended = true;
                    break;
                }
            }
        }
        if !ended {
            end_normally(&mut ws, &generator, &mut rng).await.map_err(|e| at(length, &kinds, e))?;
        }
    }
    Ok(())
}

/// A typed turn and a spoken one, end to end, on a fresh session.
async fn a_normal_conversation_works(port: u16) {
    let mut c = VoiceClient::open(port, "userId=after-fuzz").await;
    c.say("Hello, are you still there?").await;
    c.until("the typed turn's end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd")).await;
    assert!(!c.events("audioStart").is_empty(), "the typed turn was spoken: {:?}", c.summary());
    c.stream_audio(&utterance_pcm(1500, 1500)).await;
    c.until("the spoken turn's end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"] == 2))
        .await;
    assert_eq!(c.events("userTurn").len(), 2, "{:?}", c.summary());
    assert!(c.events("error").is_empty(), "{:?}", c.summary());
    c.close_and_read_to_end().await;
}

/// parley's live heap (its counting allocator, through `/api/metrics`), MiB.
async fn heap_mib(server: &process::Running) -> f64 {
    let mut res = process::client().get(server.url("/api/metrics")).send().await.unwrap();
    let m: serde_json::Value = res.json().await.unwrap();
    m["allocated_memory_bytes"].as_f64().unwrap() / f64::from(1 << 20)
}

/// Waits until the server holds no session.
async fn no_session_left(server: &process::Running) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mut res = process::client().get(server.url("/api/metrics")).send().await.unwrap();
        let m: serde_json::Value = res.json().await.unwrap();
        if m["active_connections"].as_u64() == Some(0) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "sessions left after the fuzz: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn fuzzed_frames_never_crash_the_server_and_every_session_ends_in_a_defined_way() {
    let frames = env_u64("PARLEY_FUZZ_FRAMES", DEFAULT_FRAMES);
    let seed = env_u64("PARLEY_FUZZ_SEED", DEFAULT_SEED);
    eprintln!("fuzz: seed {seed} (replay with PARLEY_FUZZ_SEED={seed}), {frames} frames over {LANES} lanes");
    let dir = tempfile::tempdir().unwrap();
    let text_limit = TEXT_LIMIT.to_string();
    let emulators = EmulatorProcess::start(&[]);
    let mut env = emulators.vars();
    env.extend([
        ("RUST_LOG", "warn"),
        ("PARLEY_MAX_TEXT_FRAME_BYTES", &text_limit),
        ("PARLEY_CONNECT_RATE", "100000/sec"),
        ("PARLEY_CONNECT_BURST", "100000"),
    ]);
    let mut server = process::start(parley(&env, dir.path()));
    let (pid, port) = (server.child.id(), server.port);
    let baseline = rss_mib(pid);
    let heap_before = heap_mib(&server).await;
    let watch = RssWatch::start(pid);
    let started = std::time::Instant::now();
    let lanes: Vec<_> = (0..LANES)
        .map(|n| {
            let budget = frames / LANES + u64::from(n < frames % LANES);
            actix_web::rt::spawn(async move {
                let mut tally = Tally::default();
                let result = lane(port, seed, n, budget, &mut tally).await;
                (tally, result)
            })
        })
        .collect();
    let mut total = Tally::default();
    let mut failures = Vec::new();
    for l in lanes {
        let (tally, result) = l.await.unwrap();
        total.frames += tally.frames;
        total.sessions += tally.sessions;
        failures.extend(result.err());
    }
    let took = started.elapsed();
    let alive = server.child.try_wait().unwrap().is_none();
    let log = || server.log.lock().unwrap().join("\n");
    assert!(alive, "parley died during the fuzz (seed {seed}); its log:\n{}", log());
    assert!(
        failures.is_empty(),
        "{} lane(s) failed:\n{}\nparley's log:\n{}",
        failures.len(),
        failures.join("\n"),
        log()
    );

    a_normal_conversation_works(port).await;
    no_session_left(&server).await;
    let peak = watch.stop();
    let heap_after = heap_mib(&server).await;
    eprintln!(
        "fuzz: parley's heap {heap_before:.1} MiB before, {heap_after:.1} MiB after; the emulators' RSS {:.1} MiB",
        rss_mib(emulators.pid())
    );
    eprintln!(
        "fuzz: {} frames over {} sessions, seed {seed}, RSS baseline {baseline:.1} MiB peak {peak:.1} MiB ({:.1} s)",
        total.frames,
        total.sessions,
        took.as_secs_f64()
    );
    assert_eq!(total.frames, frames);
    assert!(peak - baseline < RSS_ALLOWANCE_MIB, "resident memory grew by {:.1} MiB", peak - baseline);
    let (status, log) = server.stop(libc::SIGTERM);
    assert!(status.success(), "{log}");
    assert!(!log.contains("panicked"), "parley panicked during the fuzz (seed {seed}):\n{log}");
}
