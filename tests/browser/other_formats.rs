//! The other playback paths: PCM output (`audio/pcm;rate=N`) through the worklet queue, resampled to the
//! audio context's rate, and MP3 through the Media Source fallback (`?mp3=mse`). Both turns are typed in the
//! message box.

use std::time::Duration;

use parley::emulators::Reply;

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::page::Direction;
use crate::harness::rig::Rig;
use crate::harness::server::Server;

const REPLY: &str = "Here is a short answer. It has two sentences.";

/// Types `text` into the message box and sends it; waits for the reply to be heard in full.
async fn typed_turn_is_heard(rig: &Rig, text: &str) -> f64 {
    let page = &rig.page;
    rig.say(text).await;
    let user = page.wait_for("the typed turn", "parley.turns[1] && parley.turns[1].user", WAIT).await;
    assert_eq!(user, text);
    assert_eq!(page.eval("document.getElementById('message').value").await, "", "the box is cleared");
    page.wait_for("the reply to play out", "parley.turns[1].ended && parley.turns[1].playedOut", WAIT).await;
    page.eval("parley.playback.msPlayedByTurn[1]").await.as_f64().unwrap()
}

fn about_the_reply(played_ms: f64) {
    let expected_ms = REPLY.chars().count() as f64 / 15.0 * 1000.0;
    assert!((played_ms - expected_ms).abs() < expected_ms * 0.15, "heard {played_ms} ms of about {expected_ms} ms");
}

/// Milliseconds of the assistant's audio parley sent in `session_id`: its recording holds exactly that.
async fn assistant_audio_sent_ms(server: &Server, session_id: &str) -> f64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = server.get_json(&format!("/api/recordings?sessionId={session_id}")).await;
        let recordings = body["recordings"].as_array().cloned().unwrap_or_default();
        let seconds = recordings.iter().find(|r| r["role"] == "assistant").and_then(|r| r["durationSeconds"].as_f64());
        if let Some(seconds) = seconds {
            return seconds * 1000.0;
        }
        assert!(tokio::time::Instant::now() < deadline, "the reply's recording: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn pcm_output_plays_through_the_worklet_queue_resampled_to_the_context_rate() {
    let rig = Rig::start(Mic::Silence, "", |env| {
        env.insert("ELEVENLABS_OUTPUT_FORMAT".into(), "pcm_24000".into());
    })
    .await;
    let page = &rig.page;
    rig.server.emulators.openai().push_reply(Reply::Text(REPLY.into()));
    let session_id = rig.connect().await;
    assert_eq!(page.eval("parley.connection.mimeType").await, "audio/pcm;rate=24000");
    // The audio context may still be loading its worklets when the session is announced.
    page.wait_for("the PCM player", "parley.playback.mode === 'pcm-worklet'", WAIT).await;
    let played = typed_turn_is_heard(&rig, "Say something short.").await;
    about_the_reply(played);
    let state = page.state().await;
    assert!(state["playback"]["contextRate"].as_f64().unwrap() != 24_000.0, "resampled: {}", state["playback"]);
    // What a listener needs: every sample parley sent was played, once (none lost, none repeated). A frame
    // thrown away as late would be missing here; frames arriving outside the turn are counted in `lateFrames`
    // but are not the reply's.
    let sent = assistant_audio_sent_ms(&rig.server, &session_id).await;
    assert!(
        (played - sent).abs() <= 5.0,
        "played {played} ms of the {sent} ms sent; playback: {:#}",
        state["playback"]
    );
    page.screenshots("pcm").await;
    rig.finish().await;
}

#[actix_web::test]
async fn mp3_plays_through_media_source_when_asked_to_and_its_position_reaches_the_server() {
    let rig = Rig::start(Mic::Silence, "mp3=mse", |_| {}).await;
    // The credential leaves the address; the page's own parameters stay.
    assert_eq!(rig.page.eval("location.search").await, "?mp3=mse");
    rig.server.emulators.openai().push_reply(Reply::Text(REPLY.into()));
    rig.page.record_network().await;
    rig.connect().await;
    rig.page.wait_for("the MSE player", "parley.playback.mode === 'mp3-mse'", WAIT).await;
    let played = typed_turn_is_heard(&rig, "Say something short.").await;
    about_the_reply(played);
    // The element's clock, not the worklet's, gives the position parley is told where the reply ended.
    rig.page
        .wait_for_message(
            "the position where the reply played out",
            |m| m.direction == Direction::Sent && m.json["type"] == "played" && m.json["ms"].as_f64() == Some(played),
            WAIT,
        )
        .await;
    rig.finish().await;
}
