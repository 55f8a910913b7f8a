//! Barge-in through the page: the Interrupt button, or the user speaking over the reply (the server then sends
//! `interrupt`), silences a long reply at once: the playback worklet drops every buffered sample of the turn
//! before its next render quantum. The page tells the server where the listener was cut off (a `played`
//! position after the stop), the server stops generating and stores the reply as far as it was heard, and the
//! history panel shows that part, saying the reply was cut off, with the whole generated text one click away.

use std::time::Duration;

use parley::emulators::Reply;
use serde_json::Value;

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::page::{Direction, Page};
use crate::harness::rig::Rig;

const LONG_REPLY: &str = "Let me read the whole menu for you. We have soup, salad and fresh bread. \
    Then there is grilled fish, roast chicken and braised beef. For dessert there is chocolate cake, \
    lemon tart and three kinds of ice cream. Coffee and tea come with every meal.";

/// One render quantum: the most a drop may let through (the fade-out).
const QUANTUM: u64 = 128;

/// How far the stored heard position may be from what the page played: the page's final position is taken
/// when the drop reaches the audio thread; the server believes the client's position (its own estimate only
/// if that position comes too late).
const HEARD_SLACK_MS: f64 = 250.0;

/// The index of the first WebSocket message matching `matches`, as Chromium's network layer saw them.
fn message_index(page: &Page, what: &str, matches: impl Fn(Direction, &Value) -> bool) -> usize {
    let messages = page.socket_messages();
    messages.iter().position(|m| matches(m.direction, &m.json)).unwrap_or_else(|| {
        let seen: Vec<_> = messages.iter().map(|m| (m.direction, &m.json)).collect();
        panic!("no {what} among {seen:#?}")
    })
}

/// The page's last `played` position for turn 1 (its final word on the turn) and where it is among the
/// messages.
fn final_position(page: &Page) -> (usize, u64) {
    let messages = page.socket_messages();
    let i = messages
        .iter()
        .rposition(|m| m.direction == Direction::Sent && m.json["type"] == "played" && m.json["turnId"] == 1)
        .expect("a played position for turn 1");
    (i, messages[i].json["ms"].as_u64().unwrap())
}

/// The stored reply is what was heard: a prefix of what was generated, ending at a whole word, as long as
/// `played_ms` of the emulated voice (15 characters a second) says, with the heard position from the client.
fn assert_stored_as_heard(reply: &Value, played_ms: f64) {
    assert_eq!(
        (reply["role"].as_str(), reply["outcome"].as_str()),
        (Some("assistant"), Some("interrupted")),
        "{reply}"
    );
    assert_eq!(reply["interrupted"], true, "{reply}");
    assert_eq!(reply["heardSource"], "client", "{reply}");
    let heard_ms = reply["heardMs"].as_f64().unwrap_or_else(|| panic!("heardMs: {reply}"));
    assert!((heard_ms - played_ms).abs() <= HEARD_SLACK_MS, "stored {heard_ms} ms heard, the page played {played_ms}");
    let generated = reply["generatedContent"].as_str().unwrap_or_else(|| panic!("generatedContent: {reply}"));
    let content = reply["content"].as_str().unwrap();
    assert!(LONG_REPLY.starts_with(generated), "generated: {generated:?}");
    assert!(content.len() < generated.len(), "heard {content:?} of {generated:?}");
    assert!(generated.starts_with(content), "{content:?} is not a prefix of {generated:?}");
    if !content.is_empty() {
        let next = generated[content.len()..].chars().next().unwrap();
        assert!(next.is_whitespace() || ",.;:!?".contains(next), "{content:?} ends mid-word in {generated:?}");
    }
    // As many characters as the voice spoke in that time, give or take the word it was cut in.
    let spoken = heard_ms / 1000.0 * 15.0;
    let chars = content.chars().count() as f64;
    assert!(chars <= spoken + 2.0 && chars >= spoken - 15.0, "{chars} characters heard in {heard_ms} ms: {content:?}");
}

