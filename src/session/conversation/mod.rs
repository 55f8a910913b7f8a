//! The conversation core: one voice conversation's turn-taking, written once for every transport.
//!
//! A [`Conversation`] is plain state driven by plain [`Input`]s (audio in, text in, interrupt, the end of the
//! microphone, what the children report, timers, drain, close) at a given instant, and it answers with
//! [`Effect`]s: [`Event`]s for the client (transcript, turn start, sentence, audio out, interrupt, turn end,
//! latency, saved, status, error, end) and [`Command`]s for the session's children (speech recognition, the
//! LLM, speech synthesis, the recorder, the persister) and its timers. It knows no socket, no wire format and
//! no actor context: the session actor (`client_socket`) feeds it and carries out what it asks, and a
//! transport (`browser`, later a phone stream) only translates between its wire format and these events. Unit
//! tests drive it directly (`tests.rs`).
//!
//! What it decides: when the user has finished speaking (`listening.rs`, with `utterance` and `barge_in`, and `preemptive` to
//! start the reply's LLM request and its first speech before the commit),
//! when speech recognition is (re)started after an outage (its supervision), the assistant turn from commit
//! to its end or interruption (`turns.rs`, with `segmenter`), the agent's greeting as turn 0 (`greeting`), what the LLM remembers (`memory`), what is
//! stored and recorded, and the per-stage latency (`latency`).

pub mod barge_in;
mod greeting;
pub mod latency;
mod listening;
pub mod memory;
pub mod playback;
mod preemptive;
pub mod segmenter;
mod turns;

pub use turns::remembered_reply;
pub mod utterance;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use self::barge_in::BargeIn;
use self::latency::TurnLatency;
use self::memory::Memory;
use self::turns::ActiveTurn;
use self::utterance::Utterance;
use super::deepgram_link::SttEvent;
use super::llm_worker::{CancelCompletion, ClientToolAnswer, Complete, ConfirmCompletion, LlmEvent};
use super::settings::{AudioIn, SessionParams, SessionSettings};
use super::tts_link::{TtsCommand, TtsEvent};
use crate::db::{NewSession, PhoneCall, Role, SessionId, TurnId, UserId};
use crate::metrics::Metrics;
use crate::persistence::{Persisted, Write};
use crate::recording::recorder::{AssistantAudio, AssistantTurnEnded, UserAudio, UserTurnCommitted};

/// What drives the conversation.
#[derive(Debug)]
pub enum Input {
    /// The session is admitted (registered): store or touch its row and announce it.
    Start,
    /// Microphone audio in the session's input encoding.
    Audio(Bytes),
    /// A typed turn (already validated as non-blank by the transport).
    Text(String),
    /// The client asks to stop the assistant now.
    Interrupt,
    /// A key a phone caller pressed (`0`-`9`, `*`, `#`, `A`-`D`): the keys pressed in a row become a user turn
    /// after `PARLEY_DTMF_TIMEOUT_MS` without another.
    Dtmf(char),
    /// The client's microphone is closed: commit what was said now.
    CloseMicrophone,
    /// The client's answer to a client-side tool call.
    ToolResult {
        call_id: String,
        answer: Result<serde_json::Value, String>,
    },
    /// The listener has heard `ms` of turn `turn_id`'s audio (monotonic per turn).
    Played {
        turn_id: TurnId,
        ms: u64,
    },
    Stt(SttEvent),
    Llm(LlmEvent),
    Tts(TtsEvent),
    Saved(Persisted),
    Timer(Timer),
    /// The server is shutting down: finish the turn within `grace`, then end.
    Drain {
        grace: Duration,
    },
    /// The client is gone: store what is in progress.
    Closed,
}

