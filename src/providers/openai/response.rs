//! What an OpenAI-compatible server answers: the streamed `chat.completion.chunk` objects and the whole
//! `chat.completion` of a non-streaming call. Every field a compatible server may leave out is optional or
//! defaulted and unknown fields are ignored, so the same types read OpenAI, OpenRouter, ollama and the
//! emulator alike.

use serde::{Deserialize, Serialize};

use super::request::{ChatMessage, Role};

/// Token counts; present on the usage chunk and on non-streaming responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub total_tokens: u32,
}

/// A function-call fragment inside a delta; `name` only on the first fragment of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FunctionDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// A tool-call fragment. `index` says which call it continues; some compatible servers omit it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ToolCallDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDelta>,
}

/// What one chunk adds to a choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

/// One choice of a chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    /// `stop`, `length`, `tool_calls`, `content_filter` or `function_call` on the last chunk of a choice.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// One streamed `chat.completion.chunk`. `choices` is empty on the usage chunk: never index it blindly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ChatChunk {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

impl ChatChunk {
    /// The content text this chunk adds to choice 0, if any.
    pub fn content(&self) -> Option<&str> {
        self.choices.first()?.delta.content.as_deref()
    }

    /// The finish reason of choice 0, if this chunk ends it.
    pub fn finish_reason(&self) -> Option<&str> {
        self.choices.first()?.finish_reason.as_deref()
    }
}

/// One choice of a non-streaming response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionChoice {
    #[serde(default)]
    pub index: u32,
    pub message: ChatMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// A whole non-streaming `chat.completion`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub model: String,
    pub choices: Vec<CompletionChoice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usage_chunk_with_no_choices_parses_and_has_no_content() {
        let c: ChatChunk = serde_json::from_str(
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],
               "usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":0}}}"#,
        )
        .unwrap();
        assert!(c.choices.is_empty());
        assert_eq!(c.content(), None);
        assert_eq!(c.usage.unwrap().total_tokens, 17);
    }

    #[test]
    fn tool_call_deltas_parse_with_and_without_index_and_unknown_fields_are_ignored() {
        let c: ChatChunk = serde_json::from_str(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"x","tool_calls":[
               {"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":""}},
               {"function":{"arguments":"{}"}}]},"finish_reason":null,"native_finish_reason":"y"}],"obfuscation":"zz"}"#,
        )
        .unwrap();
        let calls = c.choices[0].delta.tool_calls.as_ref().unwrap();
        assert_eq!(calls[0].index, Some(0));
        assert_eq!(calls[1].index, None);
        assert_eq!(calls[1].function.as_ref().unwrap().arguments.as_deref(), Some("{}"));
    }
}
