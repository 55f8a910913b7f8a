//! The conversation core driven by plain inputs, with no socket and no actor: every test feeds inputs at
//! chosen instants and checks the effects, in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::config::Config;
use crate::db::MessageId;
use crate::persistence::{HeardSource, ReplyFacts, ReplyOutcome};
use crate::providers::{FailureKind, Provider, ProviderError};
use crate::session::deepgram_link::SttWord;
use crate::session::settings::SessionParams;

struct Rig {
    c: Conversation,
    t0: Instant,
    out: Outbox,
}

/// The defaults, with preemptive generation off: most tests drive the plain commit-then-ask path, whose LLM
/// events carry the turn's id (the preemptive tests at the end turn it on).
fn settings() -> SessionSettings {
    let mut s = SessionSettings::from_config(&Config::from_lookup(|_| None).expect("defaults are valid"));
    s.turns.preemptive = false;
    s
}

fn params(history: Vec<memory::Remembered>) -> SessionParams {
    SessionParams::for_tests(settings(), history)
}

impl Rig {
    fn new() -> Rig {
        Rig::with(params(Vec::new()), settings())
    }

    fn with(mut params: SessionParams, settings: SessionSettings) -> Rig {
        let metrics = Arc::new(Metrics::new().unwrap());
        params.settings = Arc::new(settings);
        Rig { c: Conversation::new(&params, metrics), t0: Instant::now(), out: Outbox::default() }
    }

    /// Feeds `input` at `ms` after the start; returns its effects.
    fn feed(&mut self, ms: u64, input: Input) -> Vec<Effect> {
        self.c.handle(input, self.t0 + Duration::from_millis(ms), &mut self.out);
        self.out.drain().collect()
    }

    fn started() -> Rig {
        let mut r = Rig::new();
        r.feed(0, Input::Start);
        r
    }

    /// A committed spoken turn: a final transcript with `speech_final`, then the commit timer.
    fn say(&mut self, ms: u64, text: &str) -> Vec<Effect> {
        let mut all = self.feed(ms, transcript(text, true, true));
        all.extend(self.feed(ms + 200, Input::Timer(Timer::Commit)));
        all
    }
}

/// TTS audio of `turn` lasting `ms`, speaking `text` evenly from `from_ms`.
fn audio(turn: TurnId, ms: f64, from_ms: f64, text: &str) -> Input {
    let n = text.chars().count().max(1) as f64;
    let chars = text.chars().enumerate().map(|(i, c)| (from_ms + ms * (i as f64 + 1.0) / n, c)).collect();
    Input::Tts(TtsEvent::Audio { turn_id: turn, bytes: Bytes::from(vec![7u8; 10]), ms, chars })
}

fn transcript(text: &str, is_final: bool, speech_final: bool) -> Input {
    Input::Stt(SttEvent::Transcript {
        text: text.into(),
        words: Vec::new(),
        is_final,
        speech_final,
        from_finalize: false,
        end: None,
        speech_end: None,
    })
}

/// A result made of `words` (text, start, end in session seconds).
fn worded(words: &[(&str, f64, f64)], is_final: bool, speech_final: bool, from_finalize: bool) -> Input {
    let words: Vec<SttWord> =
        words.iter().map(|(t, s, e)| SttWord { text: t.to_string(), start: *s, end: *e }).collect();
    Input::Stt(SttEvent::Transcript {
        text: words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "),
        end: words.last().map(|w| w.end),
        words,
        is_final,
        speech_final,
        from_finalize,
        speech_end: None,
    })
}

fn events(effects: &[Effect]) -> Vec<&Event> {
    effects.iter().filter_map(|e| if let Effect::Send(ev) = e { Some(ev) } else { None }).collect()
}

fn commands(effects: &[Effect]) -> Vec<&Command> {
    effects.iter().filter_map(|e| if let Effect::Do(c) = e { Some(c) } else { None }).collect()
}

fn voiced_frame() -> Bytes {
    (0..320).flat_map(|i| if i % 2 == 0 { 8000i16 } else { -8000 }.to_le_bytes()).collect::<Vec<u8>>().into()
}

fn error_codes(effects: &[Effect]) -> Vec<String> {
    events(effects)
        .into_iter()
        .filter_map(|e| if let Event::Error { code, .. } = e { Some(code.clone()) } else { None })
        .collect()
}

#[test]
fn a_new_session_is_stored_and_announced_and_nothing_is_accepted_before() {
    let mut r = Rig::new();
    assert_eq!(error_codes(&r.feed(0, Input::Audio(voiced_frame()))), ["not_ready"]);
    assert_eq!(error_codes(&r.feed(0, Input::Text("hi".into()))), ["not_ready"]);
    let fx = r.feed(1, Input::Start);
    assert!(matches!(commands(&fx)[..], [Command::Persist(Write::CreateSession(_))]));
    assert_eq!(events(&fx), [&Event::Started { resumed: false, history_messages: 0 }]);
}

#[test]
fn a_resumed_session_touches_its_row_and_remembers_its_history() {
    let history = vec![
        memory::Remembered { role: Role::User, text: "my name is Ada".into(), tools: Vec::new() },
        memory::Remembered { role: Role::Assistant, text: "Hello Ada.".into(), tools: Vec::new() },
    ];
    let mut r = Rig::with(params(history), settings());
    let fx = r.feed(0, Input::Start);
    assert!(matches!(commands(&fx)[..], [Command::Persist(Write::Touch(_))]));
    assert_eq!(events(&fx), [&Event::Started { resumed: true, history_messages: 2 }]);
    let fx = r.feed(10, Input::Text("what is my name?".into()));
    let Some(Command::Complete(c)) = commands(&fx).into_iter().find(|c| matches!(c, Command::Complete(_))) else {
        panic!("no completion in {fx:?}");
    };
    let texts: Vec<String> = c.messages.iter().map(|m| m.text()).collect();
    assert_eq!(texts[1..], ["my name is Ada", "Hello Ada.", "what is my name?"]);
}

#[test]
fn the_first_audio_starts_recognition_once_and_every_frame_is_recorded_and_transcribed() {
    let mut r = Rig::started();
    let first = r.feed(20, Input::Audio(voiced_frame()));
    assert!(matches!(commands(&first)[..], [Command::RecordUser(_), Command::StartStt, Command::SttAudio { .. }]));
    let second = r.feed(40, Input::Audio(voiced_frame()));
    assert!(matches!(commands(&second)[..], [Command::RecordUser(_), Command::SttAudio { .. }]));
    assert!(r.feed(60, Input::Audio(Bytes::new())).is_empty(), "an empty frame is nothing");
}

#[test]
fn speech_final_waits_for_the_silence_and_more_speech_cancels_the_commit() {
    let mut r = Rig::started();
    let fx = r.feed(100, transcript("book a table", true, true));
    assert!(commands(&fx).iter().any(|c| matches!(c, Command::StartTimer(Timer::Commit, _))));
    let fx = r.feed(150, transcript("for two", false, false));
    assert!(commands(&fx).iter().any(|c| matches!(c, Command::CancelTimer(Timer::Commit))));
    assert_eq!(events(&fx), [&Event::Transcript { text: "book a table for two".into(), is_final: false }]);
    let fx = r.feed(400, transcript("for two", true, true));
    let fx2 = r.feed(600, Input::Timer(Timer::Commit));
    assert!(!fx.is_empty());
    assert_eq!(events(&fx2)[0], &Event::UserTurn { turn_id: 1, text: "book a table for two".into() });
}

