//! Liveness and readiness probes: `/healthz` answers while the process serves HTTP; `/readyz` also proves the
//! database answers, so a load balancer stops routing to an instance whose database is gone, and turns 503
//! once a graceful shutdown has begun, so it stops routing new sessions to an instance that is draining.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::db::Backend;
use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn readyz(app: web::Data<AppState>) -> HttpResponse {
    if app.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().json(json!({
            "error": "draining",
            "message": "the server is shutting down and takes no new sessions",
        }));
    }
    let store = &app.store;
    let backend = match store.backend() {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    match store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "database": backend})),
        Err(e) => {
            log::warn!("readiness check failed: {e}");
            HttpResponse::ServiceUnavailable().json(json!({
                "error": "database_unavailable",
                "message": "the database does not answer",
                "database": backend,
            }))
        }
    }
}
