//! What the STT link is configured with, and the Deepgram `/listen` URL it opens.

use crate::audio::level::InputEncoding;
use crate::config::{Config, Secret};
use crate::providers::deepgram::{Endpointing, ListenOptions};
use crate::session::settings::AudioIn;

/// What the link needs to know.
#[derive(Debug, Clone)]
pub struct SttSettings {
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub model: String,
    pub language: String,
    pub endpointing_ms: u32,
    pub utterance_end_ms: u32,
    /// What the session's client sends: passed through to Deepgram as is (no transcoding).
    pub encoding: InputEncoding,
    /// Seconds of audio since the last final result kept for replay into a new connection (0: none).
    pub replay_secs: f64,
    pub sample_rate: u32,
}

impl SttSettings {
    /// The configured settings, for 16 kHz PCM until a session says what it sends ([`SttSettings::for_input`]).
    pub fn from_config(config: &Config) -> SttSettings {
        SttSettings {
            base_url: config.deepgram.base_url.clone(),
            api_key: config.deepgram.api_key.clone(),
            model: config.deepgram.model.clone(),
            language: config.deepgram.language.clone(),
            endpointing_ms: config.deepgram.endpointing_ms,
            utterance_end_ms: config.deepgram.utterance_end_ms,
            encoding: InputEncoding::Linear16,
            replay_secs: config.turns.stt_replay.as_secs_f64(),
            sample_rate: 16_000,
        }
    }

    /// These settings for a session whose client sends `audio`.
    pub fn for_input(&self, audio: AudioIn) -> SttSettings {
        SttSettings { encoding: audio.encoding, sample_rate: audio.sample_rate, ..self.clone() }
    }

    /// Bytes of the session's audio per second.
    pub fn bytes_per_second(&self) -> f64 {
        f64::from(self.sample_rate) * self.encoding.bytes_per_sample() as f64
    }

    /// The `/listen` URL: the session's encoding, mono at its rate, interim results, endpointing, utterance ends
    /// and speech-start events (barge-in needs them).
    pub fn url(&self) -> String {
        let options = ListenOptions {
            model: Some(self.model.clone()),
            language: Some(self.language.clone()),
            encoding: Some(self.encoding.deepgram_name().into()),
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

/// Settings for unit tests: 16 kHz PCM to `base_url`, keeping `replay_secs` for replay.
#[cfg(test)]
pub(super) fn for_tests(base_url: &str, replay_secs: f64) -> SttSettings {
    SttSettings {
        base_url: base_url.into(),
        api_key: None,
        model: "nova-3".into(),
        language: "en-US".into(),
        endpointing_ms: 300,
        utterance_end_ms: 1000,
        encoding: InputEncoding::Linear16,
        replay_secs,
        sample_rate: 16000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_url_asks_for_what_the_session_needs() {
        let s = for_tests("https://api.deepgram.com/v1", 15.0);
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
        let phone = s.for_input(AudioIn { encoding: InputEncoding::Mulaw, sample_rate: 8000 }).url();
        assert!(phone.contains("encoding=mulaw") && phone.contains("sample_rate=8000"), "{phone}");
    }
}
