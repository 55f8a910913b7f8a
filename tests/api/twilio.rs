//! Phone calls through Twilio Media Streams, placed by the fake caller (`parley::emulators::twilio`) against
//! the real app and the provider emulators: the signed webhook and stream, a spoken question answered in
//! μ-law, barge-in with `clear` and the stored reply as the marks say it was heard, DTMF keys as a turn, the
//! agent hanging up, and the call in the history with its recordings.

use std::time::Duration;

use parley::audio::g711::linear_to_ulaw;
use parley::emulators::Reply;
use parley::emulators::twilio::{Call, CallError, CallOptions, CallReport, place_call};
use parley::providers::twilio::signature;
use serde_json::Value;

use crate::helpers::TestDb;
use crate::helpers::voice::{VoiceApp, WAIT, spawn_voice_app_with};

const TOKEN: &str = "twilio-auth-token-for-tests";
/// The caller of `CallOptions::new`, as parley names the user.
const CALLER: &str = "tel:15550100001";

/// μ-law 8 kHz: `ms` of a loud two-tone signal (speech to the Deepgram emulator's energy detector).
fn mulaw_speech(ms: u32) -> Vec<u8> {
    (0..ms as usize * 8)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let v = 6000.0 * (2.0 * std::f64::consts::PI * 180.0 * t).sin()
                + 3000.0 * (2.0 * std::f64::consts::PI * 730.0 * t).sin();
            linear_to_ulaw(v as i16)
        })
        .collect()
}

async fn phone_app(agents_file: Option<&str>) -> (VoiceApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agents.toml");
    if let Some(agents) = agents_file {
        std::fs::write(&path, agents).unwrap();
    }
    let path = path.to_string_lossy().into_owned();
    let with_agents = agents_file.is_some();
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("TWILIO_AUTH_TOKEN".into(), TOKEN.into());
        env.insert("PARLEY_DTMF_TIMEOUT_MS".into(), "300".into());
        if with_agents {
            env.insert("PARLEY_AGENTS_FILE".into(), path);
        }
    })
    .await;
    (v, dir)
}

/// A call saying `speech_ms` of speech then 1.5 s of silence.
fn options(v: &VoiceApp, speech_ms: u32) -> CallOptions {
    let mut o = CallOptions::new(v.app.url("/twilio/voice"), TOKEN);
    o.audio = mulaw_speech(speech_ms);
    o.trailing_silence_ms = 1500;
    o
}

/// Waits until the caller's report satisfies `done`.
async fn wait_for(call: &Call, what: &str, done: impl Fn(&CallReport) -> bool) -> CallReport {
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        let r = call.report();
        if done(&r) {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} never happened: {}", r.to_json());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The mark names of turn `turn` parley sent, with their milliseconds.
fn turn_marks(names: &[String], turn: u64) -> Vec<u64> {
    names
        .iter()
        .filter_map(|n| parley::session::twilio::marks::parse(n))
        .filter(|(t, _)| *t == turn)
        .map(|(_, ms)| ms)
        .collect()
}

/// Every mark parley sent has come back.
fn all_marks_echoed(r: &CallReport) -> bool {
    !r.received_marks.is_empty() && r.echoed_marks.len() >= r.received_marks.len()
}

/// The caller's only session, with its history, once its messages are stored.
async fn stored_call(v: &VoiceApp, messages: usize) -> (Value, Value) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, page) = v.app.get_json(&format!("/api/sessions?userId={CALLER}")).await;
        if let Some(session) = page["sessions"].as_array().and_then(|s| s.first()).cloned() {
            let id = session["sessionId"].as_str().unwrap().to_string();
            let (_, history) = v.app.get_json(&format!("/api/history?sessionId={id}&userId={CALLER}")).await;
            let ready = history["messages"]
                .as_array()
                .is_some_and(|m| m.len() >= messages && m.iter().all(|m| m["audioUrl"].is_string()));
            if ready {
                return (session, history);
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the call was never stored with {messages} messages");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_spoken_question_is_answered_in_mulaw_and_the_call_is_stored_with_its_recordings() {
    let (v, _dir) = phone_app(None).await;
    v.emulators.deepgram().push_script(vec!["when do you open".into()]);
    v.emulators.openai().push_reply(Reply::Text("We open at nine in the morning.".into()));
    let call = place_call(options(&v, 1200)).await.expect("call placed");
    let params: Vec<(&str, &str)> = call.parameters().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert!(params.contains(&("from", "+15550100001")) && params.contains(&("agent", "default")), "{params:?}");
    assert!(params.contains(&("callSid", call.call_sid())), "{params:?}");

    let r = wait_for(&call, "the answer heard whole", |r| all_marks_echoed(r) && r.heard_ms() > 500).await;
    assert!(r.problems.is_empty(), "protocol problems: {:?}", r.problems);
    // Every media frame is 20 ms of μ-law at most (160 bytes), on the call's stream.
    for m in r.messages.iter().filter(|m| m["event"] == "media") {
        assert_eq!(m["streamSid"], call.stream_sid());
        let payload = m["media"]["payload"].as_str().unwrap_or_default();
        let n = parley::providers::twilio::stream::decode_payload(payload).map_or(0, |b| b.len());
        assert!((1..=160).contains(&n), "a frame of {n} bytes");
    }
    let marks = turn_marks(&r.received_marks, 1);
    assert_eq!(marks.last().copied(), Some(r.heard_ms()), "the last mark is all the audio: {:?}", r.received_marks);
    let latency = r.first_audio_after_speech.expect("audio after the caller spoke");
    eprintln!("phone call: first reply audio {latency:?} after the end of the caller's speech (emulated providers)");
    call.hang_up().await;

    let (session, history) = stored_call(&v, 2).await;
    assert_eq!(session["call"]["callSid"], call.call_sid());
    assert_eq!(session["call"]["from"], "+15550100001");
    assert_eq!(session["call"]["to"], "+15550100002");
    assert_eq!(history["call"]["callSid"], call.call_sid());
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["content"], "when do you open");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"], "We open at nine in the morning.");
    // Both sides recorded as WAV.
    for m in messages {
        assert!(m["audioUrl"].as_str().unwrap().contains(".wav"), "{m}");
    }
    // Speech recognition got the call's audio as it came: μ-law at 8 kHz.
    let query = &v.emulators.deepgram().connections()[0].query;
    let has = |k: &str, val: &str| query.iter().any(|(a, b)| a == k && b == val);
    assert!(has("encoding", "mulaw") && has("sample_rate", "8000"), "{query:?}");
    v.stop().await;
}

