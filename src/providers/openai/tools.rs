//! Reassembles streamed tool calls from their fragments. OpenAI tags every fragment with the `index` of its
//! call; some compatible servers (Gemini, ollama, SambaNova) leave `index` out, so a fragment with an `id`
//! then starts the next positional slot and one without continues the last slot.

use super::request::{FunctionCall, ToolCall};
use super::response::ToolCallDelta;

/// The calls assembled so far, in slot order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ToolCallAccumulator {
    slots: Vec<PartialCall>,
    last: Option<usize>,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// A call whose arguments did not parse as JSON when the stream ended.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("tool call {name} ({id}) has arguments that are not valid JSON: {reason}")]
pub struct BadArguments {
    pub id: String,
    pub name: String,
    pub reason: String,
}

impl ToolCallAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one fragment.
    pub fn push(&mut self, delta: &ToolCallDelta) {
        let slot = match delta.index {
            Some(i) => i as usize,
            None => match (delta.id.as_ref(), self.last) {
                (Some(id), Some(last)) if self.slots[last].id == *id => last,
                (Some(_), _) => self.slots.len(),
                (None, Some(last)) => last,
                (None, None) => 0,
            },
        };
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, PartialCall::default);
        }
        self.last = Some(slot);
        let call = &mut self.slots[slot];
        if let Some(id) = &delta.id {
            call.id.clone_from(id);
        }
        if let Some(f) = &delta.function {
            if let Some(name) = &f.name {
                call.name.push_str(name);
            }
            if let Some(args) = &f.arguments {
                call.arguments.push_str(args);
            }
        }
    }

    /// True when no fragment arrived.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The assembled calls, arguments as the raw concatenated strings.
    pub fn calls(&self) -> Vec<ToolCall> {
        self.slots
            .iter()
            .map(|c| ToolCall {
                id: c.id.clone(),
                kind: "function".to_string(),
                function: FunctionCall { name: c.name.clone(), arguments: c.arguments.clone() },
            })
            .collect()
    }

    /// The assembled calls with their arguments parsed; the first call with invalid JSON is an error.
    pub fn finish(&self) -> Result<Vec<(ToolCall, serde_json::Value)>, BadArguments> {
        self.calls()
            .into_iter()
            .map(|call| {
                let args = if call.function.arguments.trim().is_empty() {
                    Ok(serde_json::Value::Object(Default::default()))
                } else {
                    serde_json::from_str(&call.function.arguments)
                };
                match args {
                    Ok(v) => Ok((call, v)),
                    Err(e) => Err(BadArguments { id: call.id, name: call.function.name, reason: e.to_string() }),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::openai::response::FunctionDelta;

    fn d(index: Option<u32>, id: Option<&str>, name: Option<&str>, args: &str) -> ToolCallDelta {
        ToolCallDelta {
            index,
            id: id.map(str::to_string),
            kind: id.map(|_| "function".to_string()),
            function: Some(FunctionDelta { name: name.map(str::to_string), arguments: Some(args.to_string()) }),
        }
    }

    #[test]
    fn parallel_calls_with_index_are_assembled_per_index() {
        let mut acc = ToolCallAccumulator::new();
        acc.push(&d(Some(0), Some("a"), Some("weather"), ""));
        acc.push(&d(Some(1), Some("b"), Some("time"), ""));
        acc.push(&d(Some(0), None, None, "{\"ci"));
        acc.push(&d(Some(1), None, None, "{\"tz\":\"UTC\"}"));
        acc.push(&d(Some(0), None, None, "ty\":\"Paris\"}"));
        let calls = acc.finish().unwrap();
        assert_eq!(calls[0].0.function.name, "weather");
        assert_eq!(calls[0].1["city"], "Paris");
        assert_eq!(calls[1].0.id, "b");
        assert_eq!(calls[1].1["tz"], "UTC");
    }

    #[test]
    fn calls_without_index_fall_back_to_positional_slots() {
        let mut acc = ToolCallAccumulator::new();
        acc.push(&d(None, Some("a"), Some("f"), "{\"x\""));
        acc.push(&d(None, None, None, ":1}"));
        acc.push(&d(None, Some("b"), Some("g"), "{}"));
        let calls = acc.finish().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].1["x"], 1);
        assert_eq!(calls[1].0.function.name, "g");
    }

    #[test]
    fn invalid_argument_json_is_reported_with_the_call() {
        let mut acc = ToolCallAccumulator::new();
        acc.push(&d(Some(0), Some("a"), Some("f"), "{\"x\":"));
        let e = acc.finish().unwrap_err();
        assert_eq!(e.name, "f");
    }
}
