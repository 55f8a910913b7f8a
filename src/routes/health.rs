//! Liveness and readiness probes: `/healthz` answers while the process serves HTTP; `/readyz` also proves the
//! database answers, so a load balancer stops routing to an instance whose database is gone, and turns 503
//! once a graceful shutdown has begun, so it stops routing new sessions to an instance that is draining.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::Backend;
use crate::state::AppState;

/// `/healthz`'s answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `/readyz`'s answer while the database answers.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    status: &'static str,
    /// Which database: `postgres` or `sqlite`.
    #[schema(example = "sqlite")]
    database: &'static str,
}

/// `/readyz`'s answer while the database does not answer (`database_unavailable`) or the server drains
/// (`draining`): the `Error` shape, with the database named.
#[derive(Serialize, ToSchema)]
pub struct NotReady {
    #[schema(example = "database_unavailable")]
    error: &'static str,
    message: &'static str,
    database: &'static str,
}

/// Liveness: 200 while the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "probes", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: 200 when the database answers, else 503 (take the instance out of the load balancer); 503
/// `draining` too once a graceful stop has begun.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    responses((status = 200, body = Ready), (status = 503, body = NotReady)),
)]
pub async fn readyz(app: web::Data<AppState>) -> HttpResponse {
    let store = &app.store;
    let backend = match store.backend() {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    if app.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().json(NotReady {
            error: "draining",
            message: "the server is shutting down and takes no new sessions",
            database: backend,
        });
    }
    match store.ping().await {
        Ok(()) => HttpResponse::Ok().json(Ready { status: "ready", database: backend }),
        Err(e) => {
            log::warn!("readiness check failed: {e}");
            HttpResponse::ServiceUnavailable().json(NotReady {
                error: "database_unavailable",
                message: "the database does not answer",
                database: backend,
            })
        }
    }
}
