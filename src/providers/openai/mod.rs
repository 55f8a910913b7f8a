//! OpenAI-compatible chat completions (`POST {base}/chat/completions`): request and response bodies, the
//! error object, the incremental SSE decoder, stream classification and tool-call reassembly. Used by
//! parley's LLM client actor and by the OpenAI emulator. Spec: the OpenAI
//! API reference for chat completions and streaming (<https://platform.openai.com/docs/api-reference/chat>).

pub mod error;
pub mod request;
pub mod response;
pub mod sse;
pub mod stream;
pub mod tools;

pub use error::{ApiError, ApiErrorBody};
pub use request::{ChatMessage, ChatRequest, Content, FunctionCall, FunctionDef, Role, StreamOptions, Tool, ToolCall};
pub use response::{
    ChatChunk, ChatCompletion, ChunkChoice, CompletionChoice, Delta, FunctionDelta, ToolCallDelta, Usage,
};
pub use sse::{IncompleteTail, SseDecoder, SseEvent};
pub use stream::{ChatStreamDecoder, StreamEnd, StreamItem, classify};
pub use tools::{BadArguments, ToolCallAccumulator};