#[test]
fn a_committed_turn_is_stored_asked_spoken_and_finished_in_order() {
    let mut r = Rig::started();
    let fx = r.say(100, "what time is it");
    let cmds = commands(&fx);
    assert!(cmds.iter().any(|c| matches!(c, Command::UserTurnCommitted(UserTurnCommitted { turn_id: 1 }))));
    assert!(cmds.iter().any(|c| matches!(c, Command::Persist(Write::Message { role: Role::User, .. }))));
    assert!(cmds.iter().any(|c| matches!(c, Command::Complete(Complete { turn_id: 1, .. }))));
    assert!(cmds.iter().any(|c| matches!(c, Command::Tts(TtsCommand::Start { turn_id: 1 }))));
    assert!(r.c.assistant_speaking());

    let fx = r.feed(500, Input::Llm(LlmEvent::Token { turn_id: 1, text: "It is noon. And".into() }));
    assert_eq!(events(&fx), [&Event::AssistantText { turn_id: 1, text: "It is noon.".into() }]);
    assert!(matches!(commands(&fx)[..], [Command::Tts(TtsCommand::Text { turn_id: 1, .. })]));
    let fx = r.feed(600, audio(1, 800.0, 0.0, "It is noon. "));
    assert_eq!(
        events(&fx),
        [&Event::AudioStart { turn_id: 1 }, &Event::Audio { turn_id: 1, bytes: vec![7u8; 10].into() }]
    );
    assert!(matches!(commands(&fx)[..], [Command::RecordAssistant(_)]));
    let fx = r.feed(700, Input::Llm(LlmEvent::Done { turn_id: 1, usage: Default::default(), provider: "m".into() }));
    assert_eq!(events(&fx), [&Event::AssistantText { turn_id: 1, text: "And".into() }]);
    assert!(commands(&fx).iter().any(|c| matches!(c, Command::Tts(TtsCommand::End { turn_id: 1 }))));
    let fx = r.feed(900, Input::Tts(TtsEvent::Done { turn_id: 1 }));
    let ev = events(&fx);
    assert_eq!(ev[0], &Event::AudioEnd { turn_id: 1 });
    assert_eq!(ev[1], &Event::TurnEnd { turn_id: 1, interrupted: false });
    let Event::Latency { latency, .. } = ev[2] else { panic!("{ev:?}") };
    assert_eq!(latency.first_audio_ms, Some(300), "end of speech (the commit) at 300 ms, audio at 600 ms");
    assert!(commands(&fx).iter().any(|c| matches!(
        c,
        Command::Persist(Write::Message { role: Role::Assistant, content, interrupted: false, .. })
            if content == "It is noon. And"
    )));
    assert!(!r.c.assistant_speaking());
}

#[test]
fn barge_in_interrupts_before_anything_else_and_late_audio_of_the_turn_is_dropped() {
    let mut r = Rig::started();
    r.say(100, "tell me a story");
    r.feed(400, Input::Llm(LlmEvent::Token { turn_id: 1, text: "Once upon a time. ".into() }));
    r.feed(500, audio(1, 400.0, 0.0, "Once upon"));
    let fx = r.feed(600, transcript("wait", false, false));
    let ev = events(&fx);
    assert_eq!(ev[0], &Event::Interrupt { turn_id: 1 });
    assert!(ev.contains(&&Event::TurnEnd { turn_id: 1, interrupted: true }));
    assert!(!ev.iter().any(|e| matches!(e, Event::AudioEnd { .. })), "no audioEnd for an interrupted turn");
    let cmds = commands(&fx);
    assert!(cmds.iter().any(|c| matches!(c, Command::CancelCompletion(CancelCompletion { turn_id: 1 }))));
    assert!(cmds.iter().any(|c| matches!(c, Command::Tts(TtsCommand::Cancel { turn_id: 1 }))));
    assert!(cmds.iter().any(|c| matches!(c, Command::StartTimer(Timer::Settle, _))), "stored once settled");
    let late = r.feed(700, audio(1, 400.0, 400.0, " a time."));
    assert!(late.is_empty(), "late audio of an interrupted turn goes nowhere: {late:?}");
    assert!(r.feed(710, Input::Llm(LlmEvent::Token { turn_id: 1, text: "more".into() })).is_empty());
}

#[test]
fn sustained_voiced_audio_after_speech_started_interrupts_but_a_short_noise_does_not() {
    let mut r = Rig::started();
    r.say(100, "go on");
    r.feed(300, Input::Stt(SttEvent::SpeechStarted { at: 0.0 }));
    // 500 ms of voiced audio at 20 ms a frame: the default threshold.
    let mut interrupted_at = None;
    for i in 0..30 {
        let fx = r.feed(300 + i * 20, Input::Audio(voiced_frame()));
        if events(&fx).iter().any(|e| matches!(e, Event::Interrupt { .. })) {
            interrupted_at = Some(i);
            break;
        }
    }
    assert_eq!(interrupted_at, Some(24), "interrupted once 0.5 s of speech was heard");

    let mut r = Rig::started();
    r.say(100, "go on");
    r.feed(300, Input::Stt(SttEvent::SpeechStarted { at: 0.0 }));
    for i in 0..5 {
        r.feed(300 + i * 20, Input::Audio(voiced_frame()));
    }
    let quiet = r.feed(420, Input::Audio(Bytes::from(vec![0u8; 640])));
    assert!(!events(&quiet).iter().any(|e| matches!(e, Event::Interrupt { .. })));
    assert!(r.c.assistant_speaking(), "a cough is not a barge-in");
}

#[test]
fn a_typed_turn_interrupts_the_reply_in_progress() {
    let mut r = Rig::started();
    r.feed(10, Input::Text("first".into()));
    let fx = r.feed(20, Input::Text("second".into()));
    let ev = events(&fx);
    assert_eq!(ev[0], &Event::Interrupt { turn_id: 1 });
    assert!(ev.contains(&&Event::UserTurn { turn_id: 2, text: "second".into() }));
}

#[test]
fn recognition_down_on_an_outage_restarts_after_the_wait_and_a_refusal_is_final() {
    let mut s = settings();
    s.turns.stt_restart_after = Duration::from_secs(10);
    let mut r = Rig::with(params(Vec::new()), s);
    r.feed(0, Input::Start);
    r.feed(10, Input::Audio(voiced_frame()));
    r.feed(20, transcript("half a", false, false));
    let outage = ProviderError::new(Provider::Deepgram, FailureKind::Connect, "dropped");
    let fx = r.feed(30, Input::Stt(SttEvent::Failed(outage)));
    assert_eq!(error_codes(&fx), ["deepgram_connect"]);
    assert_eq!(
        events(&fx)[1],
        &Event::UserTurn { turn_id: 1, text: "half a".into() },
        "what was heard before the failure is still an utterance"
    );
    let during = r.feed(5_000, Input::Audio(voiced_frame()));
    assert!(!commands(&during).iter().any(|c| matches!(c, Command::StartStt | Command::SttAudio { .. })));
    let after = r.feed(10_031, Input::Audio(voiced_frame()));
    assert_eq!(events(&after).last(), Some(&&Event::Status("speech recognition is starting again".into())));
    assert!(commands(&after).iter().any(|c| matches!(c, Command::StartStt)));

    let refused = ProviderError::new(Provider::Deepgram, FailureKind::Auth, "bad key");
    assert_eq!(error_codes(&r.feed(10_040, Input::Stt(SttEvent::Failed(refused.clone())))), ["deepgram_auth"]);
    let later = r.feed(99_000, Input::Audio(voiced_frame()));
    assert!(!commands(&later).iter().any(|c| matches!(c, Command::StartStt | Command::SttAudio { .. })));
    assert!(error_codes(&r.feed(99_010, Input::Stt(SttEvent::Failed(refused)))).is_empty(), "reported once");
}