#[actix_web::test]
async fn the_interrupt_button_stops_playback_within_a_render_quantum_and_the_reply_is_stored_as_far_as_it_was_heard() {
    let rig = Rig::default(Mic::Speech).await;
    let (server, page) = (&rig.server, &rig.page);
    server.emulators.openai().push_reply(Reply::Text(LONG_REPLY.into()));
    // The voice arrives no faster than it plays, so most of the reply is still to come when we interrupt.
    server.emulators.elevenlabs().set_realtime_pacing(true);
    page.record_network().await;
    let session_id = rig.connect().await;

    // A second of the reply has been heard.
    page.wait_for("a second of the reply", "(parley.playback.msPlayedByTurn[1] || 0) > 1000", WAIT).await;
    assert_eq!(page.eval("parley.playback.state").await, "playing");
    page.click("#interrupt").await;

    let drop = page
        .wait_for("the drop to reach the audio thread", "parley.playback.drops.find(d => d.turnId === 1)", WAIT)
        .await;
    page.wait_for("the turn to end interrupted", "parley.turns[1].ended && parley.turns[1].interrupted", WAIT).await;
    // Let the audio clock run on for half a second: nothing more of the turn may be heard.
    let clock = page.eval("parley.playback.audioTime").await.as_f64().unwrap();
    page.wait_for(
        "the audio clock to advance",
        &format!("parley.playback.audioTime > {clock} + 0.5"),
        Duration::from_secs(10),
    )
    .await;
    let after = page.eval("parley.playback.drops.find(d => d.turnId === 1)").await;
    let (at_drop, total) = (drop["framesAtDrop"].as_u64().unwrap(), after["frames"].as_u64().unwrap());
    assert!(
        total - at_drop <= QUANTUM,
        "{} frames played after the drop (at most a {QUANTUM}-frame fade)",
        total - at_drop
    );
    let state = page.state().await;
    let played_ms = state["playback"]["msPlayedByTurn"]["1"].as_f64().unwrap();
    let whole_ms = LONG_REPLY.chars().count() as f64 / 15.0 * 1000.0;
    assert!(played_ms > 1000.0 && played_ms < whole_ms / 2.0, "heard {played_ms} ms of {whole_ms} ms");
    assert_eq!(state["playback"]["state"], "idle");
    assert_eq!(state["turns"]["1"]["interruptedLocally"], true);
    let status = page.eval("document.querySelector('.turn[data-turn=\"1\"] .status').textContent").await;
    assert_eq!(status, "stopped");

    // The server stopped the turn and stored what was generated as interrupted.
    let tts = server.emulators.elevenlabs();
    assert!(
        tts.wait_until(|s| s.sockets.first().is_some_and(|s| s.contexts_closed.len() == 1), WAIT).await,
        "the turn's TTS context was closed: {:?}",
        tts.ws_connections()
    );
    // The page asked the server to stop, then said where the listener was cut off: the position the audio
    // thread reached at the drop.
    let asked = message_index(page, "interrupt", |d, m| d == Direction::Sent && m["type"] == "interrupt");
    let (told, at_drop_ms) = final_position(page);
    assert!(asked < told, "the final position follows the interrupt");
    let rate = state["playback"]["contextRate"].as_f64().unwrap();
    assert_eq!(at_drop_ms, (at_drop as f64 / rate * 1000.0).round() as u64, "the position at the drop");

    page.wait_for("the stored reply", "parley.turns[1].assistantMessageId", WAIT).await;
    let (_, history) = server.get_json(&format!("/api/history?sessionId={session_id}")).await;
    let reply = &history["messages"][1];
    assert_stored_as_heard(reply, played_ms);

    // The history panel shows what was heard, says it was cut off, and keeps what was generated at hand.
    page.click("#history-refresh").await;
    let item = format!(".session[data-session-id=\"{session_id}\"]");
    let listed = format!("!parley.history.loading && document.querySelector('{item}')");
    page.wait_for("the session in the history panel", &listed, WAIT).await;
    page.click(&format!("{item} .session-toggle")).await;
    let message = format!("{item} .message.assistant");
    let shown =
        page.wait_for("the cut reply", &format!("document.querySelector('{message} .text')?.textContent"), WAIT).await;
    assert_eq!(shown, reply["content"]);
    let disclosure = format!("{message} details.generated");
    let summary = page.eval(&format!("document.querySelector('{disclosure} summary').textContent")).await;
    let heard_s = reply["heardMs"].as_f64().unwrap() / 1000.0;
    assert_eq!(summary, format!("Cut off after {heard_s:.1} s — show what was generated"));
    assert_eq!(page.eval(&format!("document.querySelector('{disclosure}').open")).await, false, "closed at first");
    page.click(&format!("{disclosure} summary")).await;
    let generated = page
        .wait_for(
            "the generated text",
            &format!(
                "document.querySelector('{disclosure}').open && \
                 document.querySelector('{disclosure} .generated-text').checkVisibility() && \
                 document.querySelector('{disclosure} .generated-text').textContent"
            ),
            WAIT,
        )
        .await;
    assert_eq!(generated, reply["generatedContent"]);
    page.assert_controls_named().await;

    page.screenshots("interrupt").await;
    rig.finish().await;
}

