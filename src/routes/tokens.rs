//! Minting client tokens.
//!
//! - `POST /api/tokens {"userId", "ttlSeconds"?, "sessionId"?, "scope"?}` with `Authorization: Bearer <API
//!   key>`: an app backend gets a token for one of its users (`ttlSeconds` default and cap
//!   `PARLEY_TOKEN_MAX_TTL_SECS`). Backends can as well mint tokens themselves with any JWT library (HS256
//!   under `PARLEY_AUTH_SECRET`); this route saves them the library.
//! - `POST /api/dev/token {"credential", "userId"}`: only on a development server (no secret configured), the
//!   bundled page exchanges the credential printed at start-up for a user token.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::guard;
use crate::api_error::ApiError;
use crate::auth::{Claims, Scope, now_secs};
use crate::db::{SessionId, UserId};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MintBody {
    user_id: Option<String>,
    ttl_seconds: Option<i64>,
    session_id: Option<String>,
    scope: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevBody {
    credential: Option<String>,
    user_id: Option<String>,
}

/// A token for `user`, valid `ttl` seconds (capped), optionally limited to one session and some scopes.
fn mint(
    app: &AppState,
    user: UserId,
    ttl: Option<i64>,
    session: Option<SessionId>,
    scopes: Vec<Scope>,
) -> Result<HttpResponse, ApiError> {
    let max = app.config.auth.token_max_ttl.as_secs() as i64;
    let ttl = match ttl {
        None => max,
        Some(t) if t > 0 => t.min(max),
        Some(t) => return Err(ApiError::bad_request("invalid_ttl", format!("ttlSeconds must be positive, got {t}"))),
    };
    let now = now_secs();
    let claims =
        Claims { user_id: user, exp: now + ttl, iat: Some(now), nbf: None, session, scopes, extra: Default::default() };
    let token = app.auth.tokens.mint(&claims);
    let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_default();
    Ok(HttpResponse::Ok().json(json!({"token": token, "expiresAt": expires_at, "ttlSeconds": ttl})))
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

pub async fn mint_for_user(
    req: HttpRequest,
    app: web::Data<AppState>,
    body: web::Json<MintBody>,
) -> Result<HttpResponse, ApiError> {
    guard::operator(&req, &app)?;
    let user = super::params::user_id(body.user_id.as_deref())?;
    let session = body.session_id.as_deref().map(|s| super::params::session_id(Some(s))).transpose()?;
    mint(&app, user, body.ttl_seconds, session, scopes(body.scope.as_deref())?)
}

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
    mint(&app, user, None, None, vec![Scope::Voice, Scope::History])
}