#[test]
fn closing_the_microphone_finalizes_and_the_fallback_timer_commits_without_a_reply() {
    let mut r = Rig::started();
    r.feed(10, Input::Audio(voiced_frame()));
    r.feed(20, transcript("turn off the", false, false));
    let fx = r.feed(30, Input::CloseMicrophone);
    assert!(matches!(commands(&fx)[..], [Command::SttFinalize, Command::StartTimer(Timer::Finalize, _)]));
    let fx = r.feed(1_530, Input::Timer(Timer::Finalize));
    assert!(events(&fx).contains(&&Event::UserTurn { turn_id: 1, text: "turn off the".into() }));

    let mut text_only = Rig::started();
    assert!(text_only.feed(10, Input::CloseMicrophone).iter().all(|e| !matches!(e, Effect::Do(Command::SttFinalize))));
}

#[test]
fn a_drain_ends_an_idle_session_at_once_and_a_busy_one_after_its_turn() {
    let mut idle = Rig::started();
    let fx = idle.feed(10, Input::Drain { grace: Duration::from_secs(5) });
    assert_eq!(events(&fx).last(), Some(&&Event::End(EndReason::ServerShutdown)));

    let mut busy = Rig::started();
    busy.feed(10, Input::Text("hello".into()));
    let fx = busy.feed(20, Input::Drain { grace: Duration::from_secs(5) });
    assert!(commands(&fx).iter().any(|c| matches!(c, Command::StartTimer(Timer::Drain, _))));
    assert!(!events(&fx).iter().any(|e| matches!(e, Event::End(_))));
    busy.feed(30, Input::Llm(LlmEvent::Token { turn_id: 1, text: "Hi.".into() }));
    busy.feed(40, Input::Llm(LlmEvent::Done { turn_id: 1, usage: Default::default(), provider: "m".into() }));
    let fx = busy.feed(50, Input::Tts(TtsEvent::Done { turn_id: 1 }));
    assert!(events(&fx).contains(&&Event::TurnEnd { turn_id: 1, interrupted: false }));
    assert!(!events(&fx).iter().any(|e| matches!(e, Event::End(_))), "its messages are not saved yet");
    let saved = |role| Input::Saved(Persisted { turn_id: 1, role, message_id: MessageId(1) });
    assert!(!events(&busy.feed(60, saved(Role::User))).iter().any(|e| matches!(e, Event::End(_))));
    let fx = busy.feed(70, saved(Role::Assistant));
    let ev = events(&fx);
    assert!(matches!(ev[0], Event::Saved { role: Role::Assistant, .. }), "the client hears messageSaved first");
    assert_eq!(ev.last(), Some(&&Event::End(EndReason::ServerShutdown)));
}

#[test]
fn a_turn_still_going_when_the_drain_runs_out_is_cut_told_and_stored_before_the_close() {
    let mut r = Rig::started();
    r.feed(10, Input::Text("tell me everything".into()));
    r.feed(15, Input::Saved(Persisted { turn_id: 1, role: Role::User, message_id: MessageId(1) }));
    r.feed(20, Input::Llm(LlmEvent::Token { turn_id: 1, text: "First, ".into() }));
    r.feed(30, Input::Drain { grace: Duration::from_secs(2) });
    let fx = r.feed(2_030, Input::Timer(Timer::Drain));
    let ev = events(&fx);
    assert_eq!(ev[0], &Event::Interrupt { turn_id: 1 });
    assert!(ev.contains(&&Event::TurnEnd { turn_id: 1, interrupted: true }));
    assert!(persisted_reply(&fx).is_some(), "the cut reply is stored at once");
    assert!(!ev.iter().any(|e| matches!(e, Event::End(_))), "its save is waited for");
    let fx = r.feed(2_100, Input::Saved(Persisted { turn_id: 1, role: Role::Assistant, message_id: MessageId(2) }));
    assert_eq!(events(&fx).last(), Some(&&Event::End(EndReason::ServerShutdown)));
    // A save that never comes does not hold the close for more than a second.
    let mut stuck = Rig::started();
    stuck.feed(10, Input::Text("hi".into()));
    stuck.feed(20, Input::Drain { grace: Duration::from_secs(2) });
    stuck.feed(2_020, Input::Timer(Timer::Drain));
    let fx = stuck.feed(3_020, Input::Timer(Timer::Drain));
    assert_eq!(events(&fx).last(), Some(&&Event::End(EndReason::ServerShutdown)));
}

#[test]
fn a_client_gone_mid_reply_stores_that_nothing_was_heard_beside_what_was_generated() {
    let mut r = Rig::started();
    r.feed(10, Input::Text("hello".into()));
    r.feed(20, Input::Llm(LlmEvent::Token { turn_id: 1, text: "Hi there".into() }));
    let fx = r.feed(30, Input::Closed);
    assert!(events(&fx).is_empty(), "nobody to tell");
    assert!(commands(&fx).iter().any(|c| matches!(c, Command::CancelCompletion(_))));
    let (content, interrupted, facts) = persisted_reply(&fx).unwrap();
    assert_eq!((content.as_str(), interrupted), ("", true), "no audio had gone out");
    assert_eq!(facts.unwrap().generated.as_deref(), Some("Hi there"));
}

#[test]
fn stored_messages_are_announced_and_provider_failures_reported() {
    let mut r = Rig::started();
    let fx = r.feed(5, Input::Saved(Persisted { turn_id: 3, role: Role::User, message_id: MessageId(42) }));
    assert_eq!(events(&fx), [&Event::Saved { turn_id: 3, role: Role::User, message_id: 42 }]);
    r.feed(10, Input::Text("hello".into()));
    let error = ProviderError::new(Provider::OpenAi, FailureKind::RateLimited, "429");
    let fx = r.feed(20, Input::Llm(LlmEvent::Failed { turn_id: 1, error, after_tokens: false }));
    assert_eq!(error_codes(&fx), ["openai_rate_limited"]);
    assert!(events(&fx).contains(&&Event::TurnEnd { turn_id: 1, interrupted: false }));
    assert!(!commands(&fx).iter().any(|c| matches!(c, Command::Persist(_))), "an empty reply is not stored");
}

