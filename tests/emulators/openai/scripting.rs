//! Scripting the OpenAI emulator for tool calling and fallback, as a separate client would: the control API
//! over HTTP (`/_control/...`), the `--openai-reply` / `--openai-down` flags, tool-call streams with and
//! without `index` and with invalid arguments, the default answer after tool results, one base URL prefix
//! down while the plain one works, and the usage each request was sent.

use parley::emulators::cli::{Command, parse};
use parley::providers::openai::ToolCallDelta;
use serde_json::json;

use super::*;
use crate::helpers::{request, start_with};

/// A streaming request that offers a tool and ends with the user's message.
const TOOLS_BODY: &str = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"lookup_order","parameters":{"type":"object"}}}],"messages":[{"role":"user","content":"where is order 1234?"}]}"#;

/// The follow-up request: the assistant's tool call and the tool's result.
const AFTER_TOOL_BODY: &str = r#"{"model":"m","stream":true,"tools":[{"type":"function","function":{"name":"lookup_order"}}],"messages":[{"role":"user","content":"where is order 1234?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_emu_0","type":"function","function":{"name":"lookup_order","arguments":"{\"order_id\":\"1234\"}"}}]},{"role":"tool","tool_call_id":"call_emu_0","content":"shipped on Monday"}]}"#;

async fn control(e: &Emulators, method: &str, path: &str, body: &str) -> RawResponse {
    let host = authority(&e.openai_base_url());
    raw(&host, &request(method, path, &host, &[], body)).await
}

async fn chat_at(e: &Emulators, path: &str, body: &str) -> RawResponse {
    let host = authority(&e.openai_base_url());
    raw(&host, &post(path, &host, &[("Authorization", &bearer())], body)).await
}

/// The path of `/chat/completions` under the emulator's base URL for `prefix`.
fn prefixed(e: &Emulators, prefix: &str) -> String {
    format!("{}/chat/completions", url::Url::parse(&e.openai_prefixed_base_url(prefix)).unwrap().path())
}

fn tool_deltas(items: &[StreamItem]) -> Vec<ToolCallDelta> {
    items
        .iter()
        .filter_map(|i| match i {
            StreamItem::Chunk(c) => Some(c),
            _ => None,
        })
        .flat_map(|c| c.choices.iter().flat_map(|ch| ch.delta.tool_calls.clone().unwrap_or_default()))
        .collect()
}

fn accumulate(deltas: &[ToolCallDelta]) -> ToolCallAccumulator {
    let mut acc = ToolCallAccumulator::new();
    deltas.iter().for_each(|d| acc.push(d));
    acc
}

#[actix_web::test]
async fn tool_calls_scripted_over_the_control_api_stream_with_and_without_index_and_keep_invalid_arguments() {
    let e = start().await;
    for (torture, with_index) in [("none", true), ("no-tool-index", false)] {
        let r = control(&e, "POST", "/_control/torture", &json!({ "torture": torture }).to_string()).await;
        assert_eq!(r.status, 204);
        let replies = json!([
            {"tools": [{"name": "lookup_order", "arguments": {"order_id": "1234"}}]},
            {"tools": [{"name": "f", "arguments": "{\"a\":1"}, {"name": "g", "arguments": "{}"}]},
        ]);
        let r = control(&e, "POST", "/_control/replies", &replies.to_string()).await;
        assert_eq!((r.status, r.json()["queued"].as_u64()), (200, Some(2)));

        let r = chat(&e, TOOLS_BODY).await;
        let (items, end) = decode(&r.body);
        assert!(end.is_ok());
        let deltas = tool_deltas(&items);
        assert!(deltas.len() > 2, "the arguments arrive in fragments");
        assert!(deltas.iter().all(|d| d.index.is_some() == with_index), "{torture}");
        let calls = accumulate(&deltas).finish().unwrap();
        assert_eq!((calls[0].0.function.name.as_str(), &calls[0].1["order_id"]), ("lookup_order", &json!("1234")));
        assert!(String::from_utf8_lossy(&r.body).contains("\"finish_reason\":\"tool_calls\""));

        let (items, _) = decode(&chat(&e, TOOLS_BODY).await.body);
        let acc = accumulate(&tool_deltas(&items));
        let calls: Vec<(String, String)> =
            acc.calls().into_iter().map(|c| (c.function.name, c.function.arguments)).collect();
        assert_eq!(calls, [("f".to_string(), "{\"a\":1".to_string()), ("g".to_string(), "{}".to_string())]);
        assert!(acc.finish().is_err(), "the invalid arguments reach the client as they were scripted");
    }
    e.stop().await;
}

