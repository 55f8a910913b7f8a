//! Barge-in: the user cuts the assistant short by speaking or by an `interrupt` message. The LLM stream and
//! the turn's TTS context stop at once, the client hears `interrupt` before anything else of that turn and
//! no audio of it afterwards, ever (checked over the whole rest of the session, up to the socket's end), and
//! the stored reply is marked interrupted. Short noises do not interrupt.

use std::time::Duration;

use parley::emulators::{ElevenLabsFault, Reply, TtsSnapshot};
use serde_json::json;

use crate::helpers::TestDb;
use crate::helpers::voice::{Event, VoiceApp, VoiceClient, spawn_voice_app, spawn_voice_app_with, utterance_pcm};

const LONG_REPLY: &str = "Let me read the whole menu for you. We have soup, salad and fresh bread. \
    Then there is grilled fish, roast chicken and braised beef. For dessert there is chocolate cake, \
    lemon tart and three kinds of ice cream. Coffee and tea come with every meal.";

/// Starts a long, slowly spoken reply and waits until its audio is flowing.
async fn assistant_talking(v: &VoiceApp, c: &mut VoiceClient) {
    v.emulators.openai().push_reply(Reply::Text(LONG_REPLY.into()));
    v.emulators.elevenlabs().set_realtime_pacing(true);
    c.say("What is on the menu?").await;
    c.expect("audioStart").await;
    c.until("audio", |e| matches!(e, Event::Audio(_))).await;
}

/// The TTS context of the first reply, the one every test here interrupts.
fn first_context(v: &VoiceApp) -> String {
    v.emulators.elevenlabs().ws_connections()[0].contexts_opened[0].clone()
}

/// Proves that no audio of the interrupted `turn` ever reaches the client after its `interrupt`:
///
/// 1. waits until the ElevenLabs emulator has sent the turn's context its last frame (`isFinal`, queued
///    behind whatever tail it was still streaming): nothing of that context can reach parley afterwards;
/// 2. has one more typed turn answered: its audio comes down the same TTS socket after that last frame and
///    parley reads the socket in order, so anything of the old context it passed on would reach the client
///    before this turn ends;
/// 3. closes the socket and reads to its end, so the log holds everything the session ever sent;
///
/// then checks every frame after `interrupt{turn}`: audio only between `audioStart` and `audioEnd` of a
/// later turn (binary frames belong to the latest `audioStart`), no event of `turn` but its `turnEnd`,
/// `latency` and `messageSaved`, and exactly the audio bytes the emulator sent for the other contexts, so
/// that a frame of the old context passed on inside a later turn is caught too.
async fn assert_no_audio_after_interrupt(v: &VoiceApp, c: &mut VoiceClient, turn: u64) {
    let tts = v.emulators.elevenlabs();
    let context = first_context(v);
    let finished = |s: TtsSnapshot<'_>| {
        s.sockets.iter().any(|k| k.sent.iter().any(|f| f.is_final && f.context_id.as_deref() == Some(&context)))
    };
    assert!(
        tts.wait_until(finished, Duration::from_secs(30)).await,
        "the interrupted context never ended: {:?}",
        tts.ws_connections()
    );
    v.emulators.openai().push_reply(Reply::Text("Fine.".into()));
    c.say("Never mind.").await;
    let barrier = c.expect("userTurn").await["turnId"].as_u64();
    c.until(
        "the last turn's end",
        |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"].as_u64() == barrier),
    )
    .await;
    c.close_and_read_to_end().await;

    let at = c
        .log
        .iter()
        .position(|e| matches!(e, Event::Json(v) if v["type"] == "interrupt" && v["turnId"] == turn))
        .expect("an interrupt event");
    let mut playing: Option<u64> = None;
    let mut received = 0;
    for e in &c.log[at + 1..] {
        match e {
            Event::Audio(b) => {
                assert!(playing.is_some(), "audio outside a later turn after interrupt {turn}: {:#?}", c.summary());
                received += b.len();
            }
            Event::Json(m) => {
                let id = m["turnId"].as_u64();
                match m["type"].as_str() {
                    Some("audioStart") => {
                        assert!(id > Some(turn), "audio of turn {turn} restarted: {:#?}", c.summary());
                        playing = id;
                    }
                    Some("audioEnd" | "interrupt" | "turnEnd") if playing.is_some() && id == playing => playing = None,
                    Some(kind) if id == Some(turn) => assert!(
                        ["turnEnd", "latency", "messageSaved"].contains(&kind),
                        "{kind} of turn {turn} after its interrupt: {:#?}",
                        c.summary()
                    ),
                    _ => {}
                }
            }
            Event::Closed(_) => {}
        }
    }
    let others: usize = tts
        .ws_connections()
        .iter()
        .flat_map(|k| k.sent.iter())
        .filter(|f| f.context_id.as_deref() != Some(context.as_str()))
        .map(|f| f.audio_bytes)
        .sum();
    assert_eq!(received, others, "audio after interrupt {turn} is exactly the later turns' audio");
}

