//! Sockets that end before any audio of a context: a plain TCP drop and a 1008 policy close, each right
//! after the first text of a context, each taken by one connection, so a client that reconnects and sends
//! the text again gets its audio.

use super::*;

/// A single-context or multi-context socket speaking pcm_16000.
async fn open(e: &Emulators, multi: bool) -> Ws {
    if multi {
        super::multi(e, "output_format=pcm_16000").await
    } else {
        single(e, "output_format=pcm_16000", true).await
    }
}

/// Sends a context's first text; returns what came back until the socket ended, and how it ended.
async fn first_text(ws: &mut Ws, multi: bool) -> (Vec<String>, Next) {
    if multi {
        ws.text(r#"{"text":"Book a table for two. ","context_id":"turn-1","flush":true}"#).await;
    } else {
        ws.text(r#"{"text":" "}"#).await;
        ws.text(r#"{"text":"Book a table for two. ","flush":true}"#).await;
    }
    ws.texts_until_end(SOON).await
}

/// The same text on a fresh connection gets audio for all of it.
async fn resend_gets_audio(e: &Emulators, multi: bool) {
    let mut ws = open(e, multi).await;
    if multi {
        ws.text(r#"{"text":"Book a table for two. ","context_id":"turn-1","flush":true}"#).await;
        ws.text(r#"{"context_id":"turn-1","close_context":true}"#).await;
        ws.text(r#"{"close_socket":true}"#).await;
    } else {
        ws.text(r#"{"text":" "}"#).await;
        ws.text(r#"{"text":"Book a table for two. ","flush":true}"#).await;
        ws.text(r#"{"text":""}"#).await;
    }
    let (texts, end) = ws.texts_until_end(SOON).await;
    assert_eq!(spoken(&parse(&texts)), "Book a table for two. ");
    assert_eq!(end, Next::Close(Some((1000, String::new()))));
}

#[actix_web::test]
async fn a_drop_before_any_audio_of_a_context_leaves_no_close_frame_and_a_reconnect_gets_the_audio() {
    let e = start().await;
    for multi in [false, true] {
        e.elevenlabs().push_fault(ElevenLabsFault::DropBeforeAudio);
        let (texts, end) = first_text(&mut open(&e, multi).await, multi).await;
        assert!(texts.is_empty(), "nothing before the drop: {texts:?}");
        assert_eq!(end, Next::Ended, "no Close frame");
        resend_gets_audio(&e, multi).await;
    }
    let log = e.elevenlabs().ws_connections();
    assert!(log[0].dropped && log[2].dropped && log[0].audio_bytes_sent == 0 && log[2].audio_bytes_sent == 0);
    assert!(!log[1].dropped && !log[3].dropped);
    e.stop().await;
}

#[actix_web::test]
async fn a_policy_close_before_any_audio_of_a_context_is_1008_and_a_reconnect_gets_the_audio() {
    let e = start().await;
    for multi in [false, true] {
        e.elevenlabs().push_fault(ElevenLabsFault::CloseBeforeAudio);
        let (texts, end) = first_text(&mut open(&e, multi).await, multi).await;
        let msgs = parse(&texts);
        assert_eq!(msgs.len(), 1, "only the error: {texts:?}");
        assert_eq!(msgs[0].error.as_deref(), Some("max_active_conversations"));
        assert_eq!(msgs[0].code, Some(1008));
        assert!(matches!(end, Next::Close(Some((1008, _)))), "{end:?}");
        resend_gets_audio(&e, multi).await;
    }
    assert!(e.elevenlabs().ws_connections().iter().step_by(2).all(|c| c.audio_bytes_sent == 0));
    e.stop().await;
}
