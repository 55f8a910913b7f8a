//! A dropped connection never leaves the page broken: when parley restarts, the page says so, offers to
//! reconnect, comes back by itself once the server is there again, and resumes the same stored session.

use parley::emulators::Reply;

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::rig::Rig;

#[actix_web::test]
async fn a_server_restart_shows_the_drop_and_the_page_resumes_the_same_session() {
    let mut rig = Rig::default(Mic::Silence).await;
    let openai = rig.server.emulators.openai();
    openai.push_reply(Reply::Text("First answer.".into()));
    openai.push_reply(Reply::Text("Second answer.".into()));
    rig.page.fill("#user-id", "restart-tester").await;
    let session_id = rig.connect().await;
    rig.say("Hello before the restart").await;
    let stored = "parley.turns[1] && parley.turns[1].assistantMessageId";
    rig.page.wait_for("the first reply to be stored", stored, WAIT).await;

    rig.server.restart().await;
    let page = &rig.page;
    page.wait_for(
        "the page to come back",
        "parley.connection.state === 'ready' && parley.connection.log.includes('reconnecting') && parley.connection.resumed",
        WAIT,
    )
    .await;
    let state = page.state().await;
    assert_eq!(state["connection"]["sessionId"], session_id, "the same session, resumed");
    assert!(
        state["statuses"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().contains("restarting")),
        "the server's shutdown status was shown: {}",
        state["statuses"]
    );
    let divider = page.eval("[...document.querySelectorAll('.divider')].pop().textContent").await;
    assert!(divider.as_str().unwrap().starts_with("Resumed conversation (2 earlier"), "{divider}");

    rig.say("Hello after the restart").await;
    page.wait_for("the second reply to be stored", stored, WAIT).await;
    let (_, history) = rig.server.get_json(&format!("/api/history?sessionId={session_id}")).await;
    let texts: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(texts, ["Hello before the restart", "First answer.", "Hello after the restart", "Second answer."]);

    // The browser logs the refused reconnect attempts while the server was away, and the page's plain GETs
    // of the WebSocket URL that ask the server why; nothing else went wrong.
    let unexpected: Vec<String> = page
        .console_errors()
        .into_iter()
        .filter(|e| {
            !(e.contains("WebSocket connection to")
                || e.contains("ERR_CONNECTION_REFUSED")
                || (e.contains("Failed to load resource") && e.contains("/ws/chat-audio?")))
        })
        .collect();
    assert_eq!(unexpected, Vec::<String>::new());
    rig.close().await;
}
