//! The history panel on its own: a user's sessions a page at a time (`Load more`), and `Continue` resuming
//! one of them over the WebSocket.

use futures_util::{SinkExt as _, StreamExt as _};

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::rig::Rig;
use crate::harness::server::{OPERATOR_KEY, Server};

/// Opens a voice session for `user` (as an app backend would, with the operator key) and closes it once it
/// is announced; returns its id.
async fn session_for(server: &Server, user: &str) -> String {
    let url = format!("{}/ws/chat-audio?userId={user}", server.address.replace("http://", "ws://"));
    let (_, mut ws) = awc::Client::new().ws(url).bearer_auth(OPERATOR_KEY).connect().await.expect("WebSocket upgrade");
    let id = loop {
        match ws.next().await {
            Some(Ok(awc::ws::Frame::Text(t))) => {
                let v: serde_json::Value = serde_json::from_slice(&t).unwrap();
                if v["type"] == "session" {
                    break v["sessionId"].as_str().unwrap().to_string();
                }
            }
            other => panic!("expected the session message, got {other:?}"),
        }
    };
    ws.send(awc::ws::Message::Close(None)).await.unwrap();
    id
}

#[actix_web::test]
async fn the_history_panel_pages_through_sessions_and_continues_one() {
    let rig = Rig::default(Mic::Silence).await;
    let (server, page) = (&rig.server, &rig.page);
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(session_for(server, "pager").await);
    }
    // Sessions are stored in the background; wait until all twelve are listed.
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.get_json("/api/sessions?userId=pager&limit=100").await.1["sessions"].as_array().map(Vec::len)
        != Some(12)
    {
        assert!(tokio::time::Instant::now() < deadline, "the twelve sessions were stored");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    page.fill("#user-id", "pager").await;
    page.wait_for("the first page", "document.querySelectorAll('.session').length === 10", WAIT).await;
    assert_eq!(page.eval("document.getElementById('sessions-more').hidden").await, false);
    page.click("#sessions-more").await;
    page.wait_for("the second page", "document.querySelectorAll('.session').length === 12", WAIT).await;
    assert_eq!(page.eval("document.getElementById('sessions-more').hidden").await, true);
    let listed = page.eval("parley.history.sessions").await;
    let mut listed: Vec<String> = serde_json::from_value(listed).unwrap();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids, "every session once");

    let oldest = page.eval("parley.history.sessions[11]").await;
    page.click(&format!(".session[data-session-id={oldest}] .resume")).await;
    page.wait_for("the resumed session", "parley.connection.state === 'ready' && parley.connection.resumed", WAIT)
        .await;
    assert_eq!(page.eval("parley.connection.sessionId").await, oldest);
    rig.finish().await;
}
