//! Recorder: writes one session's audio to spool files, one per turn and side, and hands each finished file
//! to the session's Persister, which registers it (after the session row, in order) and passes it to the
//! Uploader.
//!
//! Parent: the session (`session::client_socket`), which forwards the microphone audio ([`UserAudio`], in
//! blocks of many frames rather than one message per frame), the audio it sent for each assistant turn
//! ([`AssistantAudio`]), the turn boundaries and, at the end, [`FinishRecording`]. Runs on the storage
//! arbiter so disk writes never touch the audio path.
//!
//! The user's recording of a turn is the microphone audio received since the previous turn was committed, up
//! to this one's commit (typed turns have none). The assistant's is exactly the audio sent to the client for
//! the turn, so an interrupted reply is recorded as far as it was sent. Audio after the last commit belongs to
//! no turn and is discarded at the end. A file that cannot be written is logged and counted
//! (`parley_recordings_lost_total`).
//!
//! Each side's recordings go one after another into one spool file of the session (a lane, opened with the
//! side's first recording and closed at the end: no file is created per turn); a recording is a byte range of
//! it, cut out when it is stored. A recording's object key is chosen when it begins (its timestamp is when
//! the recording began) and written to the lane's index, so a recording the process never finished still says
//! whose it is; each row names this instance as the holder of the lane.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;

use super::spool::{FinishedTrack, Lane, SpoolLanes, Track, TrackFormat};
use crate::db::{InstanceId, NewRecording, Role, SessionId, TurnId, UserId};
use crate::metrics::Metrics;
use crate::persistence::{PendingWrites, Persist, Persister, Write};

/// Microphone audio, in arrival order (any number of frames).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct UserAudio(pub Bytes);

/// An utterance was committed as `turn_id`: the microphone audio so far is its recording.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct UserTurnCommitted {
    pub turn_id: TurnId,
}

/// Audio of an assistant turn, as sent to the client.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct AssistantAudio {
    pub turn_id: TurnId,
    pub bytes: Bytes,
}

/// The assistant turn is over (completed or interrupted).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct AssistantTurnEnded {
    pub turn_id: TurnId,
}

/// The session is over: finish what is open and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FinishRecording;

/// Everything a recorder needs to know.
pub struct RecorderSetup {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub spool_dir: PathBuf,
    pub microphone: Option<TrackFormat>,
    pub assistant: TrackFormat,
    /// `local` or `gcs`.
    pub backend: &'static str,
    /// This instance: the holder of `spool_dir`.
    pub instance: InstanceId,
    pub persister: Addr<Persister>,
    pub metrics: Arc<Metrics>,
    pub pending: Arc<PendingWrites>,
    /// The process's lanes in use (shared with the uploader, which removes a lane once it is all stored).
    pub lanes: Arc<SpoolLanes>,
}

/// Per-session recorder.
pub struct Recorder {
    setup: RecorderSetup,
    user: Option<Track>,
    replies: HashMap<TurnId, Track>,
    /// Lanes with no recording open, for the next recording of their side. Usually one per side; a second is
    /// opened only when two replies are written at once, and a full one is replaced by a new one.
    free: Vec<(Role, Lane)>,
}

impl Recorder {
    pub fn new(setup: RecorderSetup) -> Recorder {
        // Open files count as pending writes until they are handed on, so shutdown waits for them.
        setup.pending.add();
        Recorder { setup, user: None, replies: HashMap::new(), free: Vec::new() }
    }

    fn session(&self) -> &str {
        self.setup.session_id.as_str()
    }

    fn lost(&self, what: &str, error: &std::io::Error) {
        log::error!("session {}: {what} recording lost: {error}", self.session());
        self.setup.metrics.recordings_lost_total.inc();
    }

    /// Appends to `track`, beginning it with `format` first; a write failure loses the recording (counted).
    fn write(&mut self, track: &mut Option<Track>, format: TrackFormat, bytes: &[u8], role: Role) {
        let what = role.as_str();
        if track.is_none() {
            let s = &self.setup;
            let key = super::object_key(
                s.user_id.as_str(),
                s.session_id.as_str(),
                role,
                format.extension(),
                crate::db::now(),
            );
            let lane = match self.lane(role) {
                Ok(lane) => lane,
                Err(e) => return self.lost(what, &e),
            };
            let path = lane.path().to_path_buf();
            match Track::start(lane, &key, format) {
                Ok(t) => *track = Some(t),
                Err(e) => {
                    self.setup.lanes.closed(&path);
                    return self.lost(what, &e);
                }
            }
        }
        if let Some(t) = track.as_mut()
            && let Err(e) = t.append(bytes)
        {
            self.lost(what, &e);
            if let Some(t) = track.take() {
                self.discard(t, role);
            }
        }
    }

