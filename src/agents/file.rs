//! The agents file as written: plain serde structs that mirror the TOML (see README "Agents"), before any
//! check. Unknown keys are refused, so a misspelt key is an error and not a silently ignored setting.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    #[serde(default)]
    pub agents: BTreeMap<String, RawAgent>,
    #[serde(default)]
    pub tools: BTreeMap<String, RawTool>,
    /// `"+15551234567" = "support"`: which agent answers a phone number (used by phone transports).
    #[serde(default)]
    pub phone_numbers: BTreeMap<String, String>,
    /// The agent of a session that does not name one (`default` when absent).
    pub default_agent: Option<String>,
}

/// `[agents.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub system_prompt: Option<String>,
    pub greeting: Option<String>,
    pub voice_id: Option<String>,
    pub tts_model: Option<String>,
    pub stt_model: Option<String>,
    pub stt_language: Option<String>,
    #[serde(default)]
    pub tools: Vec<String>,
    pub max_tool_steps: Option<i64>,
    pub llm: Option<RawLlm>,
    #[serde(default)]
    pub llm_fallback: Vec<RawLlm>,
}

/// `[agents.NAME.llm]` and each `[[agents.NAME.llm_fallback]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLlm {
    pub name: Option<String>,
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key_env: Option<String>,
    pub first_token_timeout_ms: Option<i64>,
}

/// `[tools.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTool {
    pub description: Option<String>,
    /// A webhook tool's endpoint.
    pub url: Option<String>,
    pub method: Option<String>,
    pub timeout_ms: Option<i64>,
    pub filler: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub parameters: Option<serde_json::Value>,
    /// The session's client runs it.
    #[serde(default)]
    pub client: bool,
}