#[test]
fn a_voice_that_fails_after_its_turn_ended_still_says_what_to_fix_once_but_not_what_a_retry_may_cure() {
    let mut r = Rig::started();
    r.feed(10, Input::Text("hello".into()));
    let error = ProviderError::not_configured(Provider::OpenAi, "OPENAI_API_KEY");
    let fx = r.feed(20, Input::Llm(LlmEvent::Failed { turn_id: 1, error, after_tokens: false }));
    assert!(events(&fx).contains(&&Event::TurnEnd { turn_id: 1, interrupted: false }));
    let missing = || ProviderError::not_configured(Provider::ElevenLabs, "ELEVENLABS_API_KEY");
    let fx = r.feed(21, Input::Tts(TtsEvent::Failed { turn_id: 1, error: missing() }));
    assert_eq!(error_codes(&fx), ["elevenlabs_not_configured"], "told, though its turn is over");
    r.feed(30, Input::Text("again".into()));
    let fx = r.feed(31, Input::Tts(TtsEvent::Failed { turn_id: 1, error: missing() }));
    assert!(error_codes(&fx).is_empty(), "once a session");
    let busy = ProviderError::new(Provider::ElevenLabs, FailureKind::RateLimited, "429");
    let fx = r.feed(32, Input::Tts(TtsEvent::Failed { turn_id: 1, error: busy }));
    assert!(error_codes(&fx).is_empty(), "a passing failure of a finished turn is not news");
}

fn persisted_reply(effects: &[Effect]) -> Option<(String, bool, Option<ReplyFacts>)> {
    commands(effects).into_iter().find_map(|c| match c {
        Command::Persist(Write::Message { role: Role::Assistant, content, interrupted, reply, .. }) => {
            Some((content.clone(), *interrupted, reply.clone()))
        }
        _ => None,
    })
}

#[test]
fn audio_is_paced_no_more_than_the_lead_ahead_and_the_turn_ends_when_it_is_all_out() {
    let mut r = Rig::started();
    r.feed(0, Input::Text("talk".into()));
    r.feed(10, Input::Llm(LlmEvent::Token { turn_id: 1, text: "Some words.".into() }));
    r.feed(20, Input::Llm(LlmEvent::Done { turn_id: 1, usage: Default::default(), provider: "m".into() }));
    // Four seconds of audio arrive at once: the first 200 ms at once, then up to 500 ms ahead of the clock.
    let mut fx = Vec::new();
    for i in 0..20 {
        fx.extend(r.feed(100, audio(1, 200.0, 200.0 * i as f64, "w")));
    }
    let sent = events(&fx).iter().filter(|e| matches!(e, Event::Audio { .. })).count();
    assert_eq!(sent, 3, "sent while no more than 500 ms ahead: 600 ms out at once");
    assert!(commands(&fx).iter().any(|c| matches!(c, Command::StartTimer(Timer::Pace, _))));
    let done = r.feed(150, Input::Tts(TtsEvent::Done { turn_id: 1 }));
    assert!(!events(&done).iter().any(|e| matches!(e, Event::TurnEnd { .. })), "audio is still held back");
    let later = r.feed(100 + 3_600, Input::Timer(Timer::Pace));
    let ev = events(&later);
    assert_eq!(ev.iter().filter(|e| matches!(e, Event::Audio { .. })).count(), 17);
    assert!(ev.contains(&&Event::AudioEnd { turn_id: 1 }));
    assert!(ev.contains(&&Event::TurnEnd { turn_id: 1, interrupted: false }));
    let (content, _, facts) = persisted_reply(&later).unwrap();
    assert_eq!(content, "Some words.");
    assert_eq!(facts.unwrap().generated, None);
}

#[test]
fn an_interrupted_reply_is_stored_and_remembered_as_heard_when_the_client_says() {
    let mut r = Rig::started();
    r.feed(0, Input::Text("story".into()));
    let text = "Once upon a time there was a fox. It was red.";
    r.feed(10, Input::Llm(LlmEvent::Token { turn_id: 1, text: text.into() }));
    // 4.5 s of audio, its characters evenly spread; all sent by pacing well before the interrupt.
    for (i, part) in ["Once upon a time ", "there was a fox. ", "It was red."].iter().enumerate() {
        r.feed(20, audio(1, 1500.0, 1500.0 * i as f64, part));
    }
    r.feed(20 + 2_000, Input::Timer(Timer::Pace));
    r.feed(20 + 1_000, Input::Played { turn_id: 1, ms: 900 });
    let fx = r.feed(20 + 2_200, Input::Interrupt);
    assert_eq!(persisted_reply(&fx), None, "waits for the client's final position");
    // The client dropped the turn 2100 ms into it ("Once upon a time " is 1500 ms, "there was" ends by 2100).
    let fx = r.feed(20 + 2_260, Input::Played { turn_id: 1, ms: 2_100 });
    let (content, interrupted, facts) = persisted_reply(&fx).expect("stored on the final position");
    assert_eq!(content, "Once upon a time there");
    assert!(interrupted);
    let facts = facts.unwrap();
    assert_eq!(facts.outcome, ReplyOutcome::Interrupted);
    assert_eq!(facts.generated.as_deref(), Some(text));
    assert_eq!(facts.heard, Some((2_100, HeardSource::Client)));
    // The next question is asked with only what was heard, marked as cut off.
    let fx = r.feed(20 + 3_000, Input::Text("go on".into()));
    let Some(Command::Complete(c)) = commands(&fx).into_iter().find(|c| matches!(c, Command::Complete(_))) else {
        panic!("{fx:?}")
    };
    let remembered = c.messages[c.messages.len() - 2].text();
    assert!(remembered.starts_with("Once upon a time there…"), "{remembered}");
    assert!(!remembered.contains("fox"), "{remembered}");
}

#[test]
fn without_acknowledgements_the_heard_part_is_estimated_from_paced_audio() {
    let mut r = Rig::started();
    r.feed(0, Input::Text("story".into()));
    r.feed(10, Input::Llm(LlmEvent::Token { turn_id: 1, text: "One two three four five six.".into() }));
    r.feed(100, audio(1, 3000.0, 0.0, "One two three four five six."));
    let fx = r.feed(100 + 1_000, Input::Interrupt);
    assert_eq!(persisted_reply(&fx), None);
    let fx = r.feed(100 + 2_000, Input::Timer(Timer::Settle));
    let (content, _, facts) = persisted_reply(&fx).unwrap();
    // 1000 ms of 3000: a third of the 24 characters, "One two th" → "One two".
    assert_eq!(content, "One two");
    assert_eq!(facts.unwrap().heard, Some((1_000, HeardSource::Estimate)));
}

#[test]
fn a_reply_broken_by_the_llm_is_partial_and_its_error_comes_after_its_last_text_and_audio() {
    let mut r = Rig::started();
    r.feed(0, Input::Text("talk".into()));
    r.feed(10, Input::Llm(LlmEvent::Token { turn_id: 1, text: "First part. Second".into() }));
    let error = ProviderError::new(Provider::OpenAi, FailureKind::Truncated, "no [DONE]");
    let mut fx = r.feed(20, Input::Llm(LlmEvent::Failed { turn_id: 1, error, after_tokens: true }));
    fx.extend(r.feed(30, audio(1, 500.0, 0.0, "First part. Second")));
    fx.extend(r.feed(40, Input::Tts(TtsEvent::Done { turn_id: 1 })));
    let ev = events(&fx);
    let pos = |pred: &dyn Fn(&Event) -> bool| ev.iter().position(|e| pred(e)).unwrap();
    let error_at = pos(&|e| matches!(e, Event::Error { code, .. } if code == "openai_truncated"));
    assert!(pos(&|e| matches!(e, Event::AssistantText { text, .. } if text == "Second")) < error_at);
    assert!(pos(&|e| matches!(e, Event::Audio { .. })) < error_at);
    assert!(pos(&|e| matches!(e, Event::AudioEnd { .. })) < error_at);
    assert!(error_at < pos(&|e| matches!(e, Event::TurnEnd { .. })));
    let (content, interrupted, facts) = persisted_reply(&fx).unwrap();
    assert_eq!((content.as_str(), interrupted), ("First part. Second", true));
    assert_eq!(facts.unwrap().outcome, ReplyOutcome::Partial);
}

