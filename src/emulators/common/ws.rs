//! WebSocket plumbing shared by the Deepgram and ElevenLabs socket actors: an outbox that sends frames at
//! their due time in order (reply latency, time to first byte and real-time pacing all become due times),
//! close reasons cut to the 123-byte limit, and the end of a connection: after a Close frame of its own the
//! actor waits for the client's reply and then stops at once (RFC 6455 §7.1.1); a drop ends the TCP
//! connection without a Close frame, a reset also makes it an RST.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext as _, AsyncContext as _};
use actix_web_actors::ws::{CloseCode, CloseReason, WebsocketContext};

use super::abort::Abort;

/// Longest close reason a WebSocket close frame can carry, in bytes.
pub const MAX_REASON_BYTES: usize = 123;
/// How long a socket that sent its Close frame waits for the client's reply before it ends the connection
/// anyway (a client that answers ends it at once).
pub const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(1);

/// One thing to do on the socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// A text frame.
    Text(String),
    /// A Close frame with this code and reason (cut to 123 bytes), then the end of the connection.
    Close(u16, String),
    /// End the connection without a Close frame, with an orderly TCP close (FIN; the client sees 1006).
    Drop,
    /// End the connection without a Close frame, with a TCP reset (RST; the client sees 1006, or a
    /// "connection reset" I/O error).
    Reset,
}

/// Frames waiting for their due time. Frames of one tag (an ElevenLabs context) never go backwards, so their
/// order is kept, while frames of different tags interleave by due time; untagged frames (errors, closes) go
/// after everything queued before them.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<(Instant, Out, Option<String>)>,
    last_due: Option<Instant>,
    last_due_by_tag: std::collections::HashMap<String, Instant>,
    armed: bool,
    finished: bool,
    abort: Abort,
}

impl Outbox {
    /// An empty outbox whose `Out::Drop` cuts the connection through `abort`.
    pub fn new(abort: Abort) -> Self {
        Outbox { abort, ..Default::default() }
    }

    /// Queues `out` at `due` (or right after the last queued frame, if that is later). `tag` lets a caller
    /// drop queued frames later (e.g. the audio of a closed context).
    pub fn push_at(&mut self, due: Instant, out: Out, tag: Option<String>) {
        if self.finished {
            return;
        }
        let floor = match &tag {
            Some(t) => self.last_due_by_tag.get(t).copied(),
            None => self.last_due,
        };
        let due = floor.map_or(due, |f| f.max(due));
        self.last_due = Some(self.last_due.map_or(due, |last| last.max(due)));
        if let Some(t) = &tag {
            self.last_due_by_tag.insert(t.clone(), due);
        }
        let at = self.queue.iter().position(|(d, _, _)| *d > due).unwrap_or(self.queue.len());
        self.queue.insert(at, (due, out, tag));
    }

