//! The real binary as an operator meets it: bad configuration stops start-up naming the variable; missing
//! provider keys only warn; SIGTERM and SIGINT shut down gracefully with exit status 0.

use std::time::Duration;

use crate::helpers::process::{self, parley, raw_get, wait_exit};

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
        ("PARLEY_AUTH_SECRET", crate::helpers::AUTH_SECRET),
    ]);
    assert!(err.contains("cannot open the database"), "{err}");
}

#[test]
fn a_port_in_use_is_a_clean_error_with_exit_status_1_and_no_panic() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut child = parley(&[("HOST", "127.0.0.1"), ("PORT", &port)], dir.path()).spawn().unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("parley exits when it cannot listen");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("panicked"), "a clean exit, not a panic: {err}");
}

#[test]
fn missing_provider_keys_warn_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = process::start(parley(&[], dir.path()));
    let body = raw_get(server.port, "/healthz");
    assert!(body.contains("ok"), "{body}");
    let (status, log) = server.stop(libc::SIGTERM);
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
    let server = process::start(parley(&[], dir.path()));
    assert!(raw_get(server.port, "/readyz").contains("ready"));
    assert!(server.stop(libc::SIGINT).0.success());
}

#[actix_web::test]
async fn emulate_mode_runs_the_whole_loop_without_keys_and_says_so() {
    use futures_util::{SinkExt as _, StreamExt as _};
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = parley(&[], dir.path());
    cmd.env_remove("PARLEY_AUTH_SECRET").arg("--emulate");
    let server = process::start(cmd);
    // Zero configuration: the page's address carries a development credential, exchanged for a user token.
    let credential = server.dev_credential.clone().expect("a development credential is printed");
    let mut res = awc::Client::new()
        .post(server.url("/api/dev/token"))
        .send_json(&serde_json::json!({"credential": credential, "userId": "visitor"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let minted: serde_json::Value = res.json().await.unwrap();
    let token = minted["token"].as_str().unwrap();
    let url = format!("ws://127.0.0.1:{}/ws/chat-audio?token={token}", server.port);
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
    for stage in ["stt", "llm", "tts"] {
        assert_eq!(seen[0]["providers"][stage]["status"], "emulated", "{stage}: {}", seen[0]);
    }
    assert!(seen.iter().any(|v| v["type"] == "status" && v["message"].as_str().unwrap().contains("emulated")));
    assert!(seen.iter().any(|v| v["type"] == "audioStart"), "{seen:?}");
    assert!(!seen.iter().any(|v| v["type"] == "error"), "{seen:?}");
    let (status, log) = server.stop(libc::SIGTERM);
    assert!(status.success(), "{log}");
    assert!(!log.contains("is not set"), "no missing-key warnings under --emulate:\n{log}");
}

#[test]
fn a_bucket_with_unusable_credentials_stops_startup_saying_why() {
    let err =
        refused(&[("FIREBASE_STORAGE_BUCKET", "b"), ("FIREBASE_SERVICE_ACCOUNT_KEY_PATH", "/nonexistent/key.json")]);
    assert!(err.contains("cannot read FIREBASE_SERVICE_ACCOUNT_KEY_PATH"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("key.json");
    std::fs::write(&bad, "{\"client_email\": 1}").unwrap();
    let err = refused(&[("GCS_BUCKET", "b"), ("FIREBASE_SERVICE_ACCOUNT_KEY_PATH", bad.to_str().unwrap())]);
    assert!(err.contains("is not a service-account key"), "{err}");
}

#[test]
fn parley_token_prints_a_client_token_the_server_accepts() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let out = parley(&[], dir.path())
        .args(["token", "--user", "cli-user", "--ttl", "15m"])
        .stdout(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let secret = base64::engine::general_purpose::STANDARD.decode(crate::helpers::AUTH_SECRET).unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = parley::auth::TokenKeys::new(&secret, &[]).verify(token.trim(), now).expect("a valid token");
    assert_eq!(claims.user_id.as_str(), "cli-user");
    assert!((claims.exp - now - 900).abs() <= 5, "15 minutes");
    let bad = parley(&[], dir.path()).args(["token"]).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--user"));
}
