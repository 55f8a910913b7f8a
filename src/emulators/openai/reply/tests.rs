//! Unit tests of the reply payloads: shapes a client parses, compat variants, tool-call reassembly.
use super::*;
use crate::providers::openai::{ChatChunk, ChatMessage, ToolCallAccumulator};

fn completion(include_usage: bool) -> Completion {
    Completion { id: "chatcmpl-1".into(), created: 1, model: "m".into(), include_usage, prompt_tokens: 10 }
}

fn parse(p: &[Payload]) -> Vec<ChatChunk> {
    p.iter().map(|p| serde_json::from_str(&p.json).unwrap()).collect()
}

#[test]
fn the_default_reply_quotes_the_last_user_message_in_three_sentences() {
    let req = ChatRequest::streaming(
        "m",
        vec![ChatMessage::new(Role::User, "first"), ChatMessage::new(Role::User, " book a table ")],
    );
    let Reply::Text(t) = default_reply(&req) else { panic!() };
    assert_eq!(t, "You said: \u{201c}book a table\u{201d}. That is worth talking about. Tell me more.");
}

#[test]
fn tokens_join_back_to_the_text() {
    let text = "You said: “hi”.  Two  spaces.";
    assert_eq!(tokens(text).concat(), text);
    assert!(tokens(text).len() > 3);
}

#[test]
fn a_text_stream_is_role_deltas_stop_then_usage_with_no_choices() {
    let chunks = parse(&completion(true).stream(&Reply::Text("Hi there.".into()), &Torture::default()));
    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
    let text: String = chunks.iter().filter_map(|c| c.content()).collect();
    assert_eq!(text, "Hi there.");
    let n = chunks.len();
    assert_eq!(chunks[n - 2].finish_reason(), Some("stop"));
    assert!(chunks[n - 1].choices.is_empty());
    assert_eq!(chunks[n - 1].usage.as_ref().unwrap().completion_tokens, 2);
    assert!(chunks[..n - 1].iter().all(|c| c.usage.is_none()));
    assert!(chunks.iter().all(|c| c.id == "chatcmpl-1"));
}

#[test]
fn compat_variants_put_finish_on_the_last_delta_usage_on_every_chunk_and_whole_arguments() {
    let t = Torture {
        finish_with_content: true,
        usage_every_chunk: true,
        whole_tool_arguments: true,
        ..Default::default()
    };
    let chunks = parse(&completion(false).stream(&Reply::Text("Hi there.".into()), &t));
    let last = chunks.last().unwrap();
    assert_eq!((last.content(), last.finish_reason()), (Some(" there."), Some("stop")));
    assert!(chunks.iter().all(|c| c.usage.is_some()));
    let reply = Reply::ToolCalls(vec![("f".into(), r#"{"a":1}"#.into())]);
    let chunks = parse(&completion(false).stream(&reply, &t));
    let head = &chunks[1].choices[0].delta.tool_calls.as_ref().unwrap()[0];
    assert_eq!(head.function.as_ref().unwrap().arguments.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(chunks.len(), 2, "role chunk, then the whole call carrying the finish reason");
}

#[test]
fn tool_calls_stream_in_fragments_that_reassemble_with_or_without_index() {
    let reply = Reply::ToolCalls(vec![
        ("weather".into(), r#"{"city":"Paris","unit":"c"}"#.into()),
        ("time".into(), r#"{"tz":"UTC"}"#.into()),
    ]);
    for no_tool_index in [false, true] {
        let t = Torture { no_tool_index, ..Default::default() };
        let chunks = parse(&completion(false).stream(&reply, &t));
        let mut acc = ToolCallAccumulator::new();
        for c in &chunks {
            for d in c.choices[0].delta.tool_calls.iter().flatten() {
                acc.push(d);
            }
        }
        let calls = acc.finish().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].1["city"], "Paris");
        assert_eq!(calls[1].0.function.name, "time");
        assert_eq!(chunks.last().unwrap().finish_reason(), Some("tool_calls"));
    }
}

fn tool_result(call_id: &str, text: &str) -> ChatMessage {
    ChatMessage { tool_call_id: Some(call_id.into()), ..ChatMessage::new(Role::Tool, text) }
}

#[test]
fn after_tool_results_the_default_reply_quotes_each_result_in_order() {
    let mut req = ChatRequest::streaming("m", vec![ChatMessage::new(Role::User, "where is order 1234?")]);
    req.messages.push(ChatMessage { tool_calls: Some(vec![]), content: None, ..ChatMessage::new(Role::Assistant, "") });
    req.messages.push(tool_result("call_emu_0", r#"{"status":"shipped"}"#));
    assert_eq!(default_reply(&req), Reply::Text(r#"The tool said: {"status":"shipped"}."#.into()));
    req.messages.push(tool_result("call_emu_1", " due Friday "));
    let Reply::Text(t) = default_reply(&req) else { panic!() };
    assert_eq!(t, r#"The tool said: {"status":"shipped"}. The tool said: due Friday."#);
}

#[test]
fn offering_tools_does_not_change_the_default_reply_to_a_user_message() {
    let mut req = ChatRequest::streaming("m", vec![ChatMessage::new(Role::User, "hi")]);
    let plain = default_reply(&req);
    req.tools = Some(vec![serde_json::from_value(json!({"type":"function","function":{"name":"f"}})).unwrap()]);
    assert_eq!(default_reply(&req), plain);
    let Reply::Text(t) = plain else { panic!() };
    assert!(t.starts_with("You said: \u{201c}hi\u{201d}."));
}

#[test]
fn completion_tokens_count_the_deltas_the_stream_carries_and_the_usage_chunk_reports_them() {
    let reply = Reply::ToolCalls(vec![("f".into(), "0123456789".into()), ("g".into(), "{}".into())]);
    // f: head + 2 fragments of 8 characters; g: head + 1 fragment.
    assert_eq!(Completion::completion_tokens(&reply, &Torture::default()), 5);
    let whole_args = Torture { whole_tool_arguments: true, ..Default::default() };
    assert_eq!(Completion::completion_tokens(&reply, &whole_args), 2);
    let text = Reply::Text("One two three.".into());
    assert_eq!(Completion::completion_tokens(&text, &Torture::default()), 3);
    for (r, t) in [(&reply, Torture::default()), (&reply, whole_args), (&text, Torture::default())] {
        let payloads = completion(true).stream(r, &t);
        let deltas = payloads.iter().filter(|p| p.is_delta).count() as u32;
        let usage = parse(&payloads).last().unwrap().usage.clone().unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (10, deltas));
        assert_eq!(usage.total_tokens, 10 + deltas);
        assert_eq!(deltas, Completion::completion_tokens(r, &t));
    }
    assert_eq!(completion(false).whole(&reply, 5)["usage"]["completion_tokens"], 5);
}
