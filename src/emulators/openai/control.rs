//! The test-facing side of the OpenAI-compatible emulator: scripted replies, faults and timing for the next
//! requests, base URL prefixes that are down, transport torture, and the log of every request (body, headers
//! of interest, prefix, how it ended, the usage reported, whether the client went away first). The control
//! API (`control_api`) drives the same handle over HTTP.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

pub use super::fault::OpenAiFault;
use super::fault::prefix_segment;
pub use super::torture::Torture;
use crate::emulators::common::shared::Shared;
use crate::emulators::options::OpenAiOptions;

/// One scripted reply (`script` parses its CLI spelling).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Assistant text, streamed word by word.
    Text(String),
    /// Parallel tool calls: `(name, arguments JSON text)`, arguments streamed in fragments.
    ToolCalls(Vec<(String, String)>),
}

/// Everything one request did (the control API serves it as JSON, `usage` as an object).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChatRequestLog {
    /// 1 for the emulator's first request; never reused, also after `reset`.
    pub number: u64,
    pub request_id: String,
    /// The path prefix the request came under (`primary` for `/primary/v1/chat/completions`), `None` for
    /// `/v1/chat/completions`.
    pub prefix: Option<String>,
    /// The body as JSON, or as a JSON string when it was not valid JSON.
    pub body: serde_json::Value,
    /// `authorization`, `content-type`, `accept`, `openai-organization`, `openai-project`, `user-agent`.
    pub headers: Vec<(String, String)>,
    pub stream: bool,
    pub status: u16,
    /// The fault the request suffered: the next queued one, or its prefix's while that prefix is down.
    pub fault: Option<OpenAiFault>,
    /// `(prompt_tokens, completion_tokens)` of the last usage the client was sent (the usage chunk, a running
    /// usage with `usage-every-chunk`, or a whole completion's `usage`); `None` when none was sent.
    #[serde(serialize_with = "usage_json")]
    pub usage: Option<(u32, u32)>,
    /// Content or tool-call deltas written.
    pub deltas_sent: usize,
    pub done_sent: bool,
    /// The emulator wrote everything it meant to (including a planned cut).
    pub completed: bool,
    /// The client closed the connection before that.
    pub client_went_away: bool,
}

/// Settings a request takes when it arrives.
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    pub api_keys: Vec<String>,
    pub time_to_first_token: Duration,
    pub inter_token_delay: Duration,
    pub torture: Torture,
}

fn usage_json<S: serde::Serializer>(usage: &Option<(u32, u32)>, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize as _;
    usage
        .map(|(p, c)| serde_json::json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}))
        .serialize(s)
}

#[derive(Debug)]
pub(crate) struct OpenAiState {
    pub settings: OpenAiSettings,
    pub replies: VecDeque<Reply>,
    pub faults: VecDeque<OpenAiFault>,
    /// Prefixes that are down, and the fault every request under one gets.
    pub down: BTreeMap<String, OpenAiFault>,
    pub requests: Vec<ChatRequestLog>,
    /// Requests dropped from the front of the log by `reset`; a request's slot is `number - 1 - cleared`.
    pub cleared: usize,
    /// Keep only about this many requests (`parley emulate`); `None`: all of them (tests).
    pub log_limit: Option<crate::emulators::common::log::LogLimit>,
}

impl OpenAiState {
    /// The log entry of request `number`, unless `reset` dropped it.
    pub fn log_mut(&mut self, number: u64) -> Option<&mut ChatRequestLog> {
        let slot = usize::try_from(number).ok()?.checked_sub(1 + self.cleared)?;
        self.requests.get_mut(slot)
    }

    /// Logs request `entry`, dropping the oldest past the log limit.
    pub fn log(&mut self, entry: ChatRequestLog) {
        self.requests.push(entry);
        if let Some(limit) = self.log_limit {
            self.cleared += crate::emulators::common::log::trim_front(&mut self.requests, limit.entries.max(1));
        }
    }

    /// The number the next request gets.
    pub fn next_number(&self) -> u64 {
        (self.cleared + self.requests.len()) as u64 + 1
    }
}

/// Handle on the OpenAI-compatible emulator (cheap to clone, `Send + Sync`).
#[derive(Debug, Clone)]
pub struct OpenAiControl {
    pub(crate) shared: Shared<OpenAiState>,
}

