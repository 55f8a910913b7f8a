//! OpenAI-compatible `POST /v1/chat/completions` over raw HTTP: the SSE stream byte for byte, the
//! non-streaming body, tool calls and timing; `failures` has the error shapes and failure modes, `scripting`
//! the control API, scripted tool calls, down prefixes and usage, `torture` the transport torture.

mod failures;
mod scripting;
mod torture;

use std::time::{Duration, Instant};

use parley::emulators::{Emulators, OPENAI_KEY, OpenAiFault, Reply, Torture};
use parley::providers::openai::{ChatStreamDecoder, SseDecoder, StreamEnd, StreamItem, ToolCallAccumulator};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{RawResponse, SOON, authority, post, raw, start};

const STREAM_BODY: &str = r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"book a table"}]}"#;

const EXPECTED: &str = "You said: \u{201c}book a table\u{201d}. That is worth talking about. Tell me more.";

fn bearer() -> String {
    format!("Bearer {OPENAI_KEY}")
}

async fn chat(e: &Emulators, body: &str) -> RawResponse {
    let host = authority(&e.openai_base_url());
    raw(&host, &post("/v1/chat/completions", &host, &[("Authorization", &bearer())], body)).await
}

/// Decodes an SSE body as a client would; returns the items and how the stream ended.
fn decode(body: &[u8]) -> (Vec<StreamItem>, Result<(), StreamEnd>) {
    let mut d = ChatStreamDecoder::new();
    let items = d.push(body);
    (items, d.finish())
}

fn content(items: &[StreamItem]) -> String {
    items
        .iter()
        .filter_map(|i| match i {
            StreamItem::Chunk(c) => c.content().map(str::to_string),
            _ => None,
        })
        .collect()
}

#[actix_web::test]
async fn a_streamed_reply_is_role_chunk_deltas_stop_usage_and_done_on_the_wire() {
    let e = start().await;
    let r = chat(&e, STREAM_BODY).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream; charset=utf-8"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.header("x-request-id").is_some());
    assert!(r.complete);
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert!(text.starts_with("data: {\"") && text.contains("\"id\":\"chatcmpl-"), "{text}");
    assert!(text.ends_with("\n\ndata: [DONE]\n\n"));
    let (items, end) = decode(&r.body);
    assert!(end.is_ok());
    assert_eq!(content(&items), EXPECTED);
    let StreamItem::Chunk(first) = &items[0] else { panic!() };
    assert_eq!(first.choices[0].delta.role.map(|r| format!("{r:?}")), Some("Assistant".into()));
    let n = items.len();
    assert_eq!(items[n - 1], StreamItem::Done);
    let StreamItem::Chunk(usage) = &items[n - 2] else { panic!() };
    assert!(usage.choices.is_empty() && usage.usage.is_some(), "usage chunk has no choices");
    let StreamItem::Chunk(stop) = &items[n - 3] else { panic!() };
    assert_eq!(stop.finish_reason(), Some("stop"));
    assert!(text.matches("\"usage\":null").count() >= n - 2, "other chunks carry usage:null");
    let log = &e.openai().requests()[0];
    assert!(log.stream && log.completed && log.done_sent && !log.client_went_away);
    assert_eq!(log.body["messages"][1]["content"], "book a table");
    assert_eq!(
        log.headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.as_str()),
        Some(bearer().as_str())
    );
    assert!(log.deltas_sent >= 10);
    e.stop().await;
}

#[actix_web::test]
async fn a_non_streaming_request_gets_one_chat_completion() {
    let e = start().await;
    e.openai().push_reply(Reply::Text("Table booked.".into()));
    let r = chat(&e, r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "Table booked.");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    e.stop().await;
}

#[actix_web::test]
async fn scripted_parallel_tool_calls_stream_in_fragments_that_reassemble() {
    let e = start().await;
    for no_tool_index in [false, true] {
        e.openai().set_torture(Torture { no_tool_index, ..Default::default() });
        e.openai().push_reply(Reply::ToolCalls(vec![
            ("get_weather".into(), r#"{"city":"Paris"}"#.into()),
            ("get_time".into(), r#"{"tz":"Europe/Paris"}"#.into()),
        ]));
        let r = chat(&e, STREAM_BODY).await;
        let (items, end) = decode(&r.body);
        assert!(end.is_ok());
        let mut acc = ToolCallAccumulator::new();
        let mut fragments = 0;
        for item in &items {
            if let StreamItem::Chunk(c) = item {
                for d in c.choices.iter().flat_map(|ch| ch.delta.tool_calls.iter().flatten()) {
                    assert_eq!(d.index.is_none(), no_tool_index);
                    acc.push(d);
                    fragments += 1;
                }
            }
        }
        let calls = acc.finish().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].1["city"], "Paris");
        assert_eq!(calls[1].0.function.name, "get_time");
        assert!(fragments > 4, "arguments arrive in several fragments");
        assert!(String::from_utf8_lossy(&r.body).contains("\"finish_reason\":\"tool_calls\""));
    }
    e.stop().await;
}

/// Opens a streaming request and reads until `want` deltas of content arrived; returns the open socket.
async fn read_deltas(e: &Emulators, want: usize) -> (tokio::net::TcpStream, Vec<StreamItem>) {
    let host = authority(&e.openai_base_url());
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    s.write_all(&post("/v1/chat/completions", &host, &[("Authorization", &bearer())], STREAM_BODY)).await.unwrap();
    let mut d = ChatStreamDecoder::new();
    let mut items = Vec::new();
    let mut buf = [0u8; 4096];
    let mut head_done = false;
    let mut pending = Vec::new();
    while items
        .iter()
        .filter(|i| matches!(i, StreamItem::Chunk(c) if c.content().is_some_and(|t| !t.is_empty())))
        .count()
        < want
    {
        let n = tokio::time::timeout(SOON, s.read(&mut buf)).await.expect("more data").unwrap();
        assert!(n > 0, "stream ended early");
        pending.extend_from_slice(&buf[..n]);
        if !head_done {
            let Some(p) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            pending.drain(..p + 4);
            head_done = true;
        }
        // Feed only the chunk payloads: strip the chunk-size lines.
        let parsed = crate::helpers::parse_response(
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice(), &pending].concat(),
        );
        let consumed: usize = parsed.chunks.iter().map(|c| c.len() + format!("{:X}", c.len()).len() + 4).sum();
        for c in &parsed.chunks {
            items.extend(d.push(c));
        }
        pending.drain(..consumed.min(pending.len()));
    }
    (s, items)
}

#[actix_web::test]
async fn time_to_first_token_and_inter_token_delay_pace_the_stream() {
    let e = start().await;
    e.openai().set_timing(Duration::from_millis(300), Duration::from_millis(50));
    let started = Instant::now();
    let (_, _) = read_deltas(&e, 1).await;
    let first = started.elapsed();
    assert!(first >= Duration::from_millis(300), "{first:?}");
    let r = chat(&e, STREAM_BODY).await;
    let whole = started.elapsed();
    assert!(whole >= first + Duration::from_millis(300) + Duration::from_millis(50 * 10), "{whole:?}");
    assert_eq!(content(&decode(&r.body).0), EXPECTED);
    e.stop().await;
}
