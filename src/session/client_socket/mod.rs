//! ClientSocket: the WebSocket of one voice session and the parent of its actor tree (see `session`).
//!
//! Generic over its [`Wire`] (the browser protocol, later a phone stream): the wire turns frames into the
//! conversation's inputs and its events into frames; everything else is here, once, for every transport:
//! registering with the Registry (and refusing when the server is full), heartbeats, draining on shutdown,
//! the conversation ([`Conversation`], which makes every decision), its timers, and its children
//! ([`Children`], started once the session is admitted and stopped when it ends). What the children report
//! arrives through `Recipient`s (`reports.rs`) and goes straight into the conversation. Whether the client is
//! still there, reading, and using the session is [`Liveness`]'s call (`liveness.rs`); oversized frames are
//! refused at their header (`frame_guard.rs`).

mod frame_guard;
mod liveness;
mod reports;
mod wire;

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws;

pub use frame_guard::FrameGuard;
pub use liveness::LivenessLimits;
use liveness::{Action, Ending, Liveness};
pub use wire::{OPENING_TIMEOUT, Wire, WireContext};

use super::children::{Children, Reporters};
use super::conversation::{Command, Conversation, Effect, EndReason, Event, Input, Outbox, Timer};
use super::settings::{SessionDeps, SessionParams};
use crate::registry::{ConnectionId, Drain, LiveSession, Register, Unregister};

/// The session's WebSocket actor.
pub struct ClientSocket<W: Wire> {
    wire: W,
    params: SessionParams,
    deps: SessionDeps,
    client: awc::Client,
    conversation: Conversation,
    /// Started once the registry admitted the session.
    children: Option<Children>,
    registration: Option<ConnectionId>,
    /// The wire knows who the session is and registration has begun (see [`Wire::open`]).
    opened: bool,
    liveness: Liveness,
    timers: [Option<SpawnHandle>; Timer::ALL.len()],
    /// Reused between inputs.
    outbox: Outbox,
}

impl<W: Wire> ClientSocket<W> {
    pub fn new(wire: W, params: SessionParams, deps: SessionDeps, client: awc::Client) -> ClientSocket<W> {
        let conversation = Conversation::new(&params, deps.metrics.clone());
        let liveness = Liveness::new(params.settings.liveness, Instant::now());
        ClientSocket {
            wire,
            params,
            deps,
            client,
            conversation,
            children: None,
            registration: None,
            opened: false,
            liveness,
            timers: Default::default(),
            outbox: Outbox::default(),
        }
    }

    fn session(&self) -> &str {
        self.params.session_id.as_str()
    }

    /// Hands `input` to the conversation and carries out what follows, in order.
    fn drive(&mut self, input: Input, ctx: &mut WireContext<W>) {
        let mut out = std::mem::take(&mut self.outbox);
        self.conversation.handle(input, Instant::now(), &mut out);
        for effect in out.drain() {
            match effect {
                Effect::Send(Event::End(reason)) => self.end(reason, ctx),
                Effect::Send(event) => {
                    let bytes = self.wire.send(event, ctx);
                    self.liveness.sent(bytes);
                }
                Effect::Do(Command::StartTimer(timer, after)) => self.start_timer(timer, after, ctx),
                Effect::Do(Command::CancelTimer(timer)) => self.cancel_timer(timer, ctx),
                Effect::Do(command) => match self.children.as_mut() {
                    Some(children) => children.run(command),
                    None => log::error!("session {}: {command:?} before the children started", self.session()),
                },
            }
        }
        self.outbox = out;
    }

    fn start_timer(&mut self, timer: Timer, after: Duration, ctx: &mut WireContext<W>) {
        self.cancel_timer(timer, ctx);
        let handle = ctx.run_later(after, move |this, ctx| {
            this.timers[timer.index()] = None;
            this.drive(Input::Timer(timer), ctx);
        });
        self.timers[timer.index()] = Some(handle);
    }

    fn cancel_timer(&mut self, timer: Timer, ctx: &mut WireContext<W>) {
        if let Some(handle) = self.timers[timer.index()].take() {
            ctx.cancel_future(handle);
        }
    }

