//! Deepgram emulator refusals (raw HTTP handshakes), the idle timeout and every injected fault.

use super::*;

#[actix_web::test]
async fn a_bad_key_is_refused_before_the_upgrade_with_401_json_dg_error_and_request_id() {
    let e = start().await;
    let host = authority(&e.deepgram_base_url());
    for headers in [vec![("Authorization", "Token wrong")], vec![]] {
        let r = handshake(&host, &upgrade("/v1/listen", &host, &headers)).await;
        assert_eq!(r.status, 401);
        let body = r.json();
        assert_eq!(body["err_code"], "INVALID_AUTH");
        assert_eq!(body["err_msg"], "Invalid credentials.");
        assert_eq!(r.header("dg-error"), Some("Invalid credentials."));
        assert_eq!(r.header("dg-request-id"), body["request_id"].as_str());
    }
    assert_eq!(e.deepgram().connections()[0].refused, Some(401));
    e.stop().await;
}

#[actix_web::test]
async fn bad_parameters_and_injected_refusals_get_their_status_before_the_upgrade() {
    let e = start().await;
    let host = authority(&e.deepgram_base_url());
    let auth = token();
    for (query, status) in
        [("encoding=linear16", 400), ("model=nova-9", 400), ("language=english", 400), ("sample_rate=fast", 400)]
    {
        let r = handshake(&host, &upgrade(&format!("/v1/listen?{query}"), &host, &[("Authorization", &auth)])).await;
        assert_eq!(r.status, status, "{query}");
        assert_eq!(r.json()["err_code"], "Bad Request");
        assert!(r.header("dg-error").is_some());
    }
    e.deepgram().push_fault(DeepgramFault::RefuseUpgrade(429));
    let r = handshake(&host, &upgrade("/v1/listen", &host, &[("Authorization", &auth)])).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["err_code"], "TOO_MANY_REQUESTS");
    e.stop().await;
}