impl OpenAiControl {
    pub(crate) fn new(opts: &OpenAiOptions) -> Self {
        let settings = OpenAiSettings {
            api_keys: opts.api_keys.clone(),
            time_to_first_token: opts.time_to_first_token,
            inter_token_delay: opts.inter_token_delay,
            torture: opts.torture,
        };
        OpenAiControl {
            shared: Shared::new(OpenAiState {
                settings,
                replies: opts.replies.clone().into(),
                faults: opts.faults.clone().into(),
                down: opts.down.iter().cloned().collect(),
                requests: Vec::new(),
                cleared: 0,
                log_limit: None,
            }),
        }
    }

    /// The reply to the next request that is answered (then the default: it quotes the last user message, or
    /// the tool results when the last messages are tool results). A refused request (401, 400, a status
    /// fault) and requests under a down prefix leave it queued.
    pub fn push_reply(&self, reply: Reply) {
        self.shared.update(|s| s.replies.push_back(reply));
    }

    /// A fault for the next request (one per request, in order). Requests under a down prefix leave it queued.
    pub fn push_fault(&self, fault: OpenAiFault) {
        self.shared.update(|s| s.faults.push_back(fault));
    }

    /// `Some(fault)`: every request under `/{prefix}/v1/chat/completions` gets `fault` until this is called
    /// with `None` (one base URL of several down, for fallback tests). Such requests neither take the queued
    /// fault nor the queued reply (a mid-stream fault streams the front of the reply queue without taking it,
    /// or the default). `prefix` is one path segment; surrounding slashes are dropped, and a prefix with an
    /// inner `/` never matches.
    pub fn set_down(&self, prefix: &str, fault: Option<OpenAiFault>) {
        let prefix = prefix_segment(prefix).unwrap_or(prefix).to_string();
        self.shared.update(|s| match fault {
            Some(f) => s.down.insert(prefix, f),
            None => s.down.remove(&prefix),
        });
    }

    /// Forgets queued replies and faults, down prefixes and the request log (request numbers keep counting);
    /// timing and torture stay as they are.
    pub fn reset(&self) {
        self.shared.update(|s| {
            s.replies.clear();
            s.faults.clear();
            s.down.clear();
            s.cleared += s.requests.len();
            s.requests.clear();
        });
    }

    /// Keep only about the last `limit` requests (`None`: all).
    pub fn set_log_limit(&self, limit: Option<crate::emulators::common::log::LogLimit>) {
        self.shared.update(|s| s.log_limit = limit);
    }

    /// Delay before the first chunk, and between deltas.
    pub fn set_timing(&self, time_to_first_token: Duration, inter_token_delay: Duration) {
        self.shared.update(|s| {
            s.settings.time_to_first_token = time_to_first_token;
            s.settings.inter_token_delay = inter_token_delay;
        });
    }

    /// Transport torture for the next requests.
    pub fn set_torture(&self, torture: Torture) {
        self.shared.update(|s| s.settings.torture = torture);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<ChatRequestLog> {
        self.shared.read(|s| s.requests.clone())
    }

    /// Waits until `pred` holds for the request log, or `timeout` passes; true if it held.
    pub async fn wait_until(&self, pred: impl Fn(&[ChatRequestLog]) -> bool, timeout: Duration) -> bool {
        self.shared.wait_until(|s| pred(&s.requests), timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_down_normalises_the_prefix_and_reset_keeps_numbering_and_drops_old_entries() {
        let c = OpenAiControl::new(&crate::emulators::EmulatorOptions::default().openai);
        c.set_down("/primary/", Some(OpenAiFault::ServerError));
        assert_eq!(c.shared.read(|s| s.down.get("primary").cloned()), Some(OpenAiFault::ServerError));
        c.set_down("primary", None);
        assert!(c.shared.read(|s| s.down.is_empty()));
        c.push_reply(Reply::Text("a".into()));
        c.shared.update(|s| {
            let number = s.next_number();
            s.requests.push(ChatRequestLog {
                number,
                request_id: "r".into(),
                prefix: None,
                body: serde_json::Value::Null,
                headers: vec![],
                stream: true,
                status: 200,
                fault: None,
                usage: Some((3, 4)),
                deltas_sent: 0,
                done_sent: false,
                completed: false,
                client_went_away: false,
            })
        });
        c.reset();
        assert!(c.requests().is_empty() && c.shared.read(|s| s.replies.is_empty()));
        assert!(c.shared.update(|s| s.log_mut(1).is_none()), "a stream still running after reset logs nowhere");
        assert_eq!(c.shared.read(OpenAiState::next_number), 2);
    }
}
