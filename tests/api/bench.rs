//! The load benchmark (ignored by default; it prints figures rather than asserting timings):
//!
//! ```sh
//! cargo test --release --test api bench -- --ignored --nocapture
//! PARLEY_BENCH_SESSIONS=200 PARLEY_BENCH_SECONDS=60 cargo test --release --test api bench -- --ignored --nocapture
//! PARLEY_BENCH_ENV="NAME=VALUE ..." cargo test ...   # extra environment for the parley process
//! PARLEY_BENCH_DATA_DIR=/dev/shm cargo test ...        # parley's data directory somewhere else
//! PARLEY_BENCH_STAGGER_MS=6000 cargo test ...          # sessions' starts spread over 6 s (default 2 s)
//! ```
//!
//! Three processes: the emulators (`parley emulate --realistic`: STT results 100 ms after the audio, first
//! token at 300 ms then 30 ms a token, first audio byte at 150 ms, audio paced in real time), parley, and this
//! test driving N concurrent voice sessions that stream microphone audio in real time (20 ms frames), speaking
//! 3 s then pausing 3 s, so every session takes a turn every 6 s. It reports parley's CPU and memory per
//! session (from /proc of the parley process only), the sessions one core carries at that load, and the
//! latency of every turn as the `latency` events report it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::process::{self, EmulatorProcess, RssWatch, parley, rss_mib};
use crate::helpers::voice::{Event, VoiceClient, utterance_pcm};

/// What `parley emulate --realistic` is told to take: STT results after the audio, the first token, the first
/// audio byte (milliseconds).
const EMULATED_STT_MS: u64 = 100;
const EMULATED_FIRST_TOKEN_MS: u64 = 300;
const EMULATED_TTS_FIRST_BYTE_MS: u64 = 150;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Read and write system calls of a process so far (`syscr` + `syscw` of /proc/PID/io): those made through the
/// file interface (files, eventfd wake-ups, `read`/`write` on a socket), not `send`/`recv` on sockets.
fn io_syscalls(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines()
        .filter_map(|l| l.strip_prefix("syscr: ").or_else(|| l.strip_prefix("syscw: ")))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
}

/// Context switches (voluntary and not) of a process's live threads so far, from /proc/PID/task/*/status.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("voluntary_ctxt_switches:").or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// Every system call a process makes, counted by `perf stat` (the kernel's `raw_syscalls:sys_enter`
/// tracepoint) while it runs; `None` when perf is missing or not allowed to trace.
struct SyscallCount(Option<std::process::Child>);

impl SyscallCount {
    fn start(pid: u32) -> SyscallCount {
        let child = std::process::Command::new("perf")
            .args(["stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "-p", &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok();
        SyscallCount(child)
    }

    fn stop(self) -> Option<u64> {
        let child = self.0?;
        // SAFETY: kill has no memory preconditions; the pid is our own child's.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&out.stderr);
        // CSV: count,unit,event,...
        text.lines().find(|l| l.contains("raw_syscalls:sys_enter")).and_then(|l| l.split(',').next()?.parse().ok())
    }
}

/// utime+stime of a process, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let (user, kernel) = cpu_split(pid);
    user + kernel
}

/// utime and stime of a process (its own code, and the kernel's work for it), seconds.
fn cpu_split(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (f[11].parse::<f64>().unwrap() / ticks, f[12].parse::<f64>().unwrap() / ticks)
}

/// CPU seconds of each live thread of a process, summed by thread name (the kernel keeps 15 characters of it).
fn cpu_by_thread(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return by_name };
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].to_string();
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let cpu = (f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0)) / ticks;
        *by_name.entry(name).or_insert(0.0) += cpu;
    }
    by_name
}

#[derive(Default)]
struct Figures {
    turns: u64,
    errors: u64,
    first_audio_ms: Vec<u64>,
    stt_ms: Vec<u64>,
    llm_ms: Vec<u64>,
    tts_ms: Vec<u64>,
}

