//! What the OpenAI emulator answers, as data: the default reply that quotes the user, the chunk payloads of a
//! streamed completion (role chunk, deltas, finish chunk, usage chunk) and the whole non-streaming
//! completion. Pure, so the exact shapes are unit-tested.

use serde_json::{Value, json};

use super::control::{Reply, Torture};
use crate::providers::openai::{ChatRequest, Role};

/// Identity shared by every chunk of one completion.
#[derive(Debug, Clone)]
pub struct Completion {
    pub id: String,
    pub created: i64,
    pub model: String,
    pub include_usage: bool,
    pub prompt_tokens: u32,
}

/// One SSE payload, and whether it is a delta (faults count deltas).
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub json: String,
    pub is_delta: bool,
}

/// The deterministic default: quotes the last user message, three sentences (so sentence pipelining is
/// exercised) and curly quotes (so multi-byte UTF-8 crosses the wire).
pub fn default_reply(req: &ChatRequest) -> Reply {
    let said = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.text())
        .unwrap_or_default();
    Reply::Text(format!(
        "You said: \u{201c}{}\u{201d}. That is worth talking about. Tell me more.",
        said.trim()
    ))
}

/// Splits text into word-sized deltas that join back to it exactly.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev_space = true;
    for c in text.chars() {
        let is_space = c == ' ';
        if (is_space && !prev_space) || out.is_empty() {
            out.push(String::new());
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
        prev_space = is_space;
    }
    out
}

impl Completion {
    fn chunk(&self, delta: Value, finish: Option<&str>, t: &Torture) -> String {
        let mut choice =
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish});
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "system_fingerprint": "fp_emulated", "choices": [],
        });
        if t.extra_fields {
            choice["native_finish_reason"] = json!(finish);
            choice["delta"]["reasoning_content"] = json!(null);
            chunk["obfuscation"] = json!("x7Qz");
        }
        chunk["choices"] = json!([choice]);
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk.to_string()
    }

    /// The payloads of a streamed completion of `reply` (without `[DONE]`).
    pub fn stream(&self, reply: &Reply, t: &Torture) -> Vec<Payload> {
        let mut out = Vec::new();
        let mut push = |json: String, is_delta| out.push(Payload { json, is_delta });
        let completion_tokens;
        match reply {
            Reply::Text(text) => {
                push(
                    self.chunk(json!({"role": "assistant", "content": ""}), None, t),
                    false,
                );
                let toks = tokens(text);
                completion_tokens = toks.len() as u32;
                for tok in toks {
                    push(self.chunk(json!({"content": tok}), None, t), true);
                }
                push(self.chunk(json!({}), Some("stop"), t), false);
            }
            Reply::ToolCalls(calls) => {
                push(
                    self.chunk(json!({"role": "assistant", "content": null}), None, t),
                    false,
                );
                let mut n = 0;
                for (i, (name, args)) in calls.iter().enumerate() {
                    let mut head = json!({"id": format!("call_emu_{i}"), "type": "function",
                        "function": {"name": name, "arguments": ""}});
                    if !t.no_tool_index {
                        head["index"] = json!(i);
                    }
                    push(self.chunk(json!({"tool_calls": [head]}), None, t), true);
                    for frag in fragments(args, 8) {
                        let mut d = json!({"function": {"arguments": frag}});
                        if !t.no_tool_index {
                            d["index"] = json!(i);
                        }
                        push(self.chunk(json!({"tool_calls": [d]}), None, t), true);
                        n += 1;
                    }
                }
                completion_tokens = n;
                push(self.chunk(json!({}), Some("tool_calls"), t), false);
            }
        }
        if self.include_usage {
            let usage = self.usage(completion_tokens);
            let json = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "system_fingerprint": "fp_emulated", "choices": [], "usage": usage});
            push(json.to_string(), false);
        }
        out
    }

    fn usage(&self, completion_tokens: u32) -> Value {
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}})
    }

    /// The whole non-streaming `chat.completion`.
    pub fn whole(&self, reply: &Reply) -> Value {
        let (message, finish, n) = match reply {
            Reply::Text(text) => (
                json!({"role": "assistant", "content": text, "refusal": null}),
                "stop",
                tokens(text).len() as u32,
            ),
            Reply::ToolCalls(calls) => {
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, (name, args))| {
                        json!({"id": format!("call_emu_{i}"), "type": "function",
                            "function": {"name": name, "arguments": args}})
                    })
                    .collect();
                (
                    json!({"role": "assistant", "content": null, "tool_calls": calls}),
                    "tool_calls",
                    1,
                )
            }
        };
        json!({"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "system_fingerprint": "fp_emulated",
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": self.usage(n)})
    }
}

/// Cuts `s` into pieces of at most `n` characters.
fn fragments(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// A rough token count of a request (words of every message).
pub fn prompt_tokens(req: &ChatRequest) -> u32 {
    req.messages
        .iter()
        .map(|m| m.text().split_whitespace().count() as u32 + 3)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::openai::{ChatChunk, ChatMessage, ToolCallAccumulator};

    fn completion(include_usage: bool) -> Completion {
        Completion {
            id: "chatcmpl-1".into(),
            created: 1,
            model: "m".into(),
            include_usage,
            prompt_tokens: 10,
        }
    }

    fn parse(p: &[Payload]) -> Vec<ChatChunk> {
        p.iter()
            .map(|p| serde_json::from_str(&p.json).unwrap())
            .collect()
    }

    #[test]
    fn the_default_reply_quotes_the_last_user_message_in_three_sentences() {
        let req = ChatRequest::streaming(
            "m",
            vec![
                ChatMessage::new(Role::User, "first"),
                ChatMessage::new(Role::User, " book a table "),
            ],
        );
        let Reply::Text(t) = default_reply(&req) else {
            panic!()
        };
        assert_eq!(
            t,
            "You said: \u{201c}book a table\u{201d}. That is worth talking about. Tell me more."
        );
    }

    #[test]
    fn tokens_join_back_to_the_text() {
        let text = "You said: “hi”.  Two  spaces.";
        assert_eq!(tokens(text).concat(), text);
        assert!(tokens(text).len() > 3);
    }

    #[test]
    fn a_text_stream_is_role_deltas_stop_then_usage_with_no_choices() {
        let chunks =
            parse(&completion(true).stream(&Reply::Text("Hi there.".into()), &Torture::default()));
        assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
        let text: String = chunks.iter().filter_map(|c| c.content()).collect();
        assert_eq!(text, "Hi there.");
        let n = chunks.len();
        assert_eq!(chunks[n - 2].finish_reason(), Some("stop"));
        assert!(chunks[n - 1].choices.is_empty());
        assert_eq!(chunks[n - 1].usage.as_ref().unwrap().completion_tokens, 2);
        assert!(chunks.iter().all(|c| c.id == "chatcmpl-1"));
    }

    #[test]
    fn tool_calls_stream_in_fragments_that_reassemble_with_or_without_index() {
        let reply = Reply::ToolCalls(vec![
            ("weather".into(), r#"{"city":"Paris","unit":"c"}"#.into()),
            ("time".into(), r#"{"tz":"UTC"}"#.into()),
        ]);
        for no_tool_index in [false, true] {
            let t = Torture {
                no_tool_index,
                ..Default::default()
            };
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
}
