//! Playback acknowledgements through the page: it tells parley how much of a reply the listener has heard
//! (`played`) every 250 ms while the reply plays and once where it drained, never for a turn without audio
//! and never again once a turn is over; and it shows the voice-to-voice figure parley derives from the first
//! acknowledgement, from whichever `latency` event carries it. What the page sent and received is read from
//! Chromium's network layer (CDP), not from the page's own account of it.

use parley::emulators::{OpenAiFault, Reply};
use serde_json::Value;

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::page::{Direction, Page, SocketMessage};
use crate::harness::rig::Rig;

/// About six seconds of the emulated voice (15 characters a second).
const REPLY: &str = "Here is an answer that takes a few seconds to say. It goes on a little longer, and then it stops.";

/// The `played` messages the page sent for `turn_id`, in order.
fn played(page: &Page, turn_id: u64) -> Vec<SocketMessage> {
    page.socket_messages()
        .into_iter()
        .filter(|m| m.direction == Direction::Sent && m.json["type"] == "played" && m.json["turnId"] == turn_id)
        .collect()
}

/// The `latency` events the page received for `turn_id`, in order.
fn latency_events(page: &Page, turn_id: u64) -> Vec<Value> {
    page.socket_messages()
        .into_iter()
        .filter(|m| m.direction == Direction::Received && m.json["type"] == "latency" && m.json["turnId"] == turn_id)
        .map(|m| m.json)
        .collect()
}

/// The latency line the page shows for turn 1, once it has a voice-to-voice figure.
async fn shown_voice_to_voice(page: &Page) -> String {
    let shown = page
        .wait_for(
            "the voice-to-voice figure",
            "(() => { const t = document.querySelector('.turn[data-turn=\"1\"] .latency')?.textContent || ''; \
             return /voice-to-voice \\d+ ms/.test(t) && t; })()",
            WAIT,
        )
        .await;
    shown.as_str().unwrap().to_string()
}

#[actix_web::test]
async fn the_page_reports_what_it_heard_while_a_reply_plays_and_where_it_drained_and_nothing_for_a_silent_turn() {
    let rig = Rig::default(Mic::Silence).await;
    let (server, page) = (&rig.server, &rig.page);
    server.emulators.openai().push_reply(Reply::Text(REPLY.into()));
    page.record_network().await;
    rig.connect().await;

    rig.say("Tell me something.").await;
    page.wait_for(
        "the reply to play out",
        "parley.turns[1] && parley.turns[1].ended && parley.turns[1].playedOut",
        WAIT,
    )
    .await;
    let heard = page.eval("parley.playback.msPlayedByTurn[1]").await.as_u64().unwrap();
    let expected_ms = REPLY.chars().count() as f64 / 15.0 * 1000.0;
    assert!((heard as f64 - expected_ms).abs() < expected_ms * 0.15, "heard {heard} ms of about {expected_ms} ms");
    page.wait_for_message(
        "the position where the reply drained",
        |m| m.direction == Direction::Sent && m.json["type"] == "played" && m.json["ms"] == heard,
        WAIT,
    )
    .await;

    // A turn with no audio at all (the LLM refuses it): nothing to acknowledge.
    server.emulators.openai().push_fault(OpenAiFault::Unauthorized);
    rig.say("And now?").await;
    page.wait_for("the silent turn to end", "parley.turns[2] && parley.turns[2].ended", WAIT).await;
    // Let the audio clock run on for a second (four reporting periods) with both turns over.
    let clock = page.eval("parley.playback.audioTime").await.as_f64().unwrap();
    page.wait_for("the audio clock to advance", &format!("parley.playback.audioTime > {clock} + 1"), WAIT).await;

    let all_played: Vec<Value> = page
        .socket_messages()
        .into_iter()
        .filter(|m| m.direction == Direction::Sent && m.json["type"] == "played")
        .map(|m| m.json)
        .collect();
    assert!(all_played.iter().all(|m| m["turnId"] == 1), "only the turn with audio is acknowledged: {all_played:?}");
    let sent = played(page, 1);
    let positions: Vec<u64> = sent.iter().map(|m| m.json["ms"].as_u64().unwrap()).collect();
    // The last is where it drained, nothing follows it; before it, positions only go up.
    assert_eq!(positions.last(), Some(&heard), "{positions:?}");
    let progress = &sent[..sent.len() - 1];
    let progress_ms = &positions[..positions.len() - 1];
    assert!(progress_ms.windows(2).all(|w| w[0] < w[1]), "positions go up: {positions:?}");
    assert!(progress_ms.iter().all(|&ms| ms > 0 && ms <= heard), "{positions:?}");
    // Every 250 ms while it played: about 24 for six seconds; at least a few, and never more often.
    assert!(progress.len() >= 3, "a position every 250 ms while it played: {positions:?}");
    let span = progress.last().unwrap().at - progress[0].at;
    assert!(
        progress.len() as f64 <= span / 0.25 + 3.0,
        "{} positions in {span:.2} s is more often than every 250 ms: {positions:?}",
        progress.len()
    );
    let refused: Vec<Value> = page
        .socket_messages()
        .into_iter()
        .filter(|m| m.direction == Direction::Received && m.json["type"] == "error")
        .map(|m| m.json)
        .filter(|e| !e["code"].as_str().is_some_and(|c| c.starts_with("openai_")))
        .collect();
    assert_eq!(refused, Vec::<Value>::new(), "parley took every acknowledgement");

    // The long reply was heard before it ended, so its one latency event is complete and shown.
    let events = latency_events(page, 1);
    assert_eq!(events.len(), 1, "{events:?}");
    let v2v = events[0]["heardAfterMs"].as_u64().unwrap_or_else(|| panic!("voice-to-voice: {events:?}"));
    assert!(shown_voice_to_voice(page).await.contains(&format!("voice-to-voice {v2v} ms")));
    rig.finish().await;
}

