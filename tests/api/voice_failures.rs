//! Provider failures as a user meets them: auth and policy refusals are reported once as non-retryable and
//! never retried in a loop; rate limits, server errors and dropped connections are retried before the first
//! byte; a failure mid-stream ends the turn cleanly and the session carries on.

use std::time::Duration;

use parley::emulators::{DeepgramFault, ElevenLabsFault, OpenAiFault, Reply};

use serde_json::json;

use crate::helpers::TestDb;
use crate::helpers::voice::{Event, VoiceClient, spawn_voice_app, spawn_voice_app_with, utterance_pcm};

/// Runs a typed turn to its end; returns the error events it produced.
async fn turn(c: &mut VoiceClient, text: &str) -> Vec<serde_json::Value> {
    let before = c.events("error").len();
    c.say(text).await;
    let id = c.expect("userTurn").await["turnId"].clone();
    c.until("the turn's end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"] == id)).await;
    c.events("error")[before..].to_vec()
}

#[actix_web::test]
async fn an_llm_auth_failure_is_final_and_not_retried() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.openai().push_fault(OpenAiFault::Unauthorized);
    let mut c = v.connect("userId=al").await;
    let errors = turn(&mut c, "hello").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "openai_auth");
    assert_eq!(errors[0]["retryable"], false);
    assert!(errors[0]["error"].as_str().unwrap().starts_with("The language model is unavailable"));
    assert_eq!(v.emulators.openai().requests().len(), 1, "no retry after a 401");
    assert!(c.events("assistantText").is_empty());
    assert!(turn(&mut c, "again").await.is_empty(), "the session carries on");
    v.stop().await;
}

#[actix_web::test]
async fn rate_limits_and_server_errors_are_retried_before_the_first_token() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    let openai = v.emulators.openai();
    openai.push_fault(OpenAiFault::RateLimited { retry_after: Duration::from_millis(200) });
    openai.push_fault(OpenAiFault::ServerError);
    let mut c = v.connect("userId=bea").await;
    let errors = turn(&mut c, "are you there").await;
    assert!(errors.is_empty(), "{errors:?}");
    let requests = openai.requests();
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), vec![429, 500, 200]);
    assert_eq!(c.events("assistantText").len(), 3, "one clean answer, not repeated");
    v.stop().await;
}

#[actix_web::test]
async fn a_mid_stream_llm_error_ends_the_turn_with_what_was_said() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.openai().push_reply(Reply::Text("First sentence here. Second sentence follows. Third one.".into()));
    v.emulators.openai().push_fault(OpenAiFault::ErrorMidStream { after_deltas: 5 });
    let mut c = v.connect("userId=cy").await;
    let errors = turn(&mut c, "talk").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0]["code"].as_str().unwrap().starts_with("openai_"), "{errors:?}");
    assert_eq!(v.emulators.openai().requests().len(), 1, "no retry after tokens were delivered");
    let captions: Vec<&str> = c
        .log
        .iter()
        .filter_map(|e| match e {
            Event::Json(v) if v["type"] == "assistantText" => v["text"].as_str(),
            _ => None,
        })
        .collect();
    assert_eq!(captions.first(), Some(&"First sentence here."), "what was generated is still spoken");
    assert!(turn(&mut c, "and now?").await.is_empty(), "the session carries on");
    v.stop().await;
}

#[actix_web::test]
async fn a_stream_cut_without_done_is_a_truncation_not_a_success() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.openai().push_fault(OpenAiFault::CutAfter { after_deltas: 4 });
    let mut c = v.connect("userId=di").await;
    let errors = turn(&mut c, "hello there").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "openai_truncated");
    assert_eq!(errors[0]["retryable"], true);
    v.stop().await;
}

#[actix_web::test]
async fn a_missing_provider_key_is_a_clear_error_for_the_session_that_needs_it() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.remove("OPENAI_API_KEY");
        env.remove("ELEVENLABS_API_KEY");
    })
    .await;
    let mut c = v.connect("userId=ed").await;
    // The session says so from the start, naming what the operator must set.
    let providers = &c.session["providers"];
    assert_eq!(
        providers["stt"],
        json!({"provider": "deepgram", "status": "configured", "keyVariable": "DEEPGRAM_API_KEY"})
    );
    assert_eq!(providers["llm"], json!({"provider": "openai", "status": "missing", "keyVariable": "OPENAI_API_KEY"}));
    assert_eq!(
        providers["tts"],
        json!({"provider": "elevenlabs", "status": "missing", "keyVariable": "ELEVENLABS_API_KEY"})
    );
    let errors = turn(&mut c, "hello").await;
    let codes: Vec<&str> = errors.iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"openai_not_configured"), "{errors:?}");
    assert!(errors.iter().all(|e| e["retryable"] == false), "{errors:?}");
    assert!(errors[0]["error"].as_str().unwrap().contains("OPENAI_API_KEY"), "{errors:?}");
    assert!(v.emulators.openai().requests().is_empty());
    v.stop().await;
}

