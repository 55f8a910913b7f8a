//! `GET /ws/chat-audio?userId=…[&sessionId=…][&sampleRate=…]`: opens a voice session (see `session`).
//!
//! Everything that can be checked before the upgrade is, so a bad request gets a plain HTTP error a client
//! can read: a missing or malformed `userId`, a `sampleRate` outside 8000–48000, an unknown `sessionId` or one
//! belonging to another user (404 either way), a server at its session limit (503). Resuming loads the stored
//! conversation into the session's memory.

use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use serde::Deserialize;

use crate::api_error::ApiError;
use crate::audio::level::InputEncoding;
use crate::db::{SessionId, UserId};
use crate::registry::GetCounts;
use crate::session::browser::{BrowserWire, codec_frame_limit};
use crate::session::client_socket::ClientSocket;
use crate::session::conversation::remembered_reply;
use crate::session::settings::{AudioIn, Remembered, SessionParams};
use crate::state::AppState;

const DEFAULT_SAMPLE_RATE: u32 = 16_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    user_id: Option<String>,
    session_id: Option<String>,
    sample_rate: Option<String>,
}

pub async fn chat_audio(
    req: HttpRequest,
    stream: web::Payload,
    params: web::Query<Params>,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user_id: UserId = super::params::user_id(params.user_id.as_deref())?;
    let sample_rate = match params.sample_rate.as_deref() {
        None | Some("") => DEFAULT_SAMPLE_RATE,
        Some(raw) => raw.parse().ok().filter(|r| (8_000..=48_000).contains(r)).ok_or_else(|| {
            ApiError::bad_request("invalid_sample_rate", format!("sampleRate must be 8000-48000 Hz, got {raw:?}"))
        })?,
    };
    let counts = app.registry.send(GetCounts).await.map_err(|_| ApiError::Internal)?;
    if counts.active >= app.config.limits.max_sessions {
        return Err(ApiError::busy(format!(
            "the server is at its limit of {} sessions",
            app.config.limits.max_sessions
        )));
    }
    let (session_id, resumed, history) = match params.session_id.as_deref().filter(|s| !s.is_empty()) {
        None => (SessionId::generate(), false, Vec::new()),
        Some(raw) => {
            let id: SessionId = super::params::session_id(Some(raw))?;
            let found = app.store.find_session(&id).await?;
            if found.is_none_or(|s| s.user_id != user_id.as_str()) {
                return Err(ApiError::not_found("session_not_found", format!("no session {id} for this user")));
            }
            let history = app
                .store
                .session_messages(&id)
                .await?
                .into_iter()
                .filter_map(|m| match m.content {
                    // A reply cut short is remembered as heard and marked, as it was in the live session.
                    Ok(text) => Some(Remembered {
                        role: m.role,
                        text: m.outcome.map_or(text.clone(), |o| remembered_reply(&text, o)),
                    }),
                    Err(_) => None, // logged by the store; an unreadable row is left out of the context
                })
                .collect();
            (id, true, history)
        }
    };
    let peer = req.peer_addr().map(|a| a.to_string());
    let params = SessionParams {
        session_id,
        user_id,
        resumed,
        history,
        audio_in: AudioIn { encoding: InputEncoding::Linear16, sample_rate },
        output_format: app.config.elevenlabs.output_format,
        peer,
    };
    let settings = &app.session.settings;
    let wire = BrowserWire::new(&params, settings);
    let actor = ClientSocket::new(wire, params, app.session.clone(), app.http.clone());
    ws::WsResponseBuilder::new(actor, &req, stream)
        .frame_size(codec_frame_limit(settings))
        .start()
        .map_err(|e| ApiError::bad_request("not_a_websocket", format!("expected a WebSocket upgrade: {e}")))
}
