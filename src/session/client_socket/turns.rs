//! Turn-taking of the [`ClientSocket`]: committing what the user said, running the assistant's reply through
//! the LLM and TTS, finishing it, and cutting it short on barge-in.

use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws;

use super::ClientSocket;
use crate::db::Role;
use crate::providers::openai::{ChatMessage, Role as ChatRole};
use crate::recording::recorder::{AssistantTurnEnded, UserTurnCommitted};
use crate::session::deepgram_link::SttFinalize;
use crate::session::latency::TurnTimes;
use crate::session::llm_worker::{CancelCompletion, Complete};
use crate::session::persister::Write;
use crate::session::protocol::{ServerMessage, TurnId};
use crate::session::segmenter::Segmenter;
use crate::session::tts_link::{TtsCancel, TtsEnd, TtsStart, TtsText};

/// The assistant turn in progress.
pub(super) struct ActiveTurn {
    pub id: TurnId,
    /// Everything the LLM generated so far.
    pub generated: String,
    pub segmenter: Segmenter,
    pub pieces: usize,
    pub llm_done: bool,
    pub tts_done: bool,
    /// TTS failed or is unavailable: the reply is text only.
    pub tts_failed: bool,
    pub audio_started: bool,
    pub times: TurnTimes,
}

impl ClientSocket {
    /// True while an assistant reply is being generated or spoken.
    pub(super) fn assistant_speaking(&self) -> bool {
        self.turn.is_some()
    }

    pub(super) fn typed_turn(&mut self, text: String, ctx: &mut ws::WebsocketContext<Self>) {
        self.cancel_timers(ctx);
        if self.turn.is_some() {
            self.interrupt(ctx);
        }
        self.start_turn(text, Some(Instant::now()), false, ctx);
    }

    pub(super) fn close_microphone(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        match &self.stt {
            Some(stt) => {
                stt.do_send(SttFinalize);
                self.utterance.on_finalize_requested();
                if let Some(h) = self.finalize_timer.take() {
                    ctx.cancel_future(h);
                }
                // Deepgram may not answer a Finalize at all: commit what was heard after a while regardless.
                let wait = self.app.config.turns.finalize_timeout;
                self.finalize_timer = Some(ctx.run_later(wait, |this, ctx| {
                    this.finalize_timer = None;
                    this.commit_utterance(None, ctx);
                }));
            }
            _ => self.commit_utterance(None, ctx),
        }
    }

    pub(super) fn cancel_timers(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        for h in [self.commit_timer.take(), self.finalize_timer.take()].into_iter().flatten() {
            ctx.cancel_future(h);
        }
    }

    /// (Re)starts the short silence timer after `speech_final`.
    pub(super) fn start_commit_timer(&mut self, speech_end: Option<Instant>, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(h) = self.commit_timer.take() {
            ctx.cancel_future(h);
        }
        let wait = self.app.config.turns.commit_delay;
        self.commit_timer = Some(ctx.run_later(wait, move |this, ctx| {
            this.commit_timer = None;
            this.commit_utterance(speech_end, ctx);
        }));
    }

    /// The user has finished speaking: answer what was heard (if anything was).
    pub(super) fn commit_utterance(&mut self, speech_end: Option<Instant>, ctx: &mut ws::WebsocketContext<Self>) {
        self.cancel_timers(ctx);
        let Some((text, _)) = self.utterance.take() else {
            return;
        };
        if self.turn.is_some() {
            // Speech over the assistant that was too short to interrupt it (a backchannel such as "uh-huh",
            // or noise) is not a new question: the reply goes on.
            log::info!(
                "session {}: ignoring {text:?} spoken over the reply (below the barge-in threshold)",
                self.session()
            );
            self.last_speech_end = None;
            return;
        }
        let speech_end = speech_end.or(self.last_speech_end.take());
        self.start_turn(text, speech_end, true, ctx);
    }

    /// Starts the assistant's answer to `text`; `spoken` when it came from the microphone (its audio becomes the
    /// turn's user recording).
    fn start_turn(
        &mut self,
        text: String,
        speech_end: Option<Instant>,
        spoken: bool,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let id = self.next_turn;
        self.next_turn += 1;
        if spoken {
            if let Some(recorder) = &self.recorder {
                recorder.do_send(UserTurnCommitted { turn_id: id });
            }
        }
        let now = Instant::now();
        let times = TurnTimes { speech_end: speech_end.or(Some(now)), committed: Some(now), ..TurnTimes::default() };
        self.send(ctx, &ServerMessage::UserTurn { turn_id: id, text: text.clone() });
        self.persist(Write::Message {
            turn_id: id,
            role: Role::User,
            content: text.clone(),
            interrupted: false,
            at: crate::db::now(),
        });
        self.memory.push(Role::User, text);
        let messages = self.chat_messages();
        if let Some(llm) = &self.llm {
            llm.do_send(Complete { turn_id: id, messages });
        }
        if let Some(tts) = &self.tts {
            tts.do_send(TtsStart { turn_id: id });
        }
        self.barge_in.reset();
        self.turn = Some(ActiveTurn {
            id,
            generated: String::new(),
            segmenter: Segmenter::new(),
            pieces: 0,
            llm_done: false,
            tts_done: false,
            tts_failed: false,
            audio_started: false,
            times,
        });
    }

