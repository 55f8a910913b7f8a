//! `GET /ws/chat-audio?token=…[&agent=…][&sessionId=…][&sampleRate=…]`: opens a voice session (see `session`).
//!
//! Everything that can be checked before the upgrade is, so a refusal is a plain HTTP error a client can read:
//! a browser `Origin` that is not allowed (403); the credential, from `?token=` (browsers cannot set headers
//! on a WebSocket) or `Authorization: Bearer` (401 without a valid one; 403 without the `voice` scope, or when
//! a `userId` parameter disagrees with the token's user); too many openings from this address (429 with
//! `Retry-After`); a `sampleRate` outside 8000–48000 (400); a `sessionId` that is unknown or another user's,
//! or not the one session the token is limited to (404 either way); the server at its session limit (503) or
//! the user at theirs (429), counting sessions still being opened. The userId is the token's; an operator's
//! API key names it with `userId`. Resuming loads the stored conversation into the session's memory.
//!
//! The agent is `?agent=`, else the token's `agent` claim, else the default agent; an unknown one is 404
//! `agent_not_found`, and `?agent=` other than the token's claim is 403 `agent_mismatch`. The agent's system
//! prompt is rendered with the token's `vars` claim (an object of strings, signed by the app's backend): the
//! query string never fills it, since a browser can put anything there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use serde::Deserialize;

use super::guard;
use crate::agents::template;
use crate::api_error::ApiError;
use crate::audio::level::InputEncoding;
use crate::auth::{Caller, Claims, Scope, TokenError, now_secs};
use crate::db::{SessionId, UserId};
use crate::registry::{RegistryFull, Reserve};
use crate::session::browser::{BrowserWire, codec_frame_limit};
use crate::session::client_socket::{ClientSocket, FrameGuard};
use crate::session::conversation::remembered_reply;
use crate::session::settings::{AudioIn, Remembered, SessionParams, SessionSettings};
use crate::state::AppState;

const DEFAULT_SAMPLE_RATE: u32 = 16_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    token: Option<String>,
    user_id: Option<String>,
    session_id: Option<String>,
    sample_rate: Option<String>,
    agent: Option<String>,
}

/// Who opens a session, as the credential says.
struct Who {
    user_id: UserId,
    /// The one session the token is limited to.
    only_session: Option<SessionId>,
    /// The agent the token pins (`agent` claim).
    agent: Option<String>,
    /// The system prompt's variables (`vars` claim).
    vars: BTreeMap<String, String>,
}

/// The token's `agent` and `vars` claims; anything but a string agent and an object of strings is an invalid
/// token.
fn agent_claims(claims: &Claims) -> Result<(Option<String>, BTreeMap<String, String>), ApiError> {
    let agent = match claims.extra.get("agent") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(a)) => Some(a.clone()),
        Some(_) => return Err(guard::refused(&TokenError::Invalid("agent: expected a string"))),
    };
    let vars = match claims.extra.get("vars") {
        None | Some(serde_json::Value::Null) => BTreeMap::new(),
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect::<Option<_>>()
            .ok_or_else(|| guard::refused(&TokenError::Invalid("vars: every value must be a string")))?,
        Some(_) => return Err(guard::refused(&TokenError::Invalid("vars: expected an object of strings"))),
    };
    Ok((agent, vars))
}

/// The agent a session talks to, its system prompt rendered with the token's variables.
fn agent_for(app: &AppState, asked: Option<&str>, who: &Who) -> Result<Arc<SessionSettings>, ApiError> {
    let asked = asked.map(str::trim).filter(|a| !a.is_empty());
    if let (Some(asked), Some(pinned)) = (asked, who.agent.as_deref())
        && asked != pinned
    {
        return Err(ApiError::forbidden(
            "agent_mismatch",
            format!("this token is for agent {pinned:?}, not {asked:?}; leave agent out"),
        ));
    }
    let settings = match asked.or(who.agent.as_deref()) {
        None => app.session.agents.default_agent().clone(),
        Some(name) => app
            .session
            .agents
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::not_found("agent_not_found", format!("no agent {name:?}")))?,
    };
    let rendered = template::render(&settings.system_prompt, &who.vars);
    if !rendered.missing.is_empty() {
        log::debug!(
            "user {}: agent {}: no value for {} in the system prompt (rendered empty)",
            who.user_id,
            settings.agent,
            rendered.missing.join(", ")
        );
    }
    if rendered.text == settings.system_prompt {
        return Ok(settings);
    }
    Ok(Arc::new(SessionSettings { system_prompt: rendered.text, ..(*settings).clone() }))
}

/// The user a session is for, the one session the credential limits it to, and the token's agent claims.
fn who(req: &HttpRequest, app: &AppState, params: &Params) -> Result<Who, ApiError> {
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
            Ok(Who { user_id: user, only_session: None, agent: None, vars: BTreeMap::new() })
        }
        Caller::User(claims) => {
            if !claims.allows(Scope::Voice) {
                return Err(ApiError::forbidden("token_scope", "this token does not allow voice sessions"));
            }
            if asked.is_some_and(|u| u != claims.user_id) {
                return Err(ApiError::forbidden("user_mismatch", "userId is not the token's user; leave it out"));
            }
            let (agent, vars) = agent_claims(&claims)?;
            Ok(Who { user_id: claims.user_id, only_session: claims.session, agent, vars })
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
    let who = who(&req, &app, &params)?;
    // Checked before anything is counted or reserved: a session for an agent that is not there is a 404.
    let settings = agent_for(&app, params.agent.as_deref(), &who)?;
    let Who { user_id, only_session, .. } = who;
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
        settings,
        session_id,
        user_id,
        resumed,
        history,
        audio_in: AudioIn { encoding: InputEncoding::Linear16, sample_rate },
        output_format: app.config.elevenlabs.output_format,
        peer,
        reservation: Some(reservation),
        call: None,
    };
    let settings = params.settings.clone();
    let wire = BrowserWire::new(&params, &settings);
    let actor = ClientSocket::new(wire, params, app.session.clone(), app.http.clone());
    // Frame sizes are checked at each header, before any payload is buffered (see `FrameGuard`).
    let limit = codec_frame_limit(&settings);
    ws::WsResponseBuilder::new(actor, &req, FrameGuard::new(stream, limit))
        .frame_size(limit)
        .start()
        .map_err(|e| ApiError::bad_request("not_a_websocket", format!("expected a WebSocket upgrade: {e}")))
}
