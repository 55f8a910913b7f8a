//! Nothing unbounded: what a hostile or broken client controls (frame sizes, how fast it sends a request,
//! whether it reads, whether it says anything at all) cannot make parley hold memory, descriptors or session
//! slots, and every bad input gets a clear 4xx or close code. The figures the issue asks for (RSS under the
//! giant header, descriptors under slow bodies) are printed with `--nocapture`.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::process::{self, parley, rss_mib};
use crate::helpers::raw_ws::{Got, RawWs};
use crate::helpers::voice::{Event, spawn_voice_app_with};
use crate::helpers::{TestDb, spawn_app, spawn_app_with, token_for};

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn port_of(address: &str) -> u16 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

/// Opens a session as `user` on a raw socket and reads its `session` message.
async fn raw_session(port: u16, user: &str) -> RawWs {
    raw_session_with_id(port, user).await.0
}

/// [`raw_session`] and the session's id.
async fn raw_session_with_id(port: u16, user: &str) -> (RawWs, String) {
    let path = format!("/ws/chat-audio?token={}", token_for(user));
    let mut ws = RawWs::connect(port, &path, &[]).await.expect("upgrade");
    match ws.next(Duration::from_secs(15), true).await {
        Got::Text(t) if t.contains("\"session\"") => {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            let id = v["sessionId"].as_str().unwrap().to_string();
            (ws, id)
        }
        other => panic!("expected the session message, got {other:?}"),
    }
}

#[actix_web::test]
async fn a_frame_header_announcing_a_terabyte_is_refused_at_once_and_memory_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = parley(&[("RUST_LOG", "warn")], dir.path());
    cmd.arg("--emulate");
    let server = process::start(cmd);
    let pid = server.child.id();
    let mut ws = raw_session(server.port, "giant").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_mib(pid);
    // The header announces 2^40 bytes; then data streams for a second, as fast as the socket takes it.
    ws.send(&RawWs::header(0x2, 1 << 40, false)).await.unwrap();
    let chunk = vec![0x55u8; 1 << 20];
    let started = Instant::now();
    let mut streamed = 0usize;
    let mut peak = before;
    while started.elapsed() < Duration::from_secs(1) {
        match tokio::time::timeout(Duration::from_millis(100), ws.send(&chunk)).await {
            Ok(Ok(())) => streamed += chunk.len(),
            Ok(Err(_)) => break, // the server has closed the connection
            Err(_) => {}         // nobody is reading: the kernel buffers are full
        }
        peak = peak.max(rss_mib(pid));
    }
    let code = ws.close_code(Duration::from_secs(5)).await;
    peak = peak.max(rss_mib(pid));
    eprintln!(
        "giant header: RSS {before:.1} MiB before, {peak:.1} MiB peak after streaming {:.1} MiB behind it",
        streamed as f64 / (1 << 20) as f64
    );
    assert_eq!(code, Some(1009), "the oversized frame is refused with 1009 when its header is read");
    assert!(peak - before < 16.0, "memory grew by {:.1} MiB", peak - before);
    // The server is unharmed: another session opens and answers.
    let mut other = raw_session(server.port, "bystander").await;
    other.send(&RawWs::frame(0x1, br#"{"type":"ping"}"#)).await.unwrap();
    loop {
        match other.next(Duration::from_secs(10), true).await {
            Got::Text(t) if t.contains("\"pong\"") => break,
            Got::Text(_) => {}
            got => panic!("no pong: {got:?}"),
        }
    }
    let (status, log) = server.stop(libc::SIGTERM);
    assert!(status.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[actix_web::test]
async fn a_fragmented_message_growing_past_the_limit_is_refused_with_1009() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |_| {}).await;
    let mut ws = raw_session(port_of(&v.app.address), "fragments").await;
    // Fragments of 512 KiB each: no single frame is too big, the message is.
    let piece = vec![0u8; 512 << 10];
    let mut first = true;
    let mut refused = None;
    for _ in 0..64 {
        let opcode = if first { 0x2 } else { 0x0 };
        first = false;
        let mut frame = RawWs::header(opcode, piece.len() as u64, true);
        frame.extend_from_slice(&piece);
        if ws.send(&frame).await.is_err() {
            break;
        }
        if let Got::Close(code, _) = ws.next(Duration::from_millis(10), true).await {
            refused = Some(code);
            break;
        }
    }
    let code = match refused {
        Some(code) => Some(code),
        None => ws.close_code(Duration::from_secs(5)).await,
    };
    assert_eq!(code, Some(1009));
    v.stop().await;
}

#[actix_web::test]
async fn text_that_is_not_utf8_is_closed_with_1007() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |_| {}).await;
    let mut ws = raw_session(port_of(&v.app.address), "bytes").await;
    ws.send(&RawWs::frame(0x1, &[b'{', 0xff, 0xfe, b'}'])).await.unwrap();
    assert_eq!(ws.close_code(Duration::from_secs(5)).await, Some(1007));
    v.stop().await;
}