#[actix_web::test]
async fn an_interrupt_message_stops_the_reply_at_once() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    let mut c = v.connect("userId=ian").await;
    assistant_talking(&v, &mut c).await;
    // The listener has heard some of it (the audio keeps coming at real-time pace: wait for a second's worth).
    let mut meter = parley::audio::meter::AudioMeter::new(parley::audio::OutputFormat::ELEVENLABS_DEFAULT);
    meter.push(&c.audio_of_turn(1));
    while meter.total_ms() < 1000.0 {
        if let Event::Audio(bytes) = c.until("more audio", |e| matches!(e, Event::Audio(_))).await {
            meter.push(&bytes);
        }
    }
    c.send_json(json!({"type": "interrupt"})).await;
    let i = c.expect("interrupt").await;
    assert_eq!(i["turnId"], 1);
    // The client drops the turn and says where playback stopped.
    c.send_json(json!({"type": "played", "turnId": 1, "ms": 900})).await;
    let end = c.expect("turnEnd").await;
    assert_eq!(end["interrupted"], true);

    let openai = v.emulators.openai();
    assert!(openai.wait_until(|r| r[0].client_went_away || r[0].completed, Duration::from_secs(5)).await);
    let tts = v.emulators.elevenlabs();
    assert!(
        tts.wait_until(|s| s.sockets[0].contexts_closed.len() == 1, Duration::from_secs(5)).await,
        "the turn's TTS context was closed: {:?}",
        tts.ws_connections()
    );
    c.until("stored", |e| matches!(e, Event::Json(v) if v["type"] == "messageSaved" && v["role"] == "assistant")).await;
    let (_, history) = v.app.get_json(&format!("/api/history?sessionId={}", c.session_id())).await;
    let reply = &history["messages"][1];
    assert_eq!(reply["interrupted"], true, "{history}");
    assert_eq!(reply["outcome"], "interrupted", "{history}");
    assert_eq!((reply["heardMs"].as_u64(), reply["heardSource"].as_str()), (Some(900), Some("client")), "{reply}");
    // What was heard (about 0.9 s at ~15 characters a second), cut at a word, and what was generated beside it.
    let stored = reply["content"].as_str().unwrap();
    let generated = reply["generatedContent"].as_str().unwrap();
    assert!(
        !stored.is_empty() && stored.len() < 20 && generated.starts_with(stored),
        "heard {stored:?} of {generated:?}"
    );
    assert!(LONG_REPLY.starts_with(generated.trim_end()), "{generated:?}");
    assert!(LONG_REPLY[stored.len()..].starts_with(' '), "cut at a whole word: {stored:?}");
    assert_no_audio_after_interrupt(&v, &mut c, 1).await;
    v.stop().await;
}