    /// A free lane of `role`'s side, or a new one when there is none or it is full (the full one is closed: it
    /// goes once what it holds is stored).
    fn lane(&mut self, role: Role) -> std::io::Result<Lane> {
        if let Some(i) = self.free.iter().position(|(r, _)| *r == role) {
            let (_, lane) = self.free.swap_remove(i);
            if !lane.is_full() {
                return Ok(lane);
            }
            self.setup.lanes.closed(lane.path());
        }
        let s = &self.setup;
        let lane = Lane::create(&s.spool_dir, &s.user_id, &s.session_id, role)?;
        s.lanes.opened(lane.path());
        Ok(lane)
    }

    /// Drops `track`, its lane kept for the next recording of its side when it can be.
    fn discard(&mut self, track: Track, role: Role) {
        let path = track.lane_path().to_path_buf();
        match track.discard() {
            Some(lane) => self.free.push((role, lane)),
            None => self.setup.lanes.closed(&path),
        }
    }

    /// Completes `track` and hands it to the Persister as the recording of `(turn_id, role)`.
    fn finish(&mut self, track: Track, turn_id: TurnId, role: Role) {
        if track.audio_bytes() == 0 {
            return self.discard(track, role);
        }
        let path = track.lane_path().to_path_buf();
        let finished: FinishedTrack = match track.finish() {
            Ok((finished, lane)) => {
                self.free.push((role, lane));
                finished
            }
            Err(e) => {
                self.setup.lanes.closed(&path);
                return self.lost(role.as_str(), &e);
            }
        };
        let now = crate::db::now();
        let s = &self.setup;
        let recording = NewRecording {
            session_id: s.session_id.clone(),
            role,
            turn_id,
            object_key: finished.object_key,
            content_type: finished.format.content_type().to_string(),
            size_bytes: finished.size_bytes,
            duration_seconds: finished.duration_seconds,
            backend: s.backend,
            spool_path: finished.path.to_string_lossy().into_owned(),
            spool_offset: Some(finished.offset),
            created_at: now,
            instance_id: s.instance.clone(),
        };
        s.lanes.handed(&finished.path);
        s.persister.do_send(Persist(Write::Recording { turn_id, recording }));
    }
}

impl Actor for Recorder {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        // A recording still open (the actor stopped without `FinishRecording`) is left as it is, its lane with
        // it: the next start's orphan scan takes it, as it would after a crash.
        for (_, lane) in self.free.drain(..) {
            self.setup.lanes.closed(lane.path());
        }
        self.setup.pending.done();
    }
}

impl Handler<UserAudio> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: UserAudio, _: &mut Context<Self>) {
        let Some(format) = self.setup.microphone else {
            return;
        };
        let mut track = self.user.take();
        self.write(&mut track, format, &msg.0, Role::User);
        self.user = track;
    }
}

impl Handler<UserTurnCommitted> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: UserTurnCommitted, _: &mut Context<Self>) {
        if let Some(track) = self.user.take() {
            self.finish(track, msg.turn_id, Role::User);
        }
    }
}

impl Handler<AssistantAudio> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: AssistantAudio, _: &mut Context<Self>) {
        let mut track = self.replies.remove(&msg.turn_id);
        self.write(&mut track, self.setup.assistant, &msg.bytes, Role::Assistant);
        if let Some(t) = track {
            self.replies.insert(msg.turn_id, t);
        }
    }
}

impl Handler<AssistantTurnEnded> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: AssistantTurnEnded, _: &mut Context<Self>) {
        if let Some(track) = self.replies.remove(&msg.turn_id) {
            self.finish(track, msg.turn_id, Role::Assistant);
        }
    }
}

impl Handler<FinishRecording> for Recorder {
    type Result = ();