#[actix_web::test]
async fn a_client_that_stops_reading_is_closed_with_1008_and_its_turn_is_stored_interrupted() {
    let v = spawn_voice_app_with(TestDb::Postgres, |env| {
        env.insert("PARLEY_MAX_CLIENT_BUFFER_BYTES".into(), "65536".into());
        env.insert("PARLEY_CLIENT_WRITE_TIMEOUT_SECS".into(), "3".into());
        // PCM output: the most bytes per second of speech.
        env.insert("ELEVENLABS_OUTPUT_FORMAT".into(), "pcm_16000".into());
        // Audio paced as a listener plays it, so the reply is still going when the client is dropped.
        env.insert("PARLEY_AUDIO_LEAD_MS".into(), "500".into());
    })
    .await;
    v.emulators.elevenlabs().set_realtime_pacing(true);
    v.emulators.openai().push_reply(parley::emulators::Reply::Text(
        "Here is a long answer. It goes on for a while, sentence after sentence, so that there is far more \
         audio than a client that never reads could be allowed to leave waiting. And it keeps going."
            .into(),
    ));
    let (mut ws, session) = raw_session_with_id(port_of(&v.app.address), "sloth").await;
    ws.send(&RawWs::frame(0x1, json!({"type": "text", "text": "Tell me everything."}).to_string().as_bytes()))
        .await
        .unwrap();
    // Not reading anything for a while (no pongs either).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let code = loop {
        match ws.next(Duration::from_secs(15), false).await {
            Got::Close(code, reason) => {
                assert!(!reason.is_empty(), "the close says why");
                break Some(code);
            }
            Got::End | Got::Timeout => break None,
            _ => {}
        }
    };
    assert_eq!(code, Some(1008), "a client that does not read is closed with 1008");
    // The reply is stored, marked as cut short.
    let deadline = Instant::now() + Duration::from_secs(15);
    let reply = loop {
        let (_, history) = v.app.get_json(&format!("/api/history?sessionId={session}")).await;
        if let Some(reply) = history["messages"].as_array().and_then(|m| m.get(1)).cloned() {
            break reply;
        }
        assert!(Instant::now() < deadline, "the reply was never stored: {history}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["outcome"], "interrupted", "{reply}");
    v.stop().await;
}

#[actix_web::test]
async fn an_idle_session_is_told_why_and_closed_with_a_close_frame() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_IDLE_TIMEOUT_SECS".into(), "2".into());
    })
    .await;
    let mut c = v.connect("userId=idler").await;
    let status = c.expect("status").await;
    assert!(status["message"].as_str().unwrap().contains("2 seconds"), "{status}");
    let closed = c.until("the close", |e| matches!(e, Event::Closed(_))).await;
    assert!(matches!(closed, Event::Closed(Some(1000))), "{closed:?}");
    crate::helpers::voice::wait_for_live_sessions(&v.app, 0).await;
    v.stop().await;
}

#[actix_web::test]
async fn a_session_in_use_is_not_idle_but_ends_at_its_time_limit() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_IDLE_TIMEOUT_SECS".into(), "2".into());
        env.insert("PARLEY_MAX_SESSION_SECS".into(), "5".into());
    })
    .await;
    let mut c = v.connect("userId=talker").await;
    let started = Instant::now();
    // Speaking (a message every second) keeps it from being idle...
    let closed = loop {
        c.send_json(json!({"type": "ping"})).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        let mut closed = None;
        while let Some(e) = c.next(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
            if let Event::Closed(code) = e {
                closed = Some(code);
                break;
            }
        }
        if let Some(code) = closed {
            break code;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", c.summary());
    };
    // ...until the session's time is up.
    assert!(started.elapsed() >= Duration::from_secs(4), "closed after {:?}", started.elapsed());
    assert_eq!(closed, Some(1001));
    let status = c.events("status");
    assert!(status.iter().any(|s| s["message"].as_str().unwrap().contains("5 seconds")), "{:?}", c.summary());
    v.stop().await;
}