#[actix_web::test]
async fn a_refused_tts_key_is_reported_once_and_never_retried_in_a_loop() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.elevenlabs().push_fault(ElevenLabsFault::Unauthorized);
    let mut c = v.connect("userId=flo").await;
    let errors = turn(&mut c, "hello").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "elevenlabs_auth");
    assert_eq!(errors[0]["retryable"], false);
    assert!(!c.events("assistantText").is_empty(), "captions still arrive without audio");
    assert!(c.events("audioStart").is_empty());
    assert!(turn(&mut c, "and again").await.is_empty(), "reported once per session");
    assert_eq!(v.emulators.elevenlabs().ws_connections().len(), 1, "no reconnect loop after a policy close");
    v.stop().await;
}

#[actix_web::test]
async fn a_generic_tts_policy_close_is_not_retried() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.elevenlabs().push_fault(ElevenLabsFault::SomethingWentWrong);
    let mut c = v.connect("userId=gil").await;
    let errors = turn(&mut c, "hello").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "elevenlabs_policy");
    assert_eq!(errors[0]["retryable"], false);
    v.stop().await;
}

#[actix_web::test]
async fn a_tts_socket_dropped_mid_turn_ends_the_turn_and_the_next_one_reconnects() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.elevenlabs().push_fault(ElevenLabsFault::DropMidStream);
    let mut c = v.connect("userId=hu").await;
    let errors = turn(&mut c, "hello").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "elevenlabs_connect");
    assert_eq!(errors[0]["retryable"], true);
    assert!(turn(&mut c, "again").await.is_empty());
    assert!(!c.audio_of_turn(2).is_empty(), "the next turn has audio again");
    assert_eq!(v.emulators.elevenlabs().ws_connections().len(), 2);
    v.stop().await;
}

#[actix_web::test]
async fn http_tts_retries_a_429_before_the_first_byte() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("ELEVENLABS_USE_WEBSOCKET".into(), "false".into());
    })
    .await;
    v.emulators.openai().push_reply(Reply::Text("Just one sentence.".into()));
    v.emulators.elevenlabs().push_fault(ElevenLabsFault::TooManyRequests);
    let mut c = v.connect("userId=ida").await;
    assert!(turn(&mut c, "hello").await.is_empty());
    let statuses: Vec<u16> = v.emulators.elevenlabs().http_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200]);
    v.stop().await;
}

/// A sentence long enough that its with-timestamps body spans many lines.
const LONG_SENTENCE: &str = "This sentence is long enough that its audio arrives in many pieces over the wire.";

