//! An incremental, byte-level Server-Sent Events decoder. Network reads split lines, `\r\n` pairs and UTF-8
//! characters anywhere, so bytes are buffered until a line ends and only whole lines are decoded. Lines end at
//! `\n`, `\r\n` or a lone `\r` (a `\r` at the end of one push followed by `\n` in the next is one line end).
//! `:` lines are comments, `field: value` strips one leading space, several `data:` lines join with `\n`, and a
//! blank line dispatches the event (events without data are dropped, as the SSE spec says).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` name, if the server sent one (chat completions never do).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` field, if any.
    pub id: Option<String>,
}

/// The stream ended while an event or a line was still open: the server (or the network) cut it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event stream ended mid-event ({pending_bytes} bytes of an unterminated line, data pending: {data_pending})")]
pub struct IncompleteTail {
    pub pending_bytes: usize,
    pub data_pending: bool,
}

/// The decoder. Feed it every read with `push`, then call `finish` at end of stream.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// The previous push ended in `\r`; a leading `\n` of the next push belongs to that line end.
    after_cr: bool,
    data: Option<String>,
    event: Option<String>,
    id: Option<String>,
    comments: usize,
}

impl SseDecoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes as they arrive; returns the events completed by them, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut out);
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    /// Ends the stream: `Ok` when nothing was left open, else what was cut.
    pub fn finish(&mut self) -> Result<(), IncompleteTail> {
        let pending_bytes = self.line.len();
        let data_pending = self.data.is_some();
        self.line.clear();
        self.data = None;
        if pending_bytes == 0 && !data_pending { Ok(()) } else { Err(IncompleteTail { pending_bytes, data_pending }) }
    }

    /// How many `:` comment lines (keepalives) have been seen.
    pub fn comments_seen(&self) -> usize {
        self.comments
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let raw = std::mem::take(&mut self.line);
        if raw.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseEvent { event: self.event.take(), data, id: self.id.clone() });
            }
            self.event = None;
            return;
        }
        let line = String::from_utf8_lossy(&raw);
        if line.starts_with(':') {
            self.comments += 1;
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            "id" => self.id = Some(value.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(parts: &[&[u8]]) -> (Vec<SseEvent>, SseDecoder) {
        let mut d = SseDecoder::new();
        let events = parts.iter().flat_map(|p| d.push(p)).collect();
        (events, d)
    }

    fn datas(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn lf_crlf_and_lone_cr_all_end_lines() {
        let (e, _) = feed(&[b"data: a\n\ndata: b\r\n\r\ndata: c\r\rdata: d\n\n"]);
        assert_eq!(datas(&e), ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_cr_at_the_end_of_one_push_and_lf_at_the_start_of_the_next_are_one_line_end() {
        let (e, _) = feed(&[b"data: a\r", b"\n\r", b"\ndata: b\r\n", b"\r\n"]);
        assert_eq!(datas(&e), ["a", "b"]);
    }

    #[test]
    fn utf8_split_across_pushes_is_reassembled() {
        let text = "data: {\"c\":\"héllo 🙂\"}\n\n".as_bytes();
        let mut d = SseDecoder::new();
        let mut events = Vec::new();
        for b in text {
            events.extend(d.push(std::slice::from_ref(b)));
        }
        assert_eq!(datas(&events), ["{\"c\":\"héllo 🙂\"}"]);
        assert!(d.finish().is_ok());
    }

    #[test]
    fn comments_are_ignored_and_counted() {
        let (e, d) = feed(&[b": keep-alive\n\n: OPENROUTER PROCESSING\n\ndata: x\n\n"]);
        assert_eq!(datas(&e), ["x"]);
        assert_eq!(d.comments_seen(), 2);
    }

    #[test]
    fn data_without_a_space_and_values_with_colons_keep_everything_after_the_first_colon() {
        let (e, _) = feed(&[b"data:{\"a\": \"b: c\"}\n\ndata:  two spaces\n\n"]);
        assert_eq!(datas(&e), ["{\"a\": \"b: c\"}", " two spaces"]);
    }

    #[test]
    fn multi_line_data_joins_with_newline_and_event_and_id_are_kept() {
        let (e, _) = feed(&[b"event: x\nid: 7\ndata: one\ndata: two\nretry: 5\nfoo\n\n"]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].data, "one\ntwo");
        assert_eq!(e[0].event.as_deref(), Some("x"));
        assert_eq!(e[0].id.as_deref(), Some("7"));
    }

    #[test]
    fn blank_lines_without_data_dispatch_nothing() {
        let (e, _) = feed(&[b"\n\n\nevent: ping\n\n"]);
        assert!(e.is_empty());
    }

    #[test]
    fn several_events_in_one_push_all_come_out_in_order() {
        let (e, _) = feed(&[b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n"]);
        assert_eq!(datas(&e), ["1", "2", "[DONE]"]);
    }

    #[test]
    fn finish_reports_an_unterminated_line_or_undispatched_event() {
        let (_, mut d) = feed(&[b"data: {\"cho"]);
        assert_eq!(d.finish(), Err(IncompleteTail { pending_bytes: 11, data_pending: false }));
        let (_, mut d) = feed(&[b"data: x\n"]);
        assert!(d.finish().unwrap_err().data_pending);
        let (_, mut d) = feed(&[b"data: x\n\n"]);
        assert!(d.finish().is_ok());
    }
}