    /// System prompt, then the remembered conversation (which ends with the new user message).
    fn chat_messages(&self) -> Vec<ChatMessage> {
        let mut out = vec![ChatMessage::new(ChatRole::System, self.app.config.openai.system_prompt.clone())];
        out.extend(self.memory.messages().map(|m| {
            let role = match m.role {
                Role::User => ChatRole::User,
                Role::Assistant => ChatRole::Assistant,
            };
            ChatMessage::new(role, m.text.clone())
        }));
        out
    }

    /// A complete piece of the reply: caption it and speak it.
    pub(super) fn speak(&mut self, piece: String, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(turn) = self.turn.as_mut() else {
            return;
        };
        turn.pieces += 1;
        let id = turn.id;
        if !turn.tts_failed {
            if turn.times.tts_first_text.is_none() {
                turn.times.tts_first_text = Some(Instant::now());
            }
            if let Some(tts) = &self.tts {
                tts.do_send(TtsText { turn_id: id, text: piece.clone() });
            }
        }
        self.send(ctx, &ServerMessage::AssistantText { turn_id: id, text: piece });
    }

    /// The LLM has nothing more: speak the remainder and let TTS finish.
    pub(super) fn llm_finished(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let rest = match self.turn.as_mut() {
            Some(turn) if !turn.llm_done => {
                turn.llm_done = true;
                turn.segmenter.finish()
            }
            _ => return,
        };
        if let Some(rest) = rest {
            self.speak(rest, ctx);
        }
        if let Some(turn) = self.turn.as_ref() {
            if turn.tts_failed || turn.pieces == 0 {
                // Nothing (more) will come from TTS for this turn.
                if let Some(turn) = self.turn.as_mut() {
                    turn.tts_done = true;
                }
                if let (Some(tts), Some(turn)) = (&self.tts, self.turn.as_ref()) {
                    tts.do_send(TtsCancel { turn_id: turn.id });
                }
            } else if let Some(tts) = &self.tts {
                tts.do_send(TtsEnd { turn_id: turn.id });
            }
        }
        self.maybe_finish(ctx);
    }

    pub(super) fn maybe_finish(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.turn.as_ref().is_some_and(|t| t.llm_done && t.tts_done) {
            self.finish_turn(false, ctx);
        }
    }

    /// Ends the current turn: tells the client, reports latency, remembers and stores the reply.
    fn finish_turn(&mut self, interrupted: bool, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(turn) = self.turn.take() else {
            return;
        };
        if turn.audio_started && !interrupted {
            self.send(ctx, &ServerMessage::AudioEnd { turn_id: turn.id });
        }
        if let Some(recorder) = &self.recorder {
            recorder.do_send(AssistantTurnEnded { turn_id: turn.id });
        }
        self.send(ctx, &ServerMessage::TurnEnd { turn_id: turn.id, interrupted });
        let l = turn.times.latency();
        self.send(
            ctx,
            &ServerMessage::Latency {
                turn_id: turn.id,
                stt_ms: l.stt_ms,
                llm_first_token_ms: l.llm_first_token_ms,
                tts_first_byte_ms: l.tts_first_byte_ms,
                first_audio_ms: l.first_audio_ms,
            },
        );
        self.record_reply(&turn, interrupted);
        if self.draining {
            self.close(ctx, ws::CloseCode::Away, "server shutting down");
        }
    }

    /// Metrics, memory and storage for a finished (or abandoned) reply.
    fn record_reply(&mut self, turn: &ActiveTurn, interrupted: bool) {
        turn.times.observe(&self.app.metrics);
        let outcome = if interrupted {
            "interrupted"
        } else if turn.generated.trim().is_empty() {
            "failed"
        } else {
            "completed"
        };
        self.app.metrics.turns.with_label_values(&[outcome]).inc();
        let text = turn.generated.trim().to_string();
        if text.is_empty() {
            return;
        }
        self.memory.push(Role::Assistant, text.clone());
        self.persist(Write::Message {
            turn_id: turn.id,
            role: Role::Assistant,
            content: text,
            interrupted,
            at: crate::db::now(),
        });
    }

    /// Barge-in: stop the reply now. The client hears `interrupt` before anything else of the turn, and no
    /// audio of it follows.
    pub(super) fn interrupt(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(id) = self.turn.as_ref().map(|t| t.id) else {
            return;
        };
        if let Some(llm) = &self.llm {
            llm.do_send(CancelCompletion { turn_id: id });
        }
        if let Some(tts) = &self.tts {
            tts.do_send(TtsCancel { turn_id: id });
        }
        self.app.metrics.interruptions.inc();
        self.barge_in.reset();
        self.send(ctx, &ServerMessage::Interrupt { turn_id: id });
        self.finish_turn(true, ctx);
    }

    /// The session is ending with a reply in progress: store what was generated, marked interrupted.
    pub(super) fn abandon_turn(&mut self) {
        if let Some(turn) = self.turn.take() {
            if let Some(llm) = &self.llm {
                llm.do_send(CancelCompletion { turn_id: turn.id });
            }
            self.record_reply(&turn, true);
        }
    }
}
