//! GET /metrics and GET /api/metrics: valid Prometheus text with every declared family, HTTP traffic counted
//! by route pattern, and real operating-system figures in the JSON.

use crate::both_backends;
use crate::helpers::{TestDb, prometheus, spawn_app};

const FAMILIES: &[(&str, &str)] = &[
    ("parley_connections_active", "gauge"),
    ("parley_connections_total", "counter"),
    ("parley_http_requests_total", "counter"),
    ("parley_http_request_duration_seconds", "histogram"),
    ("parley_db_pool_connections", "gauge"),
    ("parley_stt_finalization_seconds", "histogram"),
    ("parley_llm_first_token_seconds", "histogram"),
    ("parley_tts_first_byte_seconds", "histogram"),
    ("parley_first_audio_seconds", "histogram"),
    ("process_cpu_seconds_total", "counter"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_threads", "gauge"),
];

both_backends! {
    async fn metrics_are_valid_prometheus_text_with_every_family(db: TestDb) {
        let app = spawn_app(db).await;
        // Some traffic first, including a 404, so the request families have samples.
        app.get_json("/healthz").await;
        app.get_json("/api/history?sessionId=nope").await;
        app.get_json("/no/such/route/12345").await;

        let (status, content_type, text) = app.get_text("/metrics").await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        let families = prometheus::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for (name, kind) in FAMILIES {
            assert_eq!(families.get(*name).map(String::as_str), Some(*kind), "{name} in\n{text}");
        }
        assert!(text.contains(r#"parley_http_requests_total{method="GET",route="/healthz",status="200"} 1"#), "{text}");
        assert!(text.contains(r#"route="/api/history",status="400""#), "{text}");
        assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
        assert!(!text.contains("12345"), "raw paths never become labels");
        let max = if db == TestDb::Postgres { 25 } else { 8 };
        assert!(text.contains(&format!("parley_db_pool_connections{{state=\"max\"}} {max}")), "{text}");
        app.stop().await.unwrap();
    }

    async fn api_metrics_reports_real_figures(db: TestDb) {
        let app = spawn_app(db).await;
        let (status, m) = app.get_json("/api/metrics").await;
        assert_eq!(status, 200);
        for key in [
            "timestamp", "active_connections", "total_connections", "threads", "allocated_memory_bytes",
            "system_memory_usage_percent", "cpu_usage_percent", "system_cpu_usage_percent", "process_memory_bytes",
            "uptime_seconds", "last_collection_time",
        ] {
            assert!(!m[key].is_null(), "{key} missing in {m}");
        }
        assert_eq!(m["active_connections"], 0);
        assert!(m["threads"].as_u64().unwrap() >= 2, "{m}");
        assert!(m["allocated_memory_bytes"].as_u64().unwrap() > 10_000, "{m}");
        assert!(m["process_memory_bytes"].as_u64().unwrap() > 1_000_000, "{m}");
        let mem = m["system_memory_usage_percent"].as_f64().unwrap();
        assert!(mem > 0.0 && mem < 100.0, "{m}");
        // Burn some CPU in the server process between two readings: the process figure must move.
        let (_, second) = loop_until_cpu_moves(&app).await;
        assert!(second["cpu_usage_percent"].as_f64().unwrap() > 0.0, "{second}");
        app.stop().await.unwrap();
    }
}

/// Drives requests at the server until a reading shows nonzero process CPU (bounded).
async fn loop_until_cpu_moves(app: &crate::helpers::TestApp) -> (u16, serde_json::Value) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        for _ in 0..200 {
            app.get_text("/metrics").await;
        }
        let (status, m) = app.get_json("/api/metrics").await;
        if m["cpu_usage_percent"].as_f64().unwrap_or(0.0) > 0.0 || std::time::Instant::now() > deadline {
            return (status, m);
        }
    }
}
