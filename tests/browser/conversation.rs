//! The whole loop through the page, as a person with a microphone meets it: connect, speak (the fake
//! microphone plays tests/fixtures/audio/speech_16k.wav), see the live transcript and the committed turn,
//! read the captions sentence by sentence, hear the MP3 reply, rate it, and find it in the history panel.

use parley::emulators::Reply;

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::rig::Rig;

const ASKED: &str = "What is the weather like on the moon";
const REPLY: &str =
    "The moon has no weather at all. There is no air to carry clouds or wind. Days are hot and nights are cold.";

#[actix_web::test]
async fn a_spoken_turn_is_transcribed_captioned_played_rated_and_listed_in_history() {
    let rig = Rig::default(Mic::Speech).await;
    let (server, page) = (&rig.server, &rig.page);
    server.emulators.deepgram().push_script(vec![ASKED.into()]);
    server.emulators.openai().push_reply(Reply::Text(REPLY.into()));
    assert_eq!(page.eval("parley.connection.state").await, "idle");
    assert_eq!(page.eval("document.getElementById('conn-state').textContent").await, "Not connected");

    page.fill("#user-id", "browser-tester").await;
    page.click("#start").await;
    let session_id =
        page.wait_for("the session", "parley.connection.state === 'ready' && parley.connection.sessionId", WAIT).await;
    let session_id = session_id.as_str().unwrap().to_string();
    assert_eq!(page.eval("document.getElementById('session-id').textContent").await, session_id);
    assert_eq!(page.eval("document.getElementById('conn-state').textContent").await, "Connected");
    assert_eq!(page.eval("localStorage.getItem('parley.userId')").await, "browser-tester");

    // The microphone streams 20 ms frames of 16 kHz PCM, and parley forwards them to speech recognition.
    page.wait_for("the microphone", "parley.mic.state === 'on' && parley.mic.framesSent >= 25", WAIT).await;
    let deepgram = server.emulators.deepgram();
    assert!(
        deepgram.wait_until(|c| c.first().is_some_and(|c| c.audio_bytes >= 32_000), WAIT).await,
        "a second of audio reached the Deepgram emulator: {:?}",
        deepgram.connections().first().map(|c| (c.audio_bytes, c.audio_frames))
    );
    let dg = deepgram.connections().remove(0);
    assert_eq!(dg.audio_bytes / dg.audio_frames, 640, "20 ms frames of 16-bit 16 kHz mono");
    assert!(dg.query.iter().any(|(k, v)| k == "sample_rate" && v == "16000"), "{:?}", dg.query);
    let rate = page.eval("parley.mic.settings.contextRate").await;
    assert!(rate.as_f64().unwrap() > 16_000.0, "the worklet resampled down from {rate}");

    // Live transcript, then the committed turn, then the captions one sentence at a time.
    page.wait_for("an interim transcript", "document.getElementById('interim').textContent", WAIT).await;
    let user = page
        .wait_for(
            "the user's turn",
            "document.querySelector('.turn[data-turn=\"1\"] .bubble.user .text')?.textContent",
            WAIT,
        )
        .await;
    assert_eq!(user, ASKED);
    let captions = page
        .wait_for(
            "three caption sentences",
            "(() => { const s = [...document.querySelectorAll('.turn[data-turn=\"1\"] .captions .sentence')]; \
             return s.length === 3 && s.map(e => e.textContent); })()",
            WAIT,
        )
        .await;
    assert_eq!(
        captions,
        serde_json::json!([
            "The moon has no weather at all.",
            "There is no air to carry clouds or wind.",
            "Days are hot and nights are cold."
        ])
    );

    // The reply plays through WebCodecs and the worklet queue, all of it.
    page.wait_for("audio playing", "parley.playback.samplesPlayed > 0 && parley.playback.state === 'playing'", WAIT)
        .await;
    assert_eq!(page.eval("parley.playback.mode").await, "mp3-webcodecs");
    page.wait_for("the reply to play out", "parley.turns[1].ended && parley.turns[1].playedOut", WAIT).await;
    let played_ms = page.eval("parley.playback.msPlayedByTurn[1]").await.as_f64().unwrap();
    // The emulated voice speaks 15 characters a second.
    let expected_ms = REPLY.chars().count() as f64 / 15.0 * 1000.0;
    assert!((played_ms - expected_ms).abs() < expected_ms * 0.15, "heard {played_ms} ms of about {expected_ms} ms");
    assert_eq!(page.eval("parley.playback.lateFrames").await, 0);
    let latency = page
        .wait_for("latency figures", "document.querySelector('.turn[data-turn=\"1\"] .latency')?.textContent", WAIT)
        .await;
    assert!(latency.as_str().unwrap().contains("voice-to-voice"), "{latency}");
    let heard = page.eval("document.querySelector('.turn[data-turn=\"1\"] .heard').textContent").await;
    assert!(heard.as_str().unwrap().contains("heard"), "{heard}");

    // Rate the answer live; parley stores it.
    let message_id = page.wait_for("the stored reply", "parley.turns[1].assistantMessageId", WAIT).await;
    page.click(".turn[data-turn=\"1\"] .thumb.positive").await;
    page.wait_for(
        "the rating to show",
        "document.querySelector('.turn[data-turn=\"1\"] .thumb.positive').getAttribute('aria-pressed') === 'true'",
        WAIT,
    )
    .await;
    let (status, history) = server.get_json(&format!("/api/history?sessionId={session_id}")).await;
    assert_eq!(status, 200, "{history}");
    let reply = history["messages"].as_array().unwrap().iter().find(|m| m["id"] == message_id).cloned();
    let reply = reply.unwrap_or_else(|| panic!("message {message_id} in {history}"));
    assert_eq!((reply["role"].as_str(), reply["feedback"].as_str()), (Some("assistant"), Some("positive")));

    // Both messages' recordings are stored in the background and linked from the history.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, history) = server.get_json(&format!("/api/history?sessionId={session_id}")).await;
        let messages = history["messages"].as_array().cloned().unwrap_or_default();
        if messages.len() == 2 && messages.iter().all(|m| m["audioUrl"].is_string()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "recordings linked: {history}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The history panel lists the session and shows both messages, with their recordings and the rating.
    page.click("#history-refresh").await;
    let item = format!(".session[data-session-id=\"{session_id}\"]");
    let listed = format!("!parley.history.loading && document.querySelector('{item}')");
    page.wait_for("the session in the refreshed history panel", &listed, WAIT).await;
    page.click(&format!("{item} .session-toggle")).await;
    let texts = page
        .wait_for(
            "the session's messages",
            &format!(
                "(() => {{ const m = [...document.querySelectorAll('{item} .message .text')]; \
                 return m.length === 2 && m.map(e => e.textContent); }})()"
            ),
            WAIT,
        )
        .await;
    assert_eq!(texts[0], ASKED);
    assert_eq!(texts[1], REPLY);
    let pressed = page
        .eval(&format!(
            "document.querySelector('{item} .message.assistant .thumb.positive').getAttribute('aria-pressed')"
        ))
        .await;
    assert_eq!(pressed, "true", "the history panel shows the stored rating");
    let recordings = page.eval(&format!("document.querySelectorAll('{item} .message audio[controls]').length")).await;
    assert_eq!(recordings, 2, "a player per recorded message");
    // The browser fetches and plays the reply's recording from its link, signed by the server (an `<audio>`
    // element sends no Authorization header).
    let src = page.eval(&format!("document.querySelector('{item} .message.assistant audio').src")).await;
    let src = src.as_str().unwrap();
    assert!(src.contains("/audio_recordings/") && src.contains("exp=") && src.contains("sig="), "{src}");
    page.eval(&format!("document.querySelector('{item} .message.assistant audio').play()")).await;
    page.wait_for(
        "the recording to play",
        &format!("document.querySelector('{item} .message.assistant audio').currentTime > 0.2"),
        WAIT,
    )
    .await;

    page.assert_controls_named().await;

    page.screenshots("conversation").await;
    rig.finish().await;
}
