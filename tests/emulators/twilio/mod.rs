//! The emulated Twilio caller against a stand-in phone transport over real sockets: a signed webhook, the
//! TwiML's stream and parameters, Media Streams messages as Twilio shapes them, real-time playback with
//! marks echoed when their audio has played, `clear` echoing pending marks at once, dtmf, and both ways of
//! hanging up.

mod stand_in;

use std::time::Duration;

use parley::emulators::twilio::{CallError, CallOptions, place_call};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::helpers::SOON;
use stand_in::StandIn;

const TOKEN: &str = "test-auth-token";

/// The next message the stand-in received that `pred` accepts.
async fn wait_for(rx: &mut mpsc::UnboundedReceiver<Value>, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let found = tokio::time::timeout(SOON, async {
        while let Some(v) = rx.recv().await {
            if pred(&v) {
                return Some(v);
            }
        }
        None
    });
    found.await.ok().flatten().unwrap_or_else(|| panic!("the stand-in never received {what}"))
}

#[actix_web::test]
async fn a_call_follows_the_twiml_plays_audio_echoes_marks_obeys_clear_and_sees_the_agent_hang_up() {
    let mut server = StandIn::start(TOKEN);
    let mut opts = CallOptions::new(server.webhook_url(), TOKEN);
    opts.audio = vec![0x22; 480];
    opts.trailing_silence_ms = 40;
    opts.realtime = false;
    let account = opts.account_sid.clone();
    let call = place_call(opts).await.expect("call placed");

    let webhook = server.webhooks.recv().await.unwrap();
    let param = |n: &str| webhook.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(param("CallSid"), call.call_sid());
    assert!(call.call_sid().starts_with("CA") && call.call_sid().len() == 34);
    assert_eq!(param("AccountSid"), account);
    assert_eq!(
        (param("CallStatus"), param("Direction"), param("ApiVersion")),
        ("ringing".into(), "inbound".into(), "2010-04-01".into())
    );
    assert_eq!(call.stream_url(), format!("ws://127.0.0.1:{}/ws?x=1&y=2", server.port));
    let expected = [("agent".to_string(), "support".to_string()), ("note".to_string(), "a&b <c>".to_string())];
    assert_eq!(call.parameters(), expected);
    assert!(call.twiml().contains("<Connect>"));

    let rx = &mut server.received;
    let connected = wait_for(rx, "connected", |_| true).await;
    assert_eq!(connected, serde_json::json!({"event":"connected","protocol":"Call","version":"1.0.0"}));
    let start = wait_for(rx, "start", |_| true).await;
    assert_eq!(start["event"], "start");
    assert_eq!(start["sequenceNumber"], "1");
    assert_eq!(start["streamSid"], call.stream_sid());
    assert_eq!(start["start"]["callSid"], call.call_sid());
    assert_eq!(start["start"]["customParameters"]["note"], "a&b <c>");
    assert_eq!(start["start"]["mediaFormat"]["encoding"], "audio/x-mulaw");
    // 480 bytes of speech and 40 ms of silence: five 20 ms frames, numbered on from `start`.
    for n in 0..5u64 {
        let media = wait_for(rx, "media", |_| true).await;
        assert_eq!(media["event"], "media");
        assert_eq!(media["sequenceNumber"], (n + 2).to_string());
        assert_eq!(media["media"]["chunk"], (n + 1).to_string());
        assert_eq!(media["media"]["timestamp"], (n * 20).to_string());
        assert_eq!(media["media"]["track"], "inbound");
    }
    // m1 comes back once the 200 ms greeting has played; m2 comes back at once, with the clear.
    let m1 = wait_for(rx, "the m1 echo", |v| v["event"] == "mark").await;
    assert_eq!(m1["mark"]["name"], "m1");
    assert_eq!(m1["streamSid"], call.stream_sid());
    let m2 = wait_for(rx, "the m2 echo", |v| v["event"] == "mark").await;
    assert_eq!(m2["mark"]["name"], "m2");

    call.press("1#").await;
    let dtmf = wait_for(rx, "dtmf", |v| v["event"] == "dtmf").await;
    assert_eq!(dtmf["dtmf"], serde_json::json!({"track":"inbound_track","digit":"1"}));
    let closed = call.wait_closed(SOON).await.expect("the agent hung up");
    assert_eq!(closed.code, Some(1000));
    assert!(!closed.by_caller);

    let report = call.report();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.dtmf_sent, ["1", "#"]);
    assert_eq!(report.received_marks, ["m1", "m2"]);
    let names: Vec<&str> = report.echoed_marks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["m1", "m2"]);
    let (m1_at, m2_at) = (report.echoed_marks[0].1, report.echoed_marks[1].1);
    assert!(m1_at >= Duration::from_millis(195), "m1 echoed after {m1_at:?}, before its audio played");
    assert_eq!(report.clears.len(), 1);
    assert!(
        m2_at >= report.clears[0] && m2_at - report.clears[0] < Duration::from_millis(50),
        "m2 waited for the clear"
    );
    // The greeting was heard whole; the echo and the second reply were queued behind m1 and mostly cleared.
    let count = |b: u8| report.heard.iter().filter(|x| **x == b).count();
    assert_eq!(count(0x11), 1600);
    assert!(count(0x22) + count(0x33) < 400, "cleared audio was heard: {} bytes", count(0x22) + count(0x33));
    assert_eq!(report.received_media_frames, 10 + 5 + 50);
    assert!(report.first_audio_after_speech.is_some_and(|d| d < Duration::from_secs(1)));
    assert_eq!(report.messages.len(), 10 + 1 + 5 + 50 + 2);
    assert_eq!(report.closed, Some(closed));
}

#[actix_web::test]
async fn hanging_up_sends_stop_then_close_1000_and_media_is_paced_in_real_time() {
    let mut server = StandIn::start(TOKEN);
    let mut opts = CallOptions::new(server.webhook_url(), TOKEN);
    opts.audio = vec![0x22; 160 * 5];
    let call = place_call(opts).await.expect("call placed");
    call.finish_speaking().await;
    call.hang_up().await;
    let rx = &mut server.received;
    let mut timestamps = Vec::new();
    let stop = loop {
        let v = wait_for(rx, "stop", |_| true).await;
        match v["event"].as_str() {
            Some("media") => timestamps.push(v["media"]["timestamp"].as_str().unwrap().parse::<u64>().unwrap()),
            Some("stop") => break v,
            _ => {}
        }
    };
    assert_eq!(timestamps.len(), 5);
    assert!(timestamps.windows(2).all(|w| w[1] >= w[0] + 20), "{timestamps:?}");
    assert!(timestamps[4] >= 80, "five frames took {} ms to send, not real time", timestamps[4]);
    assert_eq!(stop["stop"]["callSid"], call.call_sid());
    assert_eq!(stop["streamSid"], call.stream_sid());
    let close = wait_for(rx, "the close", |v| v.get("close").is_some()).await;
    assert_eq!(close["close"], 1000);
    let closed = call.report().closed.expect("closed");
    assert!(closed.by_caller && closed.code == Some(1000));
}

#[actix_web::test]
async fn a_bad_signature_is_refused_by_the_webhook() {
    let server = StandIn::start(TOKEN);
    let mut opts = CallOptions::new(server.webhook_url(), TOKEN);
    opts.bad_signature = true;
    match place_call(opts).await {
        Err(CallError::WebhookStatus { status: 403, .. }) => {}
        other => panic!("expected a 403 from the webhook, got {:?}", other.map(|c| c.stream_sid().to_string())),
    }
}
