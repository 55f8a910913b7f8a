//! Turns text into chunks of speech: about 15 characters a second of the emulated voice in the requested
//! output format, cut into chunks small enough to fit a 64 KiB WebSocket frame once base64-encoded. Each
//! chunk carries the exact characters that produced it, spread evenly over the chunk's *actual* audio (whole
//! samples, or whole MP3 frames), so a client can map "N ms heard" to "these characters heard": as the
//! WebSocket's alignment (ms relative to the chunk, durations summing to the chunk's length) or as the HTTP
//! `with-timestamps` alignment (seconds from the start of the voice's audio).

use crate::audio::OutputFormat;
use crate::emulators::synth::{Renderer, UnsupportedFormat};
use crate::providers::elevenlabs::{Alignment, CharacterAlignment};

/// Most characters one request (HTTP) or one context's buffer (WebSocket) may hold; more is refused with
/// `max_character_limit_exceeded`, as the service does, and keeps a client from making the emulator render
/// hours of audio.
pub const MAX_TEXT_CHARS: usize = 5_000;
/// Speaking rate of the emulated voice.
pub const CHARS_PER_SECOND: f64 = 15.0;
/// Raw audio bytes per chunk at most (base64 makes it 4/3 bigger).
const MAX_CHUNK_BYTES: f64 = 32_000.0;

/// One chunk of speech.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechChunk {
    pub audio: Vec<u8>,
    /// The characters spoken in this chunk, in order.
    pub chars: Vec<String>,
    /// Where the chunk's audio starts in the voice's stream, ms.
    pub start_ms: f64,
    /// Length of `audio`, ms (samples ÷ rate, or MP3 frames × frame length).
    pub duration_ms: f64,
}

impl SpeechChunk {
    /// Character `i`'s span within the chunk, ms from the chunk's start.
    fn span(&self, i: usize) -> (f64, f64) {
        let per_char = self.duration_ms / self.chars.len().max(1) as f64;
        (i as f64 * per_char, (i + 1) as f64 * per_char)
    }

    /// The WebSocket alignment: ms relative to this chunk, whole ms, durations summing to the chunk's
    /// length rounded to the ms.
    pub fn ws_alignment(&self) -> Alignment {
        let at = |ms: f64| ms.round() as u32;
        let spans: Vec<(f64, f64)> = (0..self.chars.len()).map(|i| self.span(i)).collect();
        Alignment {
            chars: self.chars.clone(),
            char_start_times_ms: spans.iter().map(|&(s, _)| at(s)).collect(),
            char_durations_ms: spans.iter().map(|&(s, e)| at(e) - at(s)).collect(),
        }
    }

    /// The HTTP `with-timestamps` alignment: seconds from the start of the voice's audio.
    pub fn http_alignment(&self) -> CharacterAlignment {
        let secs = |ms: f64| ((self.start_ms + ms) / 1000.0 * 1e6).round() / 1e6;
        CharacterAlignment {
            characters: self.chars.clone(),
            character_start_times_seconds: (0..self.chars.len()).map(|i| secs(self.span(i).0)).collect(),
            character_end_times_seconds: (0..self.chars.len()).map(|i| secs(self.span(i).1)).collect(),
        }
    }
}

/// A continuous voice in one format (one per context or request, so audio joins seamlessly).
#[derive(Debug, Clone)]
pub struct Voice {
    renderer: Renderer,
    spoken_ms: f64,
    chars_per_chunk: usize,
}

impl Voice {
    /// A voice speaking `format`.
    pub fn new(format: OutputFormat) -> Result<Self, UnsupportedFormat> {
        let seconds_per_chunk = MAX_CHUNK_BYTES / f64::from(format.bytes_per_second());
        let chars_per_chunk = ((seconds_per_chunk * CHARS_PER_SECOND) as usize).clamp(4, 30);
        Ok(Voice { renderer: Renderer::new(format)?, spoken_ms: 0.0, chars_per_chunk })
    }

