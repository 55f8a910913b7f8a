//! Per-turn timestamps and the latency figures derived from them: STT finalization (end of speech →
//! committed text), LLM first token, TTS first byte, first audio out (end of speech → first audio frame
//! sent), and voice-to-voice at the listener (end of speech → first audio heard, from the client's first
//! `played` acknowledgement: its arrival minus the milliseconds it reports, so the client→server network delay
//! is not taken out), reported to the client and to the Prometheus histograms.

use std::time::Instant;

use crate::metrics::Metrics;

/// When things happened in one turn.
#[derive(Debug, Clone, Copy, Default)]
pub struct TurnTimes {
    /// The user stopped speaking (or sent a typed turn).
    pub speech_end: Option<Instant>,
    pub committed: Option<Instant>,
    /// The turn's first LLM request (later attempts, fallbacks and tool steps do not move it).
    pub llm_requested: Option<Instant>,
    /// The model's first output of the turn: a word, or a tool call.
    pub llm_first_token: Option<Instant>,
    pub tts_first_text: Option<Instant>,
    pub tts_first_byte: Option<Instant>,
    pub first_audio_sent: Option<Instant>,
    /// When the listener started hearing the reply.
    pub first_heard: Option<Instant>,
}

/// The figures, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnLatency {
    pub stt_ms: Option<u64>,
    pub llm_first_token_ms: Option<u64>,
    pub tts_first_byte_ms: Option<u64>,
    pub first_audio_ms: Option<u64>,
    /// End of speech → first audio heard by the listener.
    pub heard_after_ms: Option<u64>,
}

fn between(from: Option<Instant>, to: Option<Instant>) -> Option<std::time::Duration> {
    Some(to?.saturating_duration_since(from?))
}

impl TurnTimes {
    pub fn latency(&self) -> TurnLatency {
        let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as u64);
        TurnLatency {
            stt_ms: ms(between(self.speech_end, self.committed)),
            llm_first_token_ms: ms(between(self.llm_requested, self.llm_first_token)),
            tts_first_byte_ms: ms(between(self.tts_first_text, self.tts_first_byte)),
            first_audio_ms: ms(between(self.speech_end, self.first_audio_sent)),
            heard_after_ms: ms(between(self.speech_end, self.first_heard)),
        }
    }

    /// Records voice-to-voice, once the listener's first acknowledgement arrived.
    pub fn observe_heard(&self, metrics: &Metrics) {
        if let Some(d) = between(self.speech_end, self.first_heard) {
            metrics.voice_to_voice_seconds.observe(d.as_secs_f64());
        }
    }

    /// Records the figures this turn has into the histograms (voice-to-voice separately: it comes later).
    pub fn observe(&self, metrics: &Metrics) {
        let pairs = [
            (&metrics.stt_finalization_seconds, between(self.speech_end, self.committed)),
            (&metrics.llm_first_token_seconds, between(self.llm_requested, self.llm_first_token)),
            (&metrics.tts_first_byte_seconds, between(self.tts_first_text, self.tts_first_byte)),
            (&metrics.first_audio_seconds, between(self.speech_end, self.first_audio_sent)),
        ];
        for (histogram, d) in pairs {
            if let Some(d) = d {
                histogram.observe(d.as_secs_f64());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn figures_come_from_the_stamps_that_exist() {
        let t = Instant::now();
        let times = TurnTimes {
            speech_end: Some(t),
            committed: Some(t + Duration::from_millis(250)),
            llm_requested: Some(t + Duration::from_millis(251)),
            llm_first_token: Some(t + Duration::from_millis(600)),
            tts_first_text: None,
            tts_first_byte: None,
            first_audio_sent: Some(t + Duration::from_millis(900)),
            first_heard: Some(t + Duration::from_millis(1000)),
        };
        assert_eq!(
            times.latency(),
            TurnLatency {
                stt_ms: Some(250),
                llm_first_token_ms: Some(349),
                tts_first_byte_ms: None,
                first_audio_ms: Some(900),
                heard_after_ms: Some(1000),
            }
        );
        let m = Metrics::new().unwrap();
        times.observe(&m);
        assert_eq!(m.first_audio_seconds.get_sample_count(), 1);
        assert_eq!(m.tts_first_byte_seconds.get_sample_count(), 0);
    }
}
