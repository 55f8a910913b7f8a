//! Turns SSE payloads into the byte writes the OpenAI emulator puts on the wire, applying the transport
//! torture a real network and real compatible servers inflict: CRLF or lone-CR line endings, `data:` without
//! a space, `:` comment keepalives, several events in one write, and events cut mid-line or inside a UTF-8
//! character. Pure: the writes are data, the handler only paces and sends them.

use std::time::Duration;

use bytes::Bytes;

use super::control::Torture;

/// One event to write, with the delay before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub data: String,
    pub delay: Duration,
}

/// One write on the socket (one HTTP chunk), with the delay before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub bytes: Bytes,
    pub delay: Duration,
}

fn eol(t: &Torture) -> &'static str {
    match (t.crlf, t.cr) {
        (true, _) => "\r\n",
        (false, true) => "\r",
        (false, false) => "\n",
    }
}

/// The wire text of one event: `data: <payload>` and a blank line.
pub fn frame(data: &str, t: &Torture) -> String {
    let sep = if t.no_space { "data:" } else { "data: " };
    let e = eol(t);
    format!("{sep}{data}{e}{e}")
}

/// The writes for `events`.
pub fn writes(events: &[Event], t: &Torture) -> Vec<Write> {
    let mut grouped: Vec<(String, Duration)> = Vec::new();
    let group = if t.coalesce { 2 } else { 1 };
    for pair in events.chunks(group) {
        let text: String = pair.iter().map(|e| frame(&e.data, t)).collect();
        let delay = pair.iter().map(|e| e.delay).sum();
        grouped.push((text, delay));
    }
    let mut out = Vec::new();
    for (text, delay) in grouped {
        let mut delay = delay;
        if t.comments {
            let e = eol(t);
            out.push(Write { bytes: Bytes::from(format!(": keep-alive{e}{e}")), delay });
            delay = Duration::ZERO;
        }
        match cut_point(&text, t) {
            Some(at) => {
                let bytes = Bytes::from(text.into_bytes());
                out.push(Write { bytes: bytes.slice(..at), delay });
                out.push(Write { bytes: bytes.slice(at..), delay: Duration::ZERO });
            }
            None => out.push(Write { bytes: Bytes::from(text.into_bytes()), delay }),
        }
    }
    out
}

/// Where to cut a write: inside the first multi-byte character (split_utf8), else mid-line (split_lines).
fn cut_point(text: &str, t: &Torture) -> Option<usize> {
    if t.split_utf8
        && let Some((i, c)) = text.char_indices().find(|(_, c)| c.len_utf8() > 1)
    {
        return Some(i + c.len_utf8() / 2);
    }
    if t.split_lines || t.split_utf8 {
        let first_line = text.find(['\r', '\n']).unwrap_or(text.len());
        return (first_line > 1).then_some(first_line / 2);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::openai::SseDecoder;

    fn ev(data: &str) -> Event {
        Event { data: data.to_string(), delay: Duration::from_millis(5) }
    }

    fn decode(ws: &[Write]) -> Vec<String> {
        let mut d = SseDecoder::new();
        let out = ws.iter().flat_map(|w| d.push(&w.bytes)).map(|e| e.data).collect();
        assert!(d.finish().is_ok());
        out
    }

    #[test]
    fn plain_framing_is_data_space_payload_and_a_blank_line() {
        let ws = writes(&[ev("{}")], &Torture::default());
        assert_eq!(ws.len(), 1);
        assert_eq!(&ws[0].bytes[..], b"data: {}\n\n");
    }

    #[test]
    fn every_torture_still_decodes_to_the_same_payloads() {
        let events = [ev("{\"c\":\"\u{201c}hi\u{201d}\"}"), ev("{\"c\":\"x\"}"), ev("[DONE]")];
        let expected: Vec<String> = events.iter().map(|e| e.data.clone()).collect();
        for t in [
            Torture::all(),
            Torture { cr: true, ..Default::default() },
            Torture { split_lines: true, crlf: true, ..Default::default() },
            Torture { coalesce: true, no_space: true, ..Default::default() },
        ] {
            assert_eq!(decode(&writes(&events, &t)), expected, "{t:?}");
        }
    }

    #[test]
    fn utf8_splitting_cuts_inside_a_character() {
        let t = Torture { split_utf8: true, ..Default::default() };
        let ws = writes(&[ev("{\"c\":\"\u{201c}\"}")], &t);
        assert_eq!(ws.len(), 2);
        assert!(std::str::from_utf8(&ws[0].bytes).is_err());
        assert_eq!(ws[1].delay, Duration::ZERO);
    }

    #[test]
    fn comments_precede_events_and_coalescing_puts_two_events_in_one_write() {
        let t = Torture { comments: true, coalesce: true, ..Default::default() };
        let ws = writes(&[ev("1"), ev("2"), ev("3")], &t);
        assert_eq!(ws.len(), 4);
        assert_eq!(&ws[0].bytes[..], b": keep-alive\n\n");
        assert_eq!(&ws[1].bytes[..], b"data: 1\n\ndata: 2\n\n");
        assert_eq!(ws[0].delay, Duration::from_millis(10));
    }
}
