//! `PARLEY_AGENTS_FILE`: the agents file's text, read at start-up together with the environment variables it
//! names (`api_key_env = "NAME"` and `${NAME}` in any string), so that the `agents` module can build and
//! validate the profiles without reading the environment itself. What the file means is `agents`' business;
//! this only finds the names (a file that is not valid TOML yields none: `agents` reports the syntax error).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{ConfigError, Env, Secret};

/// The agents file as read at start-up.
#[derive(Debug, Clone)]
pub struct AgentsSource {
    pub path: PathBuf,
    pub text: String,
    /// The variables the file names that are set (values kept out of `Debug`); an unset one is absent.
    pub env: BTreeMap<String, Secret>,
}

impl AgentsSource {
    /// Reads `PARLEY_AGENTS_FILE`, if set.
    pub(super) fn read(env: &Env<'_>) -> Result<Option<AgentsSource>, ConfigError> {
        const VAR: &str = "PARLEY_AGENTS_FILE";
        let Some(path) = env.get(VAR).map(PathBuf::from) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::new(VAR, format!("cannot read the agents file {}: {e}", path.display())))?;
        let vars = referenced_vars(&text)
            .into_iter()
            .filter_map(|name| env.named_by_operator(&name).map(|value| (name, Secret::new(value))))
            .collect();
        Ok(Some(AgentsSource { path, text, env: vars }))
    }
}

/// The environment variable names a TOML text refers to.
pub fn referenced_vars(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(table) = text.parse::<toml::Table>() {
        walk(&toml::Value::Table(table), None, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn walk(value: &toml::Value, key: Option<&str>, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => {
            if key == Some("api_key_env") {
                out.push(s.trim().to_string());
            }
            out.extend(placeholders(s).into_iter().map(str::to_string));
        }
        toml::Value::Array(items) => items.iter().for_each(|v| walk(v, None, out)),
        toml::Value::Table(t) => t.iter().for_each(|(k, v)| walk(v, Some(k), out)),
        _ => {}
    }
}

/// The `NAME`s of the `${NAME}` in `s`, in order.
pub fn placeholders(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_variables_and_header_placeholders_are_found() {
        let text = r#"
            [agents.a.llm]
            api_key_env = "KEY_A"
            [[agents.a.llm_fallback]]
            api_key_env = "KEY_B"
            [tools.t]
            headers = { Authorization = "Bearer ${SHOP_TOKEN}", X = "${A}-${B}" }
        "#;
        assert_eq!(referenced_vars(text), ["A", "B", "KEY_A", "KEY_B", "SHOP_TOKEN"]);
        assert!(referenced_vars("not [ toml").is_empty());
    }
}
