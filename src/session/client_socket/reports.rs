//! What the children report to the [`ClientSocket`] (through the `Recipient`s it handed them), each passed
//! straight to the conversation.

use actix::prelude::*;

use super::{ClientSocket, Wire};
use crate::persistence::Persisted;
use crate::session::conversation::Input;
use crate::session::deepgram_link::SttEvent;
use crate::session::llm_worker::LlmEvent;
use crate::session::tts_link::TtsEvent;

impl<W: Wire> Handler<SttEvent> for ClientSocket<W> {
    type Result = ();

    fn handle(&mut self, event: SttEvent, ctx: &mut Self::Context) {
        self.drive(Input::Stt(event), ctx);
    }
}

impl<W: Wire> Handler<LlmEvent> for ClientSocket<W> {
    type Result = ();

    fn handle(&mut self, event: LlmEvent, ctx: &mut Self::Context) {
        self.drive(Input::Llm(event), ctx);
    }
}

impl<W: Wire> Handler<TtsEvent> for ClientSocket<W> {
    type Result = ();

    fn handle(&mut self, event: TtsEvent, ctx: &mut Self::Context) {
        self.drive(Input::Tts(event), ctx);
    }
}

impl<W: Wire> Handler<Persisted> for ClientSocket<W> {
    type Result = ();

    fn handle(&mut self, saved: Persisted, ctx: &mut Self::Context) {
        self.drive(Input::Saved(saved), ctx);
    }
}
