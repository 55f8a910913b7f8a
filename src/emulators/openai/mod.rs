//! The OpenAI-compatible chat emulator: `POST /v1/chat/completions` (also under any one-segment path prefix,
//! `/{prefix}/v1/chat/completions`, so one emulator serves several base URLs), streaming (SSE) and not, with
//! scripted or default replies, tool-call streams, pacing, transport torture and failures. `control` is the
//! test-facing handle, `control_api` the same over HTTP (`/_control/...`); `fault`, `script` and `torture`
//! are the faults, replies and transport quirks with their text spellings; `handler` is the endpoint,
//! `reply` the payloads, `framing` the bytes on the wire.

pub mod control;
pub mod control_api;
pub mod errors;
pub mod fault;
pub mod framing;
pub mod handler;
pub mod reply;
mod respond;
pub mod script;
pub mod torture;

use actix_web::web;

pub use control::{ChatRequestLog, OpenAiControl, OpenAiFault, Reply, Torture};

/// Adds the OpenAI routes for `control`.
pub fn configure(control: OpenAiControl) -> impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(control.clone()))
            .route("/v1/chat/completions", web::post().to(handler::chat_completions))
            .route("/{prefix}/v1/chat/completions", web::post().to(handler::chat_completions))
            .configure(control_api::routes);
    }
}