#[actix_web::test]
async fn an_http_tts_body_cut_short_is_never_taken_as_complete() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("ELEVENLABS_USE_WEBSOCKET".into(), "false".into());
    })
    .await;
    let (tts, openai) = (v.emulators.elevenlabs(), v.emulators.openai());
    let mut c = v.connect("userId=cut").await;
    openai.push_reply(Reply::Text(LONG_SENTENCE.into()));
    assert!(turn(&mut c, "whole").await.is_empty());
    let whole = tts.http_requests().last().unwrap().bytes_sent;
    let truncations = || async {
        let (_, _, text) = v.app.get_text("/metrics").await;
        crate::helpers::prometheus::value(
            &text,
            "parley_provider_errors_total{kind=\"truncated\",provider=\"elevenlabs\"}",
        )
    };

    // Cut before any audio: the request is made again and the sentence is spoken whole.
    openai.push_reply(Reply::Text(LONG_SENTENCE.into()));
    tts.push_fault(ElevenLabsFault::CutInsideChunk { after_bytes: 40 });
    let before = truncations().await;
    assert!(turn(&mut c, "early cut").await.is_empty(), "retried before the first byte");
    assert!(truncations().await > before, "the cut is counted all the same");
    let last_two: Vec<bool> = tts.http_requests().iter().rev().take(2).map(|r| r.cut).collect();
    assert_eq!(last_two, [false, true]);

    // Cut after audio went out, at a chunk boundary, inside a chunk, or short of a Content-Length: the turn
    // ends with an elevenlabs_truncated error after its last audio, and is stored as partial.
    let faults = [
        ElevenLabsFault::CutBody { after_bytes: whole / 2 },
        ElevenLabsFault::CutInsideChunk { after_bytes: whole / 2 },
        ElevenLabsFault::CutContentLength { after_bytes: whole / 2 },
    ];
    for (i, fault) in faults.into_iter().enumerate() {
        openai.push_reply(Reply::Text(LONG_SENTENCE.into()));
        tts.push_fault(fault.clone());
        let errors = turn(&mut c, &format!("cut {i}")).await;
        assert_eq!(errors.len(), 1, "{fault:?}: {errors:?}");
        assert_eq!(errors[0]["code"], "elevenlabs_truncated", "{fault:?}");
        assert_eq!(errors[0]["retryable"], true);
        let turn_id = c.events("turnEnd").last().unwrap()["turnId"].as_u64().unwrap();
        assert!(!c.audio_of_turn(turn_id).is_empty(), "{fault:?}: some audio came before the cut");
        // The error comes after the turn's last audio frame and right before its end.
        let log = &c.log;
        let error_at = log.iter().rposition(|e| e.kind() == Some("error")).unwrap();
        let last_audio = log.iter().rposition(|e| matches!(e, Event::Audio(_))).unwrap();
        assert!(last_audio < error_at, "{fault:?}");
    }
    // A reply cut short is stored once it settles (the client's last `played`, or a second): wait for all five.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (outcomes, history) = loop {
        let (_, history) = v.app.get_json(&format!("/api/history?sessionId={}", c.session_id())).await;
        let outcomes: Vec<String> = history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "assistant")
            .map(|m| m["outcome"].as_str().unwrap_or("?").to_string())
            .collect();
        if outcomes.len() >= 5 || tokio::time::Instant::now() > deadline {
            break (outcomes, history);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(outcomes, ["completed", "completed", "partial", "partial", "partial"], "{history}");
    assert!(turn(&mut c, "still fine?").await.is_empty());
    v.stop().await;
}

#[actix_web::test]
async fn a_refused_deepgram_key_is_final() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.deepgram().push_fault(DeepgramFault::RefuseUpgrade(401));
    let mut c = v.connect("userId=jo").await;
    c.stream_audio(&utterance_pcm(500, 500)).await;
    let e = c.expect("error").await;
    assert_eq!(e["code"], "deepgram_auth");
    assert_eq!(e["retryable"], false);
    c.stream_audio(&utterance_pcm(500, 500)).await;
    assert!(turn(&mut c, "typing still works").await.is_empty());
    assert_eq!(v.emulators.deepgram().connections().len(), 1, "no reconnect loop after a 401");
    v.stop().await;
}

#[actix_web::test]
async fn deepgram_refusing_with_503_is_retried_and_speech_still_gets_through() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.deepgram().push_fault(DeepgramFault::RefuseUpgrade(503));
    v.emulators.deepgram().push_script(vec!["ignored by the refused connection".into()]);
    v.emulators.deepgram().push_script(vec!["hello again".into()]);
    let mut c = v.connect("userId=kai").await;
    c.stream_audio(&utterance_pcm(1000, 1500)).await;
    let user = c.expect("userTurn").await;
    assert!(!user["text"].as_str().unwrap().is_empty());
    let refused: Vec<Option<u16>> = v.emulators.deepgram().connections().iter().map(|c| c.refused).collect();
    assert_eq!(refused[0], Some(503));
    assert_eq!(refused.last(), Some(&None));
    v.stop().await;
}

