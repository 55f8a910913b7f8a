//! What the OpenAI emulator answers, as data: the default reply that quotes the user (or the tool results),
//! the chunk payloads of a streamed completion (role chunk, deltas, finish chunk, usage chunk) and the whole
//! non-streaming completion. Pure, so the exact shapes are unit-tested.
//!
//! Usage: `prompt_tokens` is, over every message, its whitespace-separated words + 3; `completion_tokens`
//! is the number of deltas the streamed reply has (one per word-sized text token; per tool call one head
//! delta plus one per 8-character argument fragment, or just the head with `whole-tool-arguments`), the
//! same for a non-streaming reply.

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

/// The deterministic default. After tool results (the last messages are `role: tool`), one sentence per
/// result, in order: `The tool said: <content>.`, so a scripted tool call followed by no more script ends in
/// a spoken answer holding the results. Otherwise it quotes the last user message, three sentences (so
/// sentence pipelining is exercised) and curly quotes (so multi-byte UTF-8 crosses the wire).
pub fn default_reply(req: &ChatRequest) -> Reply {
    let results: Vec<String> =
        req.messages.iter().rev().take_while(|m| m.role == Role::Tool).map(|m| m.text()).collect();
    if !results.is_empty() {
        let sentences: Vec<String> = results.iter().rev().map(|r| format!("The tool said: {}.", r.trim())).collect();
        return Reply::Text(sentences.join(" "));
    }
    let said = req.messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.text()).unwrap_or_default();
    Reply::Text(format!("You said: \u{201c}{}\u{201d}. That is worth talking about. Tell me more.", said.trim()))
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
    fn chunk(&self, delta: Value, finish: Option<&str>, t: &Torture, usage: Value) -> String {
        let mut choice = json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish});
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
        if self.include_usage || !usage.is_null() {
            chunk["usage"] = usage;
        }
        chunk.to_string()
    }

    /// The deltas of `reply`: `(delta, finish_reason, counts as a delta)`.
    fn deltas(reply: &Reply, t: &Torture) -> Vec<(Value, Option<&'static str>, bool)> {
        let mut out = Vec::new();
        match reply {
            Reply::Text(text) => {
                out.push((json!({"role": "assistant", "content": ""}), None, false));
                out.extend(tokens(text).into_iter().map(|tok| (json!({"content": tok}), None, true)));
                out.push((json!({}), Some("stop"), false));
            }
            Reply::ToolCalls(calls) => {
                out.push((json!({"role": "assistant", "content": null}), None, false));
                for (i, (name, args)) in calls.iter().enumerate() {
                    let whole = if t.whole_tool_arguments { args.as_str() } else { "" };
                    let mut head = json!({"id": format!("call_emu_{i}"), "type": "function",
                        "function": {"name": name, "arguments": whole}});
                    if !t.no_tool_index {
                        head["index"] = json!(i);
                    }
                    out.push((json!({"tool_calls": [head]}), None, true));
                    let frags = if t.whole_tool_arguments { Vec::new() } else { fragments(args, 8) };
                    for frag in frags {
                        let mut d = json!({"function": {"arguments": frag}});
                        if !t.no_tool_index {
                            d["index"] = json!(i);
                        }
                        out.push((json!({"tool_calls": [d]}), None, true));
                    }
                }
                out.push((json!({}), Some("tool_calls"), false));
            }
        }
        if t.finish_with_content && out.len() > 2 {
            // The finish reason rides on the last delta instead of an empty chunk of its own.
            if let Some((_, finish, _)) = out.pop()
                && let Some(last) = out.last_mut()
            {
                last.1 = finish;
            }
        }
        out
    }

    /// The payloads of a streamed completion of `reply` (without `[DONE]`).
    pub fn stream(&self, reply: &Reply, t: &Torture) -> Vec<Payload> {
        let mut out = Vec::new();
        let mut completion_tokens = 0;
        for (delta, finish, is_delta) in Self::deltas(reply, t) {
            completion_tokens += u32::from(is_delta);
            let usage = if t.usage_every_chunk { self.usage(completion_tokens) } else { Value::Null };
            let json = self.chunk(delta, finish, t, usage);
            out.push(Payload { json, is_delta });
        }
        if self.include_usage {
            let usage = self.usage(completion_tokens);
            let json = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "system_fingerprint": "fp_emulated", "choices": [], "usage": usage});
            out.push(Payload { json: json.to_string(), is_delta: false });
        }
        out
    }

    /// The `completion_tokens` a reply reports: its number of deltas when streamed with torture `t`.
    pub fn completion_tokens(reply: &Reply, t: &Torture) -> u32 {
        Self::deltas(reply, t).iter().filter(|(_, _, is_delta)| *is_delta).count() as u32
    }

    fn usage(&self, completion_tokens: u32) -> Value {
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}})
    }

    /// The whole non-streaming `chat.completion`, reporting `completion_tokens`.
    pub fn whole(&self, reply: &Reply, completion_tokens: u32) -> Value {
        let (message, finish) = match reply {
            Reply::Text(text) => (json!({"role": "assistant", "content": text, "refusal": null}), "stop"),
            Reply::ToolCalls(calls) => {
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, (name, args))| {
                        json!({"id": format!("call_emu_{i}"), "type": "function",
                            "function": {"name": name, "arguments": args}})
                    })
                    .collect();
                (json!({"role": "assistant", "content": null, "tool_calls": calls}), "tool_calls")
            }
        };
        json!({"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "system_fingerprint": "fp_emulated",
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": self.usage(completion_tokens)})
    }
}

/// Cuts `s` into pieces of at most `n` characters.
fn fragments(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// A rough token count of a request (words of every message).
pub fn prompt_tokens(req: &ChatRequest) -> u32 {
    req.messages.iter().map(|m| m.text().split_whitespace().count() as u32 + 3).sum()
}

#[cfg(test)]
mod tests;
