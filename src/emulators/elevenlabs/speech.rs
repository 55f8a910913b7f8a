//! Turns text into audio messages: about 15 characters a second of the emulated voice in the requested
//! output format, cut into chunks small enough to fit a 64 KiB WebSocket frame once base64-encoded, each
//! with an alignment whose times are relative to that chunk (as ElevenLabs sends them).

use crate::audio::OutputFormat;
use crate::emulators::synth::{Renderer, UnsupportedFormat};
use crate::providers::elevenlabs::Alignment;

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
    pub alignment: Alignment,
    /// Nominal duration (characters / rate).
    pub duration_ms: f64,
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

    /// The chunks that speak `text`.
    pub fn speak(&mut self, text: &str) -> Vec<SpeechChunk> {
        let chars: Vec<char> = text.chars().collect();
        let per_char = 1000.0 / CHARS_PER_SECOND;
        chars
            .chunks(self.chars_per_chunk)
            .map(|group| {
                let duration_ms = group.len() as f64 * per_char;
                let at = |i: usize| (i as f64 * per_char).round() as u32;
                let alignment = Alignment {
                    chars: group.iter().map(char::to_string).collect(),
                    char_start_times_ms: (0..group.len()).map(at).collect(),
                    char_durations_ms: (0..group.len()).map(|i| at(i + 1) - at(i)).collect(),
                };
                self.spoken_ms += duration_ms;
                SpeechChunk { audio: self.renderer.render_until(self.spoken_ms), alignment, duration_ms }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_lasts_about_a_fifteenth_of_a_second_per_character_with_chunk_relative_alignment() {
        let mut v = Voice::new("pcm_16000".parse().unwrap()).unwrap();
        let text = "Your table for two is booked at eight. ";
        let chunks = v.speak(text);
        let bytes: usize = chunks.iter().map(|c| c.audio.len()).sum();
        let secs = bytes as f64 / 32_000.0;
        assert!((secs - text.chars().count() as f64 / 15.0).abs() < 0.001, "{secs}");
        for c in &chunks {
            assert_eq!(c.alignment.char_start_times_ms[0], 0);
            let end = c.alignment.char_start_times_ms.last().unwrap() + c.alignment.char_durations_ms.last().unwrap();
            assert!((f64::from(end) - c.duration_ms).abs() <= 1.0);
        }
        let joined: String = chunks.iter().flat_map(|c| c.alignment.chars.clone()).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn chunks_stay_under_a_64k_frame_in_the_largest_format() {
        let mut v = Voice::new("pcm_48000".parse().unwrap()).unwrap();
        let chunks = v.speak(&"word ".repeat(40));
        assert!(chunks.iter().all(|c| c.audio.len() * 4 / 3 < 60_000));
    }
}
