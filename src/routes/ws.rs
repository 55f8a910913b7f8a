//! `GET /ws/chat-audio?token=…[&sessionId=…][&sampleRate=…]`: opens a voice session (see `session`).
//!
//! Everything that can be checked before the upgrade is, so a refusal is a plain HTTP error a client can read:
//! a browser `Origin` that is not allowed (403); the credential, from `?token=` (browsers cannot set headers
//! on a WebSocket) or `Authorization: Bearer` (401 without a valid one; 403 without the `voice` scope, or when
//! a `userId` parameter disagrees with the token's user); too many openings from this address (429 with
//! `Retry-After`); a `sampleRate` outside 8000–48000 (400); a `sessionId` that is unknown or another user's,
//! or not the one session the token is limited to (404 either way); the server at its session limit (503) or
//! the user at theirs (429), counting sessions still being opened. The userId is the token's; an operator's
//! API key names it with `userId`. Resuming loads the stored conversation into the session's memory.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use serde::Deserialize;

use super::guard;
use crate::api_error::ApiError;
use crate::audio::level::InputEncoding;
use crate::auth::{Caller, Scope, TokenError, now_secs};
use crate::db::{SessionId, UserId};
use crate::registry::{RegistryFull, Reserve};
use crate::session::browser::{BrowserWire, codec_frame_limit};
use crate::session::client_socket::{ClientSocket, FrameGuard};
use crate::session::conversation::remembered_reply;
use crate::session::settings::{AudioIn, Remembered, SessionParams};
use crate::state::AppState;

const DEFAULT_SAMPLE_RATE: u32 = 16_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    token: Option<String>,
    user_id: Option<String>,
    session_id: Option<String>,
    sample_rate: Option<String>,
}

/// The user a session is for, and the one session the credential limits it to, if any.
fn who(req: &HttpRequest, app: &AppState, params: &Params) -> Result<(UserId, Option<SessionId>), ApiError> {
    let credential = params.token.as_deref().filter(|t| !t.is_empty()).or_else(|| guard::bearer(req));
    let Some(credential) = credential else {
        return Err(guard::refused(&TokenError::Missing));
    };
    let asked =
        params.user_id.as_deref().filter(|u| !u.is_empty()).map(|u| super::params::user_id(Some(u))).transpose()?;
    match app.auth.caller(credential, now_secs()).map_err(|e| guard::refused(&e))? {
        Caller::Operator => {
            let user = asked.ok_or_else(|| {
                ApiError::bad_request("missing_user_id", "with an API key, the userId query parameter names the user")
            })?;
            Ok((user, None))
        }
        Caller::User(claims) => {
            if !claims.allows(Scope::Voice) {
                return Err(ApiError::forbidden("token_scope", "this token does not allow voice sessions"));
            }
            if asked.is_some_and(|u| u != claims.user_id) {
                return Err(ApiError::forbidden("user_mismatch", "userId is not the token's user; leave it out"));
            }
            Ok((claims.user_id, claims.session))
        }
    }
}

pub async fn chat_audio(
    req: HttpRequest,
    stream: web::Payload,
    params: web::Query<Params>,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if app.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::busy("the server is shutting down; connect again in a moment"));
    }
    let (user_id, only_session) = who(&req, &app, &params)?;
    if let Some(ip) = guard::client_ip(&req, &app) {
        app.connects.take(&ip, Instant::now()).map_err(|wait| {
            ApiError::too_many("rate_limited", "too many sessions opened from this address; try again later", wait)
        })?;
    }
    let sample_rate = match params.sample_rate.as_deref() {
        None | Some("") => DEFAULT_SAMPLE_RATE,
        Some(raw) => raw.parse().ok().filter(|r| (8_000..=48_000).contains(r)).ok_or_else(|| {
            ApiError::bad_request("invalid_sample_rate", format!("sampleRate must be 8000-48000 Hz, got {raw:?}"))
        })?,
    };
    let asked = params
        .session_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| super::params::session_id(Some(s)))
        .transpose()?;
    let resume = match (asked, only_session) {
        (Some(asked), Some(only)) if asked != only => {
            return Err(ApiError::not_found("session_not_found", format!("no session {asked} for this token")));
        }
        (asked, only) => asked.or(only),
    };
    let (session_id, resumed, history) = match resume {
        None => (SessionId::generate(), false, Vec::new()),
        Some(id) => {
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
                        tools: m.tools.clone().unwrap_or_default(),
                        role: m.role,
                        text: m.outcome.map_or(text.clone(), |o| remembered_reply(&text, o)),
                    }),
                    Err(_) => None, // logged by the store; an unreadable row is left out of the context
                })
                .collect();
            (id, true, history)
        }
    };
    let reservation = match app.registry.send(Reserve { user_id: user_id.clone() }).await {
        Ok(Ok(r)) => r,
        Ok(Err(full @ RegistryFull::Server(_))) => return Err(ApiError::busy(full.to_string())),
        Ok(Err(full @ RegistryFull::User(_))) => {
            return Err(ApiError::too_many("too_many_sessions", full.to_string(), std::time::Duration::from_secs(5)));
        }
        Err(_) => return Err(ApiError::Internal),
    };
    let peer = req.peer_addr().map(|a| a.to_string());
    let params = SessionParams {
        settings: app.session.settings.clone(),
        session_id,
        user_id,
        resumed,
        history,
        audio_in: AudioIn { encoding: InputEncoding::Linear16, sample_rate },
        output_format: app.config.elevenlabs.output_format,
        peer,
        reservation: Some(reservation),
    };
    let settings = &app.session.settings;
    let wire = BrowserWire::new(&params, settings);
    let actor = ClientSocket::new(wire, params, app.session.clone(), app.http.clone());
    // Frame sizes are checked at each header, before any payload is buffered (see `FrameGuard`).
    let limit = codec_frame_limit(settings);
    ws::WsResponseBuilder::new(actor, &req, FrameGuard::new(stream, limit))
        .frame_size(limit)
        .start()
        .map_err(|e| ApiError::bad_request("not_a_websocket", format!("expected a WebSocket upgrade: {e}")))
}
