//! Every HTTP route, registered in one place ([`config`]); one file per resource. Extractor failures (bad
//! query strings, bad JSON) are turned into [`ApiError`]s here so they render like every other error.

mod feedback;
pub mod guard;
mod health;
mod history;
mod metrics;
pub mod openapi;
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

/// What a route serves, which decides whether the OpenAPI description must describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A REST endpoint (JSON, or the Prometheus text, audio or TwiML it names): described in `/api/openapi.json`.
    Rest,
    /// An HTML page or one of its assets.
    Page,
    /// A WebSocket upgrade (its protocol is in README).
    WebSocket,
}

/// A route as registered: its kind, method (lower case, as OpenAPI writes it) and path pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub kind: Kind,
    pub method: &'static str,
    pub path: &'static str,
}

/// Declares the routes once: [`ROUTES`] lists them (tests hold the OpenAPI description to it) and `register`
/// adds exactly those to the application.
macro_rules! routes {
    ($($kind:ident $method:ident $path:expr => $handler:path;)*) => {
        /// Every route parley serves.
        pub const ROUTES: &[Route] =
            &[$(Route { kind: Kind::$kind, method: stringify!($method), path: $path }),*];

        fn register(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, web::$method().to($handler));)*
        }
    };
}

routes! {
    Rest get "/healthz" => health::healthz;
    Rest get "/readyz" => health::readyz;
    Rest get "/metrics" => metrics::prometheus;
    Rest get "/api/metrics" => metrics::json;
    Rest get "/api/history" => history::get;
    Rest get "/api/sessions" => sessions::list;
    Rest post "/api/feedback" => feedback::post;
    Rest post "/api/tokens" => tokens::mint_for_user;
    Rest post "/api/dev/token" => tokens::development;
    Rest get "/api/recordings" => recordings::list;
    Rest get "/api/openapi.json" => openapi::document;
    Rest get "/audio_recordings/{user}/{session}/{file}" => recordings::file;
    Page get "/status" => pages::status;
    Page get "/" => pages::index;
    Page get "/assets/{name}" => pages::asset;
    WebSocket get "/ws/chat-audio" => ws::chat_audio;
    Rest post "/twilio/voice" => twilio::voice;
    WebSocket get twilio::STREAM_PATH => twilio::stream;
}

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
    }));
    register(cfg);
    cfg.default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError as _;
    ApiError::not_found("not_found", format!("no route for {} {}", req.method(), req.path())).error_response()
}
