//! The development way in, as parley's zero-configuration start offers it: the page is opened at the address
//! parley printed (`/?dev=CREDENTIAL`); the credential leaves the address bar at once but stays with the tab
//! (a reload and /status still work), is exchanged for a token of the user id in use (another for another
//! id, a fresh one before it expires), and every request carries that token: REST calls as
//! `Authorization: Bearer`, the WebSocket as `?token=`.

use std::time::Duration;

use parley::emulators::Reply;
use serde_json::Value;

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::rig::Rig;

/// Waits for the answer to typed turn 1.
async fn answered(rig: &Rig) -> Value {
    rig.page
        .wait_for(
            "the answer",
            "parley.turns[1] && parley.turns[1].ended && parley.turns[1].captions.length && parley.turns[1].captions",
            WAIT,
        )
        .await
}

#[actix_web::test]
async fn the_credential_leaves_the_address_bar_and_a_reload_signs_in_again_from_the_tab() {
    let rig = Rig::default(Mic::Silence).await;
    let (server, page) = (&rig.server, &rig.page);
    server.emulators.openai().push_reply(Reply::Text("Signed in.".into()));
    // The history panel needed a token at once: the credential was exchanged for one.
    page.wait_for("a token", "parley.auth.obtained === 1 && !parley.history.loading", WAIT).await;
    assert_eq!(page.eval("location.href").await, server.url("/"), "no credential in the address bar");
    assert_eq!(page.eval("sessionStorage.getItem('parley.dev')").await, server.dev_credential());
    let state = page.eval("JSON.stringify(parley.snapshot())").await;
    assert!(!state.as_str().unwrap().contains(server.dev_credential()), "the page's state holds no secret: {state}");

    page.record_network().await;
    page.reload().await;
    page.wait_for("a token after the reload", "parley.auth.obtained === 1 && !parley.history.loading", WAIT).await;
    assert_eq!(page.eval("parley.auth.mode").await, "development");
    assert_eq!(page.eval("location.href").await, server.url("/"));
    let user = page.eval("document.getElementById('user-id').value").await;
    assert_eq!(page.eval("parley.auth.userId").await, user, "the token is for the user id in use");

    rig.connect().await;
    rig.say("Are we signed in?").await;
    assert_eq!(answered(&rig).await, serde_json::json!(["Signed in."]));
    let sockets = page.socket_urls();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    assert!(sockets[0].contains("token=") && !sockets[0].contains("userId="), "the user is the token's: {sockets:?}");

    // Another user id gets a token of its own, and that user's (empty) history.
    page.fill("#user-id", "someone-else").await;
    page.wait_for(
        "the other user's history",
        "parley.auth.userId === 'someone-else' && parley.auth.obtained === 2 && !parley.history.loading \
         && document.getElementById('history-status').textContent === 'No conversations yet.'",
        WAIT,
    )
    .await;

    // Every REST call carried a bearer token; only the exchange itself carries the credential instead.
    let requests = page.requests();
    let api: Vec<_> = requests.iter().filter(|(url, _)| url.contains("/api/")).collect();
    assert!(api.iter().any(|(url, _)| url.contains("/api/sessions?")), "{api:#?}");
    for (url, headers) in api {
        let bearer = headers["Authorization"].as_str().or(headers["authorization"].as_str());
        if url.ends_with("/api/dev/token") {
            assert_eq!(bearer, None, "{url}");
        } else {
            assert!(bearer.is_some_and(|b| b.starts_with("Bearer ") && b.len() > 40), "{url}: {headers}");
        }
    }
    rig.finish().await;
}

#[actix_web::test]
async fn a_development_token_is_renewed_before_it_expires() {
    // The shortest lifetime parley allows: the page renews with a quarter of it gone.
    let rig = Rig::start(Mic::Silence, "", |env| {
        env.insert("PARLEY_TOKEN_MAX_TTL_SECS".into(), "60".into());
    })
    .await;
    let page = &rig.page;
    let first = page.wait_for("the first token", "parley.auth.obtained === 1 && {...parley.auth}", WAIT).await;
    let (renew_at, expires_at) = (first["renewAt"].as_f64().unwrap(), first["expiresAt"].as_f64().unwrap());
    assert!((expires_at - renew_at - 45_000.0).abs() < 1.0, "renewed 45 s before its expiry: {first}");

    // Nothing asks for a token meanwhile: the page renews on its own, before the first one expires (the
    // assertion below checks when; the wait only has to outlast the first token's lifetime).
    let renewed =
        page.wait_for("the renewal", "parley.auth.obtained === 2 && {...parley.auth}", Duration::from_secs(60)).await;
    let obtained_at = renewed["expiresAt"].as_f64().unwrap() - 60_000.0;
    assert!(obtained_at >= renew_at && obtained_at < expires_at, "renewed at {obtained_at}: {first} → {renewed}");
    rig.connect().await;
    rig.finish().await;
}

#[actix_web::test]
async fn the_status_page_shows_figures_in_the_same_tab_and_says_what_to_do_in_another() {
    let rig = Rig::default(Mic::Silence).await;
    let (server, page) = (&rig.server, &rig.page);
    page.wait_for("a token", "parley.auth.obtained === 1 && !parley.history.loading", WAIT).await;

    // The page's own link, in the same tab.
    page.mark_document().await;
    page.click("nav a[href='/status']").await;
    page.wait_for_new_document("the status page", "!!window.parleyStatus").await;
    let uptime = page
        .wait_for(
            "the figures",
            "parleyStatus.updates >= 1 && document.querySelector('[data-key=\"uptime_seconds\"]').textContent",
            WAIT,
        )
        .await;
    assert!(uptime.as_str().unwrap().ends_with('s'), "{uptime}");
    let line = page.eval("document.getElementById('state').textContent").await;
    assert!(line.as_str().unwrap().starts_with("updated "), "{line}");

    // And back: the conversation page is still signed in.
    page.mark_document().await;
    page.click("footer a[href='/']").await;
    page.wait_for_new_document("the conversation page", "!!window.parley").await;
    page.wait_for("a token", "parley.auth.mode === 'development' && parley.auth.obtained === 1", WAIT).await;

    // Another tab does not inherit the credential: the status page says how to get one, and asks nothing.
    let other = rig.browser.open_until(&server.url("/status"), "!!window.parleyStatus").await;
    other.wait_for("the refusal", "parleyStatus.state === 'refused'", WAIT).await;
    assert_eq!(other.eval("parleyStatus.code").await, "credential_missing");
    let line = other.eval("document.getElementById('state').textContent").await;
    assert!(line.as_str().unwrap().contains("Open the page through the address parley printed"), "{line}");
    assert_eq!(other.console_errors(), Vec::<String>::new(), "no request was refused: none was sent");
    rig.finish().await;
}
