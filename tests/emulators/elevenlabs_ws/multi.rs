//! ElevenLabs `multi-stream-input`: contexts, their own finals, keepalives and timeouts per context, the
//! five-context limit, close_socket and late audio after close_context.

use super::*;

#[actix_web::test]
async fn contexts_speak_independently_close_with_their_own_final_and_close_socket_ends_with_1000() {
    let e = start().await;
    let mut ws = multi(&e, "output_format=pcm_16000").await;
    ws.text(r#"{"text":" ","context_id":"t1","voice_settings":{"stability":0.5}}"#).await;
    ws.text(r#"{"text":"First turn. ","context_id":"t1","flush":true}"#).await;
    let t1 = ws.texts_until(SOON, |t| t.contains("\"audio\"")).await;
    assert_eq!(parse(&t1)[0].context_id.as_deref(), Some("t1"));
    ws.text(r#"{"context_id":"t1","close_context":true}"#).await;
    let closing = ws.texts_until(SOON, |t| t.contains("isFinal")).await;
    assert_eq!(parse(&closing).last().unwrap().context_id.as_deref(), Some("t1"));
    ws.text(r#"{"text":"","context_id":"t2"}"#).await; // a keepalive does not open a context
    ws.text(r#"{"text":"Second turn. ","context_id":"t2"}"#).await;
    ws.text(r#"{"close_socket":true}"#).await;
    let (texts, end) = ws.texts_until_end(SOON).await;
    let msgs = parse(&texts);
    assert_eq!(spoken(&msgs), "Second turn. ", "close_socket flushes pending text");
    assert!(msgs.last().unwrap().is_final() && msgs.last().unwrap().context_id.as_deref() == Some("t2"));
    assert_eq!(end, Next::Close(Some((1000, String::new()))));
    let log = &e.elevenlabs().ws_connections()[0];
    assert_eq!(log.contexts_opened, ["t1", "t2"]);
    assert_eq!(log.contexts_closed, ["t1"]);
    e.stop().await;
}

#[actix_web::test]
async fn a_sixth_context_is_refused_with_max_active_conversations() {
    let e = start().await;
    let mut ws = multi(&e, "").await;
    for i in 1..=6 {
        ws.text(&format!(r#"{{"text":" ","context_id":"c{i}"}}"#)).await;
    }
    let msg = expect_policy_close(&mut ws, "max_active_conversations").await;
    assert!(msg.contains("(5)"));
    assert_eq!(e.elevenlabs().ws_connections()[0].contexts_opened.len(), 5);
    e.stop().await;
}

#[actix_web::test]
async fn a_context_kept_alive_survives_while_an_idle_one_times_out() {
    let e = start().await;
    e.elevenlabs().set_inactivity_timeout(Some(Duration::from_millis(500)));
    let mut ws = multi(&e, "").await;
    ws.text(r#"{"text":" ","context_id":"a"}"#).await;
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(900) {
        ws.text(r#"{"text":"","context_id":"a"}"#).await;
        assert_eq!(ws.next(Duration::from_millis(150)).await, Next::Timeout);
    }
    ws.text(r#"{"text":" ","context_id":"b"}"#).await;
    let t = Instant::now();
    loop {
        ws.text(r#"{"text":"","context_id":"a"}"#).await;
        if ws.next(Duration::from_millis(150)).await != Next::Timeout {
            break;
        }
        assert!(t.elapsed() < SOON, "idle context b never timed out");
    }
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(e.elevenlabs().ws_connections()[0].close_sent.as_ref().map(|c| c.0), Some(1008));
    e.stop().await;
}

#[actix_web::test]
async fn late_audio_fault_sends_audio_after_close_context_before_its_final() {
    let e = start().await;
    e.elevenlabs().push_fault(ElevenLabsFault::LateAudioAfterClose);
    let mut ws = multi(&e, "output_format=pcm_16000").await;
    ws.text(r#"{"text":"Hello there. ","context_id":"t1","flush":true}"#).await;
    ws.texts_until(SOON, |t| t.contains("\"audio\"")).await;
    ws.text(r#"{"context_id":"t1","close_context":true}"#).await;
    let after = parse(&ws.texts_until(SOON, |t| t.contains("isFinal")).await);
    assert!(after.iter().any(|m| m.audio.is_some() && m.context_id.as_deref() == Some("t1")), "late frame");
    e.stop().await;
}