    /// The conversation is over on the server's side: close with a reason the client can read.
    fn end(&mut self, reason: EndReason, ctx: &mut WireContext<W>) {
        match reason {
            EndReason::ServerShutdown => close(ctx, ws::CloseCode::Away, "server shutting down"),
            EndReason::AgentEnded => {
                let bytes = self.wire.send(Event::End(reason), ctx);
                self.liveness.sent(bytes);
                match self.wire.close_after_goodbye() {
                    None => close(ctx, ws::CloseCode::Normal, "conversation ended"),
                    Some(at_most) => {
                        ctx.run_later(at_most, |_, ctx| close(ctx, ws::CloseCode::Normal, "conversation ended"));
                    }
                }
            }
        }
    }

    /// The client is gone, not reading, idle or over time: say why (when it can still hear it) and close.
    fn end_for(&mut self, ending: Ending, ctx: &mut WireContext<W>) {
        log::info!("session {}: ending: {ending:?}", self.session());
        let mut tell = |this: &mut Self, message: String| {
            let bytes = this.wire.send(Event::Status(message), ctx);
            this.liveness.sent(bytes);
        };
        match ending {
            Ending::NotReading(why) => close(ctx, ws::CloseCode::Policy, &why),
            Ending::Silent => close(ctx, ws::CloseCode::Away, "the client stopped answering"),
            Ending::Idle(after) => {
                tell(self, format!("nothing was said for {}; this conversation is closed", spoken(after)));
                close(ctx, ws::CloseCode::Normal, "idle");
            }
            Ending::TooLong(limit) => {
                tell(self, format!("this conversation reached its time limit of {}", spoken(limit)));
                close(ctx, ws::CloseCode::Away, "session time limit reached");
            }
        }
    }

    /// A frame from the client, through the wire.
    fn on_frame(&mut self, msg: ws::Message, ctx: &mut WireContext<W>) {
        let now = Instant::now();
        self.liveness.frame(now);
        let input = match msg {
            ws::Message::Binary(bytes) => {
                self.liveness.activity(now);
                self.wire.binary(bytes, ctx)
            }
            ws::Message::Text(text) => {
                self.liveness.activity(now);
                self.wire.text(&text, ctx)
            }
            ws::Message::Ping(p) => {
                ctx.pong(&p);
                None
            }
            ws::Message::Pong(p) => {
                self.liveness.pong(&p);
                None
            }
            ws::Message::Nop => None,
            ws::Message::Close(reason) => {
                log::info!("session {}: client closed ({reason:?})", self.session());
                ctx.close(reason);
                ctx.stop();
                None
            }
            ws::Message::Continuation(_) => self.wire.continuation(ctx),
        };
        if !self.opened {
            self.open(ctx);
            return; // nothing reaches the conversation before the session is known
        }
        if let Some(input) = input {
            self.drive(input, ctx);
        }
    }

    /// Registers the session once the wire knows who it is (at once for the browser).
    fn open(&mut self, ctx: &mut WireContext<W>) {
        if self.opened || !self.wire.open(&mut self.params) {
            return;
        }
        self.opened = true;
        // Nothing has happened yet: the conversation starts over with what the wire has learnt.
        self.conversation = Conversation::new(&self.params, self.deps.metrics.clone());
        let info = LiveSession {
            session_id: self.params.session_id.clone(),
            user_id: self.params.user_id.clone(),
            connected_at: chrono::Utc::now(),
            peer: self.params.peer.clone(),
        };
        let drain = ctx.address().recipient::<Drain>().downgrade();
        // Registration is short and must finish before the session is announced.
        ctx.wait(
            self.deps
                .registry
                .send(Register { info, drain, reservation: self.params.reservation })
                .into_actor(self)
                .map(|result, this, ctx| match result {
                    Ok(Ok(id)) => {
                        this.registration = Some(id);
                        this.begin(ctx);
                    }
                    Ok(Err(full)) => {
                        this.wire.send(
                            Event::Error { code: "server_busy".into(), message: full.to_string(), retryable: true },
                            ctx,
                        );
                        close(ctx, ws::CloseCode::Again, "server busy");
                    }
                    Err(_) => close(ctx, ws::CloseCode::Error, "registry unavailable"),
                }),
        );
    }

