//! Health and readiness probes, the status page and unknown routes.

use crate::both_backends;
use crate::helpers::{TestDb, spawn_app};

both_backends! {
    async fn probes_report_alive_and_ready(db: TestDb) {
        let app = spawn_app(db).await;
        let (status, body) = app.get_json("/healthz").await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
        let (status, body) = app.get_json("/readyz").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["database"], if db == TestDb::Postgres { "postgres" } else { "sqlite" });
        app.stop().await.unwrap();
    }

    async fn the_status_page_is_served_and_polls_api_metrics(db: TestDb) {
        let app = spawn_app(db).await;
        let (status, content_type, html) = app.get_text("/status").await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert!(html.contains("/assets/status.js"), "the page runs its script");
        let (status, _, script) = app.get_text("/assets/status.js").await;
        assert_eq!(status, 200);
        assert!(script.contains("fetch(\"/api/metrics\""), "the page reads /api/metrics");
        assert!(script.contains("setInterval(refresh, EVERY_MS)") && script.contains("5000"), "every 5 seconds");
        app.stop().await.unwrap();
    }

    async fn unknown_routes_are_json_404s(db: TestDb) {
        let app = spawn_app(db).await;
        let (status, body) = app.get_json("/api/nothing-here").await;
        assert_eq!(status, 404);
        assert_eq!(body["error"], "not_found");
        let (status, body) = app.post_raw("/api/history", "application/json", "{}").await;
        assert_eq!(status, 404, "wrong method: {body}");
        app.stop().await.unwrap();
    }
}

#[actix_web::test]
async fn readiness_fails_with_503_when_the_database_goes_away() {
    use diesel_async::{AsyncConnection as _, SimpleAsyncConnection as _};
    let app = spawn_app(TestDb::Postgres).await;
    let url = app.config.database.postgres_url.clone().unwrap();
    let name = url.rsplit('/').next().unwrap().to_string();
    let admin_url = url.replace(&format!("/{name}"), "/postgres");
    let mut admin = diesel_async::AsyncPgConnection::establish(&admin_url).await.unwrap();
    admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();

    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "database_unavailable");
    let (status, _) = app.get_json("/healthz").await;
    assert_eq!(status, 200, "alive even when not ready");
    let (status, body) = app.get_json(&format!("/api/history?sessionId={}", parley::db::SessionId::generate())).await;
    assert_eq!(status, 503, "the API reports the outage as retryable: {body}");
    assert_eq!(body["error"], "database_unavailable");
    app.stop().await.unwrap();
}

#[actix_web::test]
async fn readiness_fails_with_503_while_the_server_drains_and_liveness_holds() {
    use std::time::Duration;

    use crate::helpers::voice::spawn_voice_app_with;
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_SHUTDOWN_DRAIN_SECS".into(), "2".into());
    })
    .await;
    // A reply long enough to outlast the drain keeps the server draining while the probes are asked.
    v.emulators.openai().set_timing(Duration::from_millis(10), Duration::from_millis(150));
    let mut c = v.connect("userId=drained").await;
    c.say("Tell me a long story.").await;
    c.expect("assistantText").await;
    let (status, _) = v.app.get_json("/readyz").await;
    assert_eq!(status, 200, "ready before the shutdown");
    let client = v.app.client.clone();
    let (readyz, healthz) = (v.app.url("/readyz"), v.app.url("/healthz"));
    let crate::helpers::voice::VoiceApp { app, emulators } = v;
    let stopping = actix_web::rt::spawn(app.stop());
    // The session is told about the drain: the shutdown has begun.
    c.expect("status").await;
    let mut res = client.get(&readyz).send().await.expect("readyz answered during the drain");
    assert_eq!(res.status().as_u16(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "draining", "{body}");
    let res = client.get(&healthz).send().await.expect("healthz answered during the drain");
    assert_eq!(res.status().as_u16(), 200, "a draining server is alive: no restart while it drains");
    stopping.await.unwrap().expect("clean exit");
    emulators.stop().await;
}