#[actix_web::test]
async fn a_client_that_answers_nothing_gets_a_close_frame_after_the_heartbeat_timeout() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |_| {}).await;
    let mut ws = raw_session(port_of(&v.app.address), "mute").await;
    // Read everything, answer no ping, send nothing: gone within 30 s, with a close frame (1008 when its
    // unanswered probes are taken as not reading, 1001 when it is taken as gone).
    let deadline = Instant::now() + Duration::from_secs(45);
    let code = loop {
        match ws.next(Duration::from_secs(45), false).await {
            Got::Close(code, _) => break Some(code),
            Got::End | Got::Timeout => break None,
            _ => assert!(Instant::now() < deadline),
        }
    };
    assert!(matches!(code, Some(1001 | 1008)), "{code:?}");
    v.stop().await;
}

/// Sends `head` then the body one byte every 500 ms; returns the status line and body the server answers
/// with, and how long it took.
async fn trickle(port: u16, head: &str, body: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    for b in body {
        if s.write_all(&[*b]).await.is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut answer)).await;
    (String::from_utf8_lossy(&answer).to_string(), started.elapsed())
}

#[actix_web::test]
async fn a_request_body_or_head_sent_too_slowly_gets_408_and_frees_its_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let server = process::start(parley(&[("RUST_LOG", "warn"), ("PARLEY_REQUEST_TIMEOUT_SECS", "2")], dir.path()));
    let (pid, port) = (server.child.id(), server.port);
    let body = br#"{"sessionId":"00000000-0000-0000-0000-000000000000","turnId":1,"rating":1}"#;
    let head = format!(
        "POST /api/feedback HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        crate::helpers::OPERATOR_KEY,
        body.len()
    );
    // One body: a clear 408, in about the timeout.
    let (answer, took) = trickle(port, &head, body).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "a JSON body: {answer}");
    assert!(took < Duration::from_secs(8), "{took:?}");

    // Hundreds at once, half trickling bodies and half trickling heads: all are cut, the server still serves.
    let baseline = open_descriptors(pid);
    let slow: Vec<_> = (0..300)
        .map(|n| {
            let head = head.clone();
            actix_web::rt::spawn(async move {
                if n % 2 == 0 {
                    trickle(port, &head, body).await
                } else {
                    trickle(port, "GET /api/sessions HTTP/1.1\r\n", b"Host: slowloris-header-trickle\r\n").await
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let during = open_descriptors(pid);
    let healthz = process::client().get(server.url("/healthz")).send().await.unwrap().status();
    assert_eq!(healthz, 200, "the server serves others while 300 clients trickle");
    for s in slow {
        s.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = open_descriptors(pid);
    eprintln!("slow bodies: descriptors {baseline} before, {during} with 300 trickling clients, {after} after");
    assert!(after <= baseline + 5, "descriptors were not freed: {baseline} -> {after}");
    let (status, log) = server.stop(libc::SIGTERM);
    assert!(status.success(), "{log}");
}

#[actix_web::test]
async fn drain_refuses_new_sessions_and_sends_the_last_save_and_turn_end_before_closing() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_SHUTDOWN_DRAIN_SECS".into(), "1".into());
    })
    .await;
    // A reply long enough to outlast the drain.
    v.emulators.openai().set_timing(Duration::from_millis(10), Duration::from_millis(150));
    let mut c = v.connect("userId=drained").await;
    c.say("Tell me a long story.").await;
    c.expect("assistantText").await;
    let port = port_of(&v.app.address);
    let crate::helpers::voice::VoiceApp { app, emulators } = v;
    let stopping = actix_web::rt::spawn(app.stop());
    c.expect("status").await;
    // A new session during the drain is refused at once.
    let refused = tokio::time::timeout(
        Duration::from_secs(2),
        crate::helpers::voice::VoiceClient::try_open(port, "userId=latecomer"),
    )
    .await
    .expect("answered at once, not left hanging");
    assert!(refused.err().expect("refused").contains("503"));
    // The cut turn ends, its reply is saved, and only then does the close come.
    let closed = c.until("the close", |e| matches!(e, Event::Closed(_))).await;
    assert!(matches!(closed, Event::Closed(Some(1001))), "{closed:?}");
    let end = c.events("turnEnd");
    assert_eq!(end.len(), 1, "{:?}", c.summary());
    assert_eq!(end[0]["interrupted"], true, "the drain cut the turn: {:?}", c.summary());
    let saved: Vec<_> = c.events("messageSaved").iter().map(|m| m["role"].as_str().unwrap().to_string()).collect();
    assert_eq!(saved, ["user", "assistant"], "{:?}", c.summary());
    stopping.await.unwrap().expect("clean exit");
    emulators.stop().await;
}

#[actix_web::test]
async fn a_burst_past_the_session_limit_is_refused_with_503_before_any_upgrade() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_MAX_SESSIONS".into(), "3".into());
    })
    .await;
    let port = port_of(&v.app.address);
    let attempts: Vec<_> = (0..12)
        .map(|n| {
            actix_web::rt::spawn(async move {
                RawWs::connect(port, &format!("/ws/chat-audio?token={}", token_for(&format!("burst{n}"))), &[]).await
            })
        })
        .collect();
    let mut opened = Vec::new();
    let mut refused = Vec::new();
    for a in attempts {
        match a.await.unwrap() {
            Ok(ws) => opened.push(ws),
            Err(status) => refused.push(status),
        }
    }
    assert_eq!(opened.len(), 3, "refused: {refused:?}");
    assert!(refused.iter().all(|s| s.contains(" 503")), "{refused:?}");
    // Those admitted are real sessions, none closed afterwards with 1013.
    for ws in &mut opened {
        match ws.next(Duration::from_secs(10), true).await {
            Got::Text(t) => assert!(t.contains("\"session\""), "{t}"),
            got => panic!("{got:?}"),
        }
    }
    v.stop().await;
}

