//! The open stream of one call: the state the caller's handle and the socket tasks share, the writer task
//! (owns the socket's sending half, numbers every message) and the reader task (owns the receiving half,
//! plays the server's audio on the playback clock and echoes marks when they come due).

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use actix_codec::Framed;
use awc::BoxedSocket;
use awc::ws::{CloseCode, CloseReason, Codec, Frame, Message};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::messages::{self, Incoming, StreamIds};
use super::playback::Playback;
use super::report::{CallReport, CloseInfo};

/// What the writer task sends.
#[derive(Debug)]
pub(super) enum Out {
    Media(Vec<u8>),
    Dtmf(char),
    Mark(String),
    Stop,
    Pong(bytes::Bytes),
    /// A close frame; the writer sends nothing after it. The sender learns when it is written.
    Close(CloseReason, Option<oneshot::Sender<()>>),
}

/// What the handle and both tasks share.
#[derive(Debug)]
pub(super) struct Line {
    pub started: Instant,
    pub out: mpsc::UnboundedSender<Out>,
    state: Mutex<LineState>,
    pub closed: watch::Sender<Option<CloseInfo>>,
}

#[derive(Debug, Default)]
pub(super) struct LineState {
    pub playback: Playback,
    pub report: CallReport,
    /// When the caller's first audio ended (the clock for `first_audio_after_speech`).
    pub speech_ended: Option<Duration>,
}

impl Line {
    pub fn new(out: mpsc::UnboundedSender<Out>) -> Line {
        Line { started: Instant::now(), out, state: Mutex::default(), closed: watch::channel(None).0 }
    }

    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn state(&self) -> MutexGuard<'_, LineState> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records how the stream ended, once.
    pub fn set_closed(&self, info: CloseInfo) {
        let mut state = self.state();
        if state.report.closed.is_none() {
            state.report.closed = Some(info.clone());
            self.closed.send_replace(Some(info));
        }
    }

    /// Sends a message; once the writer has gone (the line closed) there is nobody to tell.
    pub fn send(&self, out: Out) {
        let _ = self.out.send(out);
    }
}

type Sink = SplitSink<Framed<BoxedSocket, Codec>, Message>;

/// Writes `connected` and `start`, then whatever comes down `rx`, numbering messages and media chunks.
pub(super) async fn write(
    mut sink: Sink,
    mut rx: mpsc::UnboundedReceiver<Out>,
    ids: StreamIds,
    parameters: Vec<(String, String)>,
    started: Instant,
    realtime: bool,
) {
    let mut sequence = 1;
    let mut chunk = 0;
    let mut timestamp: Option<u64> = None;
    let text = |v: Value| Message::Text(v.to_string().into());
    if sink.send(text(messages::connected())).await.is_err()
        || sink.send(text(messages::start(&ids, sequence, &parameters))).await.is_err()
    {
        return;
    }
    while let Some(out) = rx.recv().await {
        sequence += 1;
        let message = match out {
            Out::Media(frame) => {
                chunk += 1;
                let elapsed = started.elapsed().as_millis() as u64;
                let ts = match (timestamp, realtime) {
                    (None, true) => elapsed,
                    (None, false) => 0,
                    (Some(prev), true) => (prev + 20).max(elapsed),
                    (Some(prev), false) => prev + 20,
                };
                timestamp = Some(ts);
                text(messages::media(&ids, sequence, chunk, ts, &frame))
            }
            Out::Dtmf(digit) => text(messages::dtmf(&ids, sequence, digit)),
            Out::Mark(name) => text(messages::mark(&ids, sequence, &name)),
            Out::Stop => text(messages::stop(&ids, sequence)),
            Out::Pong(payload) => Message::Pong(payload),
            Out::Close(reason, done) => {
                let _ = sink.send(Message::Close(Some(reason))).await;
                let _ = sink.flush().await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
                return;
            }
        };
        if sink.send(message).await.is_err() {
            return;
        }
    }
}

/// Reads the server's messages until the stream closes, echoing marks as they come due.
pub(super) async fn read(mut stream: SplitStream<Framed<BoxedSocket, Codec>>, line: std::sync::Arc<Line>, sid: String) {
    loop {
        let next_due = line.state().playback.next_mark_due();
        let wake = next_due.map_or_else(|| line.started + Duration::from_secs(86_400), |d| line.started + d);
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Frame::Text(bytes))) => on_text(&line, &bytes, &sid),
                Some(Ok(Frame::Ping(payload))) => line.send(Out::Pong(payload)),
                Some(Ok(Frame::Pong(_))) => {}
                Some(Ok(Frame::Binary(_) | Frame::Continuation(_))) => {
                    line.state().report.problems.push("a binary frame (Twilio speaks JSON text frames)".into());
                }
                Some(Ok(Frame::Close(reason))) => {
                    let (code, text) = reason.map_or((None, String::new()), |r| {
                        (Some(u16::from(r.code)), r.description.unwrap_or_default())
                    });
                    line.set_closed(CloseInfo { code, reason: text, at: line.now(), by_caller: false });
                    line.send(Out::Close(CloseReason { code: CloseCode::Normal, description: None }, None));
                    return;
                }
                Some(Err(e)) => {
                    line.set_closed(CloseInfo { code: None, reason: e.to_string(), at: line.now(), by_caller: false });
                    return;
                }
                None => {
                    let reason = "the connection ended without a close frame".to_string();
                    line.set_closed(CloseInfo { code: None, reason, at: line.now(), by_caller: false });
                    return;
                }
            },
            _ = tokio::time::sleep_until(wake) => {
                let now = line.now();
                let due = line.state().playback.advance(now);
                echo(&line, due, now);
            }
        }
    }
}

fn on_text(line: &Line, bytes: &[u8], sid: &str) {
    let now = line.now();
    let message: Value =
        serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()));
    let mut state = line.state();
    let parsed = messages::parse_incoming(&message, sid);
    state.report.messages.push(message);
    let due = match parsed {
        Ok(Incoming::Media(audio)) => {
            state.report.received_media_frames += 1;
            match state.speech_ended {
                Some(end) if state.report.first_audio_after_speech.is_none() && now >= end => {
                    state.report.first_audio_after_speech = Some(now - end);
                }
                _ => {}
            }
            state.playback.push_audio(now, audio);
            state.playback.advance(now)
        }
        Ok(Incoming::Mark(name)) => {
            state.report.received_marks.push(name.clone());
            state.playback.push_mark(now, name);
            state.playback.advance(now)
        }
        Ok(Incoming::Clear) => {
            state.report.clears.push(now);
            state.playback.clear(now)
        }
        Err(problem) => {
            state.report.problems.push(problem);
            Vec::new()
        }
    };
    drop(state);
    echo(line, due, now);
}

fn echo(line: &Line, marks: Vec<String>, now: Duration) {
    if marks.is_empty() {
        return;
    }
    let mut state = line.state();
    for name in marks {
        state.report.echoed_marks.push((name.clone(), now));
        line.send(Out::Mark(name));
    }
}