#[actix_web::test]
async fn speaking_over_the_reply_makes_the_server_interrupt_it_and_the_page_drops_it_at_once() {
    // The fake microphone repeats the utterance: the second time comes 1.5 s after the first ended, while the
    // (slowly spoken) reply to the first is playing.
    let rig = Rig::default(Mic::SpeechOnRepeat).await;
    let (server, page) = (&rig.server, &rig.page);
    server.emulators.openai().push_reply(Reply::Text(LONG_REPLY.into()));
    server.emulators.elevenlabs().set_realtime_pacing(true);
    page.record_network().await;
    let session_id = rig.connect().await;
    page.wait_for("the reply to play", "(parley.playback.msPlayedByTurn[1] || 0) > 0", WAIT).await;

    let drop = page
        .wait_for(
            "the server's interrupt",
            "parley.turns[1].interrupted && parley.playback.drops.find(d => d.turnId === 1)",
            WAIT,
        )
        .await;
    assert_eq!(page.eval("parley.turns[1].interruptedLocally === undefined").await, true, "no button was pressed");
    page.wait_for("the next turn", "parley.turns[2] && parley.turns[2].user", WAIT).await;
    let after = page.eval("parley.playback.drops.find(d => d.turnId === 1)").await;
    let (at_drop, total) = (drop["framesAtDrop"].as_u64().unwrap(), after["frames"].as_u64().unwrap());
    assert!(total - at_drop <= QUANTUM, "{} frames played after the drop", total - at_drop);
    let played_ms = page.eval("parley.playback.msPlayedByTurn[1]").await.as_f64().unwrap();
    let whole_ms = LONG_REPLY.chars().count() as f64 / 15.0 * 1000.0;
    assert!(played_ms < whole_ms / 2.0, "heard {played_ms} ms of {whole_ms} ms");
    let status = page.eval("document.querySelector('.turn[data-turn=\"1\"] .status').textContent").await;
    assert_eq!(status, "interrupted");

    // The page said where the listener was when the server's interrupt arrived, and the reply is stored so.
    let interrupted =
        message_index(page, "the server's interrupt", |d, m| d == Direction::Received && m["type"] == "interrupt");
    let (told, at_drop_ms) = final_position(page);
    assert!(interrupted < told, "the final position follows the server's interrupt");
    let rate = page.eval("parley.playback.contextRate").await.as_f64().unwrap();
    assert_eq!(at_drop_ms, (at_drop as f64 / rate * 1000.0).round() as u64, "the position at the drop");
    page.wait_for("the stored reply", "parley.turns[1].assistantMessageId", WAIT).await;
    let (_, history) = server.get_json(&format!("/api/history?sessionId={session_id}")).await;
    let reply = history["messages"].as_array().unwrap().iter().find(|m| m["role"] == "assistant").cloned();
    assert_stored_as_heard(&reply.unwrap_or_else(|| panic!("the reply in {history}")), played_ms);
    rig.finish().await;
}