#[test]
fn the_first_played_position_gives_voice_to_voice_even_after_the_turn_ended() {
    let mut r = Rig::started();
    r.say(100, "hi"); // end of speech at 300 ms (the commit)
    r.feed(400, Input::Llm(LlmEvent::Token { turn_id: 1, text: "Hello.".into() }));
    r.feed(500, Input::Llm(LlmEvent::Done { turn_id: 1, usage: Default::default(), provider: "m".into() }));
    r.feed(600, audio(1, 300.0, 0.0, "Hello."));
    let end = r.feed(610, Input::Tts(TtsEvent::Done { turn_id: 1 }));
    let Some(Event::Latency { latency, .. }) = events(&end).into_iter().find(|e| matches!(e, Event::Latency { .. }))
    else {
        panic!("{end:?}")
    };
    assert_eq!(latency.heard_after_ms, None);
    // The client heard 250 ms by 1000 ms: it started hearing at 750 ms, 450 ms after the end of speech.
    let fx = r.feed(1_000, Input::Played { turn_id: 1, ms: 250 });
    let Some(Event::Latency { latency, .. }) = events(&fx).into_iter().next().cloned() else { panic!("{fx:?}") };
    assert_eq!(latency.heard_after_ms, Some(450));
    assert_eq!(latency.first_audio_ms, Some(300));
    assert!(events(&r.feed(1_100, Input::Played { turn_id: 1, ms: 300 })).is_empty(), "only the first counts");
    assert!(r.feed(1_200, Input::Played { turn_id: 9, ms: 10 }).is_empty(), "an unknown turn is ignored");
}

#[test]
fn a_late_finalize_reply_about_committed_words_is_no_barge_in_and_no_new_words() {
    let mut r = Rig::started();
    r.feed(10, Input::Audio(voiced_frame()));
    r.feed(20, worded(&[("What", 0.2, 0.4), ("is", 0.4, 0.5), ("the", 0.5, 0.6)], false, false, false));
    r.feed(30, Input::CloseMicrophone);
    // Deepgram does not answer in time: the fallback commits the interim words.
    let fx = r.feed(1_530, Input::Timer(Timer::Finalize));
    assert!(events(&fx).contains(&&Event::UserTurn { turn_id: 1, text: "What is the".into() }));
    r.feed(1_600, Input::Llm(LlmEvent::Token { turn_id: 1, text: "It is".into() }));
    // 2.5 s later its reply arrives, about the same audio: nothing happens.
    let late = worded(&[("What", 0.21, 0.41), ("is", 0.41, 0.52), ("the", 0.52, 0.63)], true, true, true);
    assert!(r.feed(4_000, late).is_empty(), "not a barge-in, not a transcript, not a commit");
    assert!(r.c.assistant_speaking());
    // A final that straddles the point keeps only its new words.
    let fx = r.feed(5_000, worded(&[("the", 0.5, 0.6), ("weather", 3.0, 3.4)], true, false, false));
    assert_eq!(events(&fx)[0], &Event::Interrupt { turn_id: 1 }, "the new word is real speech over the reply");
    assert!(events(&fx).contains(&&Event::Transcript { text: "weather".into(), is_final: true }));
    let fx = r.feed(5_100, Input::Stt(SttEvent::UtteranceEnd));
    assert!(events(&fx).contains(&&Event::UserTurn { turn_id: 2, text: "weather".into() }));
}

#[test]
fn a_typed_turn_flood_is_refused_past_the_turn_rate_and_recovers_a_minute_later() {
    let mut s = settings();
    s.turns_per_minute = 3;
    let mut r = Rig::with(params(Vec::new()), s);
    r.feed(0, Input::Start);
    for i in 0..3 {
        assert!(error_codes(&r.feed(i * 10, Input::Text(format!("q{i}")))).is_empty());
    }
    let fx = r.feed(100, Input::Text("one too many".into()));
    assert_eq!(error_codes(&fx), ["rate_limited"]);
    assert!(!commands(&fx).iter().any(|c| matches!(c, Command::Complete(_))), "no LLM request");
    let later = r.feed(60_050, Input::Text("again".into()));
    assert!(commands(&later).iter().any(|c| matches!(c, Command::Complete(_))));
}

fn tool_started(turn: TurnId, id: &str, name: &str, client: bool) -> Input {
    Input::Llm(LlmEvent::ToolStarted {
        turn_id: turn,
        call_id: id.into(),
        name: name.into(),
        arguments: serde_json::json!({"order_id": "1234"}),
        client,
    })
}

fn tool_record(id: &str, name: &str, result: serde_json::Value) -> crate::db::ToolRecord {
    crate::db::ToolRecord {
        call_id: id.into(),
        name: name.into(),
        arguments: serde_json::json!({"order_id": "1234"}),
        result: Some(result),
        error: None,
    }
}

#[test]
fn a_client_tool_is_asked_of_the_client_and_only_its_own_answer_goes_to_the_llm() {
    let mut r = Rig::started();
    r.say(100, "show me the map");
    let fx = r.feed(300, tool_started(1, "c1", "show_map", true));
    assert!(
        matches!(events(&fx)[..], [Event::ToolCall { turn_id: 1, call_id, name, .. }] if call_id == "c1" && name == "show_map")
    );
    let fx = r.feed(310, Input::ToolResult { call_id: "nope".into(), answer: Ok(serde_json::json!(1)) });
    assert_eq!(error_codes(&fx), ["unknown_tool_call"]);
    let fx = r.feed(320, Input::ToolResult { call_id: "c1".into(), answer: Ok(serde_json::json!({"shown": true})) });
    assert!(
        matches!(commands(&fx)[..], [Command::ClientToolAnswer(ClientToolAnswer { call_id, .. })] if call_id == "c1")
    );
    let fx = r.feed(330, Input::ToolResult { call_id: "c1".into(), answer: Ok(serde_json::json!(2)) });
    assert_eq!(error_codes(&fx), ["unknown_tool_call"], "answered once");
}