#[actix_web::test]
async fn idle_sockets_close_1011_net0001_text_keepalives_reset_the_timer_binary_ones_do_not() {
    let e = start().await;
    e.deepgram().set_idle_timeout(Duration::from_millis(600));
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000").await;
    let opened = Instant::now();
    let mut last_keepalive = opened;
    // Text KeepAlives every 200 ms for 1.2 s keep the socket open past twice the timeout.
    while opened.elapsed() < Duration::from_millis(1200) {
        ws.text(r#"{"type":"KeepAlive"}"#).await;
        last_keepalive = Instant::now();
        assert_eq!(ws.next(Duration::from_millis(200)).await, Next::Timeout, "closed despite keepalives");
    }
    // Binary KeepAlives are not keepalives: the close comes one timeout after the last text one.
    let end = loop {
        ws.binary(br#"{"type":"KeepAlive"}"#.to_vec()).await;
        match ws.next(Duration::from_millis(150)).await {
            Next::Timeout => continue,
            other => break other,
        }
    };
    assert_eq!(end, Next::Close(Some((1011, NET_0001_REASON.to_string()))));
    let waited = last_keepalive.elapsed();
    assert!(waited >= Duration::from_millis(590) && waited < Duration::from_secs(3), "{waited:?}");
    let log = &e.deepgram().connections()[0];
    assert!(!log.binary_control_frames.is_empty());
    assert_eq!(log.audio_bytes, 0);
    assert_eq!(log.close_sent.as_ref().map(|c| c.0), Some(1011));
    e.stop().await;
}

#[actix_web::test]
async fn close_1011_and_abrupt_drop_faults_fire_after_the_given_audio() {
    let e = start().await;
    e.deepgram().push_fault(DeepgramFault::Close1011AfterAudio(Duration::from_millis(500)));
    e.deepgram().push_fault(DeepgramFault::DropAfterAudio(Duration::from_millis(500)));
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000").await;
    stream_audio(&mut ws, &silence(0.6, RATE), RATE).await;
    let (_, end) = ws.texts_until_end(SOON).await;
    assert!(
        matches!(end, Next::Close(Some((1011, ref r))) if r.contains("NET-0000") || r.contains("net0000")),
        "{end:?}"
    );
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000").await;
    stream_audio(&mut ws, &silence(0.6, RATE), RATE).await;
    let (_, end) = ws.texts_until_end(SOON).await;
    assert_eq!(end, Next::Ended, "a drop sends no Close frame");
    assert!(e.deepgram().connections()[1].dropped);
    e.stop().await;
}

#[actix_web::test]
async fn undecodable_audio_fault_closes_1008_data0000() {
    let e = start().await;
    e.deepgram().push_fault(DeepgramFault::UndecodableAudio);
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000").await;
    ws.binary(b"this is not audio".to_vec()).await;
    let (_, end) = ws.texts_until_end(SOON).await;
    assert!(matches!(end, Next::Close(Some((1008, ref r))) if r.starts_with("DATA-0000")), "{end:?}");
    e.stop().await;
}

#[actix_web::test]
async fn error_frames_and_unknown_types_are_sent_and_the_stream_carries_on() {
    let e = start().await;
    e.deepgram().push_fault(DeepgramFault::ErrorFrame);
    e.deepgram().push_fault(DeepgramFault::UnknownType);
    for expected in ["error", "unknown"] {
        let mut ws = connect(&e, "encoding=linear16&sample_rate=16000&endpointing=100").await;
        let mut audio = tone(0.3, RATE);
        audio.extend(silence(0.3, RATE));
        stream_audio(&mut ws, &audio, RATE).await;
        let texts = ws.texts_until(SOON, |t| t.contains("\"is_final\":true")).await;
        let kinds: Vec<_> = parse(&texts).iter().map(kind).collect();
        assert_eq!(kinds, [expected, "final"]);
    }
    e.stop().await;
}

#[actix_web::test]
async fn empty_finals_fault_keeps_interim_text_but_finals_are_empty() {
    let e = start().await;
    e.deepgram().push_fault(DeepgramFault::EmptyFinals);
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000&interim_results=true&endpointing=100").await;
    let mut audio = tone(1.0, RATE);
    audio.extend(silence(0.3, RATE));
    stream_audio(&mut ws, &audio, RATE).await;
    let texts = ws.texts_until(SOON, |t| t.contains("\"is_final\":true")).await;
    let msgs = parse(&texts);
    assert!(msgs.iter().any(|m| matches!(m, ServerMessage::Results(r) if !r.is_final && !r.transcript().is_empty())));
    assert!(matches!(msgs.last(), Some(ServerMessage::Results(r)) if r.transcript().is_empty() && r.speech_final));
    e.stop().await;
}

#[actix_web::test]
async fn garbage_text_is_ignored_a_huge_frame_closes_1009_and_other_connections_are_unharmed() {
    let e = start().await;
    let mut other = connect(&e, "encoding=linear16&sample_rate=16000").await;
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000").await;
    ws.text("{{{ not json").await;
    ws.text(r#"{"type":"Nonsense"}"#).await;
    ws.binary(vec![1; 5 * 1024 * 1024]).await;
    let (_, end) = ws.texts_until_end(SOON).await;
    assert!(matches!(end, Next::Close(Some((1009, _))) | Next::Ended), "{end:?}");
    stream_audio(&mut other, &silence(0.2, RATE), RATE).await;
    other.text(r#"{"type":"CloseStream"}"#).await;
    let (texts, end) = other.texts_until_end(SOON).await;
    assert_eq!(texts.len(), 1);
    assert_eq!(end, Next::Close(Some((1000, String::new()))));
    e.stop().await;
}

/// The Deepgram socket on a bare TCP client, which can tell a FIN from a reset.
async fn raw(e: &Emulators, query: &str) -> RawWs {
    let host = authority(&e.deepgram_base_url());
    RawWs::connect(&host, &format!("/v1/listen?{query}"), &[("Authorization", &token())]).await
}

#[actix_web::test]
async fn a_drop_mid_utterance_follows_an_interim_with_words_and_a_reconnecting_client_replaying_the_audio_is_heard() {
    let e = start().await;
    let dg = e.deepgram();
    for _ in 0..4 {
        dg.push_script(vec!["Book a table for two.".into()]);
    }
    let mut utterance = tone(1.5, RATE);
    utterance.extend(silence(0.5, RATE));
    let after = Duration::from_millis(900);
    for (fault, expected_end) in
        [(DeepgramFault::DropAfterAudio(after), RawNext::Eof), (DeepgramFault::ResetAfterAudio(after), RawNext::Reset)]
    {
        dg.push_fault(fault.clone());
        // Speech from the first sample; the fault fires at 0.9 s of audio, mid-word, after the 0.5 s interim.
        // Exactly that much audio is sent, so the server has read everything when it ends the connection.
        let mut ws = raw(&e, FULL).await;
        for frame in utterance[..(0.9 * f64::from(RATE)) as usize * 2].chunks(640) {
            assert!(ws.send_binary(frame).await);
        }
        let (frames, end) = ws.frames_until_end(SOON).await;
        assert_eq!(end, expected_end, "{fault:?}: how the connection ended");
        let texts: Vec<String> = frames
            .iter()
            .map(|f| match f {
                RawFrame::Text(t) => t.clone(),
                other => panic!("{fault:?}: only text frames before the drop, no Close: {other:?}"),
            })
            .collect();
        let msgs = parse(&texts);
        assert!(
            msgs.iter().any(|m| matches!(m, ServerMessage::Results(r) if !r.is_final && !r.transcript().is_empty())),
            "{fault:?}: an interim with words came first: {texts:#?}"
        );
        assert!(!msgs.iter().any(|m| matches!(m, ServerMessage::Results(r) if r.is_final)), "{fault:?}: no final");
        // The client reconnects and replays the utterance: the next connection works normally.
        let mut ws = connect(&e, FULL).await;
        stream_audio(&mut ws, &utterance, RATE).await;
        let texts = ws.texts_until(SOON, |t| t.contains("\"speech_final\":true")).await;
        let Some(ServerMessage::Results(fin)) = parse(&texts).pop() else { panic!("{texts:?}") };
        assert_eq!(fin.transcript(), "Book a table for two.", "{fault:?}");
        ws.text(r#"{"type":"CloseStream"}"#).await;
        let (_, end) = ws.texts_until_end(SOON).await;
        assert_eq!(end, Next::Close(Some((1000, String::new()))), "{fault:?}");
    }
    let c = dg.connections();
    assert!(c[0].dropped && c[2].dropped && !c[1].dropped && !c[3].dropped);
    e.stop().await;
}
