use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::config::AgentsSource;
use crate::tools::ToolKind;

const EXAMPLE: &str = r#"
default_agent = "support"

[agents.support]
system_prompt = "You help {{customer}} with order {{order}}. Be brief."
greeting = "Hi, this is the support line. How can I help?"
voice_id = "ecp3DWciuUyW7BYM7II1"
stt_language = "de"
tools = ["lookup_order", "show_map", "end_conversation"]
max_tool_steps = 4
[agents.support.llm]
base_url = "https://api.cerebras.ai/v1/"
model = "llama-4-scout-17b-16e-instruct"
api_key_env = "OPENAI_API_KEY"
first_token_timeout_ms = 1500
[[agents.support.llm_fallback]]
name = "backup"
base_url = "https://api.openai.com/v1"
model = "gpt-4.1-mini"
api_key_env = "FALLBACK_OPENAI_API_KEY"

[agents.plain]
system_prompt = "Just chat."

[tools.lookup_order]
description = "Look up an order by its id."
url = "https://shop.example/hooks/order"
method = "post"
timeout_ms = 4000
filler = "Let me check that."
headers = { Authorization = "Bearer ${SHOP_TOKEN}" }
parameters = { type = "object", properties = { order_id = { type = "string" } }, required = ["order_id"] }

[tools.show_map]
client = true
description = "Show a map of an address on the user's screen."
parameters = { type = "object", properties = { address = { type = "string" } }, required = ["address"] }

[phone_numbers]
"+15551234567" = "support"
"+15557654321" = "default"
"#;

fn source(text: &str) -> AgentsSource {
    let env = [("OPENAI_API_KEY", "k1"), ("FALLBACK_OPENAI_API_KEY", "k2"), ("SHOP_TOKEN", "s3cret")];
    AgentsSource {
        path: PathBuf::from("/etc/parley/agents.toml"),
        text: text.to_string(),
        env: env.iter().map(|(k, v)| (k.to_string(), Secret::new(*v))).collect::<BTreeMap<_, _>>(),
    }
}

fn load(text: &str) -> Result<Agents, AgentsError> {
    Agents::load(Some(&source(text)))
}

/// The error for `text`, as an operator reads it.
fn error(text: &str) -> String {
    load(text).expect_err("the file is refused").to_string()
}

#[test]
fn no_file_means_the_environments_default_agent() {
    let agents = Agents::load(None).unwrap();
    assert!(agents.profiles.is_empty());
    assert_eq!(agents.default_agent, "default");
    assert!(agents.contains("default"));
    assert!(!agents.contains("support"));
}

#[test]
fn the_example_file_is_read_in_full() {
    let agents = load(EXAMPLE).unwrap();
    assert_eq!(agents.default_agent, "support");
    assert!(agents.contains("default") && agents.contains("plain"));
    assert_eq!(agents.phone_numbers["+15551234567"], "support");
    let s = &agents.profiles["support"];
    assert_eq!(s.greeting.as_deref(), Some("Hi, this is the support line. How can I help?"));
    assert_eq!(s.stt_language.as_deref(), Some("de"));
    assert_eq!(s.tts_model, None);
    assert_eq!(s.max_tool_steps, 4);
    assert_eq!(s.llm.base_url.as_deref(), Some("https://api.cerebras.ai/v1"));
    assert_eq!(s.llm.api_key.as_ref().map(Secret::expose), Some("k1"));
    assert_eq!(s.llm.first_token_timeout, Some(Duration::from_millis(1500)));
    assert_eq!(s.llm_fallback.len(), 1);
    assert_eq!(s.llm_fallback[0].name.as_deref(), Some("backup"));
    assert_eq!(s.llm_fallback[0].api_key.as_ref().map(Secret::expose), Some("k2"));
    let names: Vec<&str> = s.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["lookup_order", "show_map", "end_conversation"]);
    match &s.tools[0].kind {
        ToolKind::Webhook { url, method, headers } => {
            assert_eq!(url, "https://shop.example/hooks/order");
            assert_eq!(method, "POST");
            assert_eq!(headers[0].0, "Authorization");
            assert_eq!(headers[0].1.expose(), "Bearer s3cret");
        }
        other => panic!("a webhook, got {other:?}"),
    }
    assert_eq!(s.tools[0].timeout, Duration::from_secs(4));
    assert_eq!(s.tools[0].filler.as_deref(), Some("Let me check that."));
    assert_eq!(s.tools[0].parameters["required"][0], "order_id");
    assert_eq!(s.tools[1].kind, ToolKind::Client);
    assert_eq!(s.tools[1].timeout, crate::tools::DEFAULT_TIMEOUT);
    assert_eq!(s.tools[2].kind, ToolKind::EndConversation);
    let plain = &agents.profiles["plain"];
    assert_eq!(plain.llm, LlmEndpoint::default(), "an agent without [llm] takes the environment's");
    assert!(plain.tools.is_empty());
    assert_eq!(plain.max_tool_steps, crate::tools::DEFAULT_MAX_TOOL_STEPS);
}

