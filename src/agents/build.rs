//! From the file as written ([`RawFile`]) to validated [`Agents`]: every check, each failure an
//! [`AgentsError`] that names the file, the agent or tool, and the field.

use std::collections::BTreeMap;
use std::time::Duration;

use super::file::{RawAgent, RawFile, RawLlm, RawTool};
use super::{AgentProfile, Agents, AgentsError, DEFAULT_AGENT, LlmEndpoint};
use crate::config::{AgentsSource, Secret, placeholders};
use crate::tools::{DEFAULT_MAX_TOOL_STEPS, DEFAULT_TIMEOUT, END_CONVERSATION, ToolKind, ToolSpec};

/// The most tool rounds an agent may allow in one turn.
const MAX_TOOL_STEPS: i64 = 20;
/// The longest a tool call or a first token may be waited for.
const MAX_TIMEOUT_MS: i64 = 120_000;

/// Where in the file a check is, so its error can say so.
struct At<'a> {
    source: &'a AgentsSource,
    place: String,
}

impl At<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> AgentsError {
        AgentsError {
            file: self.source.path.clone(),
            place: self.place.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// A value that, when given, must not be blank.
    fn text(&self, field: &str, value: Option<String>) -> Result<Option<String>, AgentsError> {
        match value {
            Some(v) if v.trim().is_empty() => Err(self.err(field, "is empty (leave the key out to use the default)")),
            v => Ok(v.map(|v| v.trim().to_string())),
        }
    }

    /// An `http(s)` URL with a host, without its trailing slash.
    fn url(&self, field: &str, raw: &str) -> Result<String, AgentsError> {
        let parsed =
            url::Url::parse(raw.trim()).map_err(|e| self.err(field, format!("not a valid URL ({e}): {raw:?}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
            return Err(self.err(field, format!("expected an http(s) URL with a host, got {raw:?}")));
        }
        Ok(raw.trim().trim_end_matches('/').to_string())
    }

    /// A positive number of milliseconds up to [`MAX_TIMEOUT_MS`].
    fn millis(&self, field: &str, ms: i64) -> Result<Duration, AgentsError> {
        if !(1..=MAX_TIMEOUT_MS).contains(&ms) {
            return Err(self.err(field, format!("expected 1 to {MAX_TIMEOUT_MS} milliseconds, got {ms}")));
        }
        Ok(Duration::from_millis(ms as u64))
    }

    /// The value of an environment variable the file names, which must be set.
    fn env(&self, field: &str, name: &str) -> Result<Secret, AgentsError> {
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(self.err(field, format!("{name:?} is not an environment variable name")));
        }
        self.source
            .env
            .get(name)
            .cloned()
            .ok_or_else(|| self.err(field, format!("names the environment variable {name}, which is not set")))
    }
}

/// Agent and tool names go into URLs, logs and the LLM's function list.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

pub(super) fn build(source: &AgentsSource) -> Result<Agents, AgentsError> {
    let file_at = At { source, place: String::new() };
    let raw: RawFile = toml::from_str(&source.text).map_err(|e| file_at.err("", e.to_string().trim().to_string()))?;
    let mut tools = BTreeMap::new();
    for (name, tool) in raw.tools {
        let at = At { source, place: format!("tool {name:?} ([tools.{name}])") };
        let spec = build_tool(&at, &name, tool)?;
        tools.insert(name, spec);
    }
    let mut profiles = BTreeMap::new();
    for (name, agent) in raw.agents {
        let at = At { source, place: format!("agent {name:?} ([agents.{name}])") };
        if !valid_name(&name) {
            return Err(at.err("", "an agent name is 1-64 letters, digits, '_' or '-'"));
        }
        let profile = build_agent(&at, &name, agent, &tools)?;
        profiles.insert(name, profile);
    }
    let known = |name: &str| name == DEFAULT_AGENT || profiles.contains_key(name);
    let names = || {
        let mut all: Vec<&str> = profiles.keys().map(String::as_str).collect();
        if !profiles.contains_key(DEFAULT_AGENT) {
            all.insert(0, DEFAULT_AGENT);
        }
        all.join(", ")
    };
    let default_agent = raw.default_agent.map(|d| d.trim().to_string()).unwrap_or_else(|| DEFAULT_AGENT.to_string());
    if !known(&default_agent) {
        return Err(file_at.err("default_agent", format!("no agent {default_agent:?} (agents: {})", names())));
    }
    let at = At { source, place: "phone_numbers".to_string() };
    for (number, agent) in &raw.phone_numbers {
        let digits = number.strip_prefix('+').unwrap_or_default();
        if !(6..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(at.err(format!("{number:?}"), "expected an E.164 number such as \"+15551234567\""));
        }
        if !known(agent) {
            return Err(at.err(format!("{number:?}"), format!("no agent {agent:?} (agents: {})", names())));
        }
    }
    Ok(Agents { profiles, default_agent, phone_numbers: raw.phone_numbers })
}

fn build_agent(
    at: &At<'_>,
    name: &str,
    raw: RawAgent,
    tools: &BTreeMap<String, ToolSpec>,
) -> Result<AgentProfile, AgentsError> {
    let system_prompt = match raw.system_prompt {
        None => return Err(at.err("system_prompt", "missing: every agent needs a system prompt")),
        Some(p) if p.trim().is_empty() => return Err(at.err("system_prompt", "is empty")),
        Some(p) => p,
    };
    let mut offered: Vec<ToolSpec> = Vec::new();
    for tool in &raw.tools {
        let spec = match tools.get(tool) {
            Some(spec) => spec.clone(),
            None if tool == END_CONVERSATION => ToolSpec::end_conversation(),
            None => {
                let mut defined: Vec<&str> = tools.keys().map(String::as_str).collect();
                defined.push(END_CONVERSATION);
                return Err(at.err(
                    "tools",
                    format!("unknown tool {tool:?}: define it as [tools.{tool}] (tools: {})", defined.join(", ")),
                ));
            }
        };
        if offered.iter().any(|t| t.name == spec.name) {
            return Err(at.err("tools", format!("{tool:?} is listed twice")));
        }
        offered.push(spec);
    }
    let max_tool_steps = match raw.max_tool_steps {
        None => DEFAULT_MAX_TOOL_STEPS,
        Some(n) if (1..=MAX_TOOL_STEPS).contains(&n) => n as u32,
        Some(n) => return Err(at.err("max_tool_steps", format!("expected 1 to {MAX_TOOL_STEPS}, got {n}"))),
    };
    let llm = build_llm(at, "llm", raw.llm.unwrap_or_default(), false)?;
    let llm_fallback = raw
        .llm_fallback
        .into_iter()
        .enumerate()
        .map(|(i, l)| build_llm(at, &format!("llm_fallback[{i}]"), l, true))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AgentProfile {
        name: name.to_string(),
        system_prompt,
        greeting: at.text("greeting", raw.greeting)?,
        voice_id: at.text("voice_id", raw.voice_id)?,
        tts_model: at.text("tts_model", raw.tts_model)?,
        stt_model: at.text("stt_model", raw.stt_model)?,
        stt_language: at.text("stt_language", raw.stt_language)?,
        llm,
        llm_fallback,
        tools: offered,
        max_tool_steps,
    })
}

fn build_llm(at: &At<'_>, field: &str, raw: RawLlm, fallback: bool) -> Result<LlmEndpoint, AgentsError> {
    let key = |k: &str| format!("{field}.{k}");
    if fallback && raw.base_url.is_none() && raw.model.is_none() {
        return Err(at.err(field, "a fallback names a base_url or a model (or both)"));
    }
    let api_key_env = at.text(&key("api_key_env"), raw.api_key_env)?;
    Ok(LlmEndpoint {
        name: at.text(&key("name"), raw.name)?,
        base_url: raw.base_url.map(|u| at.url(&key("base_url"), &u)).transpose()?,
        model: at.text(&key("model"), raw.model)?,
        api_key: api_key_env.as_deref().map(|env| at.env(&key("api_key_env"), env)).transpose()?,
        api_key_env,
        first_token_timeout: raw
            .first_token_timeout_ms
            .map(|ms| at.millis(&key("first_token_timeout_ms"), ms))
            .transpose()?,
    })
}

fn build_tool(at: &At<'_>, name: &str, raw: RawTool) -> Result<ToolSpec, AgentsError> {
    if name == END_CONVERSATION {
        return Err(at.err("", "end_conversation is built in: list it in an agent's tools without defining it"));
    }
    if !valid_name(name) {
        return Err(at.err("", "a tool name is 1-64 letters, digits, '_' or '-'"));
    }
    let description = match at.text("description", raw.description)? {
        Some(d) => d,
        None => return Err(at.err("description", "missing: the LLM decides when to call a tool from it")),
    };
    let parameters = raw.parameters.unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
    if parameters.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err(
            at.err("parameters", "expected a JSON schema of type \"object\" (type = \"object\", properties = {…})")
        );
    }
    let kind = match (raw.client, raw.url) {
        (true, Some(_)) => return Err(at.err("url", "a client tool (client = true) has no url")),
        (true, None) => {
            for (set, key) in [(raw.method.is_some(), "method"), (!raw.headers.is_empty(), "headers")] {
                if set {
                    return Err(at.err(key, "only a webhook tool (url = …) has one"));
                }
            }
            ToolKind::Client
        }
        (false, None) => {
            return Err(at.err("url", "missing: a webhook tool needs one (or set client = true for a client tool)"));
        }
        (false, Some(url)) => {
            let method = raw.method.as_deref().unwrap_or("POST").trim().to_ascii_uppercase();
            if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
                return Err(at.err("method", format!("expected POST, PUT or PATCH, got {method:?}")));
            }
            let mut headers = Vec::new();
            for (header, value) in raw.headers {
                let field = format!("headers.{header}");
                if actix_web::http::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(at.err(field, "not a valid header name"));
                }
                let mut resolved = value.clone();
                for var in placeholders(&value) {
                    let secret = at.env(&field, var)?;
                    resolved = resolved.replace(&format!("${{{var}}}"), secret.expose());
                }
                if actix_web::http::header::HeaderValue::from_str(&resolved).is_err() {
                    return Err(at.err(field, "not a valid header value (after ${…} substitution)"));
                }
                headers.push((header, Secret::new(resolved)));
            }
            ToolKind::Webhook { url: at.url("url", &url)?, method, headers }
        }
    };
    Ok(ToolSpec {
        name: name.to_string(),
        description,
        parameters,
        kind,
        timeout: raw.timeout_ms.map(|ms| at.millis("timeout_ms", ms)).transpose()?.unwrap_or(DEFAULT_TIMEOUT),
        filler: at.text("filler", raw.filler)?,
    })
}
