//! Minting client tokens.
//!
//! - `POST /api/tokens {"userId", "ttlSeconds"?, "sessionId"?, "scope"?, "agent"?, "vars"?}` with
//!   `Authorization: Bearer <API key>`: an app backend gets a token for one of its users (pinned to an agent,
//!   and carrying the variables of its system prompt, when asked) (`ttlSeconds` default and cap
//!   `PARLEY_TOKEN_MAX_TTL_SECS`). Backends can as well mint tokens themselves with any JWT library (HS256
//!   under `PARLEY_AUTH_SECRET`); this route saves them the library.
//! - `POST /api/dev/token {"credential", "userId"}`: only on a development server (no secret configured), the
//!   bundled page exchanges the credential printed at start-up for a user token.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::guard;
use crate::api_error::{ApiError, ErrorBody};
use crate::auth::{Claims, Scope, now_secs};
use crate::db::{SessionId, UserId};
use crate::state::AppState;

/// What an operator asks a token for.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = TokenRequest)]
pub struct MintBody {
    /// The user the token is for.
    #[schema(value_type = UserId, required = true)]
    user_id: Option<String>,
    /// Lifetime in seconds (default and cap `PARLEY_TOKEN_MAX_TTL_SECS`).
    #[schema(minimum = 1)]
    ttl_seconds: Option<i64>,
    /// The one session the token may resume.
    #[schema(format = Uuid)]
    session_id: Option<String>,
    /// Space-separated scopes: `voice`, `history` (default both).
    #[schema(example = "voice history")]
    scope: Option<String>,
    /// The agent the token is for (its `agent` claim).
    agent: Option<String>,
    /// The system prompt's variables (its `vars` claim): an object of strings.
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    vars: Option<serde_json::Value>,
}

/// The bundled page's exchange of the printed development credential.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DevTokenRequest)]
pub struct DevBody {
    /// The `dev` part of the address parley printed at start-up.
    #[schema(required = true)]
    credential: Option<String>,
    #[schema(value_type = UserId, required = true)]
    user_id: Option<String>,
}

/// A minted client token.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Minted {
    /// The JWT, for `Authorization: Bearer` and the WebSocket's `?token=`.
    token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
    ttl_seconds: i64,
}

/// A token for `user`, valid `ttl` seconds (capped), optionally limited to one session and some scopes.
fn mint(
    app: &AppState,
    user: UserId,
    ttl: Option<i64>,
    session: Option<SessionId>,
    scopes: Vec<Scope>,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let max = app.config.auth.token_max_ttl.as_secs() as i64;
    let ttl = match ttl {
        None => max,
        Some(t) if t > 0 => t.min(max),
        Some(t) => return Err(ApiError::bad_request("invalid_ttl", format!("ttlSeconds must be positive, got {t}"))),
    };
    let now = now_secs();
    let claims = Claims { user_id: user, exp: now + ttl, iat: Some(now), nbf: None, session, scopes, extra };
    let token = app.auth.tokens.mint(&claims);
    let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_default();
    Ok(HttpResponse::Ok().json(Minted { token, expires_at, ttl_seconds: ttl }))
}

fn scopes(raw: Option<&str>) -> Result<Vec<Scope>, ApiError> {
    match raw {
        None => Ok(vec![Scope::Voice, Scope::History]),
        Some(raw) => raw
            .split_whitespace()
            .map(|s| match s {
                "voice" => Ok(Scope::Voice),
                "history" => Ok(Scope::History),
                other => {
                    Err(ApiError::bad_request("invalid_scope", format!("unknown scope {other:?}: voice, history")))
                }
            })
            .collect(),
    }
}

/// A client token for one of the operator's users.
#[utoipa::path(
    post,
    path = "/api/tokens",
    tag = "tokens",
    request_body = MintBody,
    security(("apiKey" = [])),
    responses(
        (status = 200, body = Minted),
        (status = 400, description = "missing_user_id, invalid_user_id, invalid_session_id, invalid_ttl, \
                                      invalid_scope, invalid_vars, invalid_json", body = ErrorBody),
        (status = 401, description = "token_missing, api_key_invalid (a client token is not enough)", body = ErrorBody),
        (status = 403, description = "origin_not_allowed", body = ErrorBody),
        (status = 404, description = "agent_not_found", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 429, description = "rate_limited (see Retry-After)", body = ErrorBody),
    ),
)]
pub async fn mint_for_user(
    req: HttpRequest,
    app: web::Data<AppState>,
    body: web::Json<MintBody>,
) -> Result<HttpResponse, ApiError> {
    guard::operator(&req, &app)?;
    let user = super::params::user_id(body.user_id.as_deref())?;
    let session = body.session_id.as_deref().map(|s| super::params::session_id(Some(s))).transpose()?;
    let extra = agent_claims(&app, &body)?;
    mint(&app, user, body.ttl_seconds, session, scopes(body.scope.as_deref())?, extra)
}

/// The `agent` and `vars` claims asked for: an agent that exists, variables that are all strings.
fn agent_claims(app: &AppState, body: &MintBody) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let mut extra = serde_json::Map::new();
    if let Some(agent) = body.agent.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        if app.session.agents.get(agent).is_none() {
            return Err(ApiError::not_found("agent_not_found", format!("no agent {agent:?}")));
        }
        extra.insert("agent".into(), agent.into());
    }
    match &body.vars {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(vars)) if vars.values().all(serde_json::Value::is_string) => {
            extra.insert("vars".into(), serde_json::Value::Object(vars.clone()));
        }
        Some(_) => return Err(ApiError::bad_request("invalid_vars", "vars must be an object of strings")),
    }
    Ok(extra)
}

/// Development server only (no `PARLEY_AUTH_SECRET`): the printed credential for a user's token.
#[utoipa::path(
    post,
    path = "/api/dev/token",
    tag = "tokens",
    request_body = DevBody,
    responses(
        (status = 200, body = Minted),
        (status = 400, description = "missing_user_id, invalid_user_id, invalid_json", body = ErrorBody),
        (status = 401, description = "credential_invalid", body = ErrorBody),
        (status = 404, description = "not_found: parley has a PARLEY_AUTH_SECRET", body = ErrorBody),
        (status = 429, description = "rate_limited (see Retry-After)", body = ErrorBody),
    ),
)]
pub async fn development(
    req: HttpRequest,
    app: web::Data<AppState>,
    body: web::Json<DevBody>,
) -> Result<HttpResponse, ApiError> {
    if app.auth.development_credential().is_none() {
        return Err(ApiError::not_found("not_found", format!("no route for POST {}", req.path())));
    }
    let credential = body.credential.as_deref().unwrap_or_default();
    guard::limit_requests(&app, credential)?;
    if !app.auth.is_development_credential(credential) {
        return Err(ApiError::unauthorized(
            "credential_invalid",
            "open the page through the address parley printed at start-up (it carries the credential)",
        ));
    }
    let user = super::params::user_id(body.user_id.as_deref())?;
    mint(&app, user, None, None, vec![Scope::Voice, Scope::History], Default::default())
}
