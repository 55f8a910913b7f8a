//! ClientSocket: the WebSocket of one voice session and the parent of its actor tree (see `session`).
//!
//! Owns the session's state: who it is, the conversation memory, the utterance being heard and the assistant
//! turn in progress. Starts its children (DeepgramLink lazily on the first audio frame, LlmWorker, TtsLink,
//! Persister on the storage arbiter), hears from them through `Recipient`s, and stops them all when it stops.
//! Heartbeats the client, registers with the Registry, and drains on shutdown. Decisions about turns live in
//! `turns.rs`; reactions to the children in `events.rs`.
//!
//! Protocol violations never end the session when it can go on: they get an `error` event. Only what cannot be
//! recovered closes it (an oversized frame the codec refuses: 1009; a binary frame that is not audio when no
//! audio is expected: never, audio is always accepted).

mod events;
mod turns;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws;
use bytes::Bytes;

use super::barge_in::{BargeIn, VOICED_RMS, pcm16_rms};
use super::deepgram_link::{DeepgramLink, SttAudio, SttSettings, SttShutdown};
use super::llm_worker::{LlmSettings, LlmWorker, StopWorker};
use super::memory::{Memory, Remembered};
use super::persister::{Persist, Persister, Write};
use super::protocol::{ClientMessage, ServerMessage, TurnId, parse_client_message};
use super::tts_link::{TtsLink, TtsSettings, TtsShutdown};
use super::utterance::Utterance;
use crate::db::{NewSession, SessionId, UserId};
use crate::recording::recorder::{FinishRecording, Recorder, RecorderSetup, UserAudio};
use crate::recording::spool::TrackFormat;
use crate::registry::{ConnectionId, Drain, LiveSession, Register, Unregister};
use crate::startup::AppState;

/// How often the client is pinged.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// A client silent for this long (no frame, no pong) is gone.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Who the session is, decided (and validated) by the route before the upgrade.
#[derive(Debug, Clone)]
pub struct SessionParams {
    pub session_id: SessionId,
    pub user_id: UserId,
    /// Continuing a stored session; `history` holds its messages.
    pub resumed: bool,
    pub history: Vec<Remembered>,
    pub sample_rate: u32,
    pub peer: Option<String>,
}

/// The session's WebSocket actor.
pub struct ClientSocket {
    params: SessionParams,
    app: AppState,
    client: awc::Client,
    registration: Option<ConnectionId>,
    ready: bool,
    last_seen: Instant,
    draining: bool,

    stt: Option<Addr<DeepgramLink>>,
    /// Speech recognition gave up: audio is dropped until this instant (a transient outage: the link is
    /// restarted by the next audio after it), or for good when `None` (refused key or settings).
    stt_down: Option<Option<Instant>>,
    llm: Option<Addr<LlmWorker>>,
    tts: Option<Addr<TtsLink>>,
    persister: Option<Addr<Persister>>,
    recorder: Option<Addr<Recorder>>,

    memory: Memory,
    utterance: Utterance,
    commit_timer: Option<SpawnHandle>,
    finalize_timer: Option<SpawnHandle>,
    /// When the audio of the latest recognised word arrived (the end of speech, for latency).
    last_speech_end: Option<Instant>,
    barge_in: BargeIn,
    /// Seconds of client audio received (the session audio time).
    audio_time: f64,
    next_turn: TurnId,
    turn: Option<turns::ActiveTurn>,
    /// Error codes already reported, for failures that would otherwise repeat every turn.
    reported: Vec<String>,
}

impl ClientSocket {
    pub fn new(params: SessionParams, app: AppState, client: awc::Client) -> ClientSocket {
        let tuning = &app.config.turns;
        let mut memory = Memory::new(app.config.limits.history_max_chars);
        for m in &params.history {
            memory.push(m.role, m.text.clone());
        }
        ClientSocket {
            barge_in: BargeIn::new(tuning.barge_in_min_words, tuning.barge_in_min_speech),
            params,
            app,
            client,
            registration: None,
            ready: false,
            last_seen: Instant::now(),
            draining: false,
            stt: None,
            stt_down: None,
            llm: None,
            tts: None,
            persister: None,
            recorder: None,
            memory,
            utterance: Utterance::default(),
            commit_timer: None,
            finalize_timer: None,
            last_speech_end: None,
            audio_time: 0.0,
            next_turn: 1,
            turn: None,
            reported: Vec::new(),
        }
    }

    fn session(&self) -> &str {
        self.params.session_id.as_str()
    }

    fn send(&self, ctx: &mut ws::WebsocketContext<Self>, message: &ServerMessage) {
        ctx.text(message.to_json());
    }

    fn send_error(&self, ctx: &mut ws::WebsocketContext<Self>, code: &str, error: impl Into<String>, retryable: bool) {
        self.send(ctx, &ServerMessage::error(code, error, retryable));
    }

    /// Sends an error event only the first time this code comes up in the session.
    fn send_error_once(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: String, error: String, retryable: bool) {
        if !self.reported.contains(&code) {
            self.send_error(ctx, &code, error, retryable);
            self.reported.push(code);
        }
    }