#[test]
fn a_barge_in_cancels_the_running_tool_and_the_reply_remembers_its_calls() {
    let mut r = Rig::started();
    r.say(100, "where is my order");
    let fx = r.feed(300, tool_started(1, "w1", "lookup_order", false));
    assert!(matches!(events(&fx)[..], [Event::ToolStatus { status: ToolStatus::Running, .. }]));
    r.feed(350, tool_started(1, "w2", "lookup_order", false));
    let record = tool_record("w1", "lookup_order", serde_json::json!({"status": "shipped"}));
    let fx = r.feed(400, Input::Llm(LlmEvent::ToolFinished { turn_id: 1, record }));
    assert!(matches!(events(&fx)[..], [Event::ToolStatus { status: ToolStatus::Done, .. }]));
    r.feed(450, Input::Llm(LlmEvent::Token { turn_id: 1, text: "It has shipped. ".into() }));
    let fx = r.feed(500, Input::Interrupt);
    let ev = events(&fx);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::ToolStatus { call_id, status: ToolStatus::Cancelled, .. } if call_id == "w2")),
        "{ev:?}"
    );
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::ToolStatus { call_id, status: ToolStatus::Cancelled, .. } if call_id == "w1"))
    );
    // Nothing was heard, so it is settled at once: stored with both calls (the cancelled one as such), and
    // given back to the LLM next turn.
    let stored = commands(&fx).into_iter().find_map(|c| match c {
        Command::Persist(Write::Message { role: Role::Assistant, reply: Some(facts), .. }) => Some(facts.clone()),
        _ => None,
    });
    let facts = stored.expect("the reply is stored");
    assert_eq!(facts.tools.len(), 2);
    assert_eq!(facts.tools[0].result, Some(serde_json::json!({"status": "shipped"})));
    assert!(facts.tools[1].error.as_deref().is_some_and(|e| e.starts_with("cancelled")));
    let fx = r.say(2000, "thanks");
    let messages = commands(&fx)
        .into_iter()
        .find_map(|c| if let Command::Complete(Complete { messages, .. }) = c { Some(messages.clone()) } else { None })
        .unwrap();
    let calls = messages.iter().find_map(|m| m.tool_calls.clone()).expect("the calls are in the context");
    assert_eq!(calls.len(), 2);
    let answers: Vec<String> = messages.iter().filter(|m| m.tool_call_id.is_some()).map(|m| m.text()).collect();
    assert_eq!(answers.len(), 2);
    assert!(answers[0].contains("shipped"), "{answers:?}");
}

#[test]
fn the_llm_first_token_of_a_tool_turn_is_its_first_call_and_counts_from_the_first_attempt() {
    let mut r = Rig::started();
    r.say(100, "where is my order");
    let requested = |r: &mut Rig, turn_id: TurnId, ms: u64| {
        let at = r.t0 + Duration::from_millis(ms);
        r.feed(ms, Input::Llm(LlmEvent::Requested { turn_id, at }));
    };
    // A first attempt that failed, its retry, a tool call, the tool's run, then the step that speaks.
    requested(&mut r, 1, 120);
    requested(&mut r, 1, 400);
    r.feed(650, tool_started(1, "w1", "lookup_order", false));
    let record = tool_record("w1", "lookup_order", serde_json::json!({"status": "shipped"}));
    r.feed(900, Input::Llm(LlmEvent::ToolFinished { turn_id: 1, record }));
    requested(&mut r, 1, 910);
    r.feed(1200, token(1, "It has shipped. "));
    let times = r.c.turn.as_ref().unwrap().times;
    assert_eq!(times.latency().llm_first_token_ms, Some(530), "from the first attempt to the call: {times:?}");

    // Words before the call: they are the first output, and a later step never makes the figure zero.
    r.feed(1300, audio(1, 300.0, 0.0, "It has shipped."));
    r.feed(1310, Input::Llm(LlmEvent::Done { turn_id: 1, usage: Default::default(), provider: "m".into() }));
    r.feed(1700, Input::Tts(TtsEvent::Done { turn_id: 1 }));
    r.say(2000, "and the other one");
    requested(&mut r, 2, 2100);
    r.feed(2350, token(2, "Let me check. "));
    r.feed(2500, tool_started(2, "w2", "lookup_order", false));
    requested(&mut r, 2, 2800);
    r.feed(3000, token(2, "That one too."));
    let times = r.c.turn.as_ref().unwrap().times;
    assert_eq!(times.latency().llm_first_token_ms, Some(250), "{times:?}");
}

#[test]
fn end_conversation_ends_the_session_once_the_goodbye_is_spoken_and_stored() {
    let mut r = Rig::started();
    r.say(100, "bye");
    r.feed(300, Input::Llm(LlmEvent::Token { turn_id: 1, text: "Goodbye!".into() }));
    r.feed(310, Input::Llm(LlmEvent::EndConversation { turn_id: 1 }));
    r.feed(320, audio(1, 300.0, 0.0, "Goodbye!"));
    let fx = r.feed(330, Input::Llm(LlmEvent::Done { turn_id: 1, usage: Default::default(), provider: "m".into() }));
    assert!(!events(&fx).iter().any(|e| matches!(e, Event::End(_))));
    let fx = r.feed(700, Input::Tts(TtsEvent::Done { turn_id: 1 }));
    let ev = events(&fx);
    assert!(ev.contains(&&Event::TurnEnd { turn_id: 1, interrupted: false }));
    assert!(!ev.iter().any(|e| matches!(e, Event::End(_))), "not before the goodbye is stored");
    let saved =
        |role| Input::Saved(crate::persistence::Persisted { turn_id: 1, role, message_id: crate::db::MessageId(9) });
    r.feed(710, saved(Role::User));
    let fx = r.feed(720, saved(Role::Assistant));
    assert_eq!(events(&fx).last(), Some(&&Event::End(EndReason::AgentEnded)));
}

#[test]
fn phone_keys_become_one_user_turn_after_the_pause_and_are_ignored_when_off() {
    let mut r = Rig::started();
    let pause = r.c.settings.turns.dtmf_timeout.expect("on by default");
    for (at, key) in [(10, '1'), (20, '2'), (30, '#')] {
        let fx = r.feed(at, Input::Dtmf(key));
        assert!(
            commands(&fx).iter().any(|c| matches!(c, Command::StartTimer(Timer::Dtmf, d) if *d == pause)),
            "each key restarts the pause"
        );
    }
    let fx = r.feed(2000, Input::Timer(Timer::Dtmf));
    assert!(
        events(&fx).iter().any(|e| matches!(e, Event::UserTurn { text, .. } if text == "The caller pressed 1 2 #")),
        "{:?}",
        events(&fx)
    );
    assert!(r.feed(2100, Input::Timer(Timer::Dtmf)).is_empty(), "the keys make one turn only");

    let mut off = settings();
    off.turns.dtmf_timeout = None;
    let mut r = Rig::with(params(Vec::new()), off);
    r.feed(0, Input::Start);
    assert!(r.feed(10, Input::Dtmf('5')).is_empty(), "keys are ignored when PARLEY_DTMF_TIMEOUT_MS is 0");
}

// Preemptive generation (PARLEY_PREEMPTIVE, on by default).

/// The speculative request a `speech_final` started, if any: (id, messages).
fn speculative(effects: &[Effect]) -> Option<(TurnId, Vec<crate::providers::openai::ChatMessage>)> {
    commands(effects).into_iter().find_map(|c| match c {
        Command::Complete(Complete { turn_id, messages, speculative: true }) => Some((*turn_id, messages.clone())),
        _ => None,
    })
}

/// A started conversation with preemptive generation on (the default), early speech included.
fn preemptive_rig() -> Rig {
    preemptive_rig_with(|_| {})
}

fn preemptive_rig_with(change: impl FnOnce(&mut SessionSettings)) -> Rig {
    let mut settings = settings();
    settings.turns.preemptive = true;
    settings.turns.preemptive_tts = true;
    change(&mut settings);
    let mut r = Rig::with(params(Vec::new()), settings);
    r.feed(0, Input::Start);
    r
}

/// The TTS commands among `effects`.
fn tts_commands(effects: &[Effect]) -> Vec<TtsCommand> {
    commands(effects).into_iter().filter_map(|c| if let Command::Tts(t) = c { Some(t.clone()) } else { None }).collect()
}

fn token(turn_id: TurnId, text: &str) -> Input {
    Input::Llm(LlmEvent::Token { turn_id, text: text.into() })
}

