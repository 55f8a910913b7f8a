//! A client-side tool through the page: the agent calls `client_time` (an agents-file tool with
//! `client = true`), the web client runs it in the browser and answers with `toolResult`, and the model is
//! given the browser's own answer (its local time and time zone) before it replies.

use parley::emulators::Reply;
use serde_json::Value;

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::rig::Rig;

const AGENTS: &str = r#"[agents.default]
system_prompt = "You tell people the time."
tools = ["client_time"]

[tools.client_time]
client = true
description = "The user's local time."
timeout_ms = 3000
parameters = { type = "object", properties = {} }
"#;

#[actix_web::test]
async fn the_page_answers_the_client_time_tool_and_the_model_gets_the_browsers_answer() {
    let dir = tempfile::tempdir().unwrap();
    let agents = dir.path().join("agents.toml");
    std::fs::write(&agents, AGENTS).unwrap();
    let path = agents.to_string_lossy().into_owned();
    let rig = Rig::start(Mic::Silence, "", |env| {
        env.insert("PARLEY_AGENTS_FILE".into(), path);
    })
    .await;
    let (server, page) = (&rig.server, &rig.page);
    let openai = server.emulators.openai();
    openai.push_reply(Reply::ToolCalls(vec![("client_time".into(), "{}".into())]));
    openai.push_reply(Reply::Text("It is evening where you are.".into()));
    rig.connect().await;
    rig.say("What time is it here?").await;

    let call = page.wait_for("the tool call", "parley.tools.length > 0 && parley.tools[0]", WAIT).await;
    assert_eq!((call["name"].as_str(), call["runsOn"].as_str()), (Some("client_time"), Some("client")));
    page.wait_for("the reply", "parley.turns[1] && parley.turns[1].ended", WAIT).await;

    // The second request carries the page's answer as the tool's result, under the call's id.
    let requests = openai.requests();
    assert_eq!(requests.len(), 2, "the tool call, then the reply with its result");
    let messages = requests[1].body["messages"].as_array().unwrap();
    let asked = messages.iter().find(|m| m["role"] == "assistant" && m["tool_calls"].is_array()).unwrap();
    let answer = messages.iter().find(|m| m["role"] == "tool").expect("a tool message");
    assert_eq!(answer["tool_call_id"], asked["tool_calls"][0]["id"]);
    let result: Value = serde_json::from_str(answer["content"].as_str().unwrap()).unwrap();
    let browser_zone = page.eval("Intl.DateTimeFormat().resolvedOptions().timeZone").await;
    assert_eq!(result["timeZone"], browser_zone, "{result}");
    let local = result["localTime"].as_str().unwrap_or_default();
    let year = page.eval("String(new Date().getFullYear())").await;
    assert!(local.contains(year.as_str().unwrap()), "the browser's own clock: {local}");
    rig.finish().await;
}
