//! `GET /metrics` (Prometheus text format, with the database pinged first for `parley_database_up`) and `GET /api/metrics` (the original system's JSON figures, from
//! real operating-system readings; `threads` takes the place of Go's goroutine count).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::guard;
use crate::api_error::{ApiError, ErrorBody};
use crate::auth::Scope;
use crate::metrics::alloc;
use crate::registry::{Counts, GetCounts};
use crate::state::AppState;

/// How long the scrape waits for the database to answer its ping before `parley_database_up` reads 0 (well
/// inside Prometheus's default 10 s scrape timeout).
const DATABASE_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The Prometheus exposition (text format 0.0.4) of every parley metric.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "probes",
    responses((status = 200, description = "Prometheus text format", body = String,
               content_type = "text/plain; version=0.0.4; charset=utf-8")),
)]
pub async fn prometheus(app: web::Data<AppState>) -> HttpResponse {
    let up = tokio::time::timeout(DATABASE_PING_TIMEOUT, app.store.ping()).await.is_ok_and(|r| r.is_ok());
    app.metrics.database_up.set(i64::from(up));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(app.metrics.render(Some(app.store.pool_status())))
}

/// The figures of `/api/metrics`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Figures {
    timestamp: chrono::DateTime<chrono::Utc>,
    active_connections: usize,
    total_connections: u64,
    /// OS threads of the process (the original reported goroutines).
    threads: u64,
    /// Live heap bytes, counted by parley's global allocator.
    allocated_memory_bytes: usize,
    system_memory_usage_percent: f64,
    /// Percent of one CPU, like `top`.
    cpu_usage_percent: f64,
    /// Percent of all CPUs of the machine.
    system_cpu_usage_percent: f64,
    /// Resident set size.
    process_memory_bytes: u64,
    uptime_seconds: f64,
    last_collection_time: chrono::DateTime<chrono::Utc>,
}

/// Live server figures (what `/status` shows).
#[utoipa::path(
    get,
    path = "/api/metrics",
    tag = "probes",
    security(("clientToken" = []), ("apiKey" = [])),
    responses(
        (status = 200, body = Figures),
        (status = 401, description = "token_missing, token_invalid, token_expired", body = ErrorBody),
        (status = 403, description = "token_scope, origin_not_allowed", body = ErrorBody),
        (status = 429, description = "rate_limited (see Retry-After)", body = ErrorBody),
    ),
)]
pub async fn json(req: HttpRequest, app: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    guard::caller(&req, &app, Scope::History)?;
    let metrics = &app.metrics;
    let counts = app.registry.send(GetCounts).await.unwrap_or(Counts { active: 0, total: 0 });
    let (system, collected_at) = metrics.sample_system();
    Ok(HttpResponse::Ok().json(Figures {
        timestamp: chrono::Utc::now(),
        active_connections: counts.active,
        total_connections: counts.total,
        threads: system.threads,
        allocated_memory_bytes: alloc::allocated_bytes(),
        system_memory_usage_percent: round2(system.system_memory_used_percent),
        cpu_usage_percent: round2(system.process_cpu_percent),
        system_cpu_usage_percent: round2(system.system_cpu_percent),
        process_memory_bytes: system.process_resident_bytes,
        uptime_seconds: round2(metrics.uptime_seconds()),
        last_collection_time: collected_at,
    }))
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
