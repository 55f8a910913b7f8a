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