#[actix_web::test]
async fn a_dropped_deepgram_connection_is_reconnected_and_the_user_is_told() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    let dg = v.emulators.deepgram();
    dg.push_fault(DeepgramFault::DropAfterAudio(Duration::from_millis(300)));
    dg.push_script(vec!["lost words".into()]);
    dg.push_script(vec!["after the reconnect".into()]);
    let mut c = v.connect("userId=lee").await;
    c.stream_audio(&utterance_pcm(0, 600)).await;
    let status = c.expect("status").await;
    assert!(status["message"].as_str().unwrap().contains("reconnecting"), "{status}");
    assert!(dg.wait_until(|conns| conns.len() == 2 && conns[1].open, Duration::from_secs(10)).await);
    c.stream_audio(&utterance_pcm(1000, 1500)).await;
    let user = c.expect("userTurn").await;
    assert_eq!(user["text"], "after the reconnect");
    let (_, _, metrics) = v.app.get_text("/metrics").await;
    assert!(metrics.contains(r#"parley_provider_reconnects_total{provider="deepgram"} 1"#), "{metrics}");
    v.stop().await;
}

#[actix_web::test]
async fn after_deepgram_gives_up_on_an_outage_new_audio_restarts_it() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_STT_RESTART_MS".into(), "200".into());
    })
    .await;
    let dg = v.emulators.deepgram();
    for _ in 0..=parley::session::deepgram_link::MAX_RECONNECTS {
        dg.push_fault(DeepgramFault::RefuseUpgrade(503));
    }
    let mut c = v.connect("userId=max").await;
    c.stream_audio(&utterance_pcm(0, 200)).await;
    let e = c.expect("error").await;
    assert_eq!((e["code"].as_str(), e["retryable"].as_bool()), (Some("deepgram_server"), Some(true)), "{e}");
    let attempts = dg.connections().len();
    assert_eq!(attempts as u32, parley::session::deepgram_link::MAX_RECONNECTS + 1, "it gave up, no endless loop");
    dg.push_script(vec!["back again".into()]);
    // Audio arriving inside the restart window is dropped; keep the microphone going until the link restarts.
    let restarted = |e: &Event| matches!(e, Event::Json(v) if v["type"] == "status" && v["message"].as_str().unwrap_or("").contains("starting again"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    'waiting: loop {
        c.send_audio(&[0u8; 640]).await;
        while let Some(e) = c.next(Duration::from_millis(20)).await {
            if restarted(&e) {
                break 'waiting;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the link never restarted: {:#?}", c.summary());
    }
    c.stream_audio(&utterance_pcm(1000, 1500)).await;
    assert_eq!(c.expect("userTurn").await["text"], "back again");
    v.stop().await;
}

#[actix_web::test]
async fn an_unreachable_llm_is_retried_then_reported_as_retryable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed); // nothing listens there now
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("OPENAI_BASE_URL".into(), format!("http://127.0.0.1:{port}/v1"));
    })
    .await;
    let mut c = v.connect("userId=nell").await;
    let errors = turn(&mut c, "anyone there?").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "openai_connect");
    assert_eq!(errors[0]["retryable"], true);
    let (_, _, metrics) = v.app.get_text("/metrics").await;
    // Every failed attempt is counted: the first and its two retries.
    assert!(metrics.contains(r#"parley_provider_errors_total{kind="connect",provider="openai"} 3"#), "{metrics}");
    v.stop().await;
}

#[actix_web::test]
async fn deepgram_is_kept_alive_while_no_audio_flows() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    let dg = v.emulators.deepgram();
    // Deepgram closes a socket idle for ~10 s; here 6 s, so only KeepAlives keep it open.
    dg.set_idle_timeout(Duration::from_secs(6));
    let mut c = v.connect("userId=otto").await;
    c.stream_audio(&utterance_pcm(0, 200)).await;
    let keepalives = |conns: &[parley::emulators::DeepgramConnectionLog]| {
        conns.first().map_or(0, |c| c.texts_received.iter().filter(|t| t.text.contains("KeepAlive")).count())
    };
    assert!(
        dg.wait_until(|conns| keepalives(conns) >= 2, Duration::from_secs(15)).await,
        "KeepAlives every few seconds of silence: {:?}",
        dg.connections()
    );
    let conn = &dg.connections()[0];
    assert!(conn.open && conn.close_sent.is_none(), "the socket outlived the idle timeout: {conn:?}");
    assert!(conn.binary_control_frames.is_empty(), "KeepAlive goes as a text frame");
    v.stop().await;
}

#[actix_web::test]
async fn tts_contexts_waiting_for_text_are_kept_alive() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    // The reply stalls after its first sentence, leaving the turn's TTS context open and waiting for more.
    v.emulators.openai().push_reply(Reply::Text("Hello there. And then I go on and on.".into()));
    v.emulators.openai().push_fault(OpenAiFault::NeverEnds { after_deltas: 4 });
    let tts = v.emulators.elevenlabs();
    let mut c = v.connect("userId=pia").await;
    c.say("Say something slowly.").await;
    c.expect("userTurn").await;
    let keepalive = |s: parley::emulators::TtsSnapshot<'_>| {
        s.sockets.first().is_some_and(|s| {
            s.received
                .iter()
                .any(|m| m["text"] == "" && m["context_id"].is_string() && m.get("close_context").is_none())
        })
    };
    assert!(tts.wait_until(keepalive, Duration::from_secs(15)).await, "{:?}", tts.ws_connections());
    c.send_json(serde_json::json!({"type": "interrupt"})).await;
    c.expect("turnEnd").await;
    v.stop().await;
}