/// What the client is told. Binary audio is an event too; how each is put on the wire is the transport's
/// business.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The session started; `history_messages` were loaded from its stored history.
    Started {
        resumed: bool,
        history_messages: usize,
    },
    /// Live transcription: the whole utterance so far; `is_final` parts will not change.
    Transcript {
        text: String,
        is_final: bool,
    },
    /// An utterance was committed: the assistant starts answering it.
    UserTurn {
        turn_id: TurnId,
        text: String,
    },
    /// One sentence (or clause) of the reply, as generated.
    AssistantText {
        turn_id: TurnId,
        text: String,
    },
    /// Audio of this turn follows.
    AudioStart {
        turn_id: TurnId,
    },
    /// Audio of the turn, in the session's output format.
    Audio {
        turn_id: TurnId,
        bytes: Bytes,
    },
    /// No more audio of this turn.
    AudioEnd {
        turn_id: TurnId,
    },
    /// The client is to run a tool and answer with [`Input::ToolResult`].
    ToolCall {
        turn_id: TurnId,
        call_id: String,
        name: String,
        arguments: serde_json::Value,
    },
    /// How a tool call of the turn is going (server-side calls; any call when cancelled).
    ToolStatus {
        turn_id: TurnId,
        call_id: String,
        name: String,
        status: ToolStatus,
    },
    /// Stop playing this turn now; no audio of it follows.
    Interrupt {
        turn_id: TurnId,
    },
    /// The turn is over.
    TurnEnd {
        turn_id: TurnId,
        interrupted: bool,
    },
    Latency {
        turn_id: TurnId,
        latency: TurnLatency,
    },
    /// A message was stored.
    Saved {
        turn_id: TurnId,
        role: Role,
        message_id: i64,
    },
    /// Something worth showing that is not an error.
    Status(String),
    /// Something went wrong: a stable `code`, a sentence for the user, whether trying again may help.
    Error {
        code: String,
        message: String,
        retryable: bool,
    },
    /// The conversation is over; the transport closes.
    End(EndReason),
}

/// Where a tool call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolStatus {
    Running,
    Done,
    Failed,
    /// Dropped by a barge-in: its result, if any ever comes, is discarded.
    Cancelled,
}

/// How long a drain that ran out of time still waits for the last messages to be saved.
const LAST_SAVES: Duration = Duration::from_secs(1);

/// Why the conversation ended on the server's initiative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The server is shutting down (drain).
    ServerShutdown,
    /// The agent ended the conversation (`end_conversation`), its goodbye spoken.
    AgentEnded,
}

/// The conversation's timers; starting one that runs restarts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The short silence after `speech_final` before the utterance is committed.
    Commit,
    /// How long to wait for Deepgram's reply to a `Finalize`.
    Finalize,
    /// How long a draining session may take to finish its turn.
    Drain,
    /// When the next held-back chunk of reply audio may go out.
    Pace,
    /// How long an interrupted reply waits for the listener's final position before it is stored.
    Settle,
    /// The pause after a phone caller's last key press that ends the digits.
    Dtmf,
}

impl Timer {
    pub const ALL: [Timer; 6] = [Timer::Commit, Timer::Finalize, Timer::Drain, Timer::Pace, Timer::Settle, Timer::Dtmf];

    /// A dense index, for a timer table.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the session's children and timers are asked to do.
#[derive(Debug)]
pub enum Command {
    /// Start (or restart) speech recognition.
    StartStt,
    /// Audio for speech recognition, with the instant it arrived and its start in session audio time.
    SttAudio {
        pcm: Bytes,
        arrived: Instant,
        at: f64,
        /// As good as silence ([`crate::audio::level::QUIET_RMS`]).
        quiet: bool,
    },
    /// Ask speech recognition to finalise what it has buffered.
    SttFinalize,
    Complete(Complete),
    CancelCompletion(CancelCompletion),
    ConfirmCompletion(ConfirmCompletion),
    ClientToolAnswer(ClientToolAnswer),
    Tts(TtsCommand),
    /// Microphone audio for the recording.
    RecordUser(UserAudio),
    UserTurnCommitted(UserTurnCommitted),
    /// Audio sent to the client, for the recording.
    RecordAssistant(AssistantAudio),
    AssistantTurnEnded(AssistantTurnEnded),
    Persist(Write),
    StartTimer(Timer, Duration),
    CancelTimer(Timer),
}

/// One thing the conversation asks for, in order.
#[derive(Debug)]
pub enum Effect {
    Send(Event),
    Do(Command),
}

/// Where a conversation puts its effects while it handles an input.
#[derive(Debug, Default)]
pub struct Outbox {
    effects: Vec<Effect>,
}

impl Outbox {
    pub fn send(&mut self, event: Event) {
        self.effects.push(Effect::Send(event));
    }

    pub fn run(&mut self, command: Command) {
        self.effects.push(Effect::Do(command));
    }

    fn error(&mut self, code: impl Into<String>, message: impl Into<String>, retryable: bool) {
        self.send(Event::Error { code: code.into(), message: message.into(), retryable });
    }

    /// Takes the effects out in order, keeping the buffer for the next input.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Effect> {
        self.effects.drain(..)
    }

    pub fn is_empty(&self) -> bool {
        self.effects.is_empty()
    }
}

/// Speech recognition, as the conversation supervises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recognition {
    /// Not started yet: the first audio starts it, so text-only sessions never open a Deepgram socket.
    Idle,
    Running,
    /// Gave up on a transient outage: audio is dropped until `until`, then the next audio restarts it.
    Down {
        until: Instant,
    },
    /// Refused (key or settings): down for the rest of the session.
    Refused,
}

