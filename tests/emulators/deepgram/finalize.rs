//! How `Finalize` is answered: at once (`finalize_answers_with_from_finalize_unless_told_not_to_reply` in
//! `mod.rs`), late with the words buffered when it arrived, or not at all with the words kept for the next
//! final.

use super::*;
use parley::emulators::FinalizeReply;

fn results(texts: &[String]) -> Vec<parley::providers::deepgram::ResultsMessage> {
    parse(texts)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Results(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[actix_web::test]
async fn a_late_finalize_reply_carries_the_words_buffered_at_the_finalize_and_later_results_wait_behind_it() {
    let e = start().await;
    e.deepgram().set_finalize(FinalizeReply::Late(Duration::from_millis(800)));
    e.deepgram().push_script(vec!["Turn on the lights.".into()]);
    let mut ws = connect(&e, "encoding=linear16&sample_rate=16000&interim_results=true&endpointing=300").await;
    // Speech still going on when the client finalizes: nothing but the Finalize can end it yet.
    stream_audio(&mut ws, &tone(1.2, RATE), RATE).await;
    let interims = ws.texts_until(SOON, |t| t.contains("\"is_final\":false")).await;
    assert!(!results(&interims).is_empty());
    ws.text(r#"{"type":"Finalize"}"#).await;
    let finalized = Instant::now();
    // More audio after the Finalize: the silence ends the (already finalized) utterance with an empty final.
    stream_audio(&mut ws, &silence(0.5, RATE), RATE).await;
    let texts = ws.texts_until(SOON, |t| t.contains("\"from_finalize\":true")).await;
    let waited = finalized.elapsed();
    assert!(waited >= Duration::from_millis(780), "the reply came after {waited:?}, not 800 ms");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    let mut before = results(&texts);
    let late = before.pop().unwrap();
    assert!(late.is_final && late.from_finalize && !late.speech_final);
    assert_eq!(late.transcript(), "turn on the lights", "the words buffered at the Finalize");
    assert!(before.iter().all(|r| !r.is_final), "nothing final overtook the late reply: {texts:#?}");
    // The results of the audio sent after the Finalize come after it, in stream order.
    let after = results(&ws.texts_until(SOON, |t| t.contains("\"is_final\":true")).await);
    let last = after.last().unwrap();
    assert!(last.is_final && last.speech_final && last.transcript().is_empty(), "{last:?}");
    assert!(last.start >= late.start + late.duration - 0.001, "stream time goes on after the late final");
    e.stop().await;
}

#[actix_web::test]
async fn an_ignored_finalize_gets_no_reply_and_its_words_come_in_the_next_final_once_audio_resumes() {
    let e = start().await;
    e.deepgram().set_finalize(FinalizeReply::Ignored);
    e.deepgram().push_script(vec!["What time is it?".into()]);
    e.deepgram().push_script(vec!["What time is it?".into()]);
    let query = "encoding=linear16&sample_rate=16000&interim_results=true&endpointing=300&punctuate=true";
    for resume_with_speech in [false, true] {
        let mut ws = connect(&e, query).await;
        stream_audio(&mut ws, &tone(1.2, RATE), RATE).await;
        ws.texts_until(SOON, |t| t.contains("\"is_final\":false")).await;
        ws.text(r#"{"type":"Finalize"}"#).await;
        ws.text(r#"{"type":"KeepAlive"}"#).await;
        // No reply: while no audio comes, nothing final does (interims of the audio before may still arrive).
        let quiet_until = Instant::now() + Duration::from_millis(600);
        loop {
            match ws.next(quiet_until.saturating_duration_since(Instant::now())).await {
                Next::Timeout => break,
                Next::Text(t) => assert!(!t.contains("\"is_final\":true"), "an ignored Finalize is not answered: {t}"),
                other => panic!("{other:?}"),
            }
        }
        // Audio resumes (more speech, or silence) and the words come out in the next final.
        let mut audio = if resume_with_speech { tone(0.4, RATE) } else { Vec::new() };
        audio.extend(silence(0.5, RATE));
        stream_audio(&mut ws, &audio, RATE).await;
        let texts = ws.texts_until(SOON, |t| t.contains("\"is_final\":true")).await;
        let fin = results(&texts).pop().unwrap();
        assert!(!fin.from_finalize && fin.speech_final, "{fin:?}");
        assert!(
            fin.transcript().starts_with("What time is it?"),
            "words kept (resumed with speech: {resume_with_speech})"
        );
        ws.text(r#"{"type":"CloseStream"}"#).await;
        let (_, end) = ws.texts_until_end(SOON).await;
        assert_eq!(end, Next::Close(Some((1000, String::new()))));
    }
    assert!(e.deepgram().connections().iter().all(|c| !c.sent.iter().any(|s| s.contains("\"from_finalize\":true"))));
    e.stop().await;
}
