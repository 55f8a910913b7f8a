//! Tools over real sockets: the OpenAI emulator is scripted to call tools, a real HTTP endpoint of the test's
//! (`helpers::webhook`) serves the webhook tools, the voice client speaks and answers client-side calls, and the
//! history is read back over REST. Each test checks what each party received, not only what the client saw.

use std::time::Duration;

use parley::emulators::Reply;
use serde_json::{Value, json};

use crate::helpers::TestDb;
use crate::helpers::voice::{VoiceApp, VoiceClient, spawn_voice_app_with, utterance_pcm};
use crate::helpers::webhook::{Answer, ToolServer};

/// The tools section every test's agents file has (the webhook URL filled in).
fn tools_toml(hook: &str) -> String {
    format!(
        r#"
[tools.lookup_order]
description = "Look up an order by its id."
url = "{hook}"
method = "POST"
timeout_ms = 1500
filler = "Let me check that."
headers = {{ Authorization = "Bearer ${{SHOP_TOKEN}}" }}
parameters = {{ type = "object", properties = {{ order_id = {{ type = "string" }} }}, required = ["order_id"] }}

[tools.client_time]
client = true
description = "The user's local time."
timeout_ms = 3000
parameters = {{ type = "object", properties = {{}} }}
"#
    )
}

/// An app whose `default` agent has the tools (plus `extra` lines for the agent), and the webhook endpoint.
async fn tool_app(extra: &str) -> (VoiceApp, ToolServer, tempfile::TempDir) {
    let hooks = ToolServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agents.toml");
    let agents = format!(
        "[agents.default]\nsystem_prompt = \"You help with orders.\"\ntools = [\"lookup_order\", \"client_time\", \
         \"end_conversation\"]\n{extra}\n{}",
        tools_toml(&hooks.url)
    );
    std::fs::write(&file, agents).unwrap();
    let path = file.to_string_lossy().into_owned();
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_AGENTS_FILE".into(), path);
        env.insert("SHOP_TOKEN".into(), "shop-secret".into());
    })
    .await;
    (v, hooks, dir)
}