/// Every kind of bad parameter on every route is a 4xx with a JSON body, never a 500 (PostgreSQL rejects
/// NUL in text, and timestamps outside its range).
async fn bad_parameters_are_client_errors(db: TestDb) {
    let app = spawn_app(db).await;
    let nul_cursor = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"\0\0\0")
    };
    let far_cursor = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(b"999999999999999999|00000000-0000-0000-0000-000000000000")
    };
    let paths = [
        "/api/history?sessionId=%00".to_string(),
        "/api/history?sessionId=00000000-0000-0000-0000-000000000000%00".to_string(),
        "/api/history?userId=a%00b".to_string(),
        "/api/sessions?userId=%00".to_string(),
        format!("/api/sessions?cursor={nul_cursor}"),
        format!("/api/sessions?cursor={far_cursor}"),
        "/api/sessions?cursor=%00%ff".to_string(),
        "/api/sessions?limit=-1".to_string(),
        "/api/sessions?limit=99999999999999999999".to_string(),
        "/api/recordings?sessionId=%00".to_string(),
        "/audio_recordings/u/00000000-0000-0000-0000-000000000000/%00".to_string(),
        "/audio_recordings/%00/%00/%00?exp=1&sig=x".to_string(),
    ];
    for path in &paths {
        let (status, body) = app.get_json(path).await;
        assert!((400..500).contains(&status), "{path}: {status} {body}");
        assert!(body["error"].is_object() || body["error"].is_string(), "{path}: a JSON error: {body}");
    }
    for body in [
        json!({"sessionId": "\u{0}", "turnId": 1, "rating": 1}),
        json!({"sessionId": "00000000-0000-0000-0000-000000000000", "turnId": 1, "rating": 1, "comment": "a\u{0}b"}),
        json!({"sessionId": "00000000-0000-0000-0000-000000000000", "turnId": -5, "rating": 1}),
    ] {
        let (status, answer) = app.post_raw("/api/feedback", "application/json", &body.to_string()).await;
        assert!((400..500).contains(&status), "{body}: {status} {answer}");
    }
    app.stop().await.unwrap();
}

#[actix_web::test]
async fn bad_parameters_are_client_errors_on_sqlite() {
    bad_parameters_are_client_errors(TestDb::Sqlite).await;
}

#[actix_web::test]
async fn bad_parameters_are_client_errors_on_postgres() {
    bad_parameters_are_client_errors(TestDb::Postgres).await;
}

#[actix_web::test]
async fn an_oversized_uri_or_header_gets_a_json_error() {
    let app = spawn_app_with(TestDb::Sqlite, |_| {}).await;
    let port = port_of(&app.address);
    for request in [
        format!("GET /api/sessions?x={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(40_000)),
        format!("GET /api/sessions HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(40_000)),
    ] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let _ = s.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    }
    app.stop().await.unwrap();
}
