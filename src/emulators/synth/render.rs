//! Turns "audio up to time T" into bytes of one output format. A renderer remembers how much it produced, so
//! a caller can ask for successive end times and get chunks that join into one continuous stream whose total
//! duration tracks the requested time (PCM and G.711 to the sample, MP3 to the nearest whole frame).

use crate::audio::{Encoding, OutputFormat};

use super::{g711, mp3, tone};

/// The emulator cannot produce this format (Opus).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the emulator cannot synthesise {0} audio")]
pub struct UnsupportedFormat(pub String);

/// A continuous audio stream in one format.
#[derive(Debug, Clone)]
pub struct Renderer {
    format: OutputFormat,
    kind: Kind,
    /// Samples (PCM/G.711) or frames (MP3) produced so far.
    produced: u64,
}

#[derive(Debug, Clone)]
enum Kind {
    Pcm,
    Ulaw,
    Alaw,
    Mp3 { frames: Vec<&'static [u8]>, frame_ms: f64 },
}

impl Renderer {
    /// A renderer for `format`, or why it cannot be done.
    pub fn new(format: OutputFormat) -> Result<Self, UnsupportedFormat> {
        let unsupported = || UnsupportedFormat(format.to_string());
        let kind = match format.encoding {
            Encoding::Pcm => Kind::Pcm,
            Encoding::Ulaw => Kind::Ulaw,
            Encoding::Alaw => Kind::Alaw,
            Encoding::Mp3 { bitrate_kbps } => {
                let asset = mp3::asset(format.sample_rate, bitrate_kbps).ok_or_else(unsupported)?;
                let walked = mp3::frames(asset);
                let (header, _) = walked.first().ok_or_else(unsupported)?;
                let frame_ms = f64::from(header.samples) * 1000.0 / f64::from(header.sample_rate);
                Kind::Mp3 { frames: walked.into_iter().map(|(_, f)| f).collect(), frame_ms }
            }
            Encoding::Opus { .. } => return Err(unsupported()),
        };
        Ok(Renderer { format, kind, produced: 0 })
    }

    /// The format rendered.
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// Milliseconds of audio produced so far.
    pub fn produced_ms(&self) -> f64 {
        match &self.kind {
            Kind::Mp3 { frame_ms, .. } => self.produced as f64 * frame_ms,
            _ => self.produced as f64 * 1000.0 / f64::from(self.format.sample_rate),
        }
    }

    /// The bytes that extend the stream to `end_ms` (empty when it is already that long).
    pub fn render_until(&mut self, end_ms: f64) -> Vec<u8> {
        let rate = self.format.sample_rate;
        match &self.kind {
            Kind::Mp3 { frames, frame_ms } => {
                let target = (end_ms / frame_ms).round().max(0.0) as u64;
                let mut out = Vec::new();
                while self.produced < target {
                    let i = (self.produced % frames.len() as u64) as usize;
                    out.extend_from_slice(frames[i]);
                    self.produced += 1;
                }
                out
            }
            kind => {
                let target = (end_ms * f64::from(rate) / 1000.0).round().max(0.0) as u64;
                let range = self.produced..target.max(self.produced);
                self.produced = range.end;
                match kind {
                    Kind::Ulaw => range.map(|n| g711::linear_to_ulaw(tone::sample(n, rate))).collect(),
                    Kind::Alaw => range.map(|n| g711::linear_to_alaw(tone::sample(n, rate))).collect(),
                    _ => range.flat_map(|n| tone::sample(n, rate).to_le_bytes()).collect(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> OutputFormat {
        s.parse().unwrap()
    }

    #[test]
    fn pcm_chunks_join_to_the_exact_sample_count() {
        let mut r = Renderer::new(fmt("pcm_16000")).unwrap();
        let a = r.render_until(333.3);
        let b = r.render_until(1000.0);
        assert_eq!(a.len() + b.len(), 32_000);
        assert_eq!(r.render_until(900.0).len(), 0);
    }

    #[test]
    fn ulaw_is_one_byte_per_sample_and_mp3_is_whole_frames() {
        let mut r = Renderer::new(fmt("ulaw_8000")).unwrap();
        assert_eq!(r.render_until(500.0).len(), 4000);
        let mut r = Renderer::new(fmt("mp3_44100_128")).unwrap();
        let bytes = r.render_until(3000.0);
        let d = mp3::duration_secs(&bytes);
        assert!((d - 3.0).abs() < 0.03, "{d}");
        assert_eq!(mp3::frames(&bytes).iter().map(|(_, f)| f.len()).sum::<usize>(), bytes.len());
    }

    #[test]
    fn opus_is_refused() {
        assert!(Renderer::new(fmt("opus_48000_64")).is_err());
    }
}
