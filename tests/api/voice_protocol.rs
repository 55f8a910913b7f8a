//! Bad input on the voice WebSocket: refused before the upgrade when it can be, an `error` event when the
//! session can go on, a close with the right code when it cannot; never harm to other sessions.

use serde_json::json;

use crate::helpers::TestDb;
use crate::helpers::voice::{Event, spawn_voice_app, spawn_voice_app_with};

#[actix_web::test]
async fn bad_connection_parameters_are_refused_before_the_upgrade() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    let mut owner = v.connect("userId=olivia").await;
    owner.say("hello").await;
    owner.expect("turnEnd").await;
    owner
        .until("stored", |e| matches!(e, Event::Json(v) if v["type"] == "messageSaved" && v["role"] == "assistant"))
        .await;
    let theirs = owner.session_id();
    for (query, status) in [
        ("".to_string(), "401"),
        ("userId=".to_string(), "401"),
        ("token=not.a.token".to_string(), "401"),
        (format!("token={}&userId=someone-else", crate::helpers::token_for("ok")), "403"),
        ("userId=ok&sampleRate=1000".to_string(), "400"),
        ("userId=ok&sampleRate=fast".to_string(), "400"),
        ("userId=ok&sessionId=not-a-uuid".to_string(), "400"),
        (format!("userId=ok&sessionId={}", parley::db::SessionId::generate()), "404"),
        (format!("userId=mallory&sessionId={theirs}"), "404"),
    ] {
        let err = v.try_connect(&query).await.err().unwrap_or_else(|| panic!("{query:?} must be refused"));
        assert!(err.contains(status), "{query:?}: {err}");
    }
    // Over plain HTTP the refusal carries the usual JSON error.
    let (status, body) = v.app.get_json(&format!("/ws/chat-audio?userId=mallory&sessionId={theirs}")).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("session_not_found")));
    let (status, body) = v.app.get_json("/ws/chat-audio?userId=x").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("not_a_websocket")));
    owner.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn protocol_violations_get_error_events_and_the_session_goes_on() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_MAX_AUDIO_FRAME_BYTES".into(), "4096".into());
        env.insert("PARLEY_MAX_TEXT_FRAME_BYTES".into(), "1024".into());
    })
    .await;
    let mut c = v.connect("userId=pat").await;
    let mut bystander = v.connect("userId=quinn").await;
    for (frame, code) in [
        ("{not json", "invalid_json"),
        (r#"{"type":"dance"}"#, "unknown_message_type"),
        (r#"{"text":"no type"}"#, "missing_type"),
        (r#"{"type":"text","text":42}"#, "invalid_message"),
        (r#"{"type":"text","text":"   "}"#, "invalid_message"),
    ] {
        c.send_text(frame).await;
        let e = c.expect("error").await;
        assert_eq!(e["code"], code, "{frame}: {e}");
        assert_eq!(e["retryable"], false);
        assert!(!e["error"].as_str().unwrap().is_empty());
    }
    c.send_text(&format!(r#"{{"type":"text","text":"{}"}}"#, "x".repeat(2000))).await;
    assert_eq!(c.expect("error").await["code"], "message_too_large");
    c.send_audio(&vec![0u8; 8000]).await;
    assert_eq!(c.expect("error").await["code"], "frame_too_large");
    c.send_json(json!({"type": "ping"})).await;
    c.expect("pong").await;
    c.say("still there?").await;
    assert_eq!(c.expect("turnEnd").await["interrupted"], false, "the session went on");

    // A frame beyond what the codec accepts cannot be read at all: the socket closes with 1009.
    c.send_audio(&vec![0u8; 4096 * 4 + 1]).await;
    let closed = c.until("the close", |e| matches!(e, Event::Closed(_))).await;
    assert!(matches!(closed, Event::Closed(Some(1009))), "{closed:?}");

    // The other session never noticed.
    bystander.say("and me?").await;
    assert_eq!(bystander.expect("turnEnd").await["interrupted"], false);
    assert!(bystander.events("error").is_empty());
    bystander.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn the_session_limit_refuses_new_sessions_with_503() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_MAX_SESSIONS".into(), "1".into());
    })
    .await;
    let mut first = v.connect("userId=rae").await;
    let err = v.try_connect("userId=sam").await.err().expect("the second session is refused");
    assert!(err.contains("503"), "{err}");
    first.close().await;
    first.until("the close", |e| matches!(e, Event::Closed(_))).await;
    crate::helpers::voice::wait_for_live_sessions(&v.app, 0).await;
    let mut later = v.connect("userId=sam").await;
    later.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn the_server_ends_the_tcp_connection_right_after_the_closing_handshake() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    let mut c = v.connect("userId=closer").await;
    c.close_normally().await;
    let reply = c.until("the server's close frame", |e| matches!(e, Event::Closed(_))).await;
    assert!(matches!(reply, Event::Closed(Some(1000))), "the server echoes the close: {reply:?}");
    // RFC 6455 §7.1.1: after the handshake the server closes the TCP connection first, at once.
    let replied = std::time::Instant::now();
    let end = c.next(std::time::Duration::from_secs(5)).await;
    let took = replied.elapsed();
    assert!(matches!(end, Some(Event::Closed(None))), "the stream ends: {end:?}");
    // parley lingers 100 ms; actix's default would be a second. 700 ms tells the two apart with room for a
    // loaded machine's scheduling.
    assert!(took < std::time::Duration::from_millis(700), "TCP stayed open {took:?} after the close handshake");
    v.stop().await;
}
