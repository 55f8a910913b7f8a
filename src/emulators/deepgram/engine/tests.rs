//! Unit tests of the speech/transcript engine: audio in, events out, no sockets.
use super::*;

const RATE: u32 = 16_000;

fn cfg() -> EngineConfig {
    EngineConfig {
        sample_rate: RATE,
        channels: 1,
        interim_results: true,
        endpointing_ms: Some(300),
        utterance_end_ms: Some(1000),
        vad_events: true,
        punctuate: true,
        empty_finals: false,
    }
}

fn tone(secs: f64) -> Vec<i16> {
    (0..(secs * f64::from(RATE)) as u64).map(|n| if n % 16 < 8 { 3000 } else { -3000 }).collect()
}

fn silence(secs: f64) -> Vec<i16> {
    vec![0; (secs * f64::from(RATE)) as usize]
}

fn engine(c: EngineConfig) -> Engine {
    Engine::new(c, Script::new(1, vec!["Book a table for two.".into()]))
}

#[test]
fn speech_then_silence_gives_started_interims_final_and_utterance_end_in_audio_time() {
    let mut e = engine(cfg());
    let mut ev = e.push(silence(0.5));
    ev.extend(e.push(tone(1.5)));
    ev.extend(e.push(silence(2.0)));
    assert_eq!(ev[0], Event::SpeechStarted { timestamp: 0.5 });
    let interims = ev.iter().filter(|x| matches!(x, Event::Result(t) if !t.is_final)).count();
    assert_eq!(interims, 3);
    let fin = ev
        .iter()
        .find_map(|x| match x {
            Event::Result(t) if t.is_final => Some(t),
            _ => None,
        })
        .unwrap();
    assert!(fin.speech_final);
    assert_eq!(fin.words.len(), 5);
    assert_eq!(fin.words[0].start, 0.5);
    assert!(fin.words[4].end <= 2.0);
    assert_eq!(fin.start, 0.0);
    assert!((fin.duration - 2.3).abs() < 0.011, "{}", fin.duration);
    let Some(Event::UtteranceEnd { last_word_end }) = ev.last() else { panic!("{ev:?}") };
    assert!(*last_word_end <= 2.0 && *last_word_end > 1.8);
}

#[test]
fn events_the_client_did_not_ask_for_are_not_produced() {
    let mut c = cfg();
    c.interim_results = false;
    c.vad_events = false;
    let mut e = engine(c);
    let mut ev = e.push(tone(1.0));
    ev.extend(e.push(silence(2.0)));
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(matches!(&ev[0], Event::Result(t) if t.is_final && t.speech_final));
}

#[test]
fn endpointing_disabled_still_finalizes_but_never_says_speech_final() {
    let mut c = cfg();
    c.endpointing_ms = None;
    let mut e = engine(c);
    e.push(tone(1.0));
    let ev = e.push(silence(1.0));
    assert!(ev.iter().any(|x| matches!(x, Event::Result(t) if t.is_final && !t.speech_final)));
}

#[test]
fn finalize_flushes_buffered_speech_and_is_silent_without_audio() {
    let mut e = engine(cfg());
    assert_eq!(e.finalize(), None);
    e.push(tone(0.4));
    let t = e.finalize().unwrap();
    assert!(t.from_finalize && t.is_final && !t.speech_final);
    assert_eq!(t.words.len(), 5);
    assert_eq!(e.finalize(), None);
}

#[test]
fn empty_finals_fault_keeps_interim_text_but_empties_finals() {
    let mut c = cfg();
    c.empty_finals = true;
    let mut e = engine(c);
    let mut ev = e.push(tone(1.0));
    ev.extend(e.push(silence(0.5)));
    assert!(ev.iter().any(|x| matches!(x, Event::Result(t) if !t.is_final && !t.words.is_empty())));
    assert!(ev.iter().any(|x| matches!(x, Event::Result(t) if t.is_final && t.words.is_empty())));
}

#[test]
fn time_counts_all_channels_of_interleaved_audio() {
    let mut c = cfg();
    c.channels = 2;
    let mut e = engine(c);
    e.push(silence(1.0));
    assert!((e.now() - 0.5).abs() < 1e-9);
}