    /// True when the connection has been closed or dropped by the outbox.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// An actor on a WebSocket with an outbox.
pub trait HasOutbox: Actor<Context = WebsocketContext<Self>> {
    /// The actor's outbox.
    fn outbox(&mut self) -> &mut Outbox;
    /// Called as each frame actually goes out (for the emulator's log).
    fn on_sent(&mut self, out: &Out);
}

/// Queues `out` after `delay` from now and makes sure the outbox will be pumped.
pub fn send_after<A: HasOutbox>(
    act: &mut A,
    ctx: &mut WebsocketContext<A>,
    delay: Duration,
    out: Out,
    tag: Option<String>,
) {
    act.outbox().push_at(Instant::now() + delay, out, tag);
    arm(act, ctx);
}

/// Queues `out` at an absolute time.
pub fn send_at<A: HasOutbox>(act: &mut A, ctx: &mut WebsocketContext<A>, due: Instant, out: Out, tag: Option<String>) {
    act.outbox().push_at(due, out, tag);
    arm(act, ctx);
}

fn arm<A: HasOutbox>(act: &mut A, ctx: &mut WebsocketContext<A>) {
    let outbox = act.outbox();
    if outbox.armed {
        return;
    }
    let Some((due, _, _)) = outbox.queue.front() else {
        return;
    };
    outbox.armed = true;
    let wait = due.saturating_duration_since(Instant::now());
    ctx.run_later(wait, |act, ctx| {
        act.outbox().armed = false;
        pump(act, ctx);
    });
}

fn pump<A: HasOutbox>(act: &mut A, ctx: &mut WebsocketContext<A>) {
    let now = Instant::now();
    loop {
        let outbox = act.outbox();
        if outbox.finished {
            return;
        }
        match outbox.queue.front() {
            Some((due, _, _)) if *due <= now => {}
            _ => break,
        }
        let Some((_, out, _)) = outbox.queue.pop_front() else {
            break;
        };
        if matches!(out, Out::Close(..) | Out::Drop | Out::Reset) {
            outbox.finished = true;
            outbox.queue.clear();
        }
        deliver(act, ctx, &out);
        act.on_sent(&out);
    }
    arm(act, ctx);
}

/// Does `out` on the socket right now, bypassing the queue. After a Close frame the actor lives on only to
/// read the client's reply (`answer_close` then stops it), at most `CLOSE_REPLY_TIMEOUT`.
pub fn deliver<A: HasOutbox>(act: &mut A, ctx: &mut WebsocketContext<A>, out: &Out) {
    match out {
        Out::Text(t) => ctx.text(t.clone()),
        Out::Close(code, reason) => {
            ctx.close(Some(CloseReason { code: CloseCode::from(*code), description: Some(truncate_reason(reason)) }));
            ctx.run_later(CLOSE_REPLY_TIMEOUT, |_, ctx| ctx.stop());
        }
        Out::Drop => ctx.stop(),
        Out::Reset => {
            act.outbox().abort.trigger();
            ctx.stop();
        }
    }
}

/// The client sent a Close frame: answer it with one (unless this side already sent its own, which the
/// client's frame answers) and stop, which ends the TCP connection right after the answer.
pub fn answer_close<A: HasOutbox>(act: &mut A, ctx: &mut WebsocketContext<A>) {
    close_now(act, ctx, Out::Close(1000, String::new()));
    ctx.stop();
}

/// Closes now, marking the outbox finished so nothing queued follows the Close.
pub fn close_now<A: HasOutbox>(act: &mut A, ctx: &mut WebsocketContext<A>, out: Out) {
    let outbox = act.outbox();
    if outbox.finished {
        return;
    }
    outbox.finished = true;
    outbox.queue.clear();
    deliver(act, ctx, &out);
    act.on_sent(&out);
}

/// `reason` cut to at most 123 bytes at a character boundary.
pub fn truncate_reason(reason: &str) -> String {
    if reason.len() <= MAX_REASON_BYTES {
        return reason.to_string();
    }
    let mut end = MAX_REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_cut_to_123_bytes_without_splitting_a_character() {
        let long = "é".repeat(100);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= 123 && cut.len() >= 122);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate_reason("short"), "short");
    }

    #[test]
    fn frames_of_one_tag_keep_their_order_and_tags_interleave() {
        let mut o = Outbox::default();
        let now = Instant::now();
        let ms = |n| now + Duration::from_millis(n);
        o.push_at(ms(500), Out::Text("a1".into()), Some("a".into()));
        o.push_at(ms(0), Out::Text("a2".into()), Some("a".into())); // never before a1
        o.push_at(ms(10), Out::Text("b1".into()), Some("b".into())); // not held back by a
        o.push_at(ms(0), Out::Text("end".into()), None); // after everything queued
        let order: Vec<String> = o
            .queue
            .iter()
            .map(|(_, out, _)| match out {
                Out::Text(t) => t.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(order, ["b1", "a1", "a2", "end"]);
        assert!(o.queue.iter().zip(o.queue.iter().skip(1)).all(|(x, y)| x.0 <= y.0));
    }
}
