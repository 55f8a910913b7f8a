//! The other ways in: none at all (the page says how to open it and does nothing else), and a token an app
//! backend minted for its user, handed over as `/?token=` or with `window.parley.setToken` (the page is that
//! user, and says plainly when the token has expired).

use parley::emulators::Reply;

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::page::Page;
use crate::harness::rig::Rig;

/// The notice's text, once it shows.
async fn notice(page: &Page) -> String {
    let text = page
        .wait_for(
            "the notice",
            "!document.getElementById('notice').hidden && document.getElementById('notice').innerText",
            WAIT,
        )
        .await;
    text.as_str().unwrap().to_string()
}

/// Types a turn and waits for its answer (turn 1 of the connection).
async fn typed_turn_answered(rig: &Rig) {
    rig.say("Who am I?").await;
    rig.page
        .wait_for("the answer", "parley.turns[1] && parley.turns[1].ended && parley.turns[1].captions.length", WAIT)
        .await;
}

#[actix_web::test]
async fn a_page_opened_without_a_credential_says_how_to_open_it_and_streams_nothing_until_given_a_token() {
    let rig = Rig::at(Mic::Silence, |_| {}, |server| server.url("/")).await;
    let (server, page) = (&rig.server, &rig.page);
    page.record_network().await;
    let said = notice(page).await;
    assert!(said.contains("This page was opened without a credential."), "{said}");
    assert!(said.contains("Open the page through the address parley printed when it started"), "{said}");
    assert_eq!(page.eval("document.getElementById('notice').getAttribute('role')").await, "alert");
    assert_eq!(page.eval("parley.auth.mode").await, "none");
    assert_eq!(page.eval("document.getElementById('start').disabled").await, true);
    let history = page.eval("document.getElementById('history-status').textContent").await;
    assert!(history.as_str().unwrap().starts_with("History cannot be shown."), "{history}");

    // Submitting the form anyway (Enter in the user id field) opens nothing: the handler runs synchronously.
    page.eval("document.getElementById('identity').requestSubmit()").await;
    let state = page.state().await;
    assert_eq!(state["connection"]["log"], serde_json::json!(["idle"]), "{state}");
    assert_eq!((state["mic"]["state"].as_str(), state["mic"]["framesSent"].as_u64()), (Some("off"), Some(0)));
    assert_eq!(page.socket_urls(), Vec::<String>::new(), "no WebSocket was opened");
    assert!(server.emulators.deepgram().connections().is_empty(), "no audio reached speech recognition");

    // The app that embeds the page hands it a token: the page is that user, and works.
    let token = server.mint_token("embedded-user", 600);
    page.eval(&format!("parley.setToken('{token}')")).await;
    assert_eq!(page.eval("document.getElementById('notice').hidden").await, true, "the instruction is gone");
    assert_eq!(page.eval("document.getElementById('start').disabled").await, false);
    assert_eq!(page.eval("document.getElementById('user-id').value").await, "embedded-user");
    assert_eq!(page.eval("document.getElementById('user-id').readOnly").await, true, "the token names the user");
    assert_eq!(page.eval("sessionStorage.getItem('parley.token')").await, token.as_str(), "kept for a reload");
    server.emulators.openai().push_reply(Reply::Text("You are the embedded user.".into()));
    rig.connect().await;
    assert_eq!(page.eval("parley.auth.userId").await, "embedded-user");
    typed_turn_answered(&rig).await;
    page.wait_for("the microphone", "parley.mic.framesSent > 0", WAIT).await;
    // Nothing was sent without a credential, so nothing was refused.
    rig.finish().await;
}

#[actix_web::test]
async fn a_token_in_the_address_signs_in_as_its_user_and_an_expired_one_says_to_reload() {
    let rig = Rig::at(
        Mic::Silence,
        |_| {},
        |server| server.url(&format!("/?token={}&mp3=mse", server.mint_token("app-user", 600))),
    )
    .await;
    let (server, page) = (&rig.server, &rig.page);
    page.wait_for("the history", "parley.auth.mode === 'token' && !parley.history.loading", WAIT).await;
    assert_eq!(page.eval("location.href").await, server.url("/?mp3=mse"), "the token left the address bar");
    let stored = page.eval("sessionStorage.getItem('parley.token')").await;
    assert!(stored.as_str().is_some_and(|t| t.split('.').count() == 3), "{stored}");
    assert_eq!(page.eval("document.getElementById('user-id').value").await, "app-user");
    assert_eq!(page.eval("parley.auth.obtained").await, 0, "an app's token is used as it is");
    assert_eq!(page.eval("document.getElementById('history-status').textContent").await, "No conversations yet.");

    page.record_network().await;
    server.emulators.openai().push_reply(Reply::Text("You are the app's user.".into()));
    let session_id = rig.connect().await;
    typed_turn_answered(&rig).await;
    let (_, history) = server.get_json(&format!("/api/history?sessionId={session_id}")).await;
    assert_eq!(history["userId"], "app-user", "{history}");

    // The app's token runs out (and the app gives no new one): the page says so, and what to do.
    page.eval(&format!("parley.setToken('{}')", server.mint_token("app-user", -120))).await;
    page.click("#history-refresh").await;
    let said = notice(page).await;
    assert!(said.contains("Your session token has expired.") && said.contains("Reload the page"), "{said}");
    assert_eq!(page.eval("parley.auth.problem").await, "token_expired");
    // A new connection is refused before the upgrade; the page reads why and says the same.
    page.click("#end").await;
    page.click("#dismiss").await;
    page.click("#start").await;
    page.wait_for("the refusal", "parley.connection.state === 'failed'", WAIT).await;
    let said = notice(page).await;
    assert!(said.contains("Your session token has expired."), "{said}");
    assert_eq!(page.eval("document.getElementById('reconnect').hidden").await, true, "reconnecting cannot help");
    let probed = page.wait_for_request(&server.url("/ws/chat-audio?token="), WAIT).await;
    assert!(probed, "the page asked over plain HTTP why the upgrade was refused");

    // The browser logs the refused requests and the failed upgrade; nothing else went wrong.
    let unexpected: Vec<String> = page
        .console_errors()
        .into_iter()
        .filter(|e| {
            !(e.contains("WebSocket connection to")
                || (e.contains("401") && (e.contains("/api/sessions?") || e.contains("/ws/chat-audio?"))))
        })
        .collect();
    assert_eq!(unexpected, Vec::<String>::new());
    rig.close().await;
}
