//! Carries out the tool calls of one step of a reply: checks each call's arguments against its tool's schema,
//! then runs it — a webhook POSTed `{"name","arguments","sessionId","userId","agent","callId"}` (its JSON answer
//! is the result), a client tool sent to the session's client (its `toolResult` is the result), or the built-in
//! `end_conversation`. Every outcome is a [`ToolRecord`]: a result, or an error sentence the model can act on
//! (unknown tool, invalid arguments, timeout, HTTP status, an answer that is not JSON). Calls of one step run
//! concurrently; dropping the future (a barge-in) cancels them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Recipient;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::LlmEvent;
use crate::db::{ToolRecord, TurnId};
use crate::providers::openai::ToolCall;
use crate::tools::{ToolKind, ToolSpec, schema};

/// The largest webhook answer read.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Client tool calls waiting for the client's answer, by call id.
pub type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Value, String>>>>>;

/// Who calls: sent to webhooks with every call.
#[derive(Debug, Clone)]
pub struct Caller {
    pub session_id: String,
    pub user_id: String,
    pub agent: String,
}

/// What running a step's calls needs.
pub struct Runner<'a> {
    pub client: &'a awc::Client,
    pub tools: &'a [ToolSpec],
    pub caller: &'a Caller,
    pub parent: &'a Recipient<LlmEvent>,
    pub turn_id: TurnId,
    pub waiting: &'a Waiting,
}

impl Runner<'_> {
    /// The tool a call names, if the agent has it.
    pub fn spec(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// Runs one call to its record.
    pub async fn run(&self, call: &ToolCall) -> ToolRecord {
        let raw = &call.function.arguments;
        let mut record = ToolRecord {
            call_id: call.id.clone(),
            name: call.function.name.clone(),
            arguments: serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone())),
            result: None,
            error: None,
        };
        let Some(spec) = self.spec(&call.function.name) else {
            record.error = Some(format!("there is no tool named {:?}", call.function.name));
            return record;
        };
        let arguments = match schema::parse_arguments(raw, &spec.parameters) {
            Ok(v) => v,
            Err(e) => {
                record.error = Some(format!("invalid arguments: {e}; call it again with corrected arguments"));
                return record;
            }
        };
        record.arguments = arguments.clone();
        let outcome = match &spec.kind {
            ToolKind::Webhook { url, method, headers } => {
                self.webhook(spec, url, method, headers, &call.id, &arguments).await
            }
            ToolKind::Client => self.client_tool(spec, &call.id).await,
            ToolKind::EndConversation => {
                self.parent.do_send(LlmEvent::EndConversation { turn_id: self.turn_id });
                Ok(json!({"ok": true, "note": "the conversation ends once your reply has been spoken"}))
            }
        };
        match outcome {
            Ok(v) => record.result = Some(v),
            Err(e) => record.error = Some(e),
        }
        record
    }

    async fn webhook(
        &self,
        spec: &ToolSpec,
        url: &str,
        method: &str,
        headers: &[(String, crate::config::Secret)],
        call_id: &str,
        arguments: &Value,
    ) -> Result<Value, String> {
        let method = actix_http::Method::from_bytes(method.as_bytes()).unwrap_or(actix_http::Method::POST);
        let mut request = self.client.request(method, url).timeout(spec.timeout);
        for (name, value) in headers {
            request = request.insert_header((name.as_str(), value.expose()));
        }
        let body = json!({
            "name": spec.name,
            "arguments": arguments,
            "sessionId": self.caller.session_id,
            "userId": self.caller.user_id,
            "agent": self.caller.agent,
            "callId": call_id,
        });
        let waited = async {
            let mut response = request.send_json(&body).await.map_err(|e| match e {
                awc::error::SendRequestError::Timeout => timeout_error(spec.timeout),
                e => {
                    log::warn!("tool {}: {url} could not be reached: {e}", spec.name);
                    "the tool could not be reached".to_string()
                }
            })?;
            let status = response.status();
            let bytes = response.body().limit(MAX_ANSWER_BYTES).await.map_err(|e| {
                log::warn!("tool {}: the answer of {url} could not be read: {e}", spec.name);
                "the tool's answer could not be read".to_string()
            })?;
            if !status.is_success() {
                log::warn!("tool {}: {url} answered HTTP {status}", spec.name);
                return Err(format!("the tool failed (HTTP {})", status.as_u16()));
            }
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice::<Value>(&bytes).map_err(|_| "the tool answered something that is not JSON".into())
        };
        match tokio::time::timeout(spec.timeout, waited).await {
            Ok(outcome) => outcome,
            Err(_) => Err(timeout_error(spec.timeout)),
        }
    }

    async fn client_tool(&self, spec: &ToolSpec, call_id: &str) -> Result<Value, String> {
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(call_id.to_string(), tx);
        let outcome = match tokio::time::timeout(spec.timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the client went away before answering".into()),
            Err(_) => Err(format!("the client did not answer within {}", seconds(spec.timeout))),
        };
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(call_id);
        outcome
    }
}

fn timeout_error(timeout: Duration) -> String {
    format!("the tool did not answer within {}", seconds(timeout))
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{s:.0} s") } else { format!("{s:.1} s") }
}
