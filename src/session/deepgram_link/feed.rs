//! [`SttFeed`]: the path the session's microphone audio takes into the Deepgram connection, without an actor
//! message per 20 ms frame.
//!
//! The session (`children`) writes every chunk straight in with [`SttFeed::push`]; its [`super::DeepgramLink`]
//! puts the connection's writer in when a connection opens and takes it out when it is lost, settles what
//! Deepgram has transcribed, and reads the clock to map results back to arrival times. Both run on the
//! session's thread (the link is started there), so the feed is shared as an `Rc<RefCell<_>>` and each chunk
//! costs a borrow, not a mailbox envelope and a handler call. The link still decides everything else:
//! connecting, replaying, keep-alives, finalising and closing.
//!
//! A long silence goes out in fewer, larger writes: once the audio has been quiet for longer than Deepgram's
//! own windows (`utterance_end_ms` plus [`QUIET_MARGIN_SECS`]), quiet chunks are held and written
//! [`HELD_SECS`] at a time. Nothing Deepgram could act on waits: the first chunk that is not quiet, every
//! text message (KeepAlive, Finalize, CloseStream) and every replay write what is held first, so speech
//! onset, the end of an utterance and barge-in gain no latency; a lost connection drops it with the rest.

use std::cell::{RefCell, RefMut};
use std::rc::Rc;
use std::time::Instant;

use awc::ws::Message as WsMessage;
use bytes::{Bytes, BytesMut};

use super::clock::AudioClock;
use super::replay::ReplayBuffer;
use super::settings::SttSettings;
use crate::session::ws_upstream::WsSink;

/// Audio kept while (re)connecting when no replay is configured, in seconds; older audio is dropped.
const MIN_BUFFERED_SECS: f64 = 10.0;

/// Quiet beyond Deepgram's utterance-end window after which quiet audio is held, in seconds.
pub const QUIET_MARGIN_SECS: f64 = 1.0;

/// Held quiet audio is written once it is this long, in seconds (five 20 ms frames).
pub const HELD_SECS: f64 = 0.1;

/// The audio path of one DeepgramLink, shared with the session that feeds it.
#[derive(Clone)]
pub struct SttFeed(Rc<RefCell<Feed>>);

/// What the feed holds.
pub(super) struct Feed {
    /// The open connection's writer; `None` while connecting, waiting to reconnect, or after the end.
    pub sink: Option<WsSink>,
    /// False once the link is closing or has failed: audio is then dropped.
    pub accepting: bool,
    /// Audio since the last final result (sent or not yet), oldest first: replayed into a new connection.
    pub unsettled: ReplayBuffer,
    pub clock: AudioClock,
    /// Session audio time at which the current connection's audio time 0 lies.
    pub offset: f64,
    pub last_sent: Instant,
    /// Whether sent audio is kept for replay (`PARLEY_STT_REPLAY_SECS` > 0).
    replay: bool,
    /// Bytes of quiet audio in a row, up to the latest chunk.
    quiet_run: usize,
    /// Quiet for this many bytes, later quiet chunks are held.
    hold_after: usize,
    /// Quiet audio taken for the open connection (its clock has it) but not written yet.
    held: BytesMut,
    /// `held` is written once it has this many bytes.
    held_limit: usize,
}

impl SttFeed {
    pub fn new(settings: &SttSettings) -> SttFeed {
        let limit = settings.replay_secs.max(MIN_BUFFERED_SECS);
        SttFeed(Rc::new(RefCell::new(Feed {
            sink: None,
            accepting: true,
            unsettled: ReplayBuffer::new(settings.encoding, settings.bytes_per_second(), limit),
            clock: AudioClock::new(settings.bytes_per_second()),
            offset: 0.0,
            last_sent: Instant::now(),
            replay: settings.replay_secs > 0.0,
            quiet_run: 0,
            hold_after: ((f64::from(settings.utterance_end_ms) / 1000.0 + QUIET_MARGIN_SECS)
                * settings.bytes_per_second()) as usize,
            held: BytesMut::new(),
            held_limit: (settings.bytes_per_second() * HELD_SECS) as usize,
        })))
    }

    /// A chunk of the client's audio, starting at session time `at`, that arrived at `arrived`; `quiet` (as good
    /// as silence) is kept for replay as its length only. Written to the connection when one is open, and kept
    /// until Deepgram settles it (or, without replay, until a connection takes it).
    pub fn push(&self, pcm: Bytes, arrived: Instant, at: f64, quiet: bool) {
        let mut feed = self.0.borrow_mut();
        if !feed.accepting {
            return;
        }
        feed.quiet_run = if quiet { feed.quiet_run + pcm.len() } else { 0 };
        let sent = if quiet && feed.quiet_run > feed.hold_after {
            feed.hold_audio(&pcm, arrived, at)
        } else {
            feed.send_audio(pcm.clone(), arrived, at)
        };
        if !sent || feed.replay {
            feed.unsettled.keep(&pcm, quiet, arrived, at, sent);
        }
    }

