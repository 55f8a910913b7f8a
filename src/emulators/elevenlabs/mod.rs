//! The ElevenLabs TTS emulator: the `stream-input` and `multi-stream-input` WebSockets and the HTTP
//! `POST /v1/text-to-speech/{voice_id}/stream` (and `.../stream/with-timestamps`), speaking real audio in
//! the requested output format at about 15 characters a second. `control` is the test-facing handle,
//! `upgrade` + `socket` the WebSockets, `http` the HTTP endpoints and `http_body` their paced, cuttable
//! bodies, `buffer` the chunk-schedule logic, `speech` the audio and alignment.

pub mod buffer;
pub mod control;
pub mod http;
pub mod http_body;
pub mod socket;
pub mod speech;
pub mod upgrade;

use actix_web::web;

pub use control::{ElevenLabsControl, ElevenLabsFault, SentFrame, TtsHttpLog, TtsSnapshot, TtsSocketLog};

/// Adds the ElevenLabs routes for `control`.
pub fn configure(control: ElevenLabsControl) -> impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(control.clone()))
            .route("/v1/text-to-speech/{voice_id}/{endpoint}", web::get().to(upgrade::socket))
            .route("/v1/text-to-speech/{voice_id}/stream", web::post().to(http::stream))
            .route("/v1/text-to-speech/{voice_id}/stream/with-timestamps", web::post().to(http::stream_with_timestamps))
            .route("/v1/text-to-speech/{voice_id}", web::post().to(http::stream));
    }
}
