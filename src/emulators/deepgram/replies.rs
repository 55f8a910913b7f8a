//! The frames a Deepgram emulator connection sends, built from engine events: `Results` with words,
//! confidences and model metadata, `SpeechStarted`, `UtteranceEnd`, the closing `Metadata`, and the frames
//! the `ErrorFrame`/`UnknownType` faults inject.

use super::engine::{Event, Transcript};
use super::script::transcript;
use crate::providers::deepgram::{
    Alternative, ErrorMessage, MetadataMessage, ModelInfo, ResultChannel, ResultsMessage, ResultsMetadata,
    ServerMessage, SpeechStarted, UtteranceEnd, Word,
};

/// What every frame of one connection shares.
#[derive(Debug, Clone)]
pub struct Replier {
    pub request_id: String,
    pub channels: u32,
    /// `punctuate` or `smart_format` was asked for.
    pub punctuate: bool,
    pub model: String,
}

impl Replier {
    /// The frame for an engine event.
    pub fn event(&self, event: &Event) -> ServerMessage {
        let channel = vec![0, self.channels];
        match event {
            Event::SpeechStarted { timestamp } => {
                ServerMessage::SpeechStarted(SpeechStarted { channel, timestamp: *timestamp })
            }
            Event::UtteranceEnd { last_word_end } => {
                ServerMessage::UtteranceEnd(UtteranceEnd { channel, last_word_end: *last_word_end })
            }
            Event::Result(t) => self.results(t),
        }
    }

    /// The `Results` frame for a transcript.
    pub fn results(&self, t: &Transcript) -> ServerMessage {
        let script_words: Vec<_> = t.words.iter().map(|w| w.word.clone()).collect();
        let confidence = if t.is_final { 0.99 } else { 0.9 };
        let words = t
            .words
            .iter()
            .map(|w| Word {
                word: w.word.plain.clone(),
                start: w.start,
                end: w.end,
                confidence,
                punctuated_word: self.punctuate.then(|| w.word.punctuated.clone()),
                speaker: None,
            })
            .collect();
        ServerMessage::Results(ResultsMessage {
            channel_index: vec![0, self.channels],
            start: t.start,
            duration: t.duration,
            is_final: t.is_final,
            speech_final: t.speech_final,
            from_finalize: t.from_finalize,
            channel: ResultChannel {
                alternatives: vec![Alternative {
                    transcript: transcript(&script_words, self.punctuate),
                    confidence: if script_words.is_empty() { 0.0 } else { confidence },
                    words,
                }],
            },
            metadata: Some(ResultsMetadata {
                request_id: self.request_id.clone(),
                model_uuid: "00000000-0000-4000-8000-00000000e0de".to_string(),
                model_info: ModelInfo {
                    name: format!("general-{}", self.model),
                    version: "emulated".to_string(),
                    arch: self.model.clone(),
                },
            }),
        })
    }

    /// The `Metadata` frame sent after `CloseStream`.
    pub fn metadata(&self, sha256: &[u8], duration: f64) -> ServerMessage {
        ServerMessage::Metadata(MetadataMessage {
            transaction_key: "deprecated".to_string(),
            request_id: self.request_id.clone(),
            sha256: sha256.iter().map(|b| format!("{b:02x}")).collect(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            duration,
            channels: self.channels,
        })
    }
}

/// The in-band `Error` frame of the `ErrorFrame` fault.
pub fn error_frame() -> ServerMessage {
    ServerMessage::Error(ErrorMessage {
        variant: Some("emulated_error".to_string()),
        description: Some("An injected error frame; the stream carries on.".to_string()),
        message: Some("emulated error".to_string()),
        ..Default::default()
    })
}

/// A frame of a type no client knows, for the `UnknownType` fault.
pub fn unknown_frame() -> ServerMessage {
    ServerMessage::Unknown(serde_json::json!({
        "type": "EmulatedFutureEvent", "note": "clients must ignore unknown types"
    }))
}
