//! Bad input from the server never breaks the page: malformed frames are reported and ignored, the page goes
//! on working; and a provider failure is shown in plain words with what to do.

use parley::emulators::{DeepgramFault, Reply};

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::rig::Rig;

#[actix_web::test]
async fn malformed_server_messages_are_ignored_and_the_page_keeps_working() {
    let rig = Rig::default(Mic::Silence).await;
    let page = &rig.page;
    rig.server.emulators.openai().push_reply(Reply::Text("Still here.".into()));
    rig.connect().await;
    // Each as if the server had sent it.
    for frame in [
        "'{not json'",
        "'[1, 2]'",
        r#"'{"type": 7}'"#,
        r#"'{"type":"userTurn","turnId":"one","text":"x"}'"#,
        r#"'{"type":"assistantText","turnId":-3,"text":"x"}'"#,
        r#"'{"type":"messageSaved","turnId":9,"role":"assistant","messageId":"x"}'"#,
        r#"'{"type":"somethingNew","turnId":1}'"#,
        "new Uint8Array([1, 2, 3]).buffer",
    ] {
        page.eval(&format!("parley.debug.inject({frame})")).await;
    }
    let state = page.state().await;
    assert_eq!(state["warnings"].as_array().unwrap().len(), 6, "{}", state["warnings"]);
    assert_eq!(state["ignoredMessages"], 1, "an unknown type is skipped quietly (a newer server)");
    assert_eq!(state["playback"]["lateFrames"], 1, "audio outside a turn is dropped");
    assert_eq!(state["turns"], serde_json::json!({}), "no turn was touched");

    rig.say("Are you still there?").await;
    let captions =
        page.wait_for("the reply", "parley.turns[1] && parley.turns[1].ended && parley.turns[1].captions", WAIT).await;
    assert_eq!(captions, serde_json::json!(["Still here."]));
    assert_eq!(page.eval("parley.connection.state").await, "ready");
    rig.finish().await;
}

#[actix_web::test]
async fn a_refused_speech_recognition_key_is_explained_and_typing_still_works() {
    let rig = Rig::default(Mic::Speech).await;
    let page = &rig.page;
    rig.server.emulators.deepgram().push_fault(DeepgramFault::RefuseUpgrade(401));
    rig.server.emulators.openai().push_reply(Reply::Text("Typed answers still work.".into()));
    rig.connect().await;
    let error = page.wait_for("the error", "parley.errors[0]", WAIT).await;
    assert_eq!(error["code"], "deepgram_auth");
    let listed = page.eval("document.querySelector('#error-list li').innerText").await;
    let listed = listed.as_str().unwrap();
    assert!(listed.contains("Speech recognition is unavailable"), "{listed}");
    assert!(listed.contains("you can still type"), "{listed}");
    assert_eq!(page.eval("document.querySelector('#error-list li').getAttribute('role')").await, "alert");

    rig.say("Hello?").await;
    page.wait_for(
        "the typed turn's reply",
        "parley.turns[1] && parley.turns[1].ended && parley.turns[1].captions.length",
        WAIT,
    )
    .await;
    page.screenshots("provider-error").await;
    rig.finish().await;
}
