//! What a new user finds after a few turns: the history names each conversation by its first words and
//! shows every recording's length before it plays, and `/status` shows the voice figures (sessions,
//! per-stage latency percentiles with voice-to-voice, provider errors, recordings waiting, the database),
//! the same as `/metrics` says, on a phone too.

use serde_json::json;

use crate::harness::WAIT;
use crate::harness::chromium::Mic;
use crate::harness::rig::Rig;
use crate::harness::server::Server;

const FIRST: &str = "Where is the nearest train station to the old harbour?";
const SECOND: &str = "Book a table for two people tonight at eight, somewhere quiet near the river please";

/// Waits until the assistant message of `session` has its recording registered with a duration; returns
/// (message id, duration in seconds).
async fn assistant_recording(server: &Server, session: &str) -> (i64, f64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, history) = server.get_json(&format!("/api/history?sessionId={session}")).await;
        let (_, recordings) = server.get_json(&format!("/api/recordings?sessionId={session}")).await;
        let reply = history["messages"].as_array().and_then(|m| m.iter().find(|m| m["role"] == "assistant").cloned());
        if let Some(reply) = reply.filter(|m| m["audioUrl"].is_string()) {
            let id = reply["id"].as_i64().unwrap();
            let found =
                recordings["recordings"].as_array().and_then(|r| r.iter().find(|r| r["messageId"] == id).cloned());
            if let Some(seconds) = found.and_then(|r| r["durationSeconds"].as_f64()) {
                return (id, seconds);
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "a recording of the reply in {history} / {recordings}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn the_history_names_sessions_by_their_first_words_and_shows_each_recordings_length_before_it_plays() {
    let rig = Rig::default(Mic::Silence).await;
    let (server, page) = (&rig.server, &rig.page);
    let first = rig.connect().await;
    rig.say(FIRST).await;
    page.wait_for(
        "the first reply",
        "parley.turns[1] && parley.turns[1].ended && parley.turns[1].assistantMessageId",
        WAIT,
    )
    .await;
    page.click("#start").await; // "New conversation"
    page.wait_for(
        "a second session",
        &format!("parley.connection.state === 'ready' && parley.connection.sessionId !== '{first}'"),
        WAIT,
    )
    .await;
    let second = page.eval("parley.connection.sessionId").await.as_str().unwrap().to_string();
    rig.say(SECOND).await;
    page.wait_for(
        "the second reply",
        "parley.turns[1] && parley.turns[1].ended && parley.turns[1].assistantMessageId",
        WAIT,
    )
    .await;
    let (message, seconds) = assistant_recording(server, &first).await;
    assistant_recording(server, &second).await;

    page.click("#history-refresh").await;
    let titles = page
        .wait_for(
            "both sessions, named",
            &format!(
                "!parley.history.loading && (() => {{ const t = id => document.querySelector(`.session[data-session-id=\"${{id}}\"] .title`)?.textContent; \
                 return t('{first}') && t('{second}') && [t('{first}'), t('{second}')]; }})()"
            ),
            WAIT,
        )
        .await;
    assert_eq!(titles[0], FIRST);
    let label = titles[1].as_str().unwrap();
    assert!(label.ends_with('…') && SECOND.starts_with(label.trim_end_matches('…')), "cut at a word: {label}");
    assert!(label.chars().count() <= 61, "{label}");

    // Open the first: the reply's player shows its length, the server's figure, before anything plays.
    let item = format!(".session[data-session-id=\"{first}\"]");
    page.click(&format!("{item} .session-toggle")).await;
    let audio = format!("{item} .message[data-message-id=\"{message}\"] audio");
    let shown = page
        .wait_for(
            "the recording's length",
            &format!("document.querySelector('{item} .message[data-message-id=\"{message}\"] .duration')?.textContent"),
            WAIT,
        )
        .await;
    let whole = seconds.round() as u64;
    assert_eq!(shown, json!(format!("{}:{:02}", whole / 60, whole % 60)), "the server's {seconds} s");
    // The player itself read the length from the file's head (preload=metadata), without playing.
    let metadata = page
        .wait_for(
            "the player's metadata",
            &format!("(() => {{ const a = document.querySelector('{audio}'); return a.readyState >= 1 && Number.isFinite(a.duration) && a.duration; }})()"),
            WAIT,
        )
        .await;
    let metadata = metadata.as_f64().unwrap();
    assert!((metadata - seconds).abs() < 0.25 + seconds * 0.05, "the player says {metadata} s, the server {seconds} s");
    assert_eq!(
        page.eval(&format!(
            "document.querySelector('{audio}').paused && document.querySelector('{audio}').currentTime"
        ))
        .await,
        0
    );
    page.assert_controls_named().await;
    page.screenshots("history-first-words-and-lengths").await;
    rig.finish().await;
}

/// The sum of the samples of `name` in a Prometheus exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[actix_web::test]
async fn the_status_page_shows_the_voice_figures_as_metrics_has_them_and_fits_a_phone() {
    let rig = Rig::default(Mic::Silence).await;
    let (server, page) = (&rig.server, &rig.page);
    rig.connect().await;
    rig.say("How are you today?").await;
    page.wait_for(
        "the turn to be heard",
        "parley.turns[1] && parley.turns[1].ended && parley.turns[1].latency?.heardAfterMs",
        WAIT,
    )
    .await;

    page.mark_document().await;
    page.click("nav a[href='/status']").await;
    page.wait_for_new_document("the status page", "!!window.parleyStatus").await;
    let voice = page
        .wait_for(
            "the voice figures",
            "parleyStatus.updates >= 1 && parleyStatus.voice.latency.voiceToVoice.count >= 1 && parleyStatus.voice",
            WAIT,
        )
        .await;
    let metrics = awc::Client::new().get(server.url("/metrics")).send().await.unwrap().body().await.unwrap();
    let metrics = String::from_utf8(metrics.to_vec()).unwrap();
    for (stage, family) in [
        ("llm", "parley_llm_first_token_seconds_count"),
        ("tts", "parley_tts_first_byte_seconds_count"),
        ("voiceToVoice", "parley_voice_to_voice_seconds_count"),
        ("stt", "parley_stt_finalization_seconds_count"),
    ] {
        assert_eq!(voice["latency"][stage]["count"].as_f64(), Some(sample(&metrics, family)), "{stage}: {voice}");
    }
    assert_eq!(voice["sessionsTotal"].as_f64(), Some(sample(&metrics, "parley_connections_total")));
    let cells = |stage: &str| {
        format!("[...document.querySelectorAll('#latency tr[data-stage=\"{stage}\"] td')].map(td => td.textContent)")
    };
    let llm = page.eval(&cells("llm")).await;
    let llm: Vec<String> = serde_json::from_value(llm).unwrap();
    assert!(llm[1..4].iter().all(|c| c.ends_with(" ms")), "p50, p95, p99 of the LLM: {llm:?}");
    let stt: Vec<String> = serde_json::from_value(page.eval(&cells("stt")).await).unwrap();
    assert_eq!(stt[1..].to_vec(), ["—", "—", "—", "0"], "a typed turn has no STT figure");
    let v2v: Vec<String> = serde_json::from_value(page.eval(&cells("voiceToVoice")).await).unwrap();
    assert!(v2v[1].ends_with(" ms"), "{v2v:?}");
    let text = |key: &str| format!("document.querySelector('[data-key=\"{key}\"]')?.firstChild?.textContent");
    for provider in ["deepgram", "openai", "elevenlabs"] {
        assert_eq!(page.eval(&text(&format!("providers.{provider}"))).await, "0", "{provider}");
    }
    assert_eq!(page.eval(&text("database.ready")).await, "reachable");
    assert_eq!(
        page.eval(&text("recordings.pending")).await,
        voice["recordings"]["pending"].as_f64().unwrap().to_string()
    );
    assert!(page.eval(&text("uptime_seconds")).await.as_str().unwrap().ends_with('s'));

    // The percentiles are Prometheus's histogram_quantile, computed on the module the page runs.
    let q = page
        .eval(
            "import('/assets/status-figures.js').then(f => { \
               const m = f.parseMetrics('# TYPE x histogram\\nx_bucket{le=\"0.1\"} 0\\nx_bucket{le=\"0.2\"} 10\\n\
             x_bucket{le=\"0.5\"} 20\\nx_bucket{le=\"+Inf\"} 20\\nx_count 20\\ny_bucket{le=\"0.1\"} 1\\n\
             y_bucket{le=\"+Inf\"} 3\\n'); \
               return [f.quantile(m, 'x', 0.5), f.quantile(m, 'x', 0.95), f.quantile(m, 'y', 0.9), f.quantile(m, 'z', 0.5)]; })",
        )
        .await;
    let q: Vec<Option<f64>> = serde_json::from_value(q).unwrap();
    let near = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
    assert!(near(q[0], 0.2) && near(q[1], 0.47) && near(q[2], 0.1) && q[3].is_none(), "{q:?}");

    page.phone_size().await;
    let widest = page
        .eval("Math.max(...[...document.querySelectorAll('.card')].map(c => c.getBoundingClientRect().right))")
        .await;
    assert!(widest.as_f64().unwrap() <= 390.0, "every card within a phone's width: {widest}");
    page.desktop_size().await;
    page.screenshots("status").await;
    rig.finish().await;
}
