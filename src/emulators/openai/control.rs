//! The test-facing side of the OpenAI-compatible emulator: scripted replies, faults and timing for the next
//! requests, transport torture, and the log of every request (body, headers of interest, how it ended,
//! whether the client went away first).

use std::collections::VecDeque;
use std::str::FromStr;
use std::time::Duration;

use crate::emulators::common::shared::Shared;
use crate::emulators::options::OpenAiOptions;

/// One scripted reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Assistant text, streamed word by word.
    Text(String),
    /// Parallel tool calls: `(name, arguments JSON text)`, arguments streamed in fragments.
    ToolCalls(Vec<(String, String)>),
}

/// A failure the next request suffers.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenAiFault {
    /// 429 `rate_limit_exceeded` with `retry-after` (seconds), `retry-after-ms` and `x-should-retry: true`.
    RateLimited { retry_after: Duration },
    /// 429 `insufficient_quota` with `x-should-retry: false` (do not retry).
    InsufficientQuota,
    /// 500 `server_error`.
    ServerError,
    /// 503 overloaded.
    Overloaded,
    /// 401 `invalid_api_key`, whatever key was sent.
    Unauthorized,
    /// After this many deltas, `data: {"error":...}` and the end of the body (no `[DONE]`).
    ErrorMidStream { after_deltas: usize },
    /// After this many deltas the body ends without `[DONE]`.
    CutAfter { after_deltas: usize },
    /// After this many deltas nothing more is ever sent (until the client goes away).
    NeverEnds { after_deltas: usize },
}

/// Parses the CLI spelling: `429[:secs]`, `quota`, `500`, `503`, `401`, `error-after:N`, `cut-after:N`,
/// `hang-after:N`.
impl FromStr for OpenAiFault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = s.split_once(':').unwrap_or((s, ""));
        let n = || arg.parse::<usize>().map_err(|_| format!("fault {s:?} needs a count after ':'"));
        Ok(match name {
            "429" => OpenAiFault::RateLimited {
                retry_after: Duration::from_secs_f64(if arg.is_empty() {
                    1.0
                } else {
                    arg.parse::<f64>().map_err(|_| format!("fault {s:?}: bad seconds"))?
                }),
            },
            "quota" => OpenAiFault::InsufficientQuota,
            "500" => OpenAiFault::ServerError,
            "503" => OpenAiFault::Overloaded,
            "401" => OpenAiFault::Unauthorized,
            "error-after" => OpenAiFault::ErrorMidStream { after_deltas: n()? },
            "cut-after" => OpenAiFault::CutAfter { after_deltas: n()? },
            "hang-after" => OpenAiFault::NeverEnds { after_deltas: n()? },
            _ => return Err(format!("unknown OpenAI fault {s:?}")),
        })
    }
}

/// Transport torture and compatible-server quirks for SSE responses; every flag is independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Torture {
    /// Write each event in two pieces, cut mid-line.
    pub split_lines: bool,
    /// Cut inside a multi-byte UTF-8 character when the event has one.
    pub split_utf8: bool,
    /// `\r\n` line endings.
    pub crlf: bool,
    /// Lone `\r` line endings.
    pub cr: bool,
    /// A `: keep-alive` comment before every event.
    pub comments: bool,
    /// Two events per write.
    pub coalesce: bool,
    /// `data:` with no space after the colon.
    pub no_space: bool,
    /// Tool-call deltas without `index` (Gemini/ollama style).
    pub no_tool_index: bool,
    /// Unknown extra fields on chunks, choices and deltas.
    pub extra_fields: bool,
    /// Tool-call arguments whole in the call's first delta instead of fragments.
    pub whole_tool_arguments: bool,
    /// A running `usage` object on every chunk (some compatible servers do this).
    pub usage_every_chunk: bool,
    /// `finish_reason` on the last content delta instead of a separate empty chunk.
    pub finish_with_content: bool,
}

/// Parses a comma-separated list: `split-lines,split-utf8,crlf,cr,comments,coalesce,no-space,
/// no-tool-index,extra-fields,whole-tool-arguments,usage-every-chunk,finish-with-content`, or `all`
/// (everything but `cr`), or `none`.
impl FromStr for Torture {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut t = Torture::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "none" => {}
                "all" => t = Torture { cr: false, ..Torture::all() },
                "split-lines" => t.split_lines = true,
                "split-utf8" => t.split_utf8 = true,
                "crlf" => t.crlf = true,
                "cr" => t.cr = true,
                "comments" => t.comments = true,
                "coalesce" => t.coalesce = true,
                "no-space" => t.no_space = true,
                "no-tool-index" => t.no_tool_index = true,
                "extra-fields" => t.extra_fields = true,
                "whole-tool-arguments" => t.whole_tool_arguments = true,
                "usage-every-chunk" => t.usage_every_chunk = true,
                "finish-with-content" => t.finish_with_content = true,
                _ => return Err(format!("unknown torture mode {part:?}")),
            }
        }
        Ok(t)
    }
}

impl Torture {
    /// Every flag on (`cr` and `crlf` both set means `\r\n`).
    pub fn all() -> Self {
        Torture {
            split_lines: true,
            split_utf8: true,
            crlf: true,
            cr: true,
            comments: true,
            coalesce: true,
            no_space: true,
            no_tool_index: true,
            extra_fields: true,
            whole_tool_arguments: true,
            usage_every_chunk: true,
            finish_with_content: true,
        }
    }
}

/// Everything one request did.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequestLog {
    pub number: u64,
    pub request_id: String,
    /// The body as JSON, or as a JSON string when it was not valid JSON.
    pub body: serde_json::Value,
    /// `authorization`, `content-type`, `accept`, `openai-organization`, `openai-project`, `user-agent`.
    pub headers: Vec<(String, String)>,
    pub stream: bool,
    pub status: u16,
    pub fault: Option<OpenAiFault>,
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

#[derive(Debug)]
pub(crate) struct OpenAiState {
    pub settings: OpenAiSettings,
    pub replies: VecDeque<Reply>,
    pub faults: VecDeque<OpenAiFault>,
    pub requests: Vec<ChatRequestLog>,
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
                replies: VecDeque::new(),
                faults: opts.faults.clone().into(),
                requests: Vec::new(),
            }),
        }
    }

    /// The reply to the next request (then the default that quotes the user).
    pub fn push_reply(&self, reply: Reply) {
        self.shared.update(|s| s.replies.push_back(reply));
    }

    /// A fault for the next request (one per request, in order).
    pub fn push_fault(&self, fault: OpenAiFault) {
        self.shared.update(|s| s.faults.push_back(fault));
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
    fn cli_fault_and_torture_spellings_parse() {
        assert_eq!("cut-after:3".parse(), Ok(OpenAiFault::CutAfter { after_deltas: 3 }));
        assert_eq!("429:2.5".parse(), Ok(OpenAiFault::RateLimited { retry_after: Duration::from_millis(2500) }));
        assert!("hang-after".parse::<OpenAiFault>().is_err());
        let t: Torture = "crlf, comments".parse().unwrap();
        assert!(t.crlf && t.comments && !t.split_lines);
        assert!("all".parse::<Torture>().unwrap().split_utf8);
        assert!("wobble".parse::<Torture>().is_err());
    }
}
