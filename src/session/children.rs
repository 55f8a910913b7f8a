//! [`Children`]: the session's child actors and how the conversation's [`Command`]s reach them.
//!
//! Started when the session is admitted: LlmWorker and TtsLink on the connection's thread, Persister and
//! Recorder on the storage arbiter; DeepgramLink only when the conversation asks for it (first audio, or a
//! restart after an outage). Children report to the session through the [`Reporters`] it hands over
//! (`Recipient`s), never through its concrete address. Microphone audio for speech recognition goes straight
//! into the link's [`SttFeed`] (no message per frame). Audio for the recorder, the microphone's and the
//! replies' alike, is gathered here into blocks of [`RECORDER_BLOCK_BYTES`] (and handed over at each turn
//! boundary), so the storage thread gets one message per block rather than one per frame or per TTS chunk.

use actix::prelude::*;
use bytes::Bytes;

use super::conversation::Command;
use super::deepgram_link::{DeepgramLink, SttEvent, SttFeed, SttFinalize, SttSettings, SttShutdown};
use super::llm_worker::Caller;
use super::llm_worker::{LlmEvent, LlmWorker, StopWorker};
use super::settings::{SessionDeps, SessionParams};
use super::tts_link::{TtsEvent, TtsLink, TtsSettings, TtsShutdown};
use crate::db::TurnId;
use crate::persistence::{Persist, Persisted, Persister};
use crate::recording::recorder::{AssistantAudio, FinishRecording, Recorder, RecorderSetup, UserAudio};
use crate::recording::spool::TrackFormat;

/// Audio handed to the recorder at once (half a second of 16 kHz PCM, two of 8 kHz µ-law, four of 32 kbit/s
/// MP3). A block is allocated when audio comes and handed over whole, so a session holds at most one a side.
pub const RECORDER_BLOCK_BYTES: usize = 16 * 1024;

/// Audio gathered for the recorder until a block is full or a turn boundary hands it over.
#[derive(Default)]
struct Gathered(Vec<u8>);

impl Gathered {
    /// Adds `bytes`, first handing over what is gathered when they would overfill it; a chunk of a block or more
    /// is handed over as it is. Order is kept.
    fn add(&mut self, bytes: Bytes, mut hand_over: impl FnMut(Bytes)) {
        if self.0.len() + bytes.len() > RECORDER_BLOCK_BYTES {
            self.flush(&mut hand_over);
        }
        if bytes.len() >= RECORDER_BLOCK_BYTES {
            hand_over(bytes);
        } else {
            if self.0.capacity() == 0 {
                self.0.reserve_exact(RECORDER_BLOCK_BYTES);
            }
            self.0.extend_from_slice(&bytes);
        }
    }

    /// Hands over what is gathered, if anything.
    fn flush(&mut self, mut hand_over: impl FnMut(Bytes)) {
        if !self.0.is_empty() {
            hand_over(Bytes::from(std::mem::take(&mut self.0)));
        }
    }
}

/// Where the children report: the session's own recipients.
#[derive(Clone)]
pub struct Reporters {
    pub stt: Recipient<SttEvent>,
    pub llm: Recipient<LlmEvent>,
    pub tts: Recipient<TtsEvent>,
    pub saved: Recipient<Persisted>,
}

/// The running children of one session.
pub struct Children {
    session: String,
    deps: SessionDeps,
    client: awc::Client,
    stt_settings: SttSettings,
    reporters: Reporters,
    /// Speech recognition, once started: the link, and the feed the audio goes into directly.
    stt: Option<(Addr<DeepgramLink>, SttFeed)>,
    llm: Addr<LlmWorker>,
    tts: Addr<TtsLink>,
    persister: Addr<Persister>,
    recorder: Addr<Recorder>,
    /// Microphone audio not yet handed to the recorder.
    microphone: Gathered,
    /// Reply audio not yet handed to the recorder, and the turn it belongs to.
    reply: (Option<TurnId>, Gathered),
}

impl Children {
    /// Starts every child but speech recognition.
    pub fn start(params: &SessionParams, deps: &SessionDeps, client: awc::Client, reporters: Reporters) -> Children {
        let session = params.session_id.to_string();
        let settings = &params.settings;
        let persister = {
            let (store, metrics, pending) = (deps.store.clone(), deps.metrics.clone(), deps.pending.clone());
            let (id, saved, uploader) =
                (params.session_id.clone(), reporters.saved.clone(), deps.recordings.uploader.clone());
            let (journal, committer) = (deps.journal.clone(), deps.committer.clone());
            Persister::start_in_arbiter(&deps.storage, move |_| {
                Persister::new(store, id, saved, Some(uploader), metrics, pending, journal).with_committer(committer)
            })
        };
        let recorder = {
            let setup = RecorderSetup {
                session_id: params.session_id.clone(),
                user_id: params.user_id.clone(),
                spool_dir: deps.recordings.spool_dir.clone(),
                microphone: TrackFormat::microphone(params.audio_in.encoding, params.audio_in.sample_rate),
                assistant: TrackFormat::assistant(&params.output_format),
                backend: deps.recordings.backend,
                instance: deps.recordings.instance.clone(),
                persister: persister.clone(),
                metrics: deps.metrics.clone(),
                pending: deps.pending.clone(),
                lanes: deps.recordings.lanes.clone(),
            };
            Recorder::start_in_arbiter(&deps.storage, move |_| Recorder::new(setup))
        };
        let llm = LlmWorker::new(
            settings.llm.clone(),
            client.clone(),
            reporters.llm.clone(),
            deps.metrics.clone(),
            Caller { session_id: session.clone(), user_id: params.user_id.to_string(), agent: settings.agent.clone() },
        )
        .start();
        let tts_settings = TtsSettings { output_format: params.output_format, ..settings.tts.clone() };
        let tts =
            TtsLink::new(tts_settings, client.clone(), reporters.tts.clone(), deps.metrics.clone(), session.clone())
                .start();
        Children {
            stt_settings: settings.stt.for_input(params.audio_in),
            session,
            deps: deps.clone(),
            client,
            reporters,
            stt: None,
            llm,
            tts,
            persister,
            recorder,
            microphone: Gathered::default(),
            reply: (None, Gathered::default()),
        }
    }