    /// The chunks that speak `text`, each carrying exactly its characters (together: all of `text`).
    pub fn speak(&mut self, text: &str) -> Vec<SpeechChunk> {
        let chars: Vec<char> = text.chars().collect();
        chars
            .chunks(self.chars_per_chunk)
            .map(|group| {
                self.spoken_ms += group.len() as f64 * 1000.0 / CHARS_PER_SECOND;
                let start_ms = self.renderer.produced_ms();
                let audio = self.renderer.render_until(self.spoken_ms);
                let duration_ms = self.renderer.produced_ms() - start_ms;
                SpeechChunk { audio, chars: group.iter().map(char::to_string).collect(), start_ms, duration_ms }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks what a client relies on: characters in order, spans inside the chunk, durations adding up.
    fn assert_consistent(chunks: &[SpeechChunk], text: &str, bytes_per_ms: Option<f64>) {
        let joined: String = chunks.iter().flat_map(|c| c.ws_alignment().chars).collect();
        assert_eq!(joined, text);
        let mut expected_start = 0.0;
        for c in chunks {
            assert!((c.start_ms - expected_start).abs() < 1e-6, "chunks follow each other");
            expected_start += c.duration_ms;
            if let Some(b) = bytes_per_ms {
                assert!((c.audio.len() as f64 / b - c.duration_ms).abs() < 0.5, "duration is the audio's");
            }
            let a = c.ws_alignment();
            assert_eq!(a.char_start_times_ms[0], 0, "times are relative to the chunk");
            let total: u32 = a.char_durations_ms.iter().sum();
            assert!((f64::from(total) - c.duration_ms).abs() <= 0.5, "{total} vs {}", c.duration_ms);
            for i in 1..a.chars.len() {
                assert_eq!(a.char_start_times_ms[i], a.char_start_times_ms[i - 1] + a.char_durations_ms[i - 1]);
            }
            let h = c.http_alignment();
            assert!((h.character_start_times_seconds[0] - c.start_ms / 1000.0).abs() < 1e-5, "cumulative");
            let end = h.character_end_times_seconds.last().copied().unwrap_or_default();
            assert!((end - (c.start_ms + c.duration_ms) / 1000.0).abs() < 1e-5);
        }
    }

    #[test]
    fn speech_lasts_about_a_fifteenth_of_a_second_per_character_with_exact_alignment() {
        let mut v = Voice::new("pcm_16000".parse().unwrap()).unwrap();
        let text = "Your table for two is booked at eight. ";
        let chunks = v.speak(text);
        let bytes: usize = chunks.iter().map(|c| c.audio.len()).sum();
        let secs = bytes as f64 / 32_000.0;
        assert!((secs - text.chars().count() as f64 / 15.0).abs() < 0.001, "{secs}");
        assert_consistent(&chunks, text, Some(32.0));
        let more = v.speak("And dessert. ");
        assert!((more[0].start_ms - secs * 1000.0).abs() < 1e-6, "a voice keeps counting across calls");
    }

    #[test]
    fn mp3_alignment_follows_whole_frames_and_multibyte_characters_stay_whole() {
        let mut v = Voice::new("mp3_44100_128".parse().unwrap()).unwrap();
        let text = "Crème brûlée für zwei, s'il vous plaît — 42 €. ";
        let chunks = v.speak(text);
        assert_consistent(&chunks, text, None);
        for c in &chunks {
            let frames = crate::emulators::synth::mp3::frames(&c.audio).len() as f64;
            assert!((frames * 1152.0 / 44.1 - c.duration_ms).abs() < 0.01, "whole frames");
        }
    }

    #[test]
    fn chunks_stay_under_a_64k_frame_in_the_largest_format() {
        let mut v = Voice::new("pcm_48000".parse().unwrap()).unwrap();
        let chunks = v.speak(&"word ".repeat(40));
        assert!(chunks.iter().all(|c| c.audio.len() * 4 / 3 < 60_000));
    }
}
