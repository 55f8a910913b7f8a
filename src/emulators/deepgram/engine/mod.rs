//! The Deepgram emulator's "recogniser": energy-based speech detection over 10 ms frames of the audio a
//! connection receives, in audio time (samples received / rate), never wall-clock time. It turns speech
//! bursts into the events a live stream produces: `SpeechStarted`, interim hypotheses that reveal the scripted
//! utterance word by word, a final (with `speech_final` once `endpointing` ms of silence follow the speech),
//! `UtteranceEnd` after `utterance_end_ms`, and finals for `Finalize`/`CloseStream`. Pure: samples in,
//! events out, so it is tested without sockets.

use super::script::{Script, ScriptWord};

/// RMS (of 16-bit samples) above which a 10 ms frame counts as speech (about −40 dBFS).
pub const SPEECH_RMS_THRESHOLD: f64 = 300.0;
/// Audio seconds between interim results during speech.
pub const INTERIM_EVERY_S: f64 = 0.5;
/// Audio seconds of speech per revealed word in interim results.
const SECONDS_PER_WORD: f64 = 0.3;
/// With `endpointing=false`, the silence after which speech is still finalized (without `speech_final`).
const DISABLED_ENDPOINT_MS: u32 = 500;
const FRAME_MS: u32 = 10;

/// What the stream was opened with, as far as the engine cares.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub sample_rate: u32,
    pub channels: u32,
    pub interim_results: bool,
    /// `None` when `endpointing=false`.
    pub endpointing_ms: Option<u32>,
    pub utterance_end_ms: Option<u32>,
    pub vad_events: bool,
    pub punctuate: bool,
    /// Fault: every final has an empty transcript (interims still carry text).
    pub empty_finals: bool,
}

/// A word with its audio-time span.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord {
    pub word: ScriptWord,
    pub start: f64,
    pub end: f64,
}

/// One `Results` message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub start: f64,
    pub duration: f64,
    pub is_final: bool,
    pub speech_final: bool,
    pub from_finalize: bool,
    pub words: Vec<TimedWord>,
}

/// Something the stream reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    SpeechStarted { timestamp: f64 },
    Result(Transcript),
    UtteranceEnd { last_word_end: f64 },
}

/// The state of one stream.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    script: Script,
    frame_len: u64,
    frame_fill: u64,
    frame_sum_sq: f64,
    /// Interleaved samples received.
    total: u64,
    in_speech: bool,
    speech_start: f64,
    last_voiced_end: f64,
    silence_ms: u32,
    /// Audio time where the span of the next result begins (end of the last final).
    window_start: f64,
    utterance: Option<Vec<ScriptWord>>,
    next_interim_at: f64,
    pending_utterance_end: Option<f64>,
}

