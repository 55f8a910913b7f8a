//! Every HTTP route, registered in one place ([`config`]); one file per resource. Extractor failures (bad
//! query strings, bad JSON) are turned into [`ApiError`]s here so they render like every other error.

mod feedback;
pub mod guard;
mod health;
mod history;
mod metrics;
mod pages;
mod params;
mod recordings;
mod sessions;
mod tokens;
mod twilio;
mod ws;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::api_error::ApiError;

/// Largest JSON body the API accepts.
const MAX_JSON_BYTES: usize = 16 * 1024;

/// Registers every route.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|err, _| ApiError::bad_request("invalid_query", err.to_string()).into()),
    )
    .app_data(web::JsonConfig::default().limit(MAX_JSON_BYTES).error_handler(|err, _| {
        use actix_web::error::JsonPayloadError as E;
        match err {
            E::Overflow { .. } | E::OverflowKnownLength { .. } => {
                ApiError::TooLarge(format!("request body is larger than {MAX_JSON_BYTES} bytes")).into()
            }
            err => {
                ApiError::bad_request("invalid_json", format!("request body is not the expected JSON: {err}")).into()
            }
        }
    }))
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/metrics", web::get().to(metrics::prometheus))
    .route("/api/metrics", web::get().to(metrics::json))
    .route("/api/history", web::get().to(history::get))
    .route("/api/sessions", web::get().to(sessions::list))
    .route("/api/feedback", web::post().to(feedback::post))
    .route("/api/tokens", web::post().to(tokens::mint_for_user))
    .route("/api/dev/token", web::post().to(tokens::development))
    .route("/api/recordings", web::get().to(recordings::list))
    .route("/audio_recordings/{user}/{session}/{file}", web::get().to(recordings::file))
    .route("/status", web::get().to(pages::status))
    .route("/", web::get().to(pages::index))
    .route("/assets/{name}", web::get().to(pages::asset))
    .route("/ws/chat-audio", web::get().to(ws::chat_audio))
    .route("/twilio/voice", web::post().to(twilio::voice))
    .route(twilio::STREAM_PATH, web::get().to(twilio::stream))
    .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError as _;
    ApiError::not_found("not_found", format!("no route for {} {}", req.method(), req.path())).error_response()
}