    fn persist(&self, write: Write) {
        if let Some(p) = &self.persister {
            p.do_send(Persist(write));
        }
    }

    fn start_children(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let session = self.session().to_string();
        let (app, me) = (&self.app, ctx.address());
        let (store, metrics, pending) = (app.store.clone(), app.metrics.clone(), app.pending_writes.clone());
        let (id, parent) = (self.params.session_id.clone(), me.clone().recipient());
        let uploader = Some(app.uploader.clone());
        let persister = Persister::start_in_arbiter(&app.storage, move |_| {
            Persister::new(store, id, parent, uploader, metrics, pending)
        });
        let recorder = RecorderSetup {
            session_id: self.params.session_id.clone(),
            user_id: self.params.user_id.clone(),
            spool_dir: app.config.database.data_dir.join("spool"),
            microphone: TrackFormat::microphone(self.params.sample_rate),
            assistant: TrackFormat::assistant(&app.config.elevenlabs.output_format),
            backend: app.recordings.backend(),
            persister: persister.clone(),
            metrics: app.metrics.clone(),
            pending: app.pending_writes.clone(),
        };
        self.recorder = Some(Recorder::start_in_arbiter(&app.storage, move |_| Recorder::new(recorder)));
        self.persister = Some(persister);
        self.llm = Some(
            LlmWorker::new(
                LlmSettings::from_config(&app.config),
                self.client.clone(),
                me.clone().recipient(),
                app.metrics.clone(),
                session.clone(),
            )
            .start(),
        );
        self.tts = Some(
            TtsLink::new(
                TtsSettings::from_config(&app.config),
                self.client.clone(),
                me.recipient(),
                app.metrics.clone(),
                session,
            )
            .start(),
        );
    }

    /// The STT link, started on the first audio so text-only sessions never open a Deepgram socket. This is the
    /// restart policy of the link too: after it gave up on a transient outage it is started afresh once
    /// `PARLEY_STT_RESTART_MS` has passed; after a refusal it stays down for the session.
    fn stt(&mut self, ctx: &mut ws::WebsocketContext<Self>) -> Option<Addr<DeepgramLink>> {
        match self.stt_down {
            Some(None) => return None,
            Some(Some(until)) if Instant::now() < until => return None,
            Some(Some(_)) => {
                self.stt_down = None;
                self.send(ctx, &ServerMessage::Status { message: "speech recognition is starting again".into() });
            }
            None => {}
        }
        if self.stt.is_none() {
            let link = DeepgramLink::new(
                SttSettings::from_config(&self.app.config, self.params.sample_rate),
                self.client.clone(),
                ctx.address().recipient(),
                self.app.metrics.clone(),
                self.session().to_string(),
            );
            self.stt = Some(link.start());
        }
        self.stt.clone()
    }