#[actix_web::test]
async fn speaking_over_the_reply_clears_it_and_the_stored_reply_is_what_the_marks_say_was_heard() {
    let (v, _dir) = phone_app(None).await;
    v.emulators.deepgram().push_script(vec!["tell me everything".into(), "stop".into()]);
    let long = "Let me read the whole menu for you. We have soup, salad and fresh bread. Then there is grilled \
                fish, roast chicken and braised beef. For dessert there is chocolate cake and lemon tart.";
    v.emulators.openai().push_reply(Reply::Text(long.into()));
    v.emulators.openai().push_reply(Reply::Text("Sure.".into()));
    v.emulators.elevenlabs().set_realtime_pacing(true);
    let call = place_call(options(&v, 1200)).await.expect("call placed");
    wait_for(&call, "a second of the reply heard", |r| r.heard_ms() >= 1000).await;
    call.play(mulaw_speech(1200)).await;
    call.play(vec![0xFF; 8 * 1500]).await;
    let r = wait_for(&call, "a clear", |r| !r.clears.is_empty()).await;
    let heard_before_clear = r.heard_ms();
    let r =
        wait_for(&call, "the second answer", |r| !turn_marks(&r.received_marks, 2).is_empty() && all_marks_echoed(r))
            .await;
    // The last mark of turn 1 echoed before the clear is where the caller was; the marks the clear returned
    // name audio never played. (A mark echoed while the clear was on its way may count too: allow the one
    // echoed within 50 ms after the clear. And one echoed just before the clear that reached parley after it
    // sent the clear cannot be told from those the clear returned: it counts as not played, one mark short.)
    let clear_at = r.clears[0];
    let before: Vec<String> = r
        .echoed_marks
        .iter()
        .filter(|(_, at)| *at <= clear_at + Duration::from_millis(50))
        .map(|(n, _)| n.clone())
        .collect();
    let strictly_before: Vec<String> =
        r.echoed_marks.iter().filter(|(_, at)| *at < clear_at).map(|(n, _)| n.clone()).collect();
    let heard_marks = turn_marks(&strictly_before, 1);
    let heard_ms = heard_marks.last().copied().unwrap_or(0);
    let crossed_ms = heard_marks.iter().rev().nth(1).copied().unwrap_or(0);
    let heard_ms_late = turn_marks(&before, 1).last().copied().unwrap_or(0);
    call.hang_up().await;
    let (_, history) = stored_call(&v, 4).await;
    let reply = &history["messages"][1];
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["interrupted"], true, "{reply}");
    let stored = reply["heardMs"].as_u64().unwrap_or(0);
    assert!(
        stored == heard_ms || stored == heard_ms_late || stored == crossed_ms,
        "{reply}: marks before the clear {heard_ms}/{heard_ms_late}, one crossing it {crossed_ms}"
    );
    assert!(stored <= heard_before_clear + 100, "not past what was played: {stored} > {heard_before_clear}");
    let said = reply["content"].as_str().unwrap();
    assert!(said.len() < long.len() && long.starts_with(said.trim_end_matches(['…', '-', ' '])), "{said:?}");
    eprintln!("barge-in: heard {heard_before_clear} ms before the clear; stored as heard {heard_ms} ms: {said:?}");
    v.stop().await;
}