fn percentile(v: &mut [u64], p: f64) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    format!("{}", v[i])
}

/// One session: streams real-time audio for `seconds`, collecting its turns' latency.
async fn session(port: u16, n: u64, seconds: u64, figures: Arc<Mutex<Figures>>) {
    let mut c = VoiceClient::open(port, &format!("userId=bench-{n}")).await;
    let cycle = utterance_pcm(3000, 3000);
    let mut frames = cycle.chunks(640).cycle();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        tick.tick().await;
        c.send_audio(frames.next().unwrap()).await;
        while let Some(e) = c.next(Duration::ZERO).await {
            let mut f = figures.lock().unwrap();
            match e {
                Event::Json(v) if v["type"] == "latency" => {
                    let f = &mut *f;
                    f.turns += 1;
                    for (key, list) in [
                        ("firstAudioMs", &mut f.first_audio_ms),
                        ("sttMs", &mut f.stt_ms),
                        ("llmFirstTokenMs", &mut f.llm_ms),
                        ("ttsFirstByteMs", &mut f.tts_ms),
                    ] {
                        if let Some(ms) = v[key].as_u64() {
                            list.push(ms);
                        }
                    }
                }
                Event::Json(v) if v["type"] == "error" => f.errors += 1,
                _ => {}
            }
        }
        c.log.clear();
    }
    c.close().await;
}