    fn on_audio(&mut self, pcm: Bytes, ctx: &mut ws::WebsocketContext<Self>) {
        let limit = self.app.config.limits.max_audio_frame_bytes;
        if !self.ready {
            return self.send_error(ctx, "not_ready", "audio sent before the session was ready; it was dropped", true);
        }
        if pcm.len() > limit {
            let msg = format!("audio frame of {} bytes is over the limit of {limit}; it was dropped", pcm.len());
            return self.send_error(ctx, "frame_too_large", msg, false);
        }
        if pcm.is_empty() {
            return;
        }
        let arrived = Instant::now();
        self.audio_time += pcm.len() as f64 / (f64::from(self.params.sample_rate) * 2.0);
        let voiced = pcm16_rms(&pcm) > VOICED_RMS;
        if self.barge_in.on_audio(self.audio_time, voiced) && self.assistant_speaking() {
            self.interrupt(ctx);
        }
        if let Some(recorder) = &self.recorder {
            recorder.do_send(UserAudio(pcm.clone()));
        }
        if let Some(stt) = self.stt(ctx) {
            stt.do_send(SttAudio { pcm, arrived });
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let limit = self.app.config.limits.max_text_frame_bytes;
        if text.len() > limit {
            let msg = format!("message of {} bytes is over the limit of {limit}; it was ignored", text.len());
            return self.send_error(ctx, "message_too_large", msg, false);
        }
        match parse_client_message(text) {
            Err(e) => self.send_error(ctx, e.code(), e.to_string(), false),
            Ok(ClientMessage::Ping) => self.send(ctx, &ServerMessage::Pong),
            Ok(ClientMessage::Interrupt) => {
                if self.assistant_speaking() {
                    self.interrupt(ctx);
                }
            }
            Ok(ClientMessage::Text { text }) => {
                if !self.ready {
                    return self.send_error(ctx, "not_ready", "message sent before the session was ready", true);
                }
                self.typed_turn(text.trim().to_string(), ctx);
            }
            Ok(ClientMessage::CloseMicrophone) => self.close_microphone(ctx),
        }
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: ws::CloseCode, reason: &str) {
        ctx.close(Some(ws::CloseReason { code, description: Some(reason.to_string()) }));
        ctx.stop();
    }
}

impl Actor for ClientSocket {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let info = LiveSession {
            session_id: self.params.session_id.clone(),
            user_id: self.params.user_id.clone(),
            connected_at: chrono::Utc::now(),
            peer: self.params.peer.clone(),
        };
        let drain = ctx.address().recipient::<Drain>().downgrade();
        // Registration is short and must finish before the session is announced.
        ctx.wait(self.app.registry.send(Register { info, drain }).into_actor(self).map(
            |result, this, ctx| match result {
                Ok(Ok(id)) => {
                    this.registration = Some(id);
                    this.begin(ctx);
                }
                Ok(Err(full)) => {
                    this.send_error(ctx, "server_busy", full.to_string(), true);
                    this.close(ctx, ws::CloseCode::Again, "server busy");
                }
                Err(_) => this.close(ctx, ws::CloseCode::Error, "registry unavailable"),
            },
        ));
        ctx.run_interval(HEARTBEAT_EVERY, |this, ctx| {
            if this.last_seen.elapsed() > CLIENT_TIMEOUT {
                log::info!("session {}: client silent for {CLIENT_TIMEOUT:?}; closing", this.session());
                ctx.stop();
            } else {
                ctx.ping(b"");
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.abandon_turn();
        if let Some(stt) = self.stt.take() {
            stt.do_send(SttShutdown);
        }
        if let Some(tts) = self.tts.take() {
            tts.do_send(TtsShutdown);
        }
        if let Some(llm) = self.llm.take() {
            llm.do_send(StopWorker);
        }
        // The persister finishes its queue and stops once this address is gone; the recorder finishes its files.
        self.persister = None;
        if let Some(recorder) = self.recorder.take() {
            recorder.do_send(FinishRecording);
        }
        if let Some(id) = self.registration.take() {
            self.app.registry.do_send(Unregister(id));
        }
        log::info!("session {} ended", self.session());
    }
}

impl ClientSocket {
    /// Registered: start the tree, store or touch the session row, and announce the session.
    fn begin(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.start_children(ctx);
        let now = crate::db::now();
        if self.params.resumed {
            self.persist(Write::Touch(now));
        } else {
            self.persist(Write::CreateSession(NewSession {
                id: self.params.session_id.clone(),
                user_id: self.params.user_id.clone(),
                created_at: now,
                model_id: self.app.config.openai.model.clone(),
                voice_id: self.app.config.elevenlabs.voice_id.clone(),
            }));
        }
        let el = &self.app.config.elevenlabs;
        self.send(
            ctx,
            &ServerMessage::Session {
                session_id: self.params.session_id.to_string(),
                user_id: self.params.user_id.to_string(),
                output_format: el.output_format.to_string(),
                mime_type: el.mime_type.clone(),
                sample_rate: self.params.sample_rate,
                resumed: self.params.resumed,
                history_messages: self.memory.len(),
                emulated: self.app.config.emulated,
            },
        );
        if self.app.config.emulated {
            self.send(
                ctx,
                &ServerMessage::Status {
                    message: "providers are emulated: transcripts, replies and voice are synthetic".into(),
                },
            );
        }
        self.ready = true;
        log::info!(
            "session {} started for {} ({} from history)",
            self.session(),
            self.params.user_id,
            self.memory.len()
        );
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for ClientSocket {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_seen = Instant::now();
        match msg {
            Ok(ws::Message::Binary(pcm)) => self.on_audio(pcm, ctx),
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(p)) => ctx.pong(&p),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Close(reason)) => {
                log::info!("session {}: client closed ({reason:?})", self.session());
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Continuation(_)) => {
                self.send_error(ctx, "unsupported_frame", "fragmented messages are not supported", false);
            }
            Ok(ws::Message::Nop) => {}
            Err(ws::ProtocolError::Overflow) => {
                let limit =
                    self.app.config.limits.max_audio_frame_bytes.max(self.app.config.limits.max_text_frame_bytes);
                self.close(ctx, ws::CloseCode::Size, &format!("frame larger than {} bytes", limit * 4));
            }
            Err(e) => {
                log::info!("session {}: WebSocket protocol error: {e}", self.session());
                self.close(ctx, ws::CloseCode::Protocol, "protocol error");
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        // The client's socket ended (closed or vanished).
        ctx.stop();
    }
}

impl Handler<Drain> for ClientSocket {
    type Result = ();

    fn handle(&mut self, msg: Drain, ctx: &mut Self::Context) {
        self.draining = true;
        self.send(
            ctx,
            &ServerMessage::Status { message: "the server is restarting; this conversation will end".into() },
        );
        if self.turn.is_none() {
            return self.close(ctx, ws::CloseCode::Away, "server shutting down");
        }
        ctx.run_later(msg.grace, |this, ctx| this.close(ctx, ws::CloseCode::Away, "server shutting down"));
    }
}

/// The frame size the codec accepts: larger than the limits so an oversized frame gets an error event and the
/// session goes on; beyond this the codec refuses it and the connection closes with 1009.
pub fn codec_frame_limit(app: &Arc<crate::config::Config>) -> usize {
    app.limits.max_audio_frame_bytes.max(app.limits.max_text_frame_bytes) * 4
}