    fn handle(&mut self, _: FinishRecording, ctx: &mut Context<Self>) {
        let open: Vec<(TurnId, Track)> = self.replies.drain().collect();
        for (turn_id, track) in open {
            self.finish(track, turn_id, Role::Assistant);
        }
        if let Some(track) = self.user.take() {
            log::debug!(
                "session {}: {} bytes of microphone audio after the last turn discarded",
                self.session(),
                track.audio_bytes()
            );
            self.discard(track, Role::User);
        }
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::audio::OutputFormat;
    use crate::audio::level::InputEncoding;
    use crate::persistence::{Journal, Persisted};

    struct Ignore;

    impl Actor for Ignore {
        type Context = Context<Self>;
    }

    impl Handler<Persisted> for Ignore {
        type Result = ();
        fn handle(&mut self, _: Persisted, _: &mut Context<Self>) {}
    }

    fn files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    }

    #[actix::test]
    async fn a_sides_turns_share_one_spool_file_until_it_is_full_and_each_goes_once_stored() {
        let dir = tempfile::tempdir().unwrap();
        let (store, session) = crate::db::embedded_for_tests(dir.path(), "alice").await;
        let metrics = Arc::new(Metrics::new().unwrap());
        let cipher = Arc::new(crate::crypto::Cipher::new(1, &crate::config::KeyBytes([7; 32]), &[]));
        let journal = Arc::new(Journal::open(&dir.path().join("journal"), cipher, 1 << 20, metrics.clone()).unwrap());
        let pending = Arc::new(PendingWrites::default());
        let (parent, ids) = (Ignore.start().recipient(), session.clone());
        let persister =
            Persister::new(store.clone(), ids, parent, None, metrics.clone(), pending.clone(), journal).start();
        let (lanes, spool) = (Arc::new(SpoolLanes::default()), dir.path().join("spool"));
        let recorder = Recorder::new(RecorderSetup {
            session_id: session.clone(),
            user_id: "alice".parse().unwrap(),
            spool_dir: spool.clone(),
            microphone: TrackFormat::microphone(InputEncoding::Linear16, 16_000),
            assistant: TrackFormat::assistant(&OutputFormat::ELEVENLABS_DEFAULT),
            backend: "local",
            instance: InstanceId::generate(),
            persister,
            metrics,
            pending: pending.clone(),
            lanes: lanes.clone(),
        })
        .start();
        // Turns 1 and 2 are short; turn 3 takes the lane past LANE_RETIRE_BYTES, so turn 4 starts a new one.
        let block = Bytes::from(vec![1u8; 64 * 1024]);
        let blocks = (super::super::spool::LANE_RETIRE_BYTES / block.len() as u64) as usize;
        for (turn, n) in [(1, 1), (2, 2), (3, blocks), (4, 1)] {
            for _ in 0..n {
                recorder.do_send(UserAudio(block.clone()));
            }
            recorder.send(UserTurnCommitted { turn_id: turn }).await.unwrap();
        }
        recorder.do_send(UserAudio(block.clone())); // after the last commit: no turn's
        recorder.send(FinishRecording).await.unwrap();
        assert_eq!(pending.wait_idle(Duration::from_secs(10)).await, 0);

        let rows = store.session_recordings(&session).await.unwrap();
        let row = |turn: i64| rows.iter().find(|r| r.turn_id == turn).unwrap();
        let size = |turn: i64| row(turn).size_bytes as u64;
        let lane = |turn: i64| std::path::PathBuf::from(row(turn).spool_path.clone().unwrap());
        assert_eq!(rows.len(), 4);
        assert_eq!((size(1), size(2), size(4)), (44 + 65_536, 44 + 2 * 65_536, 44 + 65_536));
        assert_eq!(lane(1), lane(2));
        assert_eq!(lane(2), lane(3));
        assert_ne!(lane(3), lane(4), "the full lane was retired");
        let offsets: Vec<Option<u64>> = (1..=4).map(|t| row(t).spool_offset).collect();
        assert_eq!(offsets, [Some(0), Some(size(1)), Some(size(1) + size(2)), Some(0)]);
        assert_eq!(std::fs::metadata(lane(3)).unwrap().len(), size(1) + size(2) + size(3), "nothing after turn 3");
        assert_eq!(std::fs::metadata(lane(4)).unwrap().len(), size(4), "the audio after the last commit is cut off");

        // Both lanes are closed; each goes once everything in it is stored.
        assert_eq!(files(&spool), 4, "two lanes and their indexes");
        for _ in 0..3 {
            assert!(lane(1).exists());
            lanes.stored(&lane(1));
        }
        assert!(!lane(1).exists() && lane(4).exists());
        lanes.stored(&lane(4));
        assert_eq!(files(&spool), 0);
        assert!(lanes.is_empty());
    }
}