    pub(super) fn get(&self) -> RefMut<'_, Feed> {
        self.0.borrow_mut()
    }
}

impl Feed {
    /// Writes audio that starts at session time `at` and arrived at `arrived` to the open connection (the first
    /// audio of a connection fixes its time origin). Whether it was written.
    pub fn send_audio(&mut self, pcm: Bytes, arrived: Instant, at: f64) -> bool {
        if !self.take_audio(pcm.len(), arrived, at) {
            return false;
        }
        self.write_held();
        if let Some(sink) = &mut self.sink {
            let _ = sink.write(WsMessage::Binary(pcm));
            self.last_sent = Instant::now();
        }
        true
    }

    /// Like [`Feed::send_audio`], for quiet audio that may wait: held, and written with what is held once that
    /// is [`HELD_SECS`] long.
    fn hold_audio(&mut self, pcm: &[u8], arrived: Instant, at: f64) -> bool {
        if !self.take_audio(pcm.len(), arrived, at) {
            return false;
        }
        if self.held.is_empty() {
            // One allocation of the block's size, handed to the write whole (not grown by doubling).
            self.held.reserve(self.held_limit.max(pcm.len()));
        }
        self.held.extend_from_slice(pcm);
        if self.held.len() >= self.held_limit {
            self.write_held();
        }
        true
    }

    /// Puts `len` bytes of audio on the open connection's clock (the first audio of a connection fixes its
    /// time origin); false when there is no connection or nothing to send (an empty binary frame means "close
    /// stream" to Deepgram).
    fn take_audio(&mut self, len: usize, arrived: Instant, at: f64) -> bool {
        if self.sink.is_none() || len == 0 {
            return false;
        }
        if self.clock.now() == 0.0 {
            self.offset = at;
        }
        self.clock.record(len, arrived);
        true
    }

    /// Writes the held quiet audio, if any.
    fn write_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        // Taken whole, so that no part of the block's allocation stays with the feed once it is written.
        let block = std::mem::take(&mut self.held).freeze();
        if let Some(sink) = &mut self.sink {
            let _ = sink.write(WsMessage::Binary(block));
            self.last_sent = Instant::now();
        }
    }

    /// Writes a text message to the open connection, if there is one, after any held audio.
    pub fn send_text(&mut self, text: String) {
        self.write_held();
        if let Some(sink) = &mut self.sink {
            let _ = sink.write(WsMessage::Text(text.into()));
            self.last_sent = Instant::now();
        }
    }

    /// A new connection: everything kept is sent again (or, without replay, what was never sent), oldest
    /// first. How many frames went out again.
    pub fn replay(&mut self, encoding: crate::audio::level::InputEncoding) -> usize {
        // Held audio belonged to the lost connection; what of it is kept for replay goes out below.
        self.held = BytesMut::new();
        let frames = self.unsettled.frames(encoding, self.replay);
        let mut again = 0;
        let mut sent = false;
        for f in frames {
            again += usize::from(f.again);
            sent |= self.send_audio(f.pcm, f.arrived, f.at);
        }
        if sent {
            self.unsettled.mark_sent();
        }
        again
    }

    /// Deepgram settled the audio up to session time `end`: it will not be needed again.
    pub fn settled(&mut self, end: f64) {
        self.unsettled.settled(end);
        self.clock.forget_before(end - self.offset);
    }

    /// The link is done: nothing more is accepted or kept.
    pub fn stop(&mut self) {
        self.accepting = false;
        self.unsettled.clear();
        self.held = BytesMut::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::level::InputEncoding;

    fn settings(replay_secs: f64) -> SttSettings {
        crate::session::deepgram_link::settings::for_tests("ws://127.0.0.1:9/v1", replay_secs)
    }

    fn kept(feed: &SttFeed) -> Vec<u8> {
        let frames = feed.get().unsettled.frames(InputEncoding::Linear16, true);
        frames.into_iter().flat_map(|f| f.pcm.to_vec()).collect()
    }

    #[test]
    fn audio_before_a_connection_is_kept_unsent_and_nothing_once_stopped() {
        for replay_secs in [15.0, 0.0] {
            let feed = SttFeed::new(&settings(replay_secs));
            let t = Instant::now();
            feed.push(Bytes::from(vec![7u8; 640]), t, 0.0, false);
            feed.push(Bytes::from(vec![9u8; 640]), t, 0.02, false);
            let expected: Vec<u8> = [vec![7u8; 640], vec![9u8; 640]].concat();
            assert_eq!(kept(&feed), expected, "kept for the connection being opened (replay {replay_secs})");
            assert_eq!(feed.get().unsettled.frames(InputEncoding::Linear16, false).len(), 2, "not sent yet");
            assert_eq!(feed.get().replay(InputEncoding::Linear16), 0, "no connection: nothing goes out");
            assert_eq!(feed.get().clock.now(), 0.0);
            feed.get().stop();
            feed.push(Bytes::from(vec![1u8; 640]), t, 0.04, false);
            assert!(kept(&feed).is_empty(), "a stopped link keeps and takes nothing");
        }
    }
}
