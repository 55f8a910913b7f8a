//! A PostgreSQL outage loses nothing: the server of the test's own is stopped (as an operator would, `pg_ctl
//! stop -m fast`) while sessions talk and new sessions start, then started again; every message of every
//! session is then in the history, in order, with its recording link, `messageSaved` having come only once
//! the row was there. Writes wait out the outage in parley's journal; the longer outage also restarts parley
//! in the middle, so the journal is replayed by the next run.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::postgres::OwnServer;
use crate::helpers::voice::{Event, VoiceApp, VoiceClient, spawn_voice_app_with};
use crate::helpers::{TEST_KEY, TestDb};

/// A session the test drives, and what it said.
struct Talker {
    client: VoiceClient,
    said: Vec<String>,
}

impl Talker {
    async fn open(v: &VoiceApp, name: &str) -> Talker {
        Talker { client: v.connect(&format!("userId={name}")).await, said: Vec::new() }
    }

    /// One typed turn, to its end (whether or not the database has it yet).
    async fn turn(&mut self) {
        let text = format!("question {} from {}", self.said.len() + 1, self.client.session_id());
        self.client.say(&text).await;
        self.said.push(text);
        let turn = self.said.len() as u64;
        self.client
            .until("the turn's end", |e| matches!(e, Event::Json(v) if v["type"] == "turnEnd" && v["turnId"] == turn))
            .await;
    }

    /// Waits until every message said so far (a user message and a reply per turn) is confirmed saved.
    async fn all_saved(&mut self, within: Duration) {
        let want = self.said.len() * 2;
        let deadline = tokio::time::Instant::now() + within;
        while self.client.events("messageSaved").len() < want {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.client.next(left).await {
                Some(Event::Closed(c)) => panic!("closed ({c:?}) before every message was saved"),
                Some(_) => {}
                None => panic!(
                    "{} of {want} messages confirmed saved: {:?}",
                    self.client.events("messageSaved").len(),
                    self.client.summary()
                ),
            }
        }
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until the journal is empty (everything replayed); returns the metrics text then.
async fn journal_drained(v: &VoiceApp, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (_, _, text) = v.app.get_text("/metrics").await;
        if metric(&text, "parley_journal_pending_writes") == 0.0 {
            return text;
        }
        assert!(Instant::now() < deadline, "the journal was never replayed:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks one session's stored history against what it said: every turn's user message and reply, in
/// order, each reply linked to its recording.
async fn history_is_complete(v: &VoiceApp, session: &str, said: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, history) = v.app.get_json(&format!("/api/history?sessionId={session}")).await;
        assert_eq!(status, 200, "{history}");
        let messages = history["messages"].as_array().cloned().unwrap_or_default();
        let users: Vec<&str> =
            messages.iter().filter(|m| m["role"] == "user").map(|m| m["content"].as_str().unwrap()).collect();
        assert_eq!(users, said, "every user message, once each, in order");
        let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
        let expected: Vec<&str> = said.iter().flat_map(|_| ["user", "assistant"]).collect();
        assert_eq!(roles, expected, "a reply after each question");
        let unlinked: Vec<&Value> =
            messages.iter().filter(|m| m["role"] == "assistant" && m["audioUrl"].is_null()).collect();
        if unlinked.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "replies without their recording link: {unlinked:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn outage(length: Duration, restart_parley: bool) {
    let pg = OwnServer::start().await;
    let env = |env: &mut std::collections::HashMap<String, String>| {
        env.insert("PG_DB_URL".into(), pg.url("parley"));
        env.insert("PARLEY_ENCRYPTION_KEY".into(), TEST_KEY.into());
    };
    let v = spawn_voice_app_with(TestDb::Sqlite, env).await;
    let mut talkers = Vec::new();
    for name in ["ada", "bob", "cy"] {
        let mut t = Talker::open(&v, name).await;
        t.turn().await;
        t.all_saved(Duration::from_secs(15)).await;
        talkers.push(t);
    }

    pg.stop();
    let started = Instant::now();
    let mut opened_during = false;
    while started.elapsed() < length {
        if !opened_during && started.elapsed() > length / 3 {
            // New sessions during the outage: their session rows wait in the journal too.
            for name in ["dee", "eve"] {
                talkers.push(Talker::open(&v, name).await);
            }
            opened_during = true;
        }
        for t in &mut talkers {
            t.turn().await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let sessions: Vec<(String, usize)> = talkers.iter().map(|t| (t.client.session_id(), t.said.len())).collect();
    let turns: usize = sessions.iter().map(|(_, n)| n).sum();
    let (_, _, during) = v.app.get_text("/metrics").await;
    let journaled = metric(&during, "parley_journal_pending_writes");
    assert!(journaled > 0.0, "writes wait in the journal during the outage");

    let v = if restart_parley {
        // parley stops in the middle of the outage, with the journal full of history.
        for t in &mut talkers {
            t.client.close().await;
        }
        let VoiceApp { app, emulators } = v;
        let (env, data_dir) = (app.env.clone(), app.data_dir.clone());
        app.stop().await.unwrap();
        pg.resume();
        let app = crate::helpers::start_with_env(env, data_dir).await;
        VoiceApp { app, emulators }
    } else {
        pg.resume();
        // The live sessions carry on, and hear messageSaved for everything once it is stored.
        for t in &mut talkers {
            t.turn().await;
        }
        for t in &mut talkers {
            t.all_saved(Duration::from_secs(60)).await;
        }
        v
    };
    let after = journal_drained(&v, Duration::from_secs(120)).await;
    let said: Vec<(String, Vec<String>)> = talkers.iter().map(|t| (t.client.session_id(), t.said.clone())).collect();
    for (session, said) in &said {
        history_is_complete(&v, session, said).await;
    }
    if restart_parley {
        // The sessions' spool files waited across the restart for recordings whose rows were in the journal;
        // once the replay registered them and they were stored, the files went.
        crate::helpers::spool_empties(&v.app.data_dir.path().join("spool")).await;
    }
    let lost = metric(&after, "parley_persist_writes_lost_total");
    eprintln!(
        "PostgreSQL outage of {length:?}{}: {} sessions ({} opened during it), {turns} turns, {journaled} writes \
         journaled at the end of it, {lost} lost",
        if restart_parley { " with a parley restart" } else { "" },
        sessions.len(),
        2
    );
    assert_eq!(lost, 0.0, "{after}");
    assert!(metric(&after, "parley_journal_writes_total{outcome=\"replayed\"}") > 0.0);
    v.stop().await;
}

#[actix_web::test]
async fn a_30_second_postgres_outage_loses_no_message() {
    outage(Duration::from_secs(30), false).await;
}

#[actix_web::test]
async fn a_3_minute_postgres_outage_across_a_parley_restart_loses_no_message() {
    outage(Duration::from_secs(180), true).await;
}