#[actix_web::test]
async fn keys_pressed_become_a_user_turn_after_a_pause() {
    let (v, _dir) = phone_app(None).await;
    v.emulators.openai().push_reply(Reply::Text("You chose billing.".into()));
    let call = place_call(CallOptions::new(v.app.url("/twilio/voice"), TOKEN)).await.expect("call placed");
    call.press("12#").await;
    let r = wait_for(&call, "the answer to the keys", all_marks_echoed).await;
    assert_eq!(r.dtmf_sent, ["1", "2", "#"]);
    let requests = v.emulators.openai().requests();
    let last = requests[0].body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["content"], "The caller pressed 1 2 #", "{last}");
    call.hang_up().await;
    v.stop().await;
}

#[actix_web::test]
async fn the_agent_ending_the_conversation_hangs_up_after_the_goodbye_is_heard() {
    let agents = "default_agent = \"default\"\n[agents.default]\nsystem_prompt = \"Be brief.\"\n\
                  [agents.support]\nsystem_prompt = \"You help.\"\ntools = [\"end_conversation\"]\n\
                  [phone_numbers]\n\"+15550100002\" = \"support\"\n";
    let (v, _dir) = phone_app(Some(agents)).await;
    v.emulators.deepgram().push_script(vec!["that is all bye".into()]);
    let openai = v.emulators.openai();
    openai.push_reply(Reply::ToolCalls(vec![("end_conversation".into(), "{}".into())]));
    openai.push_reply(Reply::Text("Goodbye, have a nice day.".into()));
    let call = place_call(options(&v, 1000)).await.expect("call placed");
    assert!(call.parameters().iter().any(|(k, v)| k == "agent" && v == "support"), "{:?}", call.parameters());
    let closed = call.wait_closed(WAIT * 2).await.expect("the server hung up");
    assert!(!closed.by_caller && closed.code == Some(1000), "{closed:?}");
    let r = call.report();
    // The goodbye played out whole before the close: every audio mark came back, then the goodbye mark.
    let echoed: Vec<&str> = r.echoed_marks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(echoed.last(), Some(&"end"), "{echoed:?}");
    assert_eq!(turn_marks(&r.received_marks, 1).last().copied(), Some(r.heard_ms()));
    v.stop().await;
}

#[actix_web::test]
async fn bad_or_missing_signatures_are_refused_on_the_webhook_and_the_stream() {
    let (v, _dir) = phone_app(None).await;
    let mut bad = CallOptions::new(v.app.url("/twilio/voice"), TOKEN);
    bad.bad_signature = true;
    match place_call(bad).await {
        Err(CallError::WebhookStatus { status: 403, .. }) => {}
        other => panic!("expected a 403 from the webhook, got {:?}", other.map(|c| c.call_sid().to_string())),
    }
    let (status, body) =
        v.app.post_raw("/twilio/voice", "application/x-www-form-urlencoded", "CallSid=CA1&From=%2B1").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("twilio_signature")));

    let stream = v.app.url("/ws/twilio").replace("http://", "ws://");
    let client = awc::Client::new();
    for signature in [None, Some("bm90IGl0".to_string()), Some(signature::sign("wrong", &stream, &[]))] {
        let mut request = client.ws(stream.as_str());
        if let Some(s) = &signature {
            request = request.header("X-Twilio-Signature", s.as_str());
        }
        match request.connect().await {
            Err(awc::error::WsClientError::InvalidResponseStatus(s)) => assert_eq!(s.as_u16(), 403, "{signature:?}"),
            other => panic!("the stream opened with {signature:?}: {:?}", other.map(|(r, _)| r.status())),
        }
    }
    let good = signature::sign(TOKEN, &stream, &[]);
    assert!(client.ws(stream.as_str()).header("X-Twilio-Signature", good).connect().await.is_ok());
    v.stop().await;
}

#[actix_web::test]
async fn without_an_auth_token_the_phone_routes_say_they_are_not_configured() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |_| {}).await;
    let (status, body) = v.app.post_raw("/twilio/voice", "application/x-www-form-urlencoded", "CallSid=CA1").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("phone_not_configured")), "{body}");
    let (status, body) = v.app.get_json("/ws/twilio").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("phone_not_configured")), "{body}");
    v.stop().await;
}

#[actix_web::test]
async fn behind_a_proxy_signatures_are_checked_against_parley_public_url() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("TWILIO_AUTH_TOKEN".into(), TOKEN.into());
        env.insert("PARLEY_PUBLIC_URL".into(), "https://agent.example.com".into());
    })
    .await;
    let mut o = CallOptions::new(v.app.url("/twilio/voice"), TOKEN);
    o.signed_url_base = Some("https://agent.example.com".into());
    let call = place_call(o).await.expect("signed as Twilio saw it, accepted");
    assert_eq!(call.stream_url(), "wss://agent.example.com/ws/twilio");
    call.hang_up().await;
    // Signed over the address the server was reached at, not the public one: refused.
    let direct = place_call(CallOptions::new(v.app.url("/twilio/voice"), TOKEN)).await;
    assert!(matches!(direct, Err(CallError::WebhookStatus { status: 403, .. })), "{:?}", direct.err());
    v.stop().await;
}
