//! The browser transport: parley's own WebSocket protocol at `/ws/chat-audio` (documented for client authors
//! in README.md), as a [`Wire`] over the conversation. Binary frames are 16-bit PCM in and audio in the
//! session's output format out; text frames are the JSON messages of [`protocol`].
//!
//! Bad input never ends the session when it can go on: an audio frame or message over the configured limits,
//! malformed JSON, an unknown type, a fragmented message each get an `error` event and are ignored. Only a
//! frame larger than the codec accepts ([`codec_frame_limit`]) closes the socket (1009).

pub mod protocol;

use bytes::Bytes;

use self::protocol::{ClientMessage, ProviderState, Providers, ServerMessage, parse_client_message};
use super::client_socket::{Wire, WireContext};
use super::conversation::{EndReason, Event, Input, ToolStatus};
use super::settings::{SessionParams, SessionSettings};
use crate::providers::Provider;

/// The browser protocol of one session.
#[derive(Debug)]
pub struct BrowserWire {
    session_id: String,
    user_id: String,
    /// The agent the session talks to, as the `session` message names it.
    agent: String,
    output_format: String,
    mime_type: String,
    sample_rate: u32,
    emulated: bool,
    providers: Providers,
    max_audio_frame_bytes: usize,
    max_text_frame_bytes: usize,
}

impl BrowserWire {
    pub fn new(params: &SessionParams, settings: &SessionSettings) -> BrowserWire {
        BrowserWire {
            session_id: params.session_id.to_string(),
            user_id: params.user_id.to_string(),
            agent: settings.agent.clone(),
            output_format: params.output_format.to_string(),
            mime_type: settings.mime_type.clone(),
            sample_rate: params.audio_in.sample_rate,
            emulated: settings.emulated,
            providers: providers(settings),
            max_audio_frame_bytes: settings.max_audio_frame_bytes,
            max_text_frame_bytes: settings.max_text_frame_bytes,
        }
    }

    /// Writes a JSON message; returns its length.
    fn reply(&self, ctx: &mut WireContext<Self>, message: &ServerMessage) -> usize {
        let json = message.to_json();
        let n = json.len();
        ctx.text(json);
        n
    }

    fn error(&self, ctx: &mut WireContext<Self>, code: &str, error: impl Into<String>, retryable: bool) {
        self.reply(ctx, &ServerMessage::error(code, error, retryable));
    }
}

/// Which services the session's stages use and whether their keys are set (told in the `session` message).
pub fn providers(settings: &SessionSettings) -> Providers {
    let state = |provider: Provider, has_key: bool, key_variable: &str| ProviderState {
        provider: provider.label(),
        status: match (has_key, settings.emulated) {
            (false, _) => "missing",
            (true, true) => "emulated",
            (true, false) => "configured",
        },
        key_variable: key_variable.to_string(),
    };
    let llm = &settings.llm.providers;
    // An agent's LLM may read its key from a variable of its own (`api_key_env`).
    let llm_key_variable = llm.first().map_or(Provider::OpenAi.key_variable(), |p| p.api_key_env.as_str());
    Providers {
        stt: state(Provider::Deepgram, settings.stt.api_key.is_some(), Provider::Deepgram.key_variable()),
        llm: state(Provider::OpenAi, llm.iter().any(|p| p.api_key.is_some()), llm_key_variable),
        tts: state(Provider::ElevenLabs, settings.tts.api_key.is_some(), Provider::ElevenLabs.key_variable()),
    }
}

/// The frame size the codec accepts: larger than the limits so an oversized frame gets an error event and the
/// session goes on; beyond this the codec refuses it and the connection closes with 1009.
pub fn codec_frame_limit(settings: &SessionSettings) -> usize {
    settings.max_audio_frame_bytes.max(settings.max_text_frame_bytes) * 4
}

impl Wire for BrowserWire {
    fn text(&mut self, text: &str, ctx: &mut WireContext<Self>) -> Option<Input> {
        let limit = self.max_text_frame_bytes;
        if text.len() > limit {
            let msg = format!("message of {} bytes is over the limit of {limit}; it was ignored", text.len());
            self.error(ctx, "message_too_large", msg, false);
            return None;
        }
        match parse_client_message(text) {
            Err(e) => {
                self.error(ctx, e.code(), e.to_string(), false);
                None
            }
            Ok(ClientMessage::Ping) => {
                self.reply(ctx, &ServerMessage::Pong);
                None
            }
            Ok(ClientMessage::Interrupt) => Some(Input::Interrupt),
            Ok(ClientMessage::Text { text }) => Some(Input::Text(text)),
            Ok(ClientMessage::CloseMicrophone) => Some(Input::CloseMicrophone),
            Ok(ClientMessage::Played { turn_id, ms }) => Some(Input::Played { turn_id, ms }),
            Ok(ClientMessage::ToolResult { call_id, result, error }) => {
                let answer = match (result, error) {
                    (_, Some(error)) => Err(error),
                    (Some(result), None) => Ok(result),
                    (None, None) => Ok(serde_json::Value::Null),
                };
                Some(Input::ToolResult { call_id, answer })
            }
        }
    }