/// One voice conversation.
pub struct Conversation {
    session_id: SessionId,
    user_id: UserId,
    /// The phone call this session is, if it is one.
    call: Option<PhoneCall>,
    /// Keys pressed by a phone caller, waiting for the pause that ends them.
    dtmf: String,
    resumed: bool,
    audio_in: AudioIn,
    settings: Arc<SessionSettings>,
    metrics: Arc<Metrics>,
    /// The instant of the input being handled.
    now: Instant,
    started: bool,
    draining: bool,
    /// The drain's time ran out and the last saves are being waited for (briefly).
    drain_overdue: bool,
    /// Messages sent to the persister whose `Saved` has not come back: a draining session waits for them, so
    /// its client gets every `messageSaved` before the close.
    unsaved: usize,

    recognition: Recognition,
    memory: Memory,
    utterance: Utterance,
    /// When the audio of the latest recognised word arrived (the end of speech, for latency).
    last_speech_end: Option<Instant>,
    /// The end of speech the running commit timer will commit with.
    commit_speech_end: Option<Instant>,
    barge_in: BargeIn,
    /// Seconds of client audio received (the session audio time).
    audio_time: f64,
    /// Session audio time up to which the user's words have been committed: recognition results about audio
    /// before it are old news (a late `Finalize` reply, a final after a fallback commit, a replay).
    committed_until: f64,
    next_turn: TurnId,
    /// A reply started at `speech_final`, before the commit (preemptive generation).
    speculation: Option<preemptive::Speculation>,
    /// Speculative requests started, for their ids.
    speculations: u64,
    turn: Option<ActiveTurn>,
    /// The last finished reply: still taking `played` positions, and waiting to be stored if it was cut short.
    finished: Option<ActiveTurn>,
    /// Error codes already reported, for failures that would otherwise repeat every turn.
    reported: Vec<String>,
    /// When the turns of the last minute started (for `PARLEY_TURNS_PER_MINUTE`).
    recent_turns: std::collections::VecDeque<Instant>,
    /// Session audio time up to which speech recognition usage has been metered into a turn.
    stt_metered_until: f64,
    /// Why the session ends once the draining completes.
    end_reason: EndReason,
}