#[actix_web::test]
async fn speaking_over_the_assistant_interrupts_it_and_becomes_the_next_turn() {
    let v = spawn_voice_app(TestDb::Postgres).await;
    v.emulators.deepgram().push_script(vec!["wait, stop please".into()]);
    let mut c = v.connect("userId=jill").await;
    // The Deepgram socket opens with the first audio: start it with silence.
    c.stream_audio(&utterance_pcm(0, 200)).await;
    assistant_talking(&v, &mut c).await;
    c.stream_audio(&utterance_pcm(1200, 1500)).await;
    let i = c.expect("interrupt").await;
    assert_eq!(i["turnId"], 1);
    let user = c.expect("userTurn").await;
    assert_eq!((user["turnId"].as_u64(), user["text"].as_str()), (Some(2), Some("wait, stop please")));
    c.until("turn 2 ends", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"] == 2)).await;
    assert_eq!(c.events("turnEnd")[0]["interrupted"], true);
    assert_eq!(c.events("turnEnd")[1]["interrupted"], false);
    let (_, _, text) = v.app.get_text("/metrics").await;
    assert!(text.contains("parley_interruptions_total 1"), "{text}");
    assert_no_audio_after_interrupt(&v, &mut c, 1).await;
    v.stop().await;
}

#[actix_web::test]
async fn a_short_noise_does_not_interrupt() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_BARGE_IN_MIN_WORDS".into(), "3".into());
        env.insert("PARLEY_BARGE_IN_MIN_SPEECH_MS".into(), "800".into());
    })
    .await;
    v.emulators.deepgram().push_script(vec!["uh huh".into()]);
    let mut c = v.connect("userId=kim").await;
    c.stream_audio(&utterance_pcm(0, 200)).await;
    v.emulators.openai().push_reply(Reply::Text("This is a short answer. It goes on a little.".into()));
    c.say("Tell me something.").await;
    c.expect("audioStart").await;
    c.stream_audio(&utterance_pcm(250, 1500)).await;
    let end = c.expect("turnEnd").await;
    assert_eq!(end["interrupted"], false, "{:#?}", c.summary());
    assert!(c.events("interrupt").is_empty());
    assert_eq!(c.events("userTurn").len(), 1, "the backchannel did not become a turn");
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn late_audio_of_a_closed_context_never_reaches_the_client() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.elevenlabs().push_fault(ElevenLabsFault::LateAudioAfterClose);
    // Audio at the pace of speech, as ElevenLabs streams it: on a busy machine an unpaced reply can arrive
    // whole before the interrupt, and then no audio is left to come late.
    v.emulators.elevenlabs().set_realtime_pacing(true);
    let mut c = v.connect("userId=lou").await;
    assistant_talking(&v, &mut c).await;
    c.send_json(json!({"type": "interrupt"})).await;
    c.expect("turnEnd").await;
    // The closed context keeps sending its tail (and one late frame) for a while; meanwhile a new turn on the
    // same socket is answered at once, not after the old context's audio.
    v.emulators.openai().push_reply(Reply::Text("Fine.".into()));
    c.say("Never mind.").await;
    c.until("turn 2 ends", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"] == 2)).await;
    assert!(!c.audio_of_turn(2).is_empty());
    let tts = v.emulators.elevenlabs();
    let first_context = first_context(&v);
    let sent_for_turn_1 = |sockets: &[parley::emulators::TtsSocketLog]| -> usize {
        sockets[0]
            .sent
            .iter()
            .filter(|f| f.context_id.as_deref() == Some(first_context.as_str()))
            .map(|f| f.audio_bytes)
            .sum()
    };
    let received = c.audio_of_turn(1).len();
    assert!(
        tts.wait_until(|s| sent_for_turn_1(s.sockets) > received + 1000, Duration::from_secs(30)).await,
        "the emulator sent turn 1 audio after the interrupt ({} bytes sent, {received} received)",
        sent_for_turn_1(&tts.ws_connections())
    );
    assert_no_audio_after_interrupt(&v, &mut c, 1).await;
    assert_eq!(c.audio_of_turn(1).len(), received, "nothing of turn 1 arrived later");
    v.stop().await;
}
