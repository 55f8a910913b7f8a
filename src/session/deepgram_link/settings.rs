//! What the STT link is configured with, and the Deepgram `/listen` URL it opens.

use crate::config::{Config, Secret};
use crate::providers::deepgram::{Endpointing, ListenOptions};

/// What the link needs to know.
#[derive(Debug, Clone)]
pub struct SttSettings {
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub model: String,
    pub language: String,
    pub endpointing_ms: u32,
    pub utterance_end_ms: u32,
    pub sample_rate: u32,
}

impl SttSettings {
    pub fn from_config(config: &Config, sample_rate: u32) -> SttSettings {
        SttSettings {
            base_url: config.deepgram.base_url.clone(),
            api_key: config.deepgram.api_key.clone(),
            model: config.deepgram.model.clone(),
            language: config.deepgram.language.clone(),
            endpointing_ms: config.deepgram.endpointing_ms,
            utterance_end_ms: config.deepgram.utterance_end_ms,
            sample_rate,
        }
    }

    /// The `/listen` URL: linear16 mono at the session's rate, interim results, endpointing, utterance ends
    /// and speech-start events (barge-in needs them).
    pub fn url(&self) -> String {
        let options = ListenOptions {
            model: Some(self.model.clone()),
            language: Some(self.language.clone()),
            encoding: Some("linear16".into()),
            sample_rate: Some(self.sample_rate),
            channels: Some(1),
            interim_results: Some(true),
            endpointing: Some(Endpointing::Ms(self.endpointing_ms)),
            utterance_end_ms: Some(self.utterance_end_ms),
            vad_events: Some(true),
            punctuate: Some(true),
            smart_format: Some(true),
            extra: Vec::new(),
        };
        let base = self.base_url.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
        format!("{base}/listen?{}", options.to_query())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_url_asks_for_what_the_session_needs() {
        let s = SttSettings {
            base_url: "https://api.deepgram.com/v1".into(),
            api_key: None,
            model: "nova-3".into(),
            language: "en-US".into(),
            endpointing_ms: 300,
            utterance_end_ms: 1000,
            sample_rate: 16000,
        };
        let url = s.url();
        assert!(url.starts_with("wss://api.deepgram.com/v1/listen?"), "{url}");
        for part in [
            "encoding=linear16",
            "sample_rate=16000",
            "channels=1",
            "interim_results=true",
            "endpointing=300",
            "utterance_end_ms=1000",
            "vad_events=true",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
    }
}