#[test]
#[ignore = "a benchmark: run it with --release --ignored --nocapture"]
fn bench() {
    let sessions = env_or("PARLEY_BENCH_SESSIONS", 100);
    let seconds = env_or("PARLEY_BENCH_SECONDS", 30);
    let threads = env_or("PARLEY_BENCH_CLIENT_THREADS", 2);
    // Sessions start spread over 2 s (as every earlier figure was measured), so their turns come in bursts: all
    // of them stop speaking within the same third of each 6 s cycle. 6000 spreads them over a whole cycle, as
    // independent users would be (lower peak memory; the same latency and CPU on this benchmark so far).
    let stagger_ms = env_or("PARLEY_BENCH_STAGGER_MS", 2000);
    let emulators = EmulatorProcess::start(&["--realistic"]);
    // Where parley's data directory (database, spool, recordings) goes: the system's temporary directory, or
    // PARLEY_BENCH_DATA_DIR (e.g. /dev/shm, to see parley's figures without the file system's).
    let dir = match std::env::var("PARLEY_BENCH_DATA_DIR") {
        Ok(base) => tempfile::tempdir_in(base).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let mut pairs = emulators.vars();
    // Every client comes from 127.0.0.1: the per-address opening limit would refuse most of them.
    pairs.extend([
        ("RUST_LOG", "warn,parley=info"),
        ("PARLEY_MAX_SESSIONS", "100000"),
        ("PARLEY_CONNECT_RATE", "100000/min"),
        ("PARLEY_CONNECT_BURST", "100000"),
    ]);
    // Extra settings for parley, e.g. PARLEY_BENCH_ENV="PARLEY_PREEMPTIVE=off MALLOC_ARENA_MAX=2".
    let extra = std::env::var("PARLEY_BENCH_ENV").unwrap_or_default();
    pairs.extend(extra.split_whitespace().filter_map(|kv| kv.split_once('=')));
    let server = process::start(parley(&pairs, dir.path()));
    let (pid, port) = (server.child.id(), server.port);
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = rss_mib(pid);

    let figures = Arc::new(Mutex::new(Figures::default()));
    let watch = RssWatch::start(pid);
    let cpu_before = cpu_seconds(pid);
    let kernel_before = cpu_split(pid).1;
    let emulators_before = cpu_seconds(emulators.pid());
    let threads_before = cpu_by_thread(pid);
    let syscalls_before = io_syscalls(pid);
    let switches_before = context_switches(pid);
    let all_syscalls = SyscallCount::start(pid);
    let started = Instant::now();
    let clients: Vec<_> = (0..threads)
        .map(|t| {
            let figures = figures.clone();
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let mine = (0..sessions).filter(|n| n % threads == t);
                    let runs = mine.map(|n| {
                        let figures = figures.clone();
                        async move {
                            // Staggered over `stagger_ms`, like independent arrivals.
                            tokio::time::sleep(Duration::from_millis(n * stagger_ms / sessions.max(1))).await;
                            session(port, n, seconds, figures).await;
                        }
                    });
                    futures_util::future::join_all(runs).await;
                });
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let kernel = cpu_split(pid).1 - kernel_before;
    let emulators_cpu = cpu_seconds(emulators.pid()) - emulators_before;
    let threads_after = cpu_by_thread(pid);
    let syscalls = io_syscalls(pid).saturating_sub(syscalls_before);
    let switches = context_switches(pid).saturating_sub(switches_before);
    let all_syscalls = all_syscalls.stop();
    let peak = watch.stop().max(idle_rss);
    // The persisters' transactions (on SQLite the group commits, which also carry the uploader's marks; on
    // PostgreSQL a write on its own or a batch of a session's queued writes), read before the stop; the writes
    // of the last turns may still be on their way.
    let transactions = actix_web::rt::System::new().block_on(async {
        let mut res = process::client().get(server.url("/metrics")).send().await.ok()?;
        let body = res.body().limit(1 << 24).await.ok()?;
        let text = String::from_utf8_lossy(&body).into_owned();
        let line = text.lines().find(|l| l.starts_with("parley_persist_transactions_total "))?;
        line.split_whitespace().nth(1)?.parse::<f64>().ok()
    });
    let (status, log) = server.stop(libc::SIGTERM);
    drop(emulators);
    assert!(status.success(), "{log}");
    // A write that failed and went to the journal is work parley put off, not work it saved: say so, since the
    // CPU figures below would flatter it.
    let journaled = log.lines().filter(|l| l.contains("write journaled") || l.contains("database is locked")).count();

    let mut f = std::mem::take(&mut *figures.lock().unwrap());
    let core_share = cpu / wall;
    // Every session sends a 20 ms frame 50 times a second.
    let frames = (sessions * seconds * 50).max(1) as f64;
    // CPU per second of a session's audio: the staggered start and the ends are not session time, so CPU over
    // wall time divided by the sessions would count sessions as running longer than they did.
    let per_session = cpu / (frames / 50.0);
    eprintln!("\nparley load benchmark ({} build)", if cfg!(debug_assertions) { "debug" } else { "release" });
    eprintln!(
        "  sessions: {sessions} concurrent, {seconds} s each, real-time audio (3 s speech / 3 s pause), started over \
         {stagger_ms} ms"
    );
    eprintln!("  turns completed: {} ({} error events)", f.turns, f.errors);
    eprintln!("  database writes that failed or were put off to the journal (log lines): {journaled}");
    eprintln!(
        "  database transactions of the sessions' writes (on SQLite, with the uploader's): {} ({} per turn)",
        transactions.map_or("n/a".to_string(), |n| format!("{n:.0}")),
        transactions.map_or("n/a".to_string(), |n| format!("{:.2}", n / f.turns.max(1) as f64))
    );
    eprintln!(
        "  parley CPU: {:.1} % of one core ({:.3} % per session) -> about {:.0} sessions per core",
        core_share * 100.0,
        per_session * 100.0,
        1.0 / per_session.max(1e-9)
    );
    // The emulators do the same work in every run, so their CPU moves with the machine (other tenants, clock
    // speed): parley's CPU per emulator CPU second compares two runs better than either figure alone.
    eprintln!(
        "  emulators' CPU: {:.1} % of one core; parley's CPU per emulator CPU second: {:.2}",
        emulators_cpu / wall * 100.0,
        cpu / emulators_cpu.max(1e-9)
    );
    // The kernel's share is mostly the sockets: on loopback a send also runs the peer's receive (TCP, wake-up).
    eprintln!(
        "  per incoming audio frame ({frames:.0} frames): {:.1} µs of parley CPU (all its work; {:.1} of it in the \
         kernel), {} system calls ({:.2} of them file-style read/write), {:.2} context switches",
        cpu * 1e6 / frames,
        kernel * 1e6 / frames,
        all_syscalls.map_or("n/a (no perf)".to_string(), |n| format!("{:.2}", n as f64 / frames)),
        syscalls as f64 / frames,
        switches as f64 / frames
    );
    // Where the CPU went, by thread: the HTTP workers and the storage arbiter are `actix-rt|system`, the
    // storage one also named `parley-storage` once started; `sqlite-writer` is the embedded database's writer,
    // `tokio-runtime-w` the blocking pool (SQLite reads, file moves), whose idle threads exit (their time is in
    // "exited threads").
    let mut by_thread: Vec<(String, f64)> = threads_after
        .iter()
        .map(|(name, after)| (name.clone(), after - threads_before.get(name).copied().unwrap_or(0.0)))
        .filter(|(_, spent)| *spent > 0.0)
        .collect();
    let live: f64 = by_thread.iter().map(|(_, spent)| spent).sum();
    by_thread.push(("exited threads".into(), (cpu - live).max(0.0)));
    by_thread.sort_by(|a, b| b.1.total_cmp(&a.1));
    let shares: Vec<String> =
        by_thread.iter().map(|(name, spent)| format!("{name} {:.0} %", spent * 100.0 / cpu.max(1e-9))).collect();
    eprintln!("  parley CPU by thread: {}", shares.join(", "));
    eprintln!(
        "  parley memory: {idle_rss:.1} MiB idle, {peak:.1} MiB peak -> {:.0} KiB per session",
        (peak - idle_rss).max(0.0) * 1024.0 / sessions as f64
    );
    eprintln!(
        "  latency ms (p50 / p95 / p99), emulated providers: STT 100 ms, first token 300 ms, TTS first byte 150 ms"
    );
    for (name, list) in [
        ("end of speech -> committed (sttMs)", &mut f.stt_ms),
        ("LLM first token (llmFirstTokenMs)", &mut f.llm_ms),
        ("TTS first byte (ttsFirstByteMs)", &mut f.tts_ms),
        ("end of speech -> first audio (firstAudioMs)", &mut f.first_audio_ms),
    ] {
        eprintln!(
            "    {name:<45} {:>6} / {:>6} / {:>6}",
            percentile(list, 0.5),
            percentile(list, 0.95),
            percentile(list, 0.99)
        );
    }
    // What parley adds to each stage: the measured figure minus what the emulators were told to take (and, for
    // the STT stage, Deepgram's endpointing silence and parley's commit window, both waits by design).
    let told = |name: &str, default: u64| {
        let set = extra.split_whitespace().filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name);
        set.and_then(|(_, v)| v.parse().ok()).unwrap_or(default)
    };
    let stt_told = told("DEEPGRAM_ENDPOINTING_MS", 300) + EMULATED_STT_MS + told("PARLEY_COMMIT_DELAY_MS", 200);
    eprintln!("  server-added latency ms (p50 / p95 / p99): measured minus what the emulators were told");
    for (name, list, minus) in [
        (format!("STT stage (sttMs - {stt_told})"), &mut f.stt_ms, stt_told),
        (format!("LLM first token (- {EMULATED_FIRST_TOKEN_MS})"), &mut f.llm_ms, EMULATED_FIRST_TOKEN_MS),
        (format!("TTS first byte (- {EMULATED_TTS_FIRST_BYTE_MS})"), &mut f.tts_ms, EMULATED_TTS_FIRST_BYTE_MS),
    ] {
        let mut added: Vec<u64> = list.iter().map(|ms| ms.saturating_sub(minus)).collect();
        eprintln!(
            "    {name:<45} {:>6} / {:>6} / {:>6}",
            percentile(&mut added, 0.5),
            percentile(&mut added, 0.95),
            percentile(&mut added, 0.99)
        );
    }
    assert!(f.turns > 0, "no turn completed");
}
