//! Tools an agent's LLM may call: what each one is ([`ToolSpec`]: name, description, JSON-schema parameters,
//! and how it runs) and how a call is carried out (`webhook`: an HTTP endpoint of the operator's; `Client`: the
//! session's client answers it; `EndConversation`: parley ends the session after the goodbye). Arguments are
//! checked against the tool's schema (`schema`) before anything runs.

pub mod schema;

use std::time::Duration;

use serde_json::Value;

use crate::config::Secret;
use crate::providers::openai::{FunctionDef, Tool};

/// The name of the built-in tool that ends the conversation.
pub const END_CONVERSATION: &str = "end_conversation";
/// How long a tool runs when its definition does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Tool rounds per assistant turn when the agent does not say.
pub const DEFAULT_MAX_TOOL_STEPS: u32 = 3;
/// How long a tool runs before its filler is spoken.
pub const FILLER_AFTER: Duration = Duration::from_secs(1);

/// One tool, as the LLM is offered it and as parley runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// A JSON-schema object (`{"type":"object","properties":{…},"required":[…]}`).
    pub parameters: Value,
    pub kind: ToolKind,
    /// How long one call may take (the client's answer included).
    pub timeout: Duration,
    /// Spoken when the call runs longer than [`FILLER_AFTER`] ("Let me check that.").
    pub filler: Option<String>,
}

/// How a tool runs.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolKind {
    /// An HTTP endpoint: `{"name","arguments","sessionId","userId","agent","callId"}` is sent to it and its JSON
    /// answer is the result.
    Webhook {
        url: String,
        /// `POST` (the default), `PUT` or `PATCH`.
        method: String,
        /// Headers, `${ENV}` already substituted (values may be secrets).
        headers: Vec<(String, Secret)>,
    },
    /// The session's client runs it (`toolCall` out, `toolResult` back).
    Client,
    /// parley ends the conversation once the reply in progress has been spoken.
    EndConversation,
}

impl ToolSpec {
    /// The built-in `end_conversation` tool.
    pub fn end_conversation() -> ToolSpec {
        ToolSpec {
            name: END_CONVERSATION.to_string(),
            description: "End the conversation (hang up) after saying goodbye. Call it when the user is done \
                          or asks to end the call."
                .to_string(),
            parameters: serde_json::json!({"type": "object", "properties": {}}),
            kind: ToolKind::EndConversation,
            timeout: DEFAULT_TIMEOUT,
            filler: None,
        }
    }

    /// The tool as the chat completions API declares it.
    pub fn declaration(&self) -> Tool {
        Tool {
            kind: "function".to_string(),
            function: FunctionDef {
                name: self.name.clone(),
                description: Some(self.description.clone()),
                parameters: Some(self.parameters.clone()),
            },
        }
    }
}