#[actix_web::test]
async fn voice_to_voice_is_shown_from_the_latency_event_that_carries_it_even_after_the_turn_ended() {
    let rig = Rig::default(Mic::Silence).await;
    let (server, page) = (&rig.server, &rig.page);
    // A quarter of a second of voice: all of it is sent and the turn ends before the page can have said
    // what it heard, so voice-to-voice comes in a second latency event.
    server.emulators.openai().push_reply(Reply::Text("Yes.".into()));
    page.record_network().await;
    rig.connect().await;
    // Every text the latency line shows for turn 1, in order.
    page.eval(
        "window.latencyShown = []; new MutationObserver(() => { \
           const t = document.querySelector('.turn[data-turn=\"1\"] .latency')?.textContent; \
           if (t && t !== window.latencyShown.at(-1)) window.latencyShown.push(t); \
         }).observe(document.getElementById('turns'), {subtree: true, childList: true, characterData: true}); true",
    )
    .await;

    rig.say("Is it?").await;
    let shown = shown_voice_to_voice(page).await;
    let events = latency_events(page, 1);
    let last = events.last().unwrap_or_else(|| panic!("no latency event"));
    let v2v = last["heardAfterMs"].as_u64().unwrap_or_else(|| panic!("voice-to-voice: {events:?}"));
    assert!(shown.contains(&format!("voice-to-voice {v2v} ms")), "{shown}");
    assert!(!shown.contains("first audio"), "one voice-to-voice figure, not a separate first-audio one: {shown}");
    assert_eq!(page.eval("parley.turns[1].latency.heardAfterMs").await, v2v);
    let history: Vec<String> = serde_json::from_value(page.eval("window.latencyShown").await).unwrap();
    match events.as_slice() {
        [_complete] => {} // the acknowledgement beat the turn's end
        [first, second] => {
            // The second event replaces the first: every figure again, now with voice-to-voice.
            assert_eq!(first["heardAfterMs"], Value::Null, "{events:?}");
            for figure in ["sttMs", "llmFirstTokenMs", "ttsFirstByteMs", "firstAudioMs"] {
                assert_eq!(first[figure], second[figure], "{figure}: {events:?}");
            }
            assert!(history[0].contains("voice-to-voice —"), "unknown at first: {history:?}");
            // It came because the page said what it heard.
            let messages = page.socket_messages();
            let acked = messages.iter().position(|m| m.direction == Direction::Sent && m.json["type"] == "played");
            let completed = messages.iter().rposition(|m| m.json == *second);
            let (acked, completed) = (acked.expect("an acknowledgement"), completed.expect("the second event"));
            assert!(acked < completed, "the first acknowledgement precedes the second event");
        }
        more => panic!("one or two latency events for the turn, got {more:?}"),
    }
    assert_eq!(history.last(), Some(&shown), "{history:?}");
    rig.finish().await;
}