#[test]
fn a_reply_started_at_speech_final_becomes_the_turn_when_the_window_closes() {
    // The LLM alone starts early here (PARLEY_PREEMPTIVE_TTS=false); early speech is tested below.
    let mut r = preemptive_rig_with(|s| s.turns.preemptive_tts = false);
    let fx = r.feed(100, transcript("what time is it", true, true));
    let (spec, messages) = speculative(&fx).expect("the LLM is asked at speech_final");
    assert!(spec >= preemptive::SPECULATIVE_IDS, "an id no turn has: {spec}");
    assert_eq!(messages.last().unwrap().text(), "what time is it");
    assert!(commands(&fx).iter().any(|c| matches!(c, Command::StartTimer(Timer::Commit, _))), "the window still runs");

    // What it streams before the commit is held: nothing reaches the client, TTS or the store.
    assert!(
        r.feed(150, Input::Llm(LlmEvent::Requested { turn_id: spec, at: r.t0 + Duration::from_millis(120) }))
            .is_empty()
    );
    assert!(r.feed(250, token(spec, "It is noon. And")).is_empty());

    let fx = r.feed(300, Input::Timer(Timer::Commit));
    let cmds = commands(&fx);
    assert!(!cmds.iter().any(|c| matches!(c, Command::Complete(_))), "not asked twice: {cmds:?}");
    assert!(
        cmds.iter().any(|c| matches!(c, Command::ConfirmCompletion(ConfirmCompletion { turn_id }) if *turn_id == spec))
    );
    assert!(cmds.iter().any(|c| matches!(c, Command::Persist(Write::Message { role: Role::User, .. }))));
    let tts: Vec<_> = cmds.iter().filter(|c| matches!(c, Command::Tts(_))).collect();
    assert!(
        matches!(
            tts[..],
            [Command::Tts(TtsCommand::Start { turn_id: 1 }), Command::Tts(TtsCommand::Text { turn_id: 1, .. })]
        ),
        "{tts:?}"
    );
    assert_eq!(
        events(&fx),
        [
            &Event::UserTurn { turn_id: 1, text: "what time is it".into() },
            &Event::AssistantText { turn_id: 1, text: "It is noon.".into() },
        ]
    );

    // The rest streams on under the speculation's id and belongs to turn 1.
    let fx = r.feed(350, Input::Llm(LlmEvent::Done { turn_id: spec, usage: Default::default(), provider: "m".into() }));
    assert_eq!(events(&fx), [&Event::AssistantText { turn_id: 1, text: "And".into() }]);
    let t = r.c.turn.as_ref().unwrap();
    assert_eq!(t.times.llm_first_token, Some(r.t0 + Duration::from_millis(250)), "when the first token really came");
    assert_eq!(t.times.llm_requested, Some(r.t0 + Duration::from_millis(120)));
    assert_eq!(r.c.metrics.preemptive_used_total.get(), 1);
    assert_eq!(r.c.metrics.preemptive_discarded_total.get(), 0);
}

#[test]
fn a_user_who_goes_on_within_the_window_is_never_answered_early() {
    let mut r = preemptive_rig();
    let (first, _) = speculative(&r.feed(100, transcript("book a table", true, true))).unwrap();
    assert!(r.feed(200, token(first, "Sure, for how many?")).is_empty());

    // More words: the early reply is cancelled silently and the utterance goes on.
    let fx = r.feed(250, transcript("for two", false, false));
    assert!(
        commands(&fx)
            .iter()
            .any(|c| matches!(c, Command::CancelCompletion(CancelCompletion { turn_id }) if *turn_id == first))
    );
    assert!(commands(&fx).iter().any(|c| matches!(c, Command::CancelTimer(Timer::Commit))));
    assert_eq!(events(&fx), [&Event::Transcript { text: "book a table for two".into(), is_final: false }]);
    assert_eq!(r.c.metrics.preemptive_discarded_total.get(), 1);
    // Whatever it still streams is dropped, now and after the next turn starts.
    assert!(r.feed(260, token(first, " Great.")).is_empty());

    let fx = r.feed(500, transcript("for two", true, true));
    let (second, messages) = speculative(&fx).unwrap();
    assert_ne!(first, second);
    assert_eq!(messages.last().unwrap().text(), "book a table for two");
    let fx = r.feed(700, Input::Timer(Timer::Commit));
    assert_eq!(events(&fx), [&Event::UserTurn { turn_id: 1, text: "book a table for two".into() }]);
    assert!(r.feed(720, token(first, "Sure, for how many?")).is_empty(), "the discarded reply is never heard");
    let fx = r.feed(740, token(second, "Booked. For"));
    assert_eq!(events(&fx), [&Event::AssistantText { turn_id: 1, text: "Booked.".into() }]);
    // Stored: only the user's words so far; nothing of the discarded reply anywhere.
    assert!(!format!("{:?}", r.feed(760, Input::Closed)).contains("for how many"));
}

#[test]
fn speech_starting_again_discards_the_early_reply() {
    let mut r = preemptive_rig();
    let (spec, _) = speculative(&r.feed(100, transcript("I want to", true, true))).unwrap();
    let fx = r.feed(180, Input::Stt(SttEvent::SpeechStarted { at: 1.2 }));
    assert!(
        commands(&fx)
            .iter()
            .any(|c| matches!(c, Command::CancelCompletion(CancelCompletion { turn_id }) if *turn_id == spec))
    );
    assert!(
        r.feed(200, Input::Llm(LlmEvent::Done { turn_id: spec, usage: Default::default(), provider: "m".into() }))
            .is_empty()
    );
    assert!(!r.c.assistant_speaking());
    assert_eq!(r.c.metrics.preemptive_discarded_total.get(), 1);
}

#[test]
fn an_early_reply_the_turn_would_not_ask_for_is_not_used() {
    // A typed message first: the spoken words are not what is answered.
    let mut r = preemptive_rig();
    let (spec, _) = speculative(&r.feed(100, transcript("what time is it", true, true))).unwrap();
    let fx = r.feed(150, Input::Text("tell me a joke".into()));
    let cmds = commands(&fx);
    assert!(
        cmds.iter().any(|c| matches!(c, Command::CancelCompletion(CancelCompletion { turn_id }) if *turn_id == spec))
    );
    assert!(cmds.iter().any(|c| matches!(c, Command::Complete(Complete { turn_id: 1, speculative: false, .. }))));

    // A failed early reply is asked again for real at the commit.
    let mut r = preemptive_rig();
    let (spec, _) = speculative(&r.feed(100, transcript("what time is it", true, true))).unwrap();
    let error = ProviderError::new(Provider::OpenAi, FailureKind::Server, "boom");
    r.feed(150, Input::Llm(LlmEvent::Failed { turn_id: spec, error, after_tokens: false }));
    let fx = r.feed(300, Input::Timer(Timer::Commit));
    assert!(
        commands(&fx).iter().any(|c| matches!(c, Command::Complete(Complete { turn_id: 1, speculative: false, .. })))
    );
    assert!(!error_codes(&fx).iter().any(|c| c.contains("server")), "the early failure is not the turn's");

    // Turned off: the LLM is asked at the commit only.
    let mut settings = settings();
    settings.turns.preemptive = false;
    let mut r = Rig::with(params(Vec::new()), settings);
    r.feed(0, Input::Start);
    assert!(speculative(&r.feed(100, transcript("what time is it", true, true))).is_none());
}

