//! The OpenAI-compatible chat emulator: `POST /v1/chat/completions`, streaming (SSE) and not, with scripted
//! or default replies, tool-call streams, pacing, transport torture and failures. `control` is the
//! test-facing handle, `handler` the endpoint, `reply` the payloads, `framing` the bytes on the wire.

pub mod control;
pub mod errors;
pub mod framing;
pub mod handler;
pub mod reply;
mod respond;

use actix_web::web;

pub use control::{ChatRequestLog, OpenAiControl, OpenAiFault, Reply, Torture};

/// Adds the OpenAI routes for `control`.
pub fn configure(control: OpenAiControl) -> impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(control.clone()))
            .route("/v1/chat/completions", web::post().to(handler::chat_completions));
    }
}