    /// Admitted by the registry: start the children and the conversation.
    fn begin(&mut self, ctx: &mut WireContext<W>) {
        let me = ctx.address();
        let reporters = Reporters {
            stt: me.clone().recipient(),
            llm: me.clone().recipient(),
            tts: me.clone().recipient(),
            saved: me.recipient(),
        };
        self.children = Some(Children::start(&self.params, &self.deps, self.client.clone(), reporters));
        self.drive(Input::Start, ctx);
    }
}

/// A duration as a person says it: "5 minutes", "90 seconds", "4 hours".
fn spoken(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = match secs {
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// True when a read error is a text frame that is not UTF-8 (actix reports it as an I/O error carrying the
/// standard library's UTF-8 error).
fn is_invalid_utf8(e: &std::io::Error) -> bool {
    let text = e.to_string();
    text.starts_with("invalid utf-8") || text.starts_with("incomplete utf-8")
}

/// Closes the socket with `code` and a reason, and stops the actor.
pub fn close<A>(ctx: &mut ws::WebsocketContext<A>, code: ws::CloseCode, reason: &str)
where
    A: Actor<Context = ws::WebsocketContext<A>>,
{
    ctx.close(Some(ws::CloseReason { code, description: Some(reason.to_string()) }));
    ctx.stop();
}

impl<W: Wire> Actor for ClientSocket<W> {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.open(ctx);
        if !self.opened {
            ctx.run_later(OPENING_TIMEOUT, |this, ctx| {
                if !this.opened {
                    log::info!("session {}: the client never said who it is; closing", this.session());
                    close(ctx, ws::CloseCode::Policy, "no start message");
                }
            });
        }
        ctx.run_interval(liveness::TICK, |this, ctx| {
            for action in this.liveness.tick(Instant::now()) {
                match action {
                    Action::Ping(payload) => ctx.ping(&payload),
                    Action::End(ending) => this.end_for(ending, ctx),
                }
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        if self.children.is_some() {
            self.drive(Input::Closed, ctx);
        }
        if let Some(children) = self.children.take() {
            children.shut_down();
        }
        if let Some(id) = self.registration.take() {
            self.deps.registry.do_send(Unregister(id));
        }
        log::info!("session {} ended", self.session());
    }
}

impl<W: Wire> StreamHandler<Result<ws::Message, ws::ProtocolError>> for ClientSocket<W> {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(msg) => self.on_frame(msg, ctx),
            Err(ws::ProtocolError::Overflow) => {
                let reason = self.wire.overflow_reason();
                close(ctx, ws::CloseCode::Size, &reason);
            }
            Err(ws::ProtocolError::Io(e)) if frame_guard::is_oversized(&e) => {
                log::info!("session {}: a frame header announced more than the limit; closing", self.session());
                let reason = self.wire.overflow_reason();
                close(ctx, ws::CloseCode::Size, &reason);
            }
            Err(ws::ProtocolError::Io(e)) if is_invalid_utf8(&e) => {
                log::info!("session {}: a text frame is not UTF-8: {e}", self.session());
                close(ctx, ws::CloseCode::Invalid, "text frames must be UTF-8");
            }
            Err(e) => {
                log::info!("session {}: WebSocket protocol error: {e}", self.session());
                close(ctx, ws::CloseCode::Protocol, "protocol error");
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        // The client's socket ended (closed or vanished).
        ctx.stop();
    }
}

impl<W: Wire> Handler<Drain> for ClientSocket<W> {
    type Result = ();

    fn handle(&mut self, msg: Drain, ctx: &mut Self::Context) {
        if self.children.is_none() {
            return close(ctx, ws::CloseCode::Away, "server shutting down");
        }
        self.drive(Input::Drain { grace: msg.grace }, ctx);
    }
}
