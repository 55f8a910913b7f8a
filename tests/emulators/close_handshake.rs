//! The end of the closing handshake on both WebSocket emulators, seen from a raw TCP client: RFC 6455 §7.1.1
//! wants the server to close the TCP connection at once, after replying to the client's Close frame or after
//! receiving the client's reply to its own. SDKs wait for that end, so any delay here shows up as a slow close.

use std::time::{Duration, Instant};

use parley::emulators::{DEEPGRAM_KEY, ELEVENLABS_KEY, Emulators};

use crate::helpers::{RawFrame, RawNext, RawWs, SOON, authority, start};

/// Generous bound for "at once" on a loaded machine; the bug this guards against took about 1 s.
const AT_ONCE: Duration = Duration::from_millis(300);

async fn deepgram(e: &Emulators) -> RawWs {
    let auth = format!("Token {DEEPGRAM_KEY}");
    let host = authority(&e.deepgram_base_url());
    RawWs::connect(&host, "/v1/listen?encoding=linear16&sample_rate=16000", &[("Authorization", &auth)]).await
}

async fn elevenlabs(e: &Emulators) -> RawWs {
    let host = authority(&e.elevenlabs_base_url());
    RawWs::connect(
        &host,
        "/v1/text-to-speech/v/stream-input?output_format=pcm_16000",
        &[("xi-api-key", ELEVENLABS_KEY)],
    )
    .await
}

/// Reads until the server's Close frame; returns its code.
async fn until_close(ws: &mut RawWs) -> u16 {
    loop {
        match ws.next(SOON).await {
            RawNext::Frame(RawFrame::Close(code, _)) => return code,
            RawNext::Frame(_) => {}
            other => panic!("connection ended before the server's Close frame: {other:?}"),
        }
    }
}

/// Time until the server ends the TCP connection, which must be an orderly FIN with nothing after the Close.
async fn time_to_eof(ws: &mut RawWs, since: Instant) -> Duration {
    let end = ws.next(SOON).await;
    let took = since.elapsed();
    assert_eq!(end, RawNext::Eof, "after the closing handshake only the end of the stream may follow");
    took
}

/// Client sends Close, server answers with its own: the TCP connection must end right after the answer.
async fn client_initiated(mut ws: RawWs) -> Duration {
    assert!(ws.send_close(1000, "bye").await);
    assert_eq!(until_close(&mut ws).await, 1000);
    time_to_eof(&mut ws, Instant::now()).await
}

#[actix_web::test]
async fn both_sockets_end_the_tcp_connection_at_once_after_answering_a_client_close() {
    let e = start().await;
    let took = client_initiated(deepgram(&e).await).await;
    assert!(took < AT_ONCE, "Deepgram kept the connection {took:?} after its Close reply");
    let took = client_initiated(elevenlabs(&e).await).await;
    assert!(took < AT_ONCE, "ElevenLabs kept the connection {took:?} after its Close reply");
    e.stop().await;
}

#[actix_web::test]
async fn both_sockets_end_the_tcp_connection_at_once_when_the_client_answers_their_close() {
    let e = start().await;
    // Deepgram closes after CloseStream (Metadata, then Close 1000).
    let mut ws = deepgram(&e).await;
    assert!(ws.send_text(r#"{"type":"CloseStream"}"#).await);
    assert_eq!(until_close(&mut ws).await, 1000);
    assert!(ws.send_close(1000, "").await);
    let took = time_to_eof(&mut ws, Instant::now()).await;
    assert!(took < AT_ONCE, "Deepgram kept the connection {took:?} after the client's Close reply");
    // ElevenLabs closes after the end of input (isFinal, then Close 1000).
    let mut ws = elevenlabs(&e).await;
    assert!(ws.send_text(r#"{"text":" "}"#).await);
    assert!(ws.send_text(r#"{"text":"Hi. "}"#).await);
    assert!(ws.send_text(r#"{"text":""}"#).await);
    assert_eq!(until_close(&mut ws).await, 1000);
    assert!(ws.send_close(1000, "").await);
    let took = time_to_eof(&mut ws, Instant::now()).await;
    assert!(took < AT_ONCE, "ElevenLabs kept the connection {took:?} after the client's Close reply");
    assert!(e.deepgram().wait_until(|c| c.iter().all(|c| !c.open), SOON).await);
    e.stop().await;
}

#[actix_web::test]
async fn a_client_that_never_answers_the_servers_close_is_not_held_for_long() {
    let e = start().await;
    let mut ws = deepgram(&e).await;
    assert!(ws.send_text(r#"{"type":"CloseStream"}"#).await);
    assert_eq!(until_close(&mut ws).await, 1000);
    let sent = Instant::now();
    let end = ws.next(SOON).await;
    assert_eq!(end, RawNext::Eof);
    assert!(sent.elapsed() < Duration::from_secs(3), "{:?}", sent.elapsed());
    e.stop().await;
}