/// The tool messages of the emulator's `n`th request (0-based): (tool_call_id, content).
fn tool_answers(v: &VoiceApp, n: usize) -> Vec<(String, String)> {
    let requests = v.emulators.openai().requests();
    let Some(r) = requests.get(n) else { return Vec::new() };
    r.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn history(v: &VoiceApp, c: &VoiceClient) -> Vec<Value> {
    let session = c.session_id();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = v.app.get_json(&format!("/api/history?sessionId={session}")).await;
        // On a busy machine SQLite may refuse a write for a moment; the journal stores it shortly after, so the
        // session can be unknown (404) for that long.
        if status == 404 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        assert_eq!(status, 200, "{body}");
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        if messages.iter().filter(|m| m["role"] == "assistant").count() >= 1 || tokio::time::Instant::now() > deadline {
            return messages;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_spoken_question_calls_the_webhook_and_the_answer_uses_its_result() {
    let (v, hooks, _dir) = tool_app("").await;
    hooks.script("lookup_order", Answer::json(json!({"status": "shipped", "eta": "Tuesday"})));
    let openai = v.emulators.openai();
    openai.push_reply(Reply::ToolCalls(vec![("lookup_order".into(), r#"{"order_id":"1234"}"#.into())]));
    openai.push_reply(Reply::Text("Order 1234 has shipped and arrives Tuesday.".into()));
    v.emulators.deepgram().push_script(vec!["where is my order 1234".into()]);
    let mut c = v.connect("userId=tina").await;
    // Spoken: 1.2 s of speech and 1.5 s of silence (2.7 s of audio sent to speech recognition).
    c.stream_audio(&utterance_pcm(1200, 1500)).await;
    let end = c.expect("turnEnd").await;
    assert_eq!(end["interrupted"], false, "{:?}", c.summary());
    let latency = c.expect("latency").await;

    // The endpoint got the arguments as an object, who called, and the header with the secret substituted.
    let calls = hooks.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let body = &calls[0].body;
    assert_eq!(body["name"], "lookup_order");
    assert_eq!(body["arguments"], json!({"order_id": "1234"}));
    assert_eq!(body["sessionId"], c.session_id());
    assert_eq!(body["userId"], "tina");
    assert_eq!(body["agent"], "default");
    assert!(body["callId"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(calls[0].authorization.as_deref(), Some("Bearer shop-secret"));

    // The LLM was offered the tools, and got the result back in its second request.
    let requests = openai.requests();
    assert_eq!(requests.len(), 2);
    let offered: Vec<&str> =
        requests[0].body["tools"].as_array().unwrap().iter().filter_map(|t| t["function"]["name"].as_str()).collect();
    assert_eq!(offered, ["lookup_order", "client_time", "end_conversation"]);
    let answers = tool_answers(&v, 1);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, body["callId"].as_str().unwrap());
    assert!(answers[0].1.contains("shipped"), "{answers:?}");

    // The client saw it running and done, and heard the answer.
    let statuses: Vec<String> = c.events("tool").iter().map(|e| e["status"].as_str().unwrap().to_string()).collect();
    assert_eq!(statuses, ["running", "done"]);
    let said: String = c.events("assistantText").iter().map(|e| e["text"].as_str().unwrap().to_string()).collect();
    assert!(said.contains("shipped"), "{said}");

    // The history shows the call and its result with the reply.
    let messages = history(&v, &c).await;
    let reply = messages.iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(reply["toolCalls"][0]["name"], "lookup_order");
    assert_eq!(reply["toolCalls"][0]["arguments"]["order_id"], "1234");
    assert_eq!(reply["toolCalls"][0]["result"]["status"], "shipped");
    // Usage: the tokens the emulator reported for the turn's two requests, the characters spoken, one call.
    let usage = &reply["usage"];
    let reported = |i: usize| requests[i].usage.expect("the emulator sent usage");
    assert_eq!(usage["llmPromptTokens"], u64::from(reported(0).0 + reported(1).0), "{usage}");
    assert_eq!(usage["llmCompletionTokens"], u64::from(reported(0).1 + reported(1).1), "{usage}");
    assert_eq!(usage["llmTokensEstimated"], false);
    assert_eq!(usage["ttsCharacters"], said.chars().count() as u64, "{usage}");
    assert_eq!(usage["toolCalls"], 1);
    assert!(usage["sttSeconds"].as_f64().is_some_and(|s| s > 0.5 && s < 2.71), "{usage}");
    let (_, sessions) = v.app.get_json("/api/sessions?userId=tina").await;
    assert_eq!(&sessions["sessions"][0]["usage"], usage, "one turn: the session's sum is the turn's");
    let (_, _, metrics) = v.app.get_text("/metrics").await;
    let prompt =
        format!(r#"parley_usage_llm_tokens_total{{agent="default",kind="prompt"}} {}"#, usage["llmPromptTokens"]);
    assert!(metrics.contains(&prompt), "{prompt}");
    assert!(metrics.contains(r#"parley_tool_calls_total{outcome="ok",tool="lookup_order"} 1"#));

    // The turn as a user lived it, with its latency (printed for the record).
    eprintln!(
        "tool turn: user {} | tool {}({}) -> {} | assistant {said:?} | latency {latency}",
        c.events("userTurn")[0]["text"],
        body["name"],
        body["arguments"],
        answers[0].1,
    );
    hooks.stop().await;
    v.stop().await;
}

#[actix_web::test]
async fn parallel_calls_all_run_and_all_results_go_back_with_or_without_index() {
    for no_index in [false, true] {
        let (v, hooks, _dir) = tool_app("").await;
        let openai = v.emulators.openai();
        // Some compatible servers leave `index` out of tool-call fragments.
        openai.set_torture(parley::emulators::Torture { no_tool_index: no_index, ..Default::default() });
        openai.push_reply(Reply::ToolCalls(vec![
            ("lookup_order".into(), r#"{"order_id":"1"}"#.into()),
            ("lookup_order".into(), r#"{"order_id":"2"}"#.into()),
        ]));
        openai.push_reply(Reply::Text("Both orders are fine.".into()));
        let mut c = v.connect("userId=tia").await;
        c.send_json(json!({"type": "text", "text": "Check orders 1 and 2."})).await;
        c.expect("turnEnd").await;
        let mut ids: Vec<String> =
            hooks.calls().iter().map(|c| c.body["arguments"]["order_id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        assert_eq!(ids, ["1", "2"], "no index: {no_index}");
        assert_eq!(tool_answers(&v, 1).len(), 2, "both results in the next request (no index: {no_index})");
        hooks.stop().await;
        v.stop().await;
    }
}

#[actix_web::test]
async fn a_tool_that_times_out_is_reported_to_the_llm_as_such() {
    let (v, hooks, _dir) = tool_app("").await;
    hooks.script(
        "lookup_order",
        Answer { delay: Duration::from_secs(4), status: 200, body: r#"{"status":"late"}"#.into() },
    );
    let openai = v.emulators.openai();
    openai.push_reply(Reply::ToolCalls(vec![("lookup_order".into(), r#"{"order_id":"9"}"#.into())]));
    openai.push_reply(Reply::Text("The order system is slow right now.".into()));
    let mut c = v.connect("userId=tom").await;
    c.send_json(json!({"type": "text", "text": "Where is order 9?"})).await;
    c.expect("turnEnd").await;
    let answers = tool_answers(&v, 1);
    assert!(answers[0].1.contains("did not answer within 1.5 s"), "{answers:?}");
    // The filler was spoken while it waited.
    let said: String = c.events("assistantText").iter().map(|e| e["text"].as_str().unwrap().to_string()).collect();
    assert!(said.contains("Let me check that."), "{said}");
    let statuses: Vec<String> = c.events("tool").iter().map(|e| e["status"].as_str().unwrap().to_string()).collect();
    assert_eq!(statuses, ["running", "failed"]);
    hooks.stop().await;
    v.stop().await;
}

#[actix_web::test]
async fn invalid_arguments_are_refused_before_the_webhook_and_the_corrected_call_runs() {
    let (v, hooks, _dir) = tool_app("").await;
    let openai = v.emulators.openai();
    openai.push_reply(Reply::ToolCalls(vec![("lookup_order".into(), r#"{"order":"1234"}"#.into())]));
    openai.push_reply(Reply::ToolCalls(vec![("lookup_order".into(), r#"{"order_id": 12"#.into())]));
    openai.push_reply(Reply::ToolCalls(vec![("lookup_order".into(), r#"{"order_id":"1234"}"#.into())]));
    openai.push_reply(Reply::Text("Found it.".into()));
    let mut c = v.connect("userId=ted").await;
    c.send_json(json!({"type": "text", "text": "Order 1234?"})).await;
    c.expect("turnEnd").await;
    assert_eq!(
        tool_answers(&v, 1)[0].1,
        r#"{"error":"invalid arguments: order_id is required; call it again with corrected arguments"}"#
    );
    assert!(tool_answers(&v, 2).last().unwrap().1.contains("not valid JSON"), "{:?}", tool_answers(&v, 2));
    let calls = hooks.calls();
    assert_eq!(calls.len(), 1, "only the valid call reached the endpoint");
    assert_eq!(calls[0].body["arguments"]["order_id"], "1234");
    hooks.stop().await;
    v.stop().await;
}

#[actix_web::test]
async fn a_client_tool_is_answered_by_the_client() {
    let (v, hooks, _dir) = tool_app("").await;
    let openai = v.emulators.openai();
    openai.push_reply(Reply::ToolCalls(vec![("client_time".into(), "{}".into())]));
    openai.push_reply(Reply::Text("It is evening where you are.".into()));
    let mut c = v.connect("userId=tess").await;
    c.send_json(json!({"type": "text", "text": "What time is it here?"})).await;
    let call = c.expect("toolCall").await;
    assert_eq!(call["name"], "client_time");
    assert_eq!(call["arguments"], json!({}));
    c.send_json(json!({"type": "toolResult", "callId": "not-this-one", "result": 1})).await;
    let refused = c.expect("error").await;
    assert_eq!(refused["code"], "unknown_tool_call");
    c.send_json(json!({"type": "toolResult", "callId": call["callId"], "result": {"localTime": "19:30"}})).await;
    c.expect("turnEnd").await;
    let answers = tool_answers(&v, 1);
    assert_eq!(answers[0].1, r#"{"localTime":"19:30"}"#);
    assert!(hooks.calls().is_empty());
    hooks.stop().await;
    v.stop().await;
}

#[actix_web::test]
async fn a_barge_in_during_a_slow_tool_cancels_it_and_its_result_is_never_used() {
    let (v, hooks, _dir) = tool_app("").await;
    hooks.script("lookup_order", Answer { delay: Duration::from_secs(3), status: 200, body: "{}".into() });
    let openai = v.emulators.openai();
    openai.push_reply(Reply::ToolCalls(vec![("lookup_order".into(), r#"{"order_id":"5"}"#.into())]));
    let mut c = v.connect("userId=tara").await;
    c.send_json(json!({"type": "text", "text": "Order 5?"})).await;
    c.until(
        "running",
        |e| matches!(e, crate::helpers::voice::Event::Json(m) if m["type"] == "tool" && m["status"] == "running"),
    )
    .await;
    hooks.wait_for_calls(1, Duration::from_secs(5)).await;
    c.send_json(json!({"type": "interrupt"})).await;
    let cancelled = c
        .until(
            "cancelled",
            |e| matches!(e, crate::helpers::voice::Event::Json(m) if m["type"] == "tool" && m["status"] == "cancelled"),
        )
        .await;
    let end = c.expect("turnEnd").await;
    assert_eq!(end["interrupted"], true);
    drop(cancelled);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(openai.requests().len(), 1, "no request with the cancelled result");
    // The next turn's context says the call was cancelled.
    openai.push_reply(Reply::Text("Okay.".into()));
    c.send_json(json!({"type": "text", "text": "Never mind."})).await;
    c.expect("turnEnd").await;
    let answers = tool_answers(&v, 1);
    assert!(answers[0].1.contains("cancelled"), "{answers:?}");
    hooks.stop().await;
    v.stop().await;
}

#[actix_web::test]
async fn end_conversation_says_goodbye_then_ends_the_session_normally() {
    let (v, hooks, _dir) = tool_app("").await;
    let openai = v.emulators.openai();
    openai.push_reply(Reply::ToolCalls(vec![("end_conversation".into(), "{}".into())]));
    openai.push_reply(Reply::Text("Goodbye, have a nice day.".into()));
    let mut c = v.connect("userId=tilda").await;
    c.send_json(json!({"type": "text", "text": "That is all, bye."})).await;
    c.expect("turnEnd").await;
    let end = c.expect("end").await;
    assert_eq!(end["reason"], "agent");
    let saved = c.events("messageSaved");
    assert!(saved.iter().any(|m| m["role"] == "assistant"), "the goodbye was stored before the end: {:?}", c.summary());
    let close = c.until("close", |e| matches!(e, crate::helpers::voice::Event::Closed(_))).await;
    assert!(matches!(close, crate::helpers::voice::Event::Closed(Some(1000))), "{close:?}");
    hooks.stop().await;
    v.stop().await;
}

/// An app whose `default` agent's primary LLM is `primary` (named "primary") and whose fallback is the
/// emulator (named "backup"); `primary_extra` adds keys to the primary's table.
async fn fallback_app(primary: &str, primary_extra: &str) -> (VoiceApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agents.toml");
    let path = file.to_string_lossy().into_owned();
    let primary = primary.to_string();
    let primary_extra = primary_extra.to_string();
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        let backup = env["OPENAI_BASE_URL"].clone();
        let agents = format!(
            r#"[agents.default]
system_prompt = "Be brief."
[agents.default.llm]
name = "primary"
base_url = "{primary}"
model = "primary-model"
api_key_env = "OPENAI_API_KEY"
{primary_extra}
[[agents.default.llm_fallback]]
name = "backup"
base_url = "{backup}"
model = "backup-model"
api_key_env = "OPENAI_API_KEY"
"#
        );
        std::fs::write(&file, agents).unwrap();
        env.insert("PARLEY_AGENTS_FILE".into(), path);
    })
    .await;
    (v, dir)
}

async fn metric(v: &VoiceApp, line_start: &str) -> Option<f64> {
    let (_, _, metrics) = v.app.get_text("/metrics").await;
    metrics.lines().find_map(|l| l.strip_prefix(line_start)).and_then(|n| n.trim().parse().ok())
}

#[actix_web::test]
async fn the_fallback_answers_when_the_primary_is_down_and_a_failing_primary_is_skipped_for_a_while() {
    let primary = ToolServer::start().await;
    primary.script(
        "",
        Answer { delay: Duration::ZERO, status: 503, body: r#"{"error":{"message":"overloaded"}}"#.into() },
    );
    let (v, _dir) = fallback_app(&primary.url, "").await;
    let mut c = v.connect("userId=fay").await;
    for n in 1..=4 {
        c.send_json(json!({"type": "text", "text": format!("Question {n}.")})).await;
        let end = c
            .until(
                "turnEnd",
                |e| matches!(e, crate::helpers::voice::Event::Json(m) if m["type"] == "turnEnd" && m["turnId"] == n),
            )
            .await;
        drop(end);
    }
    assert!(c.events("error").is_empty(), "{:?}", c.summary());
    let requests = v.emulators.openai().requests();
    assert_eq!(requests.len(), 4, "every turn answered by the fallback");
    assert!(requests.iter().all(|r| r.body["model"] == "backup-model"));
    assert_eq!(primary.calls().len(), 3, "after three failures in a row the primary is tried last for a while");
    assert_eq!(metric(&v, r#"parley_llm_fallbacks_total{from="primary",to="backup"} "#).await, Some(4.0));
    let messages = history(&v, &c).await;
    let reply = messages.iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(reply["llm"], "backup", "{reply}");
    primary.stop().await;
    v.stop().await;
}

#[actix_web::test]
async fn a_primary_with_no_first_token_in_time_hands_the_turn_to_the_fallback() {
    let primary = ToolServer::start().await;
    primary.script("", Answer { delay: Duration::from_secs(30), status: 200, body: "{}".into() });
    let (v, _dir) = fallback_app(&primary.url, "first_token_timeout_ms = 300").await;
    let mut c = v.connect("userId=flo").await;
    let started = std::time::Instant::now();
    c.send_json(json!({"type": "text", "text": "Quick, please."})).await;
    c.expect("turnEnd").await;
    assert!(started.elapsed() < Duration::from_secs(20), "did not wait for the slow primary");
    assert_eq!(v.emulators.openai().requests().len(), 1);
    assert!(c.events("error").is_empty(), "{:?}", c.summary());
    primary.stop().await;
    v.stop().await;
}
