//! The handle of a placed call: what the webhook answered, the caller's microphone (`play`, paced at 20 ms
//! a frame; one utterance at a time), the keypad (`press`), hanging up, waiting for the server to hang up,
//! and the report.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use awc::ws::{CloseCode, CloseReason};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::line::{Line, Out};
use super::report::{CallReport, CloseInfo};
use super::twiml::StreamTarget;

/// Bytes of µ-law in one 20 ms frame at 8 kHz.
pub const FRAME_BYTES: usize = 160;
const FRAME: Duration = Duration::from_millis(20);
/// µ-law silence.
pub const SILENCE: u8 = 0xFF;

/// A call in progress. Dropping it drops the line (no `stop`, no close frame); `hang_up` ends it properly.
#[derive(Debug)]
pub struct Call {
    pub(super) twiml: String,
    pub(super) stream: StreamTarget,
    pub(super) stream_sid: String,
    pub(super) call_sid: String,
    pub(super) realtime: bool,
    pub(super) line: Arc<Line>,
    /// Held while an utterance is being sent, so two never interleave.
    pub(super) mic: Arc<tokio::sync::Mutex<()>>,
    pub(super) reader: Mutex<Option<JoinHandle<()>>>,
    pub(super) writer: JoinHandle<()>,
    /// Sends the first `audio`; aborted by `hang_up`.
    pub(super) speaker: Mutex<Option<JoinHandle<()>>>,
}

fn take(task: &Mutex<Option<JoinHandle<()>>>) -> Option<JoinHandle<()>> {
    task.lock().unwrap_or_else(|e| e.into_inner()).take()
}

impl Call {
    /// The webhook's answer, as received.
    pub fn twiml(&self) -> &str {
        &self.twiml
    }

    /// The `<Stream url>` of the TwiML (what was signed; see `CallOptions::signed_url_base`).
    pub fn stream_url(&self) -> &str {
        &self.stream.url
    }

    /// The TwiML's `<Parameter>`s, in order (sent as `customParameters`).
    pub fn parameters(&self) -> &[(String, String)] {
        &self.stream.parameters
    }

    /// `MZ…` of this stream.
    pub fn stream_sid(&self) -> &str {
        &self.stream_sid
    }

    /// `CA…` of this call.
    pub fn call_sid(&self) -> &str {
        &self.call_sid
    }

    /// The caller says `mulaw` (8 kHz µ-law), after anything still being said; returns when it has been sent.
    pub async fn play(&self, mulaw: Vec<u8>) {
        speak(&self.line, &self.mic, &mulaw, 0, self.realtime, false).await;
    }

    /// Waits until the caller has finished saying everything queued so far (the first `audio` and its
    /// trailing silence, and any `play`).
    pub async fn finish_speaking(&self) {
        let _ = self.mic.lock().await;
    }

    /// One `dtmf` event per digit (`0-9`, `*`, `#`, `A-D`; other characters are skipped).
    pub async fn press(&self, digits: &str) {
        for digit in digits.chars().filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')) {
            self.line.state().report.dtmf_sent.push(digit.to_string());
            self.line.send(Out::Dtmf(digit));
        }
    }

    /// The caller hangs up: stops speaking, sends `stop`, closes with 1000 and waits (up to 2 s) for the
    /// server's side of the close.
    pub async fn hang_up(&self) {
        let speaker = take(&self.speaker);
        if let Some(speaker) = speaker {
            speaker.abort();
        }
        self.line.set_closed(CloseInfo {
            code: Some(1000),
            reason: String::new(),
            at: self.line.now(),
            by_caller: true,
        });
        let (done, written) = oneshot::channel();
        self.line.send(Out::Stop);
        self.line.send(Out::Close(CloseReason { code: CloseCode::Normal, description: None }, Some(done)));
        let _ = tokio::time::timeout(Duration::from_secs(2), written).await;
        if let Some(mut reader) = take(&self.reader)
            && tokio::time::timeout(Duration::from_secs(2), &mut reader).await.is_err()
        {
            reader.abort();
        }
    }

    /// Waits up to `within` for the stream to close (the server hung up, the line dropped, or `hang_up`).
    pub async fn wait_closed(&self, within: Duration) -> Option<CloseInfo> {
        let mut rx = self.line.closed.subscribe();
        let closed = tokio::time::timeout(within, rx.wait_for(Option::is_some)).await;
        closed.ok().and_then(|r| r.ok()).and_then(|c| c.clone())
    }

    /// What the call has seen so far; `heard` includes audio playing right now up to this instant.
    pub fn report(&self) -> CallReport {
        let now = self.line.now();
        let state = self.line.state();
        let mut report = state.report.clone();
        report.heard = state.playback.heard_at(now);
        report
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        for task in [take(&self.speaker), take(&self.reader)].into_iter().flatten() {
            task.abort();
        }
        self.writer.abort();
    }
}

/// Sends `audio` then `silence_ms` of silence as 20 ms frames, holding the microphone. With `first`, the end
/// of `audio` is recorded as the end of the caller's first speech.
pub(super) async fn speak(
    line: &Line,
    mic: &tokio::sync::Mutex<()>,
    audio: &[u8],
    silence_ms: u32,
    realtime: bool,
    first: bool,
) {
    let _held = mic.lock().await;
    send_frames(line, audio, silence_ms, realtime, first).await;
}

/// `speak` for a caller already holding the microphone.
pub(super) async fn send_frames(line: &Line, audio: &[u8], silence_ms: u32, realtime: bool, first: bool) {
    let t0 = Instant::now();
    let silence = vec![SILENCE; silence_ms as usize * 8];
    let mut sent = 0u32;
    for (speech, bytes) in [(true, audio), (false, &silence[..])] {
        for chunk in bytes.chunks(FRAME_BYTES) {
            let mut frame = chunk.to_vec();
            frame.resize(FRAME_BYTES, SILENCE);
            sent += 1;
            if realtime {
                // A frame leaves once its 20 ms have been "recorded", as Twilio's do.
                tokio::time::sleep_until(t0 + FRAME * sent).await;
            }
            line.send(Out::Media(frame));
        }
        if speech && first {
            let now = line.now();
            line.state().speech_ended = Some(now);
        }
    }
}
