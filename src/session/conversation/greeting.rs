//! The greeting: an agent that has one speaks it first in a new session (never on resume), before the user
//! says anything, as assistant turn 0. It takes the path an LLM reply takes (its text goes through the
//! segmenter into captions and speech synthesis as if the LLM had streamed it at once and finished), so
//! playback, the turn's end, storage (an assistant message of turn 0), recording and barge-in work as for any
//! reply; the LLM later remembers it as the conversation's first assistant message. User turns still start
//! at 1.

use super::latency::TurnTimes;
use super::turns::ActiveTurn;
use super::{Command, Conversation, Outbox};
use crate::db::TurnId;
use crate::session::llm_worker::LlmEvent;
use crate::session::tts_link::TtsCommand;

/// The turn the greeting is.
pub const GREETING_TURN: TurnId = 0;

impl Conversation {
    /// Speaks the agent's greeting, if it has one and the session is new.
    pub(super) fn greet(&mut self, out: &mut Outbox) {
        if self.resumed || self.turn.is_some() {
            return;
        }
        let Some(greeting) = self.settings.greeting.clone().filter(|g| !g.trim().is_empty()) else {
            return;
        };
        let id = GREETING_TURN;
        out.run(Command::Tts(TtsCommand::Start { turn_id: id }));
        self.turn = Some(ActiveTurn::new(id, TurnTimes::default(), self.settings.turns.audio_lead));
        self.on_llm(LlmEvent::Token { turn_id: id, text: greeting }, out);
        // No LLM answered it and it used no tokens.
        self.on_llm(LlmEvent::Done { turn_id: id, usage: Default::default(), provider: String::new() }, out);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use bytes::Bytes;

    use super::super::{Effect, Event, Input, Outbox};
    use super::*;
    use crate::config::Config;
    use crate::db::Role;
    use crate::metrics::Metrics;
    use crate::persistence::Write;
    use crate::session::settings::{Remembered, SessionParams, SessionSettings};
    use crate::session::tts_link::TtsEvent;

    fn conversation(greeting: Option<&str>, history: Vec<Remembered>) -> Conversation {
        let config = Config::from_lookup(|_| None).expect("defaults are valid");
        let settings =
            SessionSettings { greeting: greeting.map(str::to_string), ..SessionSettings::from_config(&config) };
        Conversation::new(&SessionParams::for_tests(settings, history), Arc::new(Metrics::new().unwrap()))
    }

    fn feed(c: &mut Conversation, input: Input) -> Vec<Effect> {
        let mut out = Outbox::default();
        c.handle(input, Instant::now(), &mut out);
        out.drain().collect()
    }

    fn sent(effects: &[Effect]) -> Vec<&Event> {
        effects.iter().filter_map(|e| if let Effect::Send(ev) = e { Some(ev) } else { None }).collect()
    }

    fn tts(effects: &[Effect]) -> Vec<&TtsCommand> {
        effects.iter().filter_map(|e| if let Effect::Do(Command::Tts(t)) = e { Some(t) } else { None }).collect()
    }

    #[test]
    fn a_new_session_speaks_the_greeting_as_turn_0_and_stores_it() {
        let mut c = conversation(Some("Hi, this is support. How can I help?"), Vec::new());
        let start = feed(&mut c, Input::Start);
        let events = sent(&start);
        assert!(matches!(events[0], Event::Started { resumed: false, .. }));
        let captions: Vec<&str> = events
            .iter()
            .filter_map(|e| if let Event::AssistantText { turn_id: 0, text } = e { Some(text.as_str()) } else { None })
            .collect();
        assert_eq!(captions, ["Hi, this is support.", "How can I help?"]);
        let spoken: Vec<String> = tts(&start).iter().map(|t| format!("{t:?}")).collect();
        assert!(spoken[0].starts_with("Start { turn_id: 0"), "{spoken:?}");
        assert!(spoken.last().unwrap().starts_with("End { turn_id: 0"), "{spoken:?}");
        assert!(c.assistant_speaking());

        let audio = TtsEvent::Audio { turn_id: 0, bytes: Bytes::from_static(b"mp3"), ms: 500.0, chars: Vec::new() };
        let mut effects = feed(&mut c, Input::Tts(audio));
        effects.extend(feed(&mut c, Input::Tts(TtsEvent::Done { turn_id: 0 })));
        let events = sent(&effects);
        assert!(events.iter().any(|e| matches!(e, Event::Audio { turn_id: 0, .. })));
        assert!(events.iter().any(|e| matches!(e, Event::TurnEnd { turn_id: 0, interrupted: false })));
        let stored: Vec<(u64, Role, &str)> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Do(Command::Persist(Write::Message { turn_id, role, content, .. })) => {
                    Some((*turn_id, *role, content.as_str()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(stored, [(0, Role::Assistant, "Hi, this is support. How can I help?")]);

        // The user's first turn is turn 1, and the LLM sees the greeting before it.
        let effects = feed(&mut c, Input::Text("Where is my order?".into()));
        let complete = effects
            .iter()
            .find_map(|e| if let Effect::Do(Command::Complete(c)) = e { Some(c) } else { None })
            .expect("the LLM is asked");
        assert_eq!(complete.turn_id, 1);
        let texts: Vec<String> = complete.messages.iter().map(|m| m.text()).collect();
        assert_eq!(texts[1..], ["Hi, this is support. How can I help?", "Where is my order?"]);
    }

    #[test]
    fn a_resumed_session_or_an_agent_without_a_greeting_waits_for_the_user() {
        let history = vec![Remembered { role: Role::User, text: "hello".into(), tools: Vec::new() }];
        for mut c in [conversation(Some("Hi!"), history), conversation(None, Vec::new())] {
            let effects = feed(&mut c, Input::Start);
            assert!(tts(&effects).is_empty());
            assert!(!sent(&effects).iter().any(|e| matches!(e, Event::AssistantText { .. })));
            assert!(!c.assistant_speaking());
        }
    }
}
