//! [`Children`]: the session's child actors and how the conversation's [`Command`]s reach them.
//!
//! Started when the session is admitted: LlmWorker and TtsLink on the connection's thread, Persister and
//! Recorder on the storage arbiter; DeepgramLink only when the conversation asks for it (first audio, or a
//! restart after an outage). Children report to the session through the [`Reporters`] it hands over
//! (`Recipient`s), never through its concrete address. Microphone audio for speech recognition goes straight
//! into the link's [`SttFeed`] (no message per frame). Microphone audio for the recorder is gathered here
//! into blocks of [`RECORDER_BLOCK_BYTES`] (and at each turn boundary), so the storage thread gets one
//! message per block rather than one per 20 ms frame.

use actix::prelude::*;
use bytes::Bytes;

use super::conversation::Command;
use super::deepgram_link::{DeepgramLink, SttEvent, SttFeed, SttFinalize, SttSettings, SttShutdown};
use super::llm_worker::Caller;
use super::llm_worker::{LlmEvent, LlmWorker, StopWorker};
use super::settings::{SessionDeps, SessionParams};
use super::tts_link::{TtsEvent, TtsLink, TtsSettings, TtsShutdown};
use crate::persistence::{Persist, Persisted, Persister};
use crate::recording::recorder::{FinishRecording, Recorder, RecorderSetup, UserAudio};
use crate::recording::spool::TrackFormat;

/// Microphone audio handed to the recorder at once (half a second of 16 kHz PCM, two of 8 kHz µ-law). The
/// block is allocated when audio comes and handed over whole, so a session holds at most one.
pub const RECORDER_BLOCK_BYTES: usize = 16 * 1024;

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
    microphone: Vec<u8>,
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
            let journal = deps.journal.clone();
            Persister::start_in_arbiter(&deps.storage, move |_| {
                Persister::new(store, id, saved, Some(uploader), metrics, pending, journal)
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
            microphone: Vec::new(),
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
                if self.microphone.len() + pcm.len() > RECORDER_BLOCK_BYTES {
                    self.flush_microphone();
                }
                if pcm.len() >= RECORDER_BLOCK_BYTES {
                    self.recorder.do_send(UserAudio(pcm));
                } else {
                    if self.microphone.capacity() == 0 {
                        self.microphone.reserve_exact(RECORDER_BLOCK_BYTES);
                    }
                    self.microphone.extend_from_slice(&pcm);
                }
            }
            Command::UserTurnCommitted(m) => {
                self.flush_microphone();
                self.recorder.do_send(m);
            }
            Command::RecordAssistant(m) => self.recorder.do_send(m),
            Command::AssistantTurnEnded(m) => self.recorder.do_send(m),
            Command::Persist(write) => self.persister.do_send(Persist(write)),
            Command::StartTimer(..) | Command::CancelTimer(_) => {
                log::error!("session {}: a timer command reached the children", self.session);
            }
        }
    }

    /// Hands the gathered microphone audio to the recorder.
    fn flush_microphone(&mut self) {
        if !self.microphone.is_empty() {
            self.recorder.do_send(UserAudio(Bytes::from(std::mem::take(&mut self.microphone))));
        }
    }

    /// The session is over: every child finishes what it must and stops. The persister stops by itself once
    /// its queue is written and no address of it is left.
    pub fn shut_down(mut self) {
        self.flush_microphone();
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