    fn binary(&mut self, pcm: Bytes, ctx: &mut WireContext<Self>) -> Option<Input> {
        let limit = self.max_audio_frame_bytes;
        if pcm.len() > limit {
            let msg = format!("audio frame of {} bytes is over the limit of {limit}; it was dropped", pcm.len());
            self.error(ctx, "frame_too_large", msg, false);
            return None;
        }
        Some(Input::Audio(pcm))
    }

    fn continuation(&mut self, ctx: &mut WireContext<Self>) -> Option<Input> {
        self.error(ctx, "unsupported_frame", "fragmented messages are not supported", false);
        None
    }

    fn send(&mut self, event: Event, ctx: &mut WireContext<Self>) -> usize {
        let message = match event {
            Event::Audio { bytes, .. } => {
                let n = bytes.len();
                ctx.binary(bytes);
                return n;
            }
            Event::Started { resumed, history_messages } => {
                let n = self.reply(
                    ctx,
                    &ServerMessage::Session {
                        session_id: self.session_id.clone(),
                        user_id: self.user_id.clone(),
                        agent: self.agent.clone(),
                        output_format: self.output_format.clone(),
                        mime_type: self.mime_type.clone(),
                        sample_rate: self.sample_rate,
                        resumed,
                        history_messages,
                        emulated: self.emulated,
                        providers: Box::new(self.providers.clone()),
                    },
                );
                if !self.emulated {
                    return n;
                }
                let status = ServerMessage::Status {
                    message: "providers are emulated: transcripts, replies and voice are synthetic".into(),
                };
                return n + self.reply(ctx, &status);
            }
            Event::Transcript { text, is_final } => ServerMessage::Transcript { text, is_final },
            Event::UserTurn { turn_id, text } => ServerMessage::UserTurn { turn_id, text },
            Event::AssistantText { turn_id, text } => ServerMessage::AssistantText { turn_id, text },
            Event::AudioStart { turn_id } => ServerMessage::AudioStart { turn_id, mime_type: self.mime_type.clone() },
            Event::AudioEnd { turn_id } => ServerMessage::AudioEnd { turn_id },
            Event::Interrupt { turn_id } => ServerMessage::Interrupt { turn_id },
            Event::TurnEnd { turn_id, interrupted } => ServerMessage::TurnEnd { turn_id, interrupted },
            Event::Latency { turn_id, latency: l } => ServerMessage::Latency {
                turn_id,
                stt_ms: l.stt_ms,
                llm_first_token_ms: l.llm_first_token_ms,
                tts_first_byte_ms: l.tts_first_byte_ms,
                first_audio_ms: l.first_audio_ms,
                heard_after_ms: l.heard_after_ms,
            },
            Event::Saved { turn_id, role, message_id } => ServerMessage::MessageSaved { turn_id, role, message_id },
            Event::Status(message) => ServerMessage::Status { message },
            Event::Error { code, message, retryable } => ServerMessage::Error { error: message, code, retryable },
            Event::ToolCall { turn_id, call_id, name, arguments } => {
                ServerMessage::ToolCall { turn_id, call_id, name, arguments }
            }
            Event::ToolStatus { turn_id, call_id, name, status } => ServerMessage::Tool {
                turn_id,
                call_id,
                name,
                status: match status {
                    ToolStatus::Running => "running",
                    ToolStatus::Done => "done",
                    ToolStatus::Failed => "failed",
                    ToolStatus::Cancelled => "cancelled",
                },
            },
            // The agent ended the conversation: said before the normal close.
            Event::End(EndReason::AgentEnded) => ServerMessage::End { reason: "agent" },
            // The socket closes; the close frame carries the reason.
            Event::End(_) => return 0,
        };
        self.reply(ctx, &message)
    }

    fn overflow_reason(&self) -> String {
        format!("frame larger than {} bytes", self.max_audio_frame_bytes.max(self.max_text_frame_bytes) * 4)
    }
}