impl Conversation {
    pub fn new(params: &SessionParams, metrics: Arc<Metrics>) -> Conversation {
        let settings = params.settings.clone();
        let mut memory = Memory::new(settings.history_max_chars);
        for m in &params.history {
            memory.push_with_tools(m.role, m.text.clone(), m.tools.clone());
        }
        let tuning = &settings.turns;
        Conversation {
            session_id: params.session_id.clone(),
            user_id: params.user_id.clone(),
            call: params.call.clone(),
            dtmf: String::new(),
            resumed: params.resumed,
            audio_in: params.audio_in,
            barge_in: BargeIn::new(tuning.barge_in_min_words, tuning.barge_in_min_speech),
            settings,
            metrics,
            now: Instant::now(),
            started: false,
            draining: false,
            drain_overdue: false,
            unsaved: 0,
            recognition: Recognition::Idle,
            memory,
            utterance: Utterance::default(),
            last_speech_end: None,
            commit_speech_end: None,
            audio_time: 0.0,
            committed_until: 0.0,
            next_turn: 1,
            speculation: None,
            speculations: 0,
            turn: None,
            finished: None,
            reported: Vec::new(),
            recent_turns: std::collections::VecDeque::new(),
            stt_metered_until: 0.0,
            end_reason: EndReason::ServerShutdown,
        }
    }

    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }

    /// True while an assistant reply is being generated or spoken.
    pub fn assistant_speaking(&self) -> bool {
        self.turn.is_some()
    }

    /// Handles one input at `now`; what follows from it is appended to `out`, in order.
    pub fn handle(&mut self, input: Input, now: Instant, out: &mut Outbox) {
        self.now = now;
        match input {
            Input::Start => self.start(out),
            Input::Audio(pcm) => self.on_audio(pcm, out),
            Input::Text(text) => {
                if !self.started {
                    return out.error("not_ready", "message sent before the session was ready", true);
                }
                self.typed_turn(text.trim().to_string(), out);
            }
            Input::Interrupt => self.interrupt(out),
            Input::Dtmf(key) => self.on_dtmf(key, out),
            Input::Timer(Timer::Dtmf) => self.dtmf_done(out),
            Input::CloseMicrophone => self.close_microphone(out),
            Input::Played { turn_id, ms } => self.on_played(turn_id, ms, out),
            Input::ToolResult { call_id, answer } => self.on_tool_result(call_id, answer, out),
            Input::Stt(event) => self.on_stt(event, out),
            Input::Llm(event) => {
                if let Some(event) = self.route_llm_event(event, out) {
                    self.on_llm(event, out);
                }
            }
            Input::Tts(event) => {
                if let Some(event) = self.route_tts_event(event) {
                    self.on_tts(event, out);
                }
            }
            Input::Saved(p) => {
                self.unsaved = self.unsaved.saturating_sub(1);
                out.send(Event::Saved { turn_id: p.turn_id, role: p.role, message_id: p.message_id.0 });
                self.end_if_drained(out);
            }
            Input::Timer(Timer::Commit) => {
                let speech_end = self.commit_speech_end.take();
                self.commit_utterance(speech_end, out);
            }
            Input::Timer(Timer::Finalize) => self.commit_utterance(None, out),
            Input::Timer(Timer::Drain) => self.drain_time_up(out),
            Input::Timer(Timer::Pace) => self.pace(out),
            Input::Timer(Timer::Settle) => self.settle(out),
            Input::Drain { grace } => self.drain(grace, out),
            Input::Closed => {
                self.discard_speculation(out);
                self.abandon_turn(out);
            }
        }
    }

    /// Admitted: store or touch the session row and announce the session.
    fn start(&mut self, out: &mut Outbox) {
        if self.started {
            return;
        }
        self.started = true;
        let now = crate::db::now();
        if self.resumed {
            out.run(Command::Persist(Write::Touch(now)));
        } else {
            out.run(Command::Persist(Write::CreateSession(NewSession {
                id: self.session_id.clone(),
                user_id: self.user_id.clone(),
                created_at: now,
                model_id: self.settings.llm.primary().model.clone(),
                voice_id: self.settings.tts.voice_id.clone(),
                call: self.call.clone(),
            })));
        }
        out.send(Event::Started { resumed: self.resumed, history_messages: self.memory.len() });
        log::info!("session {} started for {} ({} from history)", self.session_id, self.user_id, self.memory.len());
        self.greet(out);
    }

    /// The server is shutting down: the turn in progress may finish within `grace`; the session then ends once
    /// its messages are saved (and the client told so).
    fn drain(&mut self, grace: Duration, out: &mut Outbox) {
        if self.draining {
            return;
        }
        self.draining = true;
        out.send(Event::Status("the server is restarting; this conversation will end".into()));
        out.run(Command::StartTimer(Timer::Drain, grace));
        self.end_if_drained(out);
    }

    /// Ends a draining session once nothing is left: no turn, no message waiting for its `messageSaved`.
    pub(super) fn end_if_drained(&mut self, out: &mut Outbox) {
        if self.draining && self.turn.is_none() && self.unsaved == 0 {
            out.run(Command::CancelTimer(Timer::Drain));
            out.send(Event::End(self.end_reason));
            self.draining = false; // ended once
        }
    }

    /// The drain's time is up: a turn still going is cut (the client gets `interrupt` and `turnEnd`), its reply
    /// stored as heard; the saves get one more second.
    fn drain_time_up(&mut self, out: &mut Outbox) {
        if !self.draining {
            return;
        }
        if self.drain_overdue {
            log::warn!("session {}: {} message(s) still unsaved at the close", self.session_id, self.unsaved);
            self.unsaved = 0;
            return self.end_if_drained(out);
        }
        self.interrupt(out);
        self.settle(out);
        if self.unsaved == 0 {
            return self.end_if_drained(out);
        }
        self.drain_overdue = true;
        out.run(Command::StartTimer(Timer::Drain, LAST_SAVES));
    }

    /// A phone key: kept until the caller pauses (ignored when `PARLEY_DTMF_TIMEOUT_MS` is 0).
    fn on_dtmf(&mut self, key: char, out: &mut Outbox) {
        let Some(pause) = self.settings.turns.dtmf_timeout else {
            return;
        };
        if !self.started {
            return;
        }
        self.dtmf.push(key);
        out.run(Command::StartTimer(Timer::Dtmf, pause));
    }

    /// The caller stopped pressing keys: they become a user turn, as if typed.
    fn dtmf_done(&mut self, out: &mut Outbox) {
        if self.dtmf.is_empty() {
            return;
        }
        let keys: Vec<String> = self.dtmf.chars().map(String::from).collect();
        self.dtmf.clear();
        self.typed_turn(format!("The caller pressed {}", keys.join(" ")), out);
    }

    /// Sends an error event only the first time this code comes up in the session.
    fn error_once(&mut self, code: String, message: String, retryable: bool, out: &mut Outbox) {
        if !self.reported.contains(&code) {
            out.error(code.clone(), message, retryable);
            self.reported.push(code);
        }
    }
}
