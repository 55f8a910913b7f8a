//! The real binary as an operator meets it: bad configuration stops start-up naming the variable; missing
//! provider keys only warn; SIGTERM and SIGINT shut down gracefully with exit status 0.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn parley(env: &[(&str, &str)], data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parley"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("PARLEY_DATA_DIR", data_dir)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Runs parley expecting it to refuse to start; returns its stderr.
fn refused(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = parley(env, dir.path()).spawn().unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("parley exits on bad configuration");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "must fail: {err}");
    err
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_values_stop_startup_with_a_message_naming_the_variable() {
    for (var, value) in [
        ("PORT", "abc"),
        ("OPENAI_BASE_URL", "not a url"),
        ("DEEPGRAM_BASE_URL", "ftp://example.com"),
        ("PARLEY_ENCRYPTION_KEY", "dG9vIHNob3J0"),
        ("ELEVENLABS_OUTPUT_FORMAT", "wav_16000"),
        ("PARLEY_MAX_SESSIONS", "-1"),
    ] {
        let err = refused(&[(var, value)]);
        assert!(err.contains(&format!("invalid configuration: {var}")), "{var}={value}: {err}");
    }
}

#[test]
fn postgres_without_an_encryption_key_refuses_to_start_saying_why() {
    let err = refused(&[("PG_DB_URL", "postgres://localhost/x")]);
    assert!(err.contains("PARLEY_ENCRYPTION_KEY") && err.contains("required with PostgreSQL"), "{err}");
}

#[test]
fn an_unreachable_database_stops_startup_with_a_clear_error() {
    let err = refused(&[
        ("PG_DB_URL", "postgres://nobody@127.0.0.1:1/none"),
        ("PARLEY_ENCRYPTION_KEY", crate::helpers::TEST_KEY),
    ]);
    assert!(err.contains("cannot open the database"), "{err}");
}

/// Its log so far, appended to by a reader thread.
type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Starts parley, collecting its stderr; returns the port it reports.
fn start_server(env: &[(&str, &str)], dir: &std::path::Path) -> (Child, Log, std::thread::JoinHandle<()>, u16) {
    start_server_cmd(parley(env, dir))
}

/// Starts `cmd`, collecting its stderr; returns the port it reports.
#[allow(clippy::zombie_processes)] // the child is returned; every caller waits for it in `stop_with`
fn start_server_cmd(mut cmd: Command) -> (Child, Log, std::thread::JoinHandle<()>, u16) {
    let mut child = cmd.spawn().unwrap();
    let log: Log = Default::default();
    let (port_tx, port_rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(port) = line.split("listening on port ").nth(1) {
                let _ = port_tx.send(port.trim().parse::<u16>().unwrap());
            }
            sink.lock().unwrap().push(line);
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("parley never reported its port; log:\n{}", log.lock().unwrap().join("\n")));
    (child, log, reader, port)
}

fn stop_with(child: &mut Child, signal: libc::c_int) -> std::process::ExitStatus {
    // SAFETY: kill has no memory-safety preconditions; the pid is our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    wait_exit(child, Duration::from_secs(30)).expect("parley exits after the signal")
}

#[test]
fn missing_provider_keys_warn_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, logs, reader, port) = start_server(&[], dir.path());
    let body = ureq_get(port, "/healthz");
    assert!(body.contains("ok"), "{body}");
    let status = stop_with(&mut child, libc::SIGTERM);
    reader.join().unwrap();
    let log = logs.lock().unwrap().join("\n");
    assert!(status.success(), "exit status {status:?}\n{log}");
    for var in ["DEEPGRAM_API_KEY", "OPENAI_API_KEY", "ELEVENLABS_API_KEY"] {
        assert!(log.contains(&format!("{var} is not set")), "warning for {var}:\n{log}");
    }
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    assert!(dir.path().join("parley.sqlite3").exists(), "embedded database created");
    assert!(dir.path().join("encryption.key").exists(), "embedded key generated");
}

#[test]
fn sigint_also_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _logs, _reader, port) = start_server(&[], dir.path());
    assert!(ureq_get(port, "/readyz").contains("ready"));
    assert!(stop_with(&mut child, libc::SIGINT).success());
}

/// A minimal blocking HTTP GET over a raw socket.
fn ureq_get(port: u16, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[actix_web::test]
async fn emulate_mode_runs_the_whole_loop_without_keys_and_says_so() {
    use futures_util::{SinkExt as _, StreamExt as _};
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = parley(&[], dir.path());
    cmd.arg("--emulate");
    let (mut child, logs, reader, port) = start_server_cmd(cmd);
    let url = format!("ws://127.0.0.1:{port}/ws/chat-audio?userId=visitor");
    let (_, mut ws) = awc::Client::new().ws(url).connect().await.expect("upgrade");
    let mut seen = Vec::new();
    ws.send(awc::ws::Message::Text(r#"{"type":"text","text":"Hello?"}"#.into())).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.iter().any(|v: &serde_json::Value| v["type"] == "turnEnd") {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(awc::ws::Frame::Text(t)))) => seen.push(serde_json::from_slice(&t).unwrap()),
            Ok(Some(Ok(_))) => {}
            other => panic!("no turn end ({other:?}); events: {seen:?}"),
        }
    }
    assert_eq!(seen[0]["type"], "session");
    assert_eq!(seen[0]["emulated"], true);
    assert!(seen.iter().any(|v| v["type"] == "status" && v["message"].as_str().unwrap().contains("emulated")));
    assert!(seen.iter().any(|v| v["type"] == "audioStart"), "{seen:?}");
    assert!(!seen.iter().any(|v| v["type"] == "error"), "{seen:?}");
    let status = stop_with(&mut child, libc::SIGTERM);
    reader.join().unwrap();
    let log = logs.lock().unwrap().join("\n");
    assert!(status.success(), "{log}");
    assert!(!log.contains("is not set"), "no missing-key warnings under --emulate:\n{log}");
}