#[actix_web::test]
async fn flags_script_a_tool_call_and_a_down_prefix_and_the_tool_result_comes_back_as_the_answer() {
    let argv = ["--openai-reply", r#"tools:lookup_order({"order_id":"1234"})"#, "--openai-down", "primary=429"];
    let Command::Run(opts) = parse(&argv.map(str::to_string)).unwrap() else { panic!("not run") };
    let e = start_with(*opts).await;
    let r = chat_at(&e, &prefixed(&e, "primary"), TOOLS_BODY).await;
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (429, Some("rate_limit_exceeded")));
    let (items, _) = decode(&chat(&e, TOOLS_BODY).await.body);
    let calls = accumulate(&tool_deltas(&items)).finish().unwrap();
    assert_eq!(calls[0].1, json!({"order_id": "1234"}));
    let (items, end) = decode(&chat(&e, AFTER_TOOL_BODY).await.body);
    assert!(end.is_ok());
    assert_eq!(content(&items), "The tool said: shipped on Monday.");
    let (items, _) = decode(&chat(&e, TOOLS_BODY).await.body);
    assert!(content(&items).starts_with("You said: \u{201c}where is order 1234?\u{201d}."), "tools offered, user last");
    e.stop().await;
}

#[actix_web::test]
async fn a_down_prefix_fails_every_request_under_it_while_plain_v1_and_other_prefixes_work() {
    let e = start().await;
    let c = e.openai();
    c.push_reply(Reply::Text("One two three four.".into()));
    let r = control(&e, "POST", "/_control/down", r#"{"prefix":"primary"}"#).await;
    assert_eq!(r.status, 200);
    for _ in 0..2 {
        let r = chat_at(&e, &prefixed(&e, "primary"), STREAM_BODY).await;
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (503, Some("overloaded")));
    }
    let (items, _) = decode(&chat(&e, STREAM_BODY).await.body);
    assert_eq!(content(&items), "One two three four.", "the down prefix left the scripted reply queued");
    let (items, _) = decode(&chat_at(&e, &prefixed(&e, "other"), STREAM_BODY).await.body);
    assert_eq!(content(&items), EXPECTED);
    let log = c.requests();
    let prefixes: Vec<Option<&str>> = log.iter().map(|r| r.prefix.as_deref()).collect();
    assert_eq!(prefixes, [Some("primary"), Some("primary"), None, Some("other")]);
    assert_eq!(log.iter().map(|r| r.status).collect::<Vec<_>>(), [503, 503, 200, 200]);
    assert_eq!(log[0].fault, Some(OpenAiFault::Overloaded));

    assert_eq!(control(&e, "DELETE", "/_control/down/primary", "").await.status, 204);
    assert_eq!(chat_at(&e, &prefixed(&e, "primary"), STREAM_BODY).await.status, 200, "up again");

    // A mid-stream fault on the prefix streams the front of the queue without taking it; queued faults wait.
    c.set_down("primary", Some(OpenAiFault::CutAfter { after_deltas: 2 }));
    c.push_reply(Reply::Text("One two three four.".into()));
    c.push_fault(OpenAiFault::ServerError);
    let (items, end) = decode(&chat_at(&e, &prefixed(&e, "primary"), STREAM_BODY).await.body);
    assert_eq!((content(&items).as_str(), end.is_err()), ("One two", true));
    assert_eq!(chat(&e, STREAM_BODY).await.status, 500, "the queued fault went to the plain base URL");
    assert_eq!(content(&decode(&chat(&e, STREAM_BODY).await.body).0), "One two three four.");
    e.stop().await;
}