fn ms(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Engine {
    /// A stream with `cfg`, hearing `script`.
    pub fn new(cfg: EngineConfig, script: Script) -> Self {
        let channels = u64::from(cfg.channels.max(1));
        let frame_len = (u64::from(cfg.sample_rate.max(100)) * u64::from(FRAME_MS) / 1000) * channels;
        Engine {
            cfg,
            script,
            frame_len,
            frame_fill: 0,
            frame_sum_sq: 0.0,
            total: 0,
            in_speech: false,
            speech_start: 0.0,
            last_voiced_end: 0.0,
            silence_ms: 0,
            window_start: 0.0,
            utterance: None,
            next_interim_at: 0.0,
            pending_utterance_end: None,
        }
    }

    /// Audio seconds received so far.
    pub fn now(&self) -> f64 {
        self.total as f64 / (f64::from(self.cfg.sample_rate.max(1)) * f64::from(self.cfg.channels.max(1)))
    }

    /// Feeds interleaved samples; returns the events they caused, in order.
    pub fn push(&mut self, samples: impl IntoIterator<Item = i16>) -> Vec<Event> {
        let mut out = Vec::new();
        for s in samples {
            self.frame_sum_sq += f64::from(s) * f64::from(s);
            self.frame_fill += 1;
            self.total += 1;
            if self.frame_fill == self.frame_len {
                let rms = (self.frame_sum_sq / self.frame_len as f64).sqrt();
                self.frame_fill = 0;
                self.frame_sum_sq = 0.0;
                self.frame(rms >= SPEECH_RMS_THRESHOLD, &mut out);
            }
        }
        out
    }

    fn frame(&mut self, voiced: bool, out: &mut Vec<Event>) {
        let end = self.now();
        let start = end - f64::from(FRAME_MS) / 1000.0;
        if voiced {
            if !self.in_speech {
                self.in_speech = true;
                self.speech_start = ms(start);
                self.pending_utterance_end = None;
                if self.utterance.is_none() {
                    self.utterance = Some(self.script.next_utterance());
                }
                self.next_interim_at = start + INTERIM_EVERY_S;
                if self.cfg.vad_events {
                    out.push(Event::SpeechStarted { timestamp: ms(start) });
                }
            }
            self.last_voiced_end = end;
            self.silence_ms = 0;
            if self.cfg.interim_results && end >= self.next_interim_at - 1e-9 {
                self.next_interim_at += INTERIM_EVERY_S;
                if let Some(t) = self.interim(end) {
                    out.push(Event::Result(t));
                }
            }
            return;
        }
        if self.in_speech {
            self.silence_ms += FRAME_MS;
            let limit = self.cfg.endpointing_ms.unwrap_or(DISABLED_ENDPOINT_MS).max(FRAME_MS);
            if self.silence_ms >= limit {
                self.in_speech = false;
                let speech_final = self.cfg.endpointing_ms.is_some();
                out.push(Event::Result(self.finalize_utterance(speech_final, false)));
            }
        }
        if let (Some(last), Some(gap)) = (self.pending_utterance_end, self.cfg.utterance_end_ms)
            && end >= last + f64::from(gap) / 1000.0
        {
            self.pending_utterance_end = None;
            out.push(Event::UtteranceEnd { last_word_end: last });
        }
    }

    fn interim(&self, now: f64) -> Option<Transcript> {
        let words = self.utterance.as_ref()?;
        let heard = 1 + ((now - self.speech_start) / SECONDS_PER_WORD) as usize;
        let revealed = &words[..heard.min(words.len())];
        Some(Transcript {
            start: ms(self.window_start),
            duration: ms(now - self.window_start),
            is_final: false,
            speech_final: false,
            from_finalize: false,
            words: spread(revealed, self.speech_start, now),
        })
    }

    fn finalize_utterance(&mut self, speech_final: bool, from_finalize: bool) -> Transcript {
        let now = self.now();
        let words = self.utterance.take().unwrap_or_default();
        let mut timed = spread(&words, self.speech_start, self.last_voiced_end);
        if self.cfg.empty_finals {
            timed.clear();
        }
        if let Some(last) = timed.last()
            && self.cfg.interim_results
            && self.cfg.utterance_end_ms.is_some()
        {
            self.pending_utterance_end = Some(last.end);
        }
        let t = Transcript {
            start: ms(self.window_start),
            duration: ms(now - self.window_start),
            is_final: true,
            speech_final,
            from_finalize,
            words: timed,
        };
        self.window_start = now;
        t
    }

    /// The client sent `Finalize`: a final for the audio since the last final, or nothing if there is none.
    pub fn finalize(&mut self) -> Option<Transcript> {
        if self.now() <= self.window_start + 1e-9 {
            return None;
        }
        Some(self.finalize_utterance(false, true))
    }

    /// The client sent `CloseStream` (or an empty frame): the final of an utterance still open, if any.
    pub fn close(&mut self) -> Option<Transcript> {
        self.utterance.as_ref()?;
        self.in_speech = false;
        Some(self.finalize_utterance(false, false))
    }
}

/// Spreads words evenly over `[start, end]` (0.3 s a word when the span is empty).
fn spread(words: &[ScriptWord], start: f64, end: f64) -> Vec<TimedWord> {
    let n = words.len() as f64;
    let end = if end > start { end } else { start + SECONDS_PER_WORD * n };
    let slot = (end - start) / n.max(1.0);
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let s = start + i as f64 * slot;
            // A short gap after each word, but the last one ends with the speech, as Deepgram's does: the
            // endpointing silence is counted from there.
            let e = if i + 1 == words.len() { end } else { s + slot * 0.9 };
            TimedWord { word: w.clone(), start: ms(s), end: ms(e) }
        })
        .collect()
}

#[cfg(test)]
mod tests;
