//! Scripted replies as text, for the command line (`--openai-reply SPEC`) and the control API: `text:WORDS`
//! or `tools:NAME(ARGS)[;NAME(ARGS)...]`. Arguments are kept verbatim, so invalid JSON can be scripted.
//!
//! The grammar is unambiguous by one rule: a call's arguments run up to the `)` that is followed by `;`, a
//! function name (`[A-Za-z0-9_-]+`) and `(`, or by the end of the spec. So `tools:f({"a":1);g({})` is `f`
//! with the (invalid) arguments `{"a":1` and `g` with `{}`; arguments may hold `(`, `)` and `;` freely but
//! not the sequence `);NAME(`.

use std::str::FromStr;

use super::control::Reply;

/// Parses `text:WORDS` or `tools:NAME(ARGS)[;NAME(ARGS)...]`.
impl FromStr for Reply {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(text) = s.strip_prefix("text:") {
            return Ok(Reply::Text(text.to_string()));
        }
        let Some(mut rest) = s.strip_prefix("tools:") else {
            return Err(format!("reply {s:?} must start with text: or tools:"));
        };
        let mut calls = Vec::new();
        loop {
            let (name, after) = rest.split_once('(').ok_or_else(|| format!("tool call {rest:?} needs NAME(ARGS)"))?;
            if !is_name(name) {
                return Err(format!("tool name {name:?} must be letters, digits, _ or -"));
            }
            match next_call(after) {
                Some(end) => {
                    calls.push((name.to_string(), after[..end].to_string()));
                    rest = &after[end + 2..];
                }
                None => {
                    let args =
                        after.strip_suffix(')').ok_or_else(|| format!("tool call {name}({after} lacks its ')'"))?;
                    calls.push((name.to_string(), args.to_string()));
                    return Ok(Reply::ToolCalls(calls));
                }
            }
        }
    }
}

/// The byte offset of the first `);` that is followed by `NAME(`: where this call's arguments end.
fn next_call(s: &str) -> Option<usize> {
    s.match_indices(");").map(|(i, _)| i).find(|&i| {
        let after = &s[i + 2..];
        after.split_once('(').is_some_and(|(name, _)| is_name(name))
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// One reply as the control API takes it: `{"text": ".."}` or `{"tools": [{"name": .., "arguments": ..}]}`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    text: Option<String>,
    tools: Option<Vec<ToolBody>>,
}

/// A tool call of a [`ReplyBody`]: `arguments` is sent verbatim when it is a JSON string (so it may be
/// invalid JSON), or serialised when it is any other JSON value.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolBody {
    name: String,
    #[serde(default)]
    arguments: Option<serde_json::Value>,
}

impl TryFrom<ReplyBody> for Reply {
    type Error = String;

    fn try_from(b: ReplyBody) -> Result<Self, Self::Error> {
        match (b.text, b.tools) {
            (Some(text), None) => Ok(Reply::Text(text)),
            (None, Some(tools)) if !tools.is_empty() => Ok(Reply::ToolCalls(
                tools
                    .into_iter()
                    .map(|t| {
                        let args = match t.arguments {
                            None => "{}".to_string(),
                            Some(serde_json::Value::String(s)) => s,
                            Some(v) => v.to_string(),
                        };
                        (t.name, args)
                    })
                    .collect(),
            )),
            (None, Some(_)) => Err("\"tools\" needs at least one call".into()),
            _ => Err("a reply has exactly one of \"text\" or \"tools\"".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(calls: &[(&str, &str)]) -> Reply {
        Reply::ToolCalls(calls.iter().map(|(n, a)| (n.to_string(), a.to_string())).collect())
    }

    #[test]
    fn text_and_single_and_parallel_tool_calls_parse() {
        assert_eq!("text:Your order shipped.".parse(), Ok(Reply::Text("Your order shipped.".into())));
        assert_eq!("text:".parse(), Ok(Reply::Text(String::new())));
        assert_eq!(
            r#"tools:lookup_order({"order_id":"1234"})"#.parse(),
            Ok(tools(&[("lookup_order", r#"{"order_id":"1234"}"#)]))
        );
        assert_eq!(
            r#"tools:get-weather({"city":"Paris"});get_time({})"#.parse(),
            Ok(tools(&[("get-weather", r#"{"city":"Paris"}"#), ("get_time", "{}")]))
        );
        assert_eq!("tools:ping()".parse(), Ok(tools(&[("ping", "")])));
    }

    #[test]
    fn arguments_are_verbatim_even_when_they_are_not_json_or_hold_brackets() {
        assert_eq!(r#"tools:f({"a":1);g({})"#.parse(), Ok(tools(&[("f", r#"{"a":1"#), ("g", "{}")])));
        assert_eq!(
            r#"tools:say({"s":"a) b; c(d)"});x(1)"#.parse(),
            Ok(tools(&[("say", r#"{"s":"a) b; c(d)"}"#), ("x", "1")]))
        );
        assert_eq!(r#"tools:f({"s":"); not a name ("})"#.parse(), Ok(tools(&[("f", r#"{"s":"); not a name ("}"#)])));
    }

    #[test]
    fn malformed_specs_are_errors() {
        for bad in ["hello", "tools:", "tools:f", "tools:f({}", "tools:(1)", "tools:bad name({})", "tools:f({});"] {
            assert!(bad.parse::<Reply>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_control_api_body_takes_raw_or_json_arguments() {
        let body = |j: &str| Reply::try_from(serde_json::from_str::<ReplyBody>(j).unwrap());
        assert_eq!(body(r#"{"text":"Hi."}"#), Ok(Reply::Text("Hi.".into())));
        assert_eq!(
            body(r#"{"tools":[{"name":"f","arguments":"{\"a\":1"},{"name":"g","arguments":{"b":2}},{"name":"h"}]}"#),
            Ok(tools(&[("f", r#"{"a":1"#), ("g", r#"{"b":2}"#), ("h", "{}")]))
        );
        assert!(body(r#"{"text":"a","tools":[{"name":"f"}]}"#).is_err());
        assert!(body(r#"{"tools":[]}"#).is_err());
        assert!(body("{}").is_err());
    }
}
