//! Barge-in through the page: the Interrupt button, or the user speaking over the reply (the server then sends
//! `interrupt`), silences a long reply at once: the playback worklet drops every buffered sample of the turn
//! before its next render quantum. The server stops generating and stores the reply as interrupted.

use std::time::Duration;

use parley::emulators::Reply;

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::rig::Rig;

const LONG_REPLY: &str = "Let me read the whole menu for you. We have soup, salad and fresh bread. \
    Then there is grilled fish, roast chicken and braised beef. For dessert there is chocolate cake, \
    lemon tart and three kinds of ice cream. Coffee and tea come with every meal.";

/// One render quantum: the most a drop may let through (the fade-out).
const QUANTUM: u64 = 128;

#[actix_web::test]
async fn the_interrupt_button_stops_playback_within_a_render_quantum_and_the_turn_is_stored_interrupted() {
    let rig = Rig::default(Mic::Speech).await;
    let (server, page) = (&rig.server, &rig.page);
    server.emulators.openai().push_reply(Reply::Text(LONG_REPLY.into()));
    // The voice arrives no faster than it plays, so most of the reply is still to come when we interrupt.
    server.emulators.elevenlabs().set_realtime_pacing(true);
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
    page.wait_for("the stored reply", "parley.turns[1].assistantMessageId", WAIT).await;
    let (_, history) = server.get_json(&format!("/api/history?sessionId={session_id}")).await;
    assert_eq!(history["messages"][1]["interrupted"], true, "{history}");

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
    rig.connect().await;
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
    rig.finish().await;
}
