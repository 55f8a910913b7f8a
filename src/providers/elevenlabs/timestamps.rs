//! Reading the streaming-with-timestamps variant of ElevenLabs' HTTP speech endpoint
//! (`POST /v1/text-to-speech/{voice_id}/stream/with-timestamps`): newline-delimited [`TimestampedAudio`]
//! objects. [`LineDecoder`] splits the body into objects across reads and says when the body ended inside one,
//! so a cut body is never mistaken for a complete one.

use super::http::TimestampedAudio;

impl TimestampedAudio {
    /// (end of each character in ms from the start of the request's audio, the character).
    pub fn char_ends_ms(&self) -> Vec<(f64, char)> {
        self.alignment
            .as_ref()
            .map(|a| {
                a.characters
                    .iter()
                    .zip(&a.character_end_times_seconds)
                    .filter_map(|(c, end)| Some((end * 1000.0, c.chars().next()?)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Why a body could not be read as lines of JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("a line is not a JSON object: {0}")]
    Invalid(String),
    #[error("the body ended inside a line ({0} bytes of it)")]
    CutInLine(usize),
}

/// Splits a with-timestamps body into its JSON objects as bytes arrive.
#[derive(Debug, Default)]
pub struct LineDecoder {
    buf: Vec<u8>,
}

impl LineDecoder {
    /// Adds bytes; returns the complete lines they finish, parsed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<TimestampedAudio, LineError>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            if let Some(parsed) = parse_line(&line) {
                out.push(parsed);
            }
        }
        out
    }

    /// The body ended: a last line without its newline is fine if it is a whole object; a piece of one means
    /// the body was cut.
    pub fn finish(&mut self) -> Result<Option<TimestampedAudio>, LineError> {
        let rest = std::mem::take(&mut self.buf);
        match parse_line(&rest) {
            None => Ok(None),
            Some(Ok(chunk)) => Ok(Some(chunk)),
            Some(Err(_)) => Err(LineError::CutInLine(rest.len())),
        }
    }
}

fn parse_line(line: &[u8]) -> Option<Result<TimestampedAudio, LineError>> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(serde_json::from_str(text).map_err(|e| LineError::Invalid(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"audio_base64":"AAEC","alignment":{"characters":["H","i"],"character_start_times_seconds":[0.0,0.1],"character_end_times_seconds":[0.1,0.25]}}"#;

    #[test]
    fn lines_split_across_reads_parse_and_times_become_milliseconds() {
        let mut d = LineDecoder::default();
        let body = format!("{LINE}\n{LINE}\n");
        let (a, b) = body.as_bytes().split_at(37);
        assert!(d.push(a).is_empty());
        let chunks: Vec<TimestampedAudio> = d.push(b).into_iter().map(Result::unwrap).collect();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].audio_bytes().unwrap(), vec![0, 1, 2]);
        assert_eq!(chunks[0].char_ends_ms(), vec![(100.0, 'H'), (250.0, 'i')]);
        assert_eq!(d.finish(), Ok(None));
    }

    #[test]
    fn a_last_line_without_newline_is_whole_but_half_a_line_is_a_cut() {
        let mut d = LineDecoder::default();
        assert!(d.push(LINE.as_bytes()).is_empty());
        assert!(d.finish().unwrap().is_some());
        let mut cut = LineDecoder::default();
        cut.push(&LINE.as_bytes()[..40]);
        assert_eq!(cut.finish(), Err(LineError::CutInLine(40)));
        assert!(matches!(LineDecoder::default().push(b"not json\n")[0], Err(LineError::Invalid(_))));
    }
}
