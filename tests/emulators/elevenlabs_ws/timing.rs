//! What a listener relies on: each audio message's alignment covers exactly the characters it speaks, in
//! order, spanning exactly its own audio; and under real-time pacing each context produces audio no faster
//! than it plays, on its own clock, and a context closed after its text was flushed still delivers all of
//! that text's audio, then `isFinal` (how a client ends a turn and learns its last audio has come).

use super::*;

/// One audio message: its arrival time, context and audio length in ms.
struct Heard {
    at: Duration,
    context: Option<String>,
    audio_ms: f64,
}

/// Audio messages until `stop` holds for a message and the audio messages so far (or the socket ends),
/// timed from `since`.
async fn listen(
    ws: &mut Ws,
    since: Instant,
    bytes_per_ms: f64,
    stop: impl Fn(&ServerMessage, usize) -> bool,
) -> Vec<Heard> {
    let mut heard = Vec::new();
    loop {
        let Next::Text(t) = ws.next(SOON).await else { return heard };
        let m = ServerMessage::parse(&t).expect("server message");
        if m.audio.is_some() {
            let audio_ms = m.audio_bytes().unwrap().len() as f64 / bytes_per_ms;
            heard.push(Heard { at: since.elapsed(), context: m.context_id.clone(), audio_ms });
        }
        if stop(&m, heard.len()) {
            return heard;
        }
    }
}

#[actix_web::test]
async fn each_alignment_covers_exactly_its_characters_and_spans_exactly_its_own_audio() {
    let e = start().await;
    let text = "Crème brûlée for two, at eight o'clock — 42 € each. See you!";
    for (format, bytes_per_ms) in [("pcm_16000", Some(32.0)), ("ulaw_8000", Some(8.0)), ("mp3_44100_128", None)] {
        let mut ws = single(&e, &format!("output_format={format}"), true).await;
        ws.text(r#"{"text":" "}"#).await;
        ws.text(&serde_json::json!({"text": text, "flush": true}).to_string()).await;
        ws.text(r#"{"text":""}"#).await;
        let (texts, _) = ws.texts_until_end(SOON).await;
        let msgs: Vec<ServerMessage> = parse(&texts).into_iter().filter(|m| m.audio.is_some()).collect();
        assert_eq!(spoken(&msgs), text, "{format}: exactly the characters of the text, in order");
        for m in &msgs {
            let a = m.alignment.as_ref().unwrap();
            let audio = m.audio_bytes().unwrap();
            let audio_ms = match bytes_per_ms {
                Some(b) => audio.len() as f64 / b,
                None => parley::emulators::synth::mp3::duration_secs(&audio) * 1000.0,
            };
            assert!(!a.chars.is_empty() && a.chars.len() == a.char_start_times_ms.len());
            assert_eq!(a.char_start_times_ms[0], 0, "{format}: relative to the chunk");
            for i in 1..a.chars.len() {
                assert_eq!(a.char_start_times_ms[i], a.char_start_times_ms[i - 1] + a.char_durations_ms[i - 1]);
            }
            let total: u32 = a.char_durations_ms.iter().sum();
            assert!(
                (f64::from(total) - audio_ms).abs() <= 1.0,
                "{format}: {total} ms of characters, {audio_ms} ms of audio"
            );
        }
    }
    e.stop().await;
}

#[actix_web::test]
async fn paced_contexts_each_produce_audio_no_faster_than_it_plays_on_their_own_clocks() {
    let e = start().await;
    e.elevenlabs().set_time_to_first_byte(Duration::from_millis(200));
    e.elevenlabs().set_realtime_pacing(true);
    let mut ws = multi(&e, "output_format=pcm_16000").await;
    // 45 characters each: three 1 s chunks per context, both contexts flushed at once.
    let text = "Fifteen chars. ".repeat(3);
    let since = Instant::now();
    for id in ["a", "b"] {
        ws.text(&serde_json::json!({"text": text, "context_id": id, "flush": true}).to_string()).await;
    }
    let heard = listen(&mut ws, since, 32.0, |_, n| n == 6).await;
    assert_eq!(heard.len(), 6, "three chunks per context");
    for id in ["a", "b"] {
        let mine: Vec<&Heard> = heard.iter().filter(|h| h.context.as_deref() == Some(id)).collect();
        assert_eq!(mine.len(), 3);
        let first = mine[0].at;
        assert!(first >= Duration::from_millis(190), "{id}: time to first byte, {first:?}");
        let mut played = 0.0;
        for h in &mine {
            // Chunk k leaves once the chunks before it have played (30 ms of slack for the scheduler).
            let due = first.as_secs_f64() * 1000.0 + played;
            assert!(h.at.as_secs_f64() * 1000.0 >= due - 30.0, "{id}: a chunk came {:?} before its time", due);
            played += h.audio_ms;
        }
        assert!(mine[2].at < Duration::from_millis(2200 + 500), "{id}: on its own clock, not after the other context");
    }
    e.stop().await;
}

#[actix_web::test]
async fn a_paced_context_closed_after_its_flush_still_delivers_all_its_audio_then_is_final() {
    let e = start().await;
    e.elevenlabs().set_realtime_pacing(true);
    let mut ws = multi(&e, "output_format=pcm_16000").await;
    // Two seconds of reply, flushed, then closed at once as a client ends its turn.
    let text = "Fifteen chars. ".repeat(2);
    ws.text(&serde_json::json!({"text": text, "context_id": "t1", "flush": true}).to_string()).await;
    ws.text(r#"{"context_id":"t1","close_context":true}"#).await;
    let since = Instant::now();
    let heard = listen(&mut ws, since, 32.0, |m, _| m.is_final()).await;
    let total: f64 = heard.iter().map(|h| h.audio_ms).sum();
    assert!((total - 2000.0).abs() < 100.0, "all of the flushed text's audio came: {total} ms");
    assert!(heard.last().unwrap().at >= Duration::from_millis(1000), "still paced in real time");
    e.stop().await;
}

#[actix_web::test]
async fn pacing_and_time_to_first_byte_set_after_the_socket_opened_apply_to_its_next_generation() {
    // parley opens its TTS socket when a session starts, before a test has set the voice's timing.
    let e = start().await;
    let mut ws = multi(&e, "output_format=pcm_16000").await;
    e.elevenlabs().set_time_to_first_byte(Duration::from_millis(200));
    e.elevenlabs().set_realtime_pacing(true);
    let since = Instant::now();
    let text = "Fifteen chars. ".repeat(3);
    ws.text(&serde_json::json!({"text": text, "context_id": "late", "flush": true}).to_string()).await;
    let heard = listen(&mut ws, since, 32.0, |_, n| n == 3).await;
    assert_eq!(heard.len(), 3, "three 1 s chunks");
    assert!(heard[0].at >= Duration::from_millis(190), "time to first byte: {:?}", heard[0].at);
    assert!(heard[2].at >= Duration::from_millis(190 + 2000 - 30), "paced in real time: {:?}", heard[2].at);
    e.stop().await;
}
