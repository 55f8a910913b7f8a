//! The Deepgram live STT emulator: `GET /v1/listen` upgraded to a WebSocket that reads linear16 (or G.711)
//! audio, detects speech by energy in audio time and answers with scripted transcripts in Deepgram's exact
//! message shapes. `control` is the test-facing handle, `upgrade` the pre-upgrade checks, `session` the
//! connection actor, `engine` the pure speech/transcript logic, `script` the text it "hears".

pub mod control;
pub mod decode;
pub mod engine;
pub mod replies;
pub mod script;
pub mod session;
pub mod upgrade;

use actix_web::web;

pub use control::{AuthMethod, DeepgramConnectionLog, DeepgramControl, DeepgramFault, FinalizeReply, ReceivedText};

/// Adds the Deepgram routes for `control`.
pub fn configure(control: DeepgramControl) -> impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(control.clone())).route("/v1/listen", web::get().to(upgrade::listen));
    }
}
