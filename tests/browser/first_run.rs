//! The first five minutes on the page, as a new user meets them: a server without provider keys (the page
//! says what the operator must set, keeps the microphone off and sends no audio, lists every error and rates
//! no answer that never came), a server with emulated providers (the page says the recogniser reads a script),
//! a phone after a few turns (the controls stay in reach; a stage that did not happen shows "—"), the history
//! (sessions named by their first words, recordings with their length before they play), and `/status` with
//! the voice figures, on a phone too.

use serde_json::json;

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::rig::Rig;
use crate::harness::server::EMULATE;

/// Whether `selector` is wholly inside the viewport and not covered there by anything else.
fn in_reach(selector: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector('{selector}'); const r = e.getBoundingClientRect(); \
         const inside = r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; \
         const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2); \
         return inside && (hit === e || e.contains(hit)); }})()"
    )
}

const CONTROLS: [&str; 4] = ["#mic", "#interrupt", "#message", "#send"];

#[actix_web::test]
async fn without_provider_keys_the_page_keeps_the_microphone_off_says_what_to_set_and_lists_every_error() {
    let rig = Rig::start(Mic::Speech, "", |env| {
        for key in ["DEEPGRAM_API_KEY", "OPENAI_API_KEY", "ELEVENLABS_API_KEY"] {
            env.remove(key);
        }
    })
    .await;
    let (server, page) = (&rig.server, &rig.page);
    rig.connect().await;

    // The session says which stages cannot work, and the page says what to set.
    let providers = page.eval("parley.connection.providers").await;
    for (stage, variable) in [("stt", "DEEPGRAM_API_KEY"), ("llm", "OPENAI_API_KEY"), ("tts", "ELEVENLABS_API_KEY")] {
        assert_eq!(providers[stage]["status"], "missing", "{providers}");
        assert_eq!(providers[stage]["keyVariable"], variable, "{providers}");
    }
    let setup =
        page.eval("document.getElementById('setup').hidden ? '' : document.getElementById('setup').textContent").await;
    let setup = setup.as_str().unwrap();
    for variable in ["DEEPGRAM_API_KEY", "OPENAI_API_KEY", "ELEVENLABS_API_KEY"] {
        assert!(setup.contains(variable), "the page names {variable}: {setup}");
    }

    // Connected, but not listening: the microphone is not "on" and no audio goes out.
    page.wait_for("the microphone to say it is unavailable", "parley.mic.state === 'unavailable'", WAIT).await;
    assert_eq!(page.eval("document.getElementById('conn-state').textContent").await, "Connected");
    assert_eq!(page.eval("document.getElementById('mic-label').textContent").await, "Speech input unavailable");
    assert_eq!(page.eval("document.getElementById('mic').disabled").await, true);

    // A typed turn: both missing keys are errors, each listed (not only the latest); the turn has no answer,
    // so nothing to rate.
    rig.say("Hello?").await;
    page.wait_for("the turn to end", "parley.turns[1] && parley.turns[1].ended", WAIT).await;
    let messages = "[...document.querySelectorAll('#error-list li .error-message')].map(p => p.textContent)";
    let listed = page
        .wait_for(
            "both errors to be listed",
            &format!("(() => {{ const m = {messages}; return m.length === 2 && m; }})()"),
            WAIT,
        )
        .await;
    let listed = listed.to_string();
    assert!(listed.contains("OPENAI_API_KEY") && listed.contains("ELEVENLABS_API_KEY"), "{listed}");
    assert_eq!(page.eval("document.querySelector('.turn[data-turn=\"1\"] .status').textContent").await, "no answer");
    assert_eq!(page.eval("document.querySelectorAll('.turn[data-turn=\"1\"] .feedback').length").await, 0);
    assert_eq!(page.eval("parley.mic.framesSent").await, 0, "no audio was streamed");
    assert!(server.emulators.deepgram().connections().is_empty(), "nothing reached speech recognition");

    // A third error joins the list; the same one again is counted on its entry rather than listed twice.
    for _ in 0..2 {
        page.eval(
            "parley.debug.inject(JSON.stringify({type: 'error', code: 'invalid_message', \
             error: 'The server could not use that message.', retryable: false})); true",
        )
        .await;
    }
    let counted = page
        .eval(
            "[...document.querySelectorAll('#error-list li')].map(l => [l.querySelector('.error-message').firstChild.textContent, \
             l.querySelector('.error-count').hidden ? '' : l.querySelector('.error-count').textContent])",
        )
        .await;
    assert_eq!(counted.as_array().unwrap().len(), 3, "{counted}");
    assert_eq!(counted[2], json!(["The server could not use that message.", "×2"]), "{counted}");
    page.screenshots("first-run-no-keys").await;
    page.click("#error-list li:first-child .dismiss").await;
    assert_eq!(page.eval("document.querySelectorAll('#error-list li').length").await, 2, "one dismissed");
    page.click("#errors-clear").await;
    assert_eq!(page.eval("document.getElementById('errors').hidden").await, true, "all dismissed");
    page.assert_controls_named().await;
    rig.finish().await;
}