#[actix_web::test]
async fn the_usage_sent_is_logged_and_its_completion_tokens_are_the_deltas_streamed() {
    let e = start().await;
    let c = e.openai();
    c.push_reply(Reply::Text("One two three.".into()));
    c.push_reply(Reply::ToolCalls(vec![("f".into(), "0123456789".into())]));
    c.push_reply(Reply::ToolCalls(vec![("f".into(), "0123456789".into())]));
    // STREAM_BODY's messages: "be brief" and "book a table", (2 + 3) + (3 + 3) prompt tokens.
    let prompt = 11;
    for (i, want_deltas) in [(0, 3), (1, 3)] {
        let (items, _) = decode(&chat(&e, STREAM_BODY).await.body);
        let sent = items.iter().rev().find_map(|i| match i {
            StreamItem::Chunk(c) => c.usage.clone(),
            _ => None,
        });
        let sent = sent.expect("a usage chunk");
        let log = &c.requests()[i];
        assert_eq!(log.deltas_sent, want_deltas, "text: one per word; a tool call: its head and 2 fragments");
        assert_eq!((sent.prompt_tokens, sent.completion_tokens, sent.total_tokens), (prompt, 3, prompt + 3));
        assert_eq!(log.usage, Some((prompt, want_deltas as u32)));
    }
    let r = chat(&e, r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).await;
    assert_eq!(r.json()["usage"]["completion_tokens"], 3, "a whole completion counts the deltas it would stream");
    assert_eq!(c.requests()[2].usage, Some((4, 3)));
    chat(&e, r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#).await;
    assert_eq!(c.requests()[3].usage, None, "no usage asked for, none sent");

    let log = control(&e, "GET", "/_control/requests", "").await.json();
    assert_eq!(log[0]["usage"], json!({"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}));
    assert_eq!((log[0]["number"].as_u64(), log[0]["prefix"].is_null()), (Some(1), true));
    assert!(log[3]["usage"].is_null());
    e.stop().await;
}

#[actix_web::test]
async fn the_control_api_answers_bad_bodies_with_a_json_400_and_reset_forgets_the_script_and_log() {
    let e = start().await;
    for (path, body) in [
        ("/_control/replies", "{not json"),
        ("/_control/replies", r#"{"text":"a","tools":[{"name":"f"}]}"#),
        ("/_control/faults", r#"{"fault":"wobble"}"#),
        ("/_control/down", r#"{"prefix":"a/b"}"#),
        ("/_control/torture", r#"{"torture":"wobble"}"#),
    ] {
        let r = control(&e, "POST", path, body).await;
        assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("bad_request")), "{path} {body}");
        assert!(r.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let r = control(&e, "POST", "/_control/faults", r#"{"fault":"error-after:1"}"#).await;
    assert_eq!((r.status, r.json()["queued"].as_u64()), (200, Some(1)));
    assert_eq!(chat(&e, STREAM_BODY).await.status, 200);
    assert_eq!(control(&e, "GET", "/_control/requests", "").await.json()[0]["fault"], "error-after:1");
    control(&e, "POST", "/_control/replies", r#"{"text":"queued"}"#).await;
    control(&e, "POST", "/_control/faults", r#"{"fault":"500"}"#).await;
    assert_eq!(control(&e, "POST", "/_control/reset", "").await.status, 204);
    assert_eq!(control(&e, "GET", "/_control/requests", "").await.json(), json!([]));
    assert_eq!(content(&decode(&chat(&e, STREAM_BODY).await.body).0), EXPECTED, "no reply or fault left");
    assert_eq!(e.openai().requests()[0].number, 2, "numbers keep counting after a reset");
    e.stop().await;
}