    /// Carries out one command of the conversation (timers are the session actor's).
    pub fn run(&mut self, command: Command) {
        match command {
            Command::StartStt => {
                let feed = SttFeed::new(&self.stt_settings);
                let link = DeepgramLink::new(
                    self.stt_settings.clone(),
                    self.client.clone(),
                    self.reporters.stt.clone(),
                    self.deps.metrics.clone(),
                    self.session.clone(),
                    feed.clone(),
                );
                // A previous link has already stopped itself (it reported its failure). Started on this thread,
                // which the feed relies on.
                self.stt = Some((link.start(), feed));
            }
            Command::SttAudio { pcm, arrived, at, quiet } => {
                if let Some((_, feed)) = &self.stt {
                    feed.push(pcm, arrived, at, quiet);
                }
            }
            Command::SttFinalize => {
                if let Some((stt, _)) = &self.stt {
                    stt.do_send(SttFinalize);
                }
            }
            Command::Complete(m) => self.llm.do_send(m),
            Command::CancelCompletion(m) => self.llm.do_send(m),
            Command::ConfirmCompletion(m) => self.llm.do_send(m),
            Command::ClientToolAnswer(m) => self.llm.do_send(m),
            Command::Tts(m) => self.tts.do_send(m),
            Command::RecordUser(UserAudio(pcm)) => {
                let recorder = &self.recorder;
                self.microphone.add(pcm, |block| recorder.do_send(UserAudio(block)));
            }
            Command::UserTurnCommitted(m) => {
                self.flush_microphone();
                self.recorder.do_send(m);
            }
            Command::RecordAssistant(AssistantAudio { turn_id, bytes }) => {
                if self.reply.0 != Some(turn_id) {
                    self.flush_reply();
                    self.reply.0 = Some(turn_id);
                }
                let recorder = &self.recorder;
                self.reply.1.add(bytes, |block| recorder.do_send(AssistantAudio { turn_id, bytes: block }));
            }
            Command::AssistantTurnEnded(m) => {
                self.flush_reply();
                self.recorder.do_send(m);
            }
            Command::Persist(write) => self.persister.do_send(Persist(write)),
            Command::StartTimer(..) | Command::CancelTimer(_) => {
                log::error!("session {}: a timer command reached the children", self.session);
            }
        }
    }

    /// Hands the gathered microphone audio to the recorder.
    fn flush_microphone(&mut self) {
        let recorder = &self.recorder;
        self.microphone.flush(|block| recorder.do_send(UserAudio(block)));
    }

    /// Hands the gathered reply audio to the recorder, under its turn.
    fn flush_reply(&mut self) {
        let recorder = &self.recorder;
        if let (Some(turn_id), gathered) = &mut self.reply {
            let turn_id = *turn_id;
            gathered.flush(|bytes| recorder.do_send(AssistantAudio { turn_id, bytes }));
        }
    }

    /// The session is over: every child finishes what it must and stops. The persister stops by itself once
    /// its queue is written and no address of it is left.
    pub fn shut_down(mut self) {
        self.flush_microphone();
        self.flush_reply();
        if let Some((stt, _)) = self.stt.take() {
            stt.do_send(SttShutdown);
        }
        self.tts.do_send(TtsShutdown);
        self.llm.do_send(StopWorker);
        self.recorder.do_send(FinishRecording);
    }
}

impl std::fmt::Debug for Children {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Children").field("session", &self.session).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathered_audio_goes_over_in_full_blocks_in_order_with_nothing_lost() {
        let mut gathered = Gathered::default();
        let mut handed: Vec<Bytes> = Vec::new();
        let chunk = |n: usize, value: u8| Bytes::from(vec![value; n]);
        // 3,000-byte chunks: five fit in a block, the sixth hands the five over first.
        for i in 0..6u8 {
            gathered.add(chunk(3000, i), |b| handed.push(b));
        }
        assert_eq!(handed.iter().map(Bytes::len).collect::<Vec<_>>(), [15_000]);
        // A chunk of a block or more goes over as it is, after what was gathered before it.
        gathered.add(chunk(RECORDER_BLOCK_BYTES, 9), |b| handed.push(b));
        assert_eq!(handed.iter().map(Bytes::len).collect::<Vec<_>>(), [15_000, 3000, RECORDER_BLOCK_BYTES]);
        gathered.add(chunk(10, 10), |b| handed.push(b));
        gathered.flush(|b| handed.push(b));
        gathered.flush(|b| handed.push(b));
        assert_eq!(handed.len(), 4, "a second flush hands over nothing");
        let all: Vec<u8> = handed.iter().flat_map(|b| b.iter().copied()).collect();
        let mut expected: Vec<u8> = (0..6u8).flat_map(|i| vec![i; 3000]).collect();
        expected.extend(vec![9; RECORDER_BLOCK_BYTES]);
        expected.extend(vec![10; 10]);
        assert_eq!(all, expected, "every byte, in order");
    }
}