#[actix_web::test]
async fn with_emulated_providers_the_page_says_the_recogniser_returns_a_script_not_your_words() {
    let rig = Rig::start(Mic::Speech, "", |env| {
        env.insert(EMULATE.into(), "1".into());
    })
    .await;
    let page = &rig.page;
    rig.connect().await;
    assert_eq!(page.eval("document.getElementById('emulated').hidden").await, false);
    let note = page.eval("document.querySelector('#setup-notes li[data-kind=\"emulated\"]')?.textContent").await;
    let note = note.as_str().unwrap_or_else(|| panic!("an emulated-providers note: {note}"));
    assert!(note.contains("does not listen to you") && note.contains("fixed script"), "{note}");
    assert!(note.contains("This is caller 1, turn 1, speaking."), "{note}");
    // Emulated speech recognition still listens: the microphone is on and streams.
    page.wait_for("the microphone", "parley.mic.state === 'on' && parley.mic.framesSent >= 25", WAIT).await;
    // Whatever was said, the transcript is the script the note announced.
    let said = page
        .wait_for(
            "the user's turn",
            "document.querySelector('.turn[data-turn=\"1\"] .bubble.user .text')?.textContent",
            WAIT,
        )
        .await;
    assert_eq!(said, "This is caller 1, turn 1, speaking.");
    page.screenshots("first-run-emulated").await;
    rig.finish().await;
}

#[actix_web::test]
async fn on_a_phone_the_controls_stay_in_reach_after_three_turns_and_a_skipped_stage_shows_a_dash() {
    let rig = Rig::default(Mic::Silence).await;
    let (server, page) = (&rig.server, &rig.page);
    page.phone_size().await;
    rig.connect().await;
    for n in 1..=3 {
        server.emulators.openai().push_reply(parley::emulators::Reply::Text(format!(
            "Answer number {n} is here. It has a second sentence to take some room. And a third one, too."
        )));
        rig.say(&format!("Question number {n}, please?")).await;
        page.wait_for("the turn to end", &format!("parley.turns[{n}] && parley.turns[{n}].ended"), WAIT).await;
        page.wait_for("its latency", &format!("parley.turns[{n}].latency"), WAIT).await;
    }
    let height = page.eval("document.documentElement.scrollHeight > window.innerHeight * 1.5").await;
    assert_eq!(height, true, "three turns make the page taller than a phone's screen");
    // Where the page scrolled to (the latest turn), at the top, and in the middle of the conversation.
    for at in
        ["window.scrollY", "window.scrollTo(0, 0)", "document.querySelector('.turn[data-turn=\"2\"]').scrollIntoView()"]
    {
        page.eval(&format!("{at}; true")).await;
        for control in CONTROLS {
            assert_eq!(page.eval(&in_reach(control)).await, true, "{control} is in reach after `{at}`");
        }
    }
    // The docked controls keep one row whatever the microphone's label says, so nothing jumps under a finger.
    let rows = page
        .eval(
            "import('/assets/ui.js').then(ui => { const h = () => document.querySelector('.controls').offsetHeight; \
             ui.showMic('starting'); const starting = h(); ui.showMic(parley.mic.state); return [starting, h()]; })",
        )
        .await;
    assert_eq!(rows[0], rows[1], "the same height while starting and on: {rows}");
    assert!(rows[0].as_f64().unwrap() < 60.0, "one row: {rows}");
    // Typed turns skipped speech recognition: that figure is "—", the ones that happened are numbers.
    let latency = page.eval("document.querySelector('.turn[data-turn=\"3\"] .latency').textContent").await;
    let latency = latency.as_str().unwrap();
    assert!(latency.contains("STT —"), "{latency}");
    assert!(latency.contains("LLM ") && !latency.contains("LLM —"), "{latency}");
    assert_eq!(page.eval("parley.turns[3].latency.sttMs").await, json!(null));
    page.screenshots("phone-three-turns").await;
    rig.finish().await;
}