#[actix_web::test]
async fn a_database_gone_never_blocks_the_conversation_and_its_writes_wait_in_the_journal() {
    use diesel_async::{AsyncConnection as _, SimpleAsyncConnection as _};
    let v = spawn_voice_app(TestDb::Postgres).await;
    let mut c = v.connect("userId=quin").await;
    assert!(turn(&mut c, "before the outage").await.is_empty());
    c.until("stored", |e| matches!(e, Event::Json(v) if v["type"] == "messageSaved" && v["role"] == "assistant")).await;

    let url = v.app.config.database.postgres_url.clone().unwrap();
    let name = url.rsplit('/').next().unwrap().to_string();
    let mut admin =
        diesel_async::AsyncPgConnection::establish(&url.replace(&format!("/{name}"), "/postgres")).await.unwrap();
    admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();

    // The turn is answered at once; its writes are retried briefly, then journaled (none is lost).
    assert!(turn(&mut c, "during the outage").await.is_empty());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, metrics) = v.app.get_text("/metrics").await;
        let appended = metrics
            .lines()
            .find_map(|l| l.strip_prefix(r#"parley_journal_writes_total{outcome="appended"} "#))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        // The turn's two messages (and its recordings and their links).
        if appended >= 2 {
            assert!(metrics.contains("parley_persist_retries_total"), "{metrics}");
            assert!(!metrics.contains(r#"parley_persist_writes_lost_total{kind="message"} 1"#), "{metrics}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "writes never journaled:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(turn(&mut c, "still talking").await.is_empty(), "the session carries on");
    v.stop().await;
}

/// An OpenAI-compatible stand-in over a real socket that answers `429` with the `Retry-After` value the user's
/// last message names (`retry-after: VALUE`) and a one-sentence stream otherwise; returns its base URL and the
/// values it was asked for, one entry per request.
async fn retry_after_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    actix_web::rt::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let log = log.clone();
            actix_web::rt::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then a Content-Length body.
                let body = loop {
                    let Ok(n) = socket.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break buf[end + 4..end + 4 + length].to_vec();
                        }
                    }
                };
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let last = request["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or_default();
                let content = last["content"].as_str().unwrap_or_default().to_string();
                let response = match content.strip_prefix("retry-after: ") {
                    Some(value) => {
                        log.lock().unwrap().push(value.to_string());
                        let body = r#"{"error":{"message":"slow down","type":"rate_limit_exceeded"}}"#;
                        format!(
                            "HTTP/1.1 429 Too Many Requests\r\nretry-after: {value}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    None => {
                        let body =
                            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Fine.\"}}]}\n\ndata: [DONE]\n\n";
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                };
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, seen)
}

#[actix_web::test]
async fn no_retry_after_value_can_break_the_llm_worker() {
    let (url, seen) = retry_after_server().await;
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("OPENAI_BASE_URL".into(), url);
    })
    .await;
    let mut c = v.connect("userId=ra").await;
    // Values a server (or a broken proxy) may send: huge, negative, not a number, dates past and far ahead.
    let far_future = "Fri, 31 Dec 9999 23:59:59 GMT";
    let past = "Sun, 06 Nov 1994 08:49:37 GMT";
    for value in ["1e20", "-1", "NaN", past, far_future] {
        let errors = turn(&mut c, &format!("retry-after: {value}")).await;
        assert_eq!(errors.len(), 1, "{value}: {errors:?}");
        assert_eq!(errors[0]["code"], "openai_rate_limited", "{value}");
    }
    let asked: Vec<String> = seen.lock().unwrap().clone();
    let count = |v: &str| asked.iter().filter(|a| *a == v).count();
    // A wait longer than a turn can afford ends the retries at once; a wait of nothing (or an unreadable one,
    // which falls back to backoff) is retried up to three attempts in all.
    assert_eq!((count("1e20"), count(far_future)), (1, 1), "{asked:?}");
    assert_eq!((count("-1"), count("NaN"), count(past)), (3, 3, 3), "{asked:?}");
    // The worker survived every one of them: the next turn is answered.
    assert!(turn(&mut c, "hello").await.is_empty());
    assert_eq!(c.events("assistantText").last().unwrap()["text"], "Fine.");
    v.stop().await;
}