#[test]
fn interrupting_a_turn_that_adopted_an_early_reply_cancels_that_request() {
    let mut r = preemptive_rig();
    let (spec, _) = speculative(&r.feed(100, transcript("tell me a story", true, true))).unwrap();
    r.feed(300, Input::Timer(Timer::Commit));
    r.feed(350, token(spec, "Once upon a time. There"));
    let fx = r.feed(400, Input::Interrupt);
    let cancelled: Vec<TurnId> = commands(&fx)
        .iter()
        .filter_map(
            |c| if let Command::CancelCompletion(CancelCompletion { turn_id }) = c { Some(*turn_id) } else { None },
        )
        .collect();
    assert_eq!(cancelled, [spec], "the request the turn streams from is the one stopped");
    assert!(r.feed(450, token(spec, " was a king.")).is_empty(), "nothing of it after the interrupt");
}

#[test]
fn the_early_reply_is_spoken_early_and_its_held_audio_goes_out_the_moment_the_turn_starts() {
    let mut r = preemptive_rig();
    let (spec, _) = speculative(&r.feed(100, transcript("what time is it", true, true))).unwrap();
    // The first complete piece goes to TTS at once, under the speculation's id; nothing reaches the client.
    let fx = r.feed(250, token(spec, "It is noon. And"));
    assert!(events(&fx).is_empty(), "{fx:?}");
    assert_eq!(
        tts_commands(&fx),
        [TtsCommand::Start { turn_id: spec }, TtsCommand::Text { turn_id: spec, text: "It is noon.".into() }]
    );
    // Its audio is held: not sent, not recorded.
    assert!(r.feed(280, audio(spec, 400.0, 0.0, "It is noon.")).is_empty());

    // The commit: the turn adopts the speech, sends nothing to TTS again, and the held audio goes out now.
    let fx = r.feed(300, Input::Timer(Timer::Commit));
    assert!(tts_commands(&fx).is_empty(), "no new context, no piece twice: {:?}", tts_commands(&fx));
    let evs = events(&fx);
    assert_eq!(evs[0], &Event::UserTurn { turn_id: 1, text: "what time is it".into() });
    assert_eq!(evs[1], &Event::AssistantText { turn_id: 1, text: "It is noon.".into() });
    assert_eq!(evs[2], &Event::AudioStart { turn_id: 1 });
    assert!(matches!(evs[3], Event::Audio { turn_id: 1, .. }), "{evs:?}");
    assert!(
        commands(&fx).iter().any(|c| matches!(c, Command::RecordAssistant(AssistantAudio { turn_id: 1, .. }))),
        "recorded as the turn's"
    );
    let t = r.c.turn.as_ref().unwrap();
    assert_eq!(t.times.tts_first_text, Some(r.t0 + Duration::from_millis(250)));
    assert_eq!(t.times.tts_first_byte, Some(r.t0 + Duration::from_millis(280)));
    assert_eq!(t.times.first_audio_sent, Some(r.t0 + Duration::from_millis(300)));

    // The rest goes on in the same TTS context; its audio is the turn's.
    let fx = r.feed(350, Input::Llm(LlmEvent::Done { turn_id: spec, usage: Default::default(), provider: "m".into() }));
    assert_eq!(
        tts_commands(&fx),
        [TtsCommand::Text { turn_id: spec, text: "And".into() }, TtsCommand::End { turn_id: spec }]
    );
    assert_eq!(events(&fx), [&Event::AssistantText { turn_id: 1, text: "And".into() }]);
    r.feed(360, audio(spec, 200.0, 400.0, "And"));
    assert_eq!(r.c.turn.as_ref().unwrap().playback.received_ms(), 600.0, "both pieces' audio is the turn's");
    let fx = r.feed(370, Input::Interrupt);
    assert!(tts_commands(&fx).contains(&TtsCommand::Cancel { turn_id: spec }), "barge-in stops that context");
    assert_eq!(r.c.metrics.preemptive_discarded_tts_characters_total.get(), 0);
}

#[test]
fn a_discarded_early_reply_cancels_its_speech_and_none_of_its_audio_is_ever_played() {
    let mut r = preemptive_rig();
    let (spec, _) = speculative(&r.feed(100, transcript("book a table", true, true))).unwrap();
    // Three sentences at once: only the first two are spoken early.
    let fx = r.feed(200, token(spec, "Sure. For how many? At what time? "));
    assert_eq!(
        tts_commands(&fx),
        [
            TtsCommand::Start { turn_id: spec },
            TtsCommand::Text { turn_id: spec, text: "Sure.".into() },
            TtsCommand::Text { turn_id: spec, text: "For how many?".into() },
        ]
    );
    assert!(r.feed(220, audio(spec, 300.0, 0.0, "Sure.")).is_empty());
    // The user goes on: the LLM request and the TTS context are cancelled, the characters counted.
    let fx = r.feed(250, transcript("for two", false, false));
    assert!(tts_commands(&fx).contains(&TtsCommand::Cancel { turn_id: spec }));
    assert_eq!(
        r.c.metrics.preemptive_discarded_tts_characters_total.get(),
        ("Sure.".len() + "For how many?".len()) as u64
    );
    assert!(r.feed(260, audio(spec, 300.0, 300.0, "For how many?")).is_empty(), "late audio of it is dropped");

    // The turn that follows speaks in a context of its own; the discarded audio never plays.
    let fx = r.feed(500, transcript("for two", true, true));
    let (second, _) = speculative(&fx).unwrap();
    let fx = r.feed(700, Input::Timer(Timer::Commit));
    assert_eq!(tts_commands(&fx), [TtsCommand::Start { turn_id: 1 }], "nothing was spoken early this time");
    assert!(r.feed(720, audio(spec, 300.0, 600.0, "At what time?")).is_empty());
    let fx = r.feed(740, token(second, "Booked. For"));
    assert_eq!(tts_commands(&fx), [TtsCommand::Text { turn_id: 1, text: "Booked.".into() }]);
    assert!(!events(&fx).iter().any(|e| matches!(e, Event::Audio { .. })));
}

#[test]
fn early_speech_that_fails_is_dropped_and_the_turn_speaks_for_itself() {
    let mut r = preemptive_rig();
    let (spec, _) = speculative(&r.feed(100, transcript("what time is it", true, true))).unwrap();
    assert_eq!(tts_commands(&r.feed(200, token(spec, "It is noon. And"))).len(), 2, "spoken early");
    let error = ProviderError::new(Provider::ElevenLabs, FailureKind::Server, "boom");
    assert!(r.feed(220, Input::Tts(TtsEvent::Failed { turn_id: spec, error })).is_empty(), "not the turn's failure");
    let fx = r.feed(300, Input::Timer(Timer::Commit));
    assert_eq!(
        tts_commands(&fx),
        [TtsCommand::Start { turn_id: 1 }, TtsCommand::Text { turn_id: 1, text: "It is noon.".into() }]
    );
    assert!(error_codes(&fx).is_empty());
    // A tool call stops early speech: what follows it depends on the tool.
    let mut r = preemptive_rig();
    let (spec, _) = speculative(&r.feed(100, transcript("what is the weather", true, true))).unwrap();
    r.feed(150, tool_started(spec, "c1", "weather", false));
    assert!(tts_commands(&r.feed(200, token(spec, "It is sunny. And"))).is_empty());
}
