//! Agent profiles: who a session talks to. An agents file (`PARLEY_AGENTS_FILE`, TOML, see README "Agents")
//! names agents, each with its system prompt (a template, see [`template`]), LLM endpoint and ordered
//! fallbacks, voice, speech-recognition model and language, greeting and tools; and the tools themselves
//! (webhooks and client-side tools; `end_conversation` is built in). It is read once at start-up
//! (`config::AgentsSource` holds its text and the variables it names) and validated here, every error naming
//! the file, the agent or tool, and the field.
//!
//! Without a file there is one agent, `default`, made of the environment's settings; a file adds agents and
//! may redefine `default`. What a profile leaves out falls back to the environment's settings (that is done
//! where session settings are built, `session::settings`). This module knows nothing of sessions.

mod build;
pub mod file;
pub mod template;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{AgentsSource, Secret};
use crate::tools::ToolSpec;

/// The agent of a session that names none, unless the file says otherwise.
pub const DEFAULT_AGENT: &str = "default";

/// Every agent profile of the agents file, validated.
#[derive(Debug, Clone, Default)]
pub struct Agents {
    /// The file's agents by name (`default` only when the file defines it; otherwise the environment's).
    pub profiles: BTreeMap<String, AgentProfile>,
    /// The agent of a session that does not name one.
    pub default_agent: String,
    /// Phone number (E.164) → agent name, for phone transports.
    pub phone_numbers: BTreeMap<String, String>,
}

/// One agent, as the file defines it; `None` fields take the environment's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentProfile {
    pub name: String,
    /// A template: `{{var}}` is filled from the session's token (see [`template::render`]).
    pub system_prompt: String,
    /// Spoken first, as turn 0, in a new session.
    pub greeting: Option<String>,
    pub voice_id: Option<String>,
    pub tts_model: Option<String>,
    pub stt_model: Option<String>,
    pub stt_language: Option<String>,
    /// The primary LLM.
    pub llm: LlmEndpoint,
    /// Tried in order when the one before fails (or is slower than its `first_token_timeout`).
    pub llm_fallback: Vec<LlmEndpoint>,
    /// The tools the agent's LLM is offered, in the order the file lists them.
    pub tools: Vec<ToolSpec>,
    pub max_tool_steps: u32,
}

/// An OpenAI-compatible endpoint as a profile names it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmEndpoint {
    /// Its name in metrics, logs and stored messages (the model when absent).
    pub name: Option<String>,
    /// Without a trailing slash.
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// The variable the key was read from, and the key (both absent: `OPENAI_API_KEY`'s).
    pub api_key_env: Option<String>,
    pub api_key: Option<Secret>,
    pub first_token_timeout: Option<Duration>,
}

/// An agents file that cannot be used: where (file, then agent or tool, then field) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct AgentsError {
    pub file: PathBuf,
    /// `agent "support"`, `tool "lookup_order"`, `phone_numbers`… (empty for the file as a whole).
    pub place: String,
    /// The key at fault, relative to `place` (`llm.base_url`, `llm_fallback[1].model`, `tools`).
    pub field: String,
    pub message: String,
}

impl AgentsError {
    fn describe(&self) -> String {
        let mut out = format!("agents file {}", self.file.display());
        for part in [&self.place, &self.field] {
            if !part.is_empty() {
                out.push_str(": ");
                out.push_str(part);
            }
        }
        format!("{out}: {}", self.message)
    }
}

impl Agents {
    /// The validated agents of `source`; no file means the environment's `default` agent alone.
    pub fn load(source: Option<&AgentsSource>) -> Result<Agents, AgentsError> {
        match source {
            None => Ok(Agents { default_agent: DEFAULT_AGENT.to_string(), ..Agents::default() }),
            Some(source) => build::build(source),
        }
    }

    /// Whether a session may ask for `name` (`default` always exists).
    pub fn contains(&self, name: &str) -> bool {
        name == DEFAULT_AGENT || self.profiles.contains_key(name)
    }
}