#[test]
fn errors_name_the_file_the_agent_and_the_field() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[agents.a]\nsystem_prompt = \"x\"\ntools = [\"nope\"]",
            &["agent \"a\"", "tools", "unknown tool \"nope\"", "end_conversation"],
        ),
        ("[agents.a]\ngreeting = \"hi\"", &["agent \"a\"", "system_prompt", "missing"]),
        ("[agents.a]\nsystem_prompt = \"  \"", &["agent \"a\"", "system_prompt", "empty"]),
        (
            "[agents.a]\nsystem_prompt = \"x\"\n[agents.a.llm]\nbase_url = \"ftp://x\"",
            &["agent \"a\"", "llm.base_url", "ftp://x"],
        ),
        (
            "[agents.a]\nsystem_prompt = \"x\"\n[agents.a.llm]\nbase_url = \"not a url\"",
            &["agent \"a\"", "llm.base_url", "not a valid URL"],
        ),
        (
            "[agents.a]\nsystem_prompt = \"x\"\n[agents.a.llm]\napi_key_env = \"UNSET_KEY\"",
            &["agent \"a\"", "llm.api_key_env", "UNSET_KEY, which is not set"],
        ),
        (
            "[agents.a]\nsystem_prompt = \"x\"\n[[agents.a.llm_fallback]]\nmodel = \"m\"\nfirst_token_timeout_ms = 0",
            &["agent \"a\"", "llm_fallback[0].first_token_timeout_ms", "got 0"],
        ),
        (
            "[agents.a]\nsystem_prompt = \"x\"\n[[agents.a.llm_fallback]]\nname = \"n\"",
            &["llm_fallback[0]", "base_url or a model"],
        ),
        ("[agents.a]\nsystem_prompt = \"x\"\nmax_tool_steps = 0", &["agent \"a\"", "max_tool_steps", "got 0"]),
        ("[agents.a]\nsystem_prompt = \"x\"\ngreeting = \"\"", &["agent \"a\"", "greeting", "empty"]),
        ("[agents.\"a b\"]\nsystem_prompt = \"x\"", &["agent \"a b\"", "letters, digits"]),
        ("[tools.t]\nurl = \"https://x.example\"", &["tool \"t\"", "description", "missing"]),
        ("[tools.t]\ndescription = \"d\"", &["tool \"t\"", "url", "missing"]),
        (
            "[tools.t]\ndescription = \"d\"\nurl = \"https://x.example\"\ntimeout_ms = 0",
            &["tool \"t\"", "timeout_ms", "got 0"],
        ),
        (
            "[tools.t]\ndescription = \"d\"\nurl = \"https://x.example\"\nmethod = \"GET\"",
            &["tool \"t\"", "method", "GET"],
        ),
        (
            "[tools.t]\ndescription = \"d\"\nurl = \"https://x.example\"\nheaders = { X = \"${NOT_SET}\" }",
            &["tool \"t\"", "headers.X", "NOT_SET, which is not set"],
        ),
        (
            "[tools.t]\ndescription = \"d\"\nclient = true\nurl = \"https://x.example\"",
            &["tool \"t\"", "url", "client"],
        ),
        (
            "[tools.t]\ndescription = \"d\"\nclient = true\nparameters = { type = \"string\" }",
            &["tool \"t\"", "parameters"],
        ),
        ("[tools.end_conversation]\ndescription = \"d\"", &["end_conversation", "built in"]),
        ("default_agent = \"ghost\"", &["default_agent", "no agent \"ghost\""]),
        ("[phone_numbers]\n\"555\" = \"default\"", &["phone_numbers", "\"555\"", "E.164"]),
        ("[phone_numbers]\n\"+15551234567\" = \"ghost\"", &["phone_numbers", "no agent \"ghost\""]),
        ("[agents.a]\nsystem_prompt = \"x\"\nvoice = \"v\"", &["unknown field `voice`"]),
        ("[agents.a\nsystem_prompt = \"x\"", &["TOML parse error"]),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(message.starts_with("agents file /etc/parley/agents.toml: "), "{message}");
        for part in *expected {
            assert!(message.contains(part), "{text:?}: {message:?} should mention {part:?}");
        }
    }
}

#[test]
fn a_secret_never_shows_in_debug_output() {
    let agents = load(EXAMPLE).unwrap();
    let debug = format!("{agents:?}");
    assert!(!debug.contains("s3cret") && !debug.contains("k2"), "{debug}");
}
