//! Who is calling, and may they: the credential of a request, its rate limit, its origin, and where it comes
//! from. Every protected route starts with [`caller`] (REST) or the WebSocket route's own checks; the origin
//! check ([`check_origin`]) wraps every route.
//!
//! Failures are JSON errors a client can act on, and say nothing of what exactly was wrong with a token:
//! 401 `token_missing`/`token_invalid`/`token_expired`, 403 for a refused origin or a missing scope, 429 with
//! `Retry-After` for a rate limit.

use std::net::IpAddr;
use std::time::Instant;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError as _, web};

use crate::api_error::ApiError;
use crate::auth::{Caller, Scope, TokenError, now_secs};
use crate::limits::client_address;
use crate::state::AppState;

/// The credential of a request: `Authorization: Bearer …`.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credential.trim())
}

/// A 401 for a refused credential.
pub fn refused(e: &TokenError) -> ApiError {
    log::info!("request refused: {e}");
    ApiError::unauthorized(e.code(), e.message())
}

/// Authenticates a REST request: one request of its credential's rate, then who presents it; a user must hold
/// `scope`.
pub fn caller(req: &HttpRequest, app: &AppState, scope: Scope) -> Result<Caller, ApiError> {
    let Some(credential) = bearer(req) else {
        return Err(refused(&TokenError::Missing));
    };
    limit_requests(app, credential)?;
    let caller = app.auth.caller(credential, now_secs()).map_err(|e| refused(&e))?;
    if let Caller::User(claims) = &caller
        && !claims.allows(scope)
    {
        return Err(ApiError::forbidden("token_scope", "this token does not allow this; ask for a token that does"));
    }
    Ok(caller)
}

/// An operator's request: an API key is required.
pub fn operator(req: &HttpRequest, app: &AppState) -> Result<(), ApiError> {
    let Some(credential) = bearer(req) else {
        return Err(refused(&TokenError::Missing));
    };
    limit_requests(app, credential)?;
    if app.auth.is_api_key(credential) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("api_key_invalid", "this needs one of the server's API keys (PARLEY_API_KEYS)"))
    }
}

/// One request of `credential`'s rate.
pub fn limit_requests(app: &AppState, credential: &str) -> Result<(), ApiError> {
    app.requests
        .take(&digest(credential), Instant::now())
        .map_err(|wait| ApiError::too_many("rate_limited", "too many requests with this credential; slow down", wait))
}

/// A short digest of a credential, so the limiter's table holds no secrets.
fn digest(credential: &str) -> u64 {
    let d = ring::digest::digest(&ring::digest::SHA256, credential.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    u64::from_le_bytes(b)
}

/// Where the request comes from (the peer, or behind a trusted proxy the address it forwards).
pub fn client_ip(req: &HttpRequest, app: &AppState) -> Option<IpAddr> {
    let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    client_address(req.peer_addr().map(|a| a.ip()), forwarded, &app.config.auth.trusted_proxies)
}

/// The request's `Origin`, when a browser sent one.
fn origin(req: &HttpRequest) -> Option<&str> {
    req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

/// Whether `origin` may use the server: its own origin (the `Host` the request was sent to), or one of
/// `PARLEY_ALLOWED_ORIGINS`.
pub fn origin_allowed(req: &HttpRequest, app: &AppState, origin: &str) -> bool {
    let origin = origin.trim().to_ascii_lowercase();
    if app.config.auth.allowed_origins.contains(&origin) {
        return true;
    }
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    let Some(host) = host else {
        return false;
    };
    // Same origin: the host (and port) the browser sent the request to, whatever the scheme a proxy ended.
    origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).is_some_and(|o| o == host)
}

/// Middleware: a browser request from an origin that is not allowed is refused (403) before any route runs;
/// allowed cross-origin requests get CORS headers, and their preflights an answer.
pub async fn check_origin(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(app) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let Some(origin) = origin(req.request()).map(str::to_string) else {
        return next.call(req).await; // not a browser's cross-site request: credentials decide
    };
    if !origin_allowed(req.request(), &app, &origin) {
        log::info!("refused a request from origin {origin:?} to {}", req.path());
        let e =
            ApiError::forbidden("origin_not_allowed", "this origin may not use this server (PARLEY_ALLOWED_ORIGINS)");
        return Ok(req.into_response(e.error_response()));
    }
    let value = HeaderValue::from_str(&origin).ok();
    if req.method() == actix_web::http::Method::OPTIONS {
        let mut res = HttpResponse::NoContent();
        if let Some(v) = &value {
            res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, v.clone()))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Authorization, Content-Type, Range"))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
                .insert_header((header::VARY, "Origin"));
        }
        return Ok(req.into_response(res.finish()));
    }
    let mut res = next.call(req).await?;
    if let Some(v) = value {
        let headers = res.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Content-Range, Retry-After"));
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(res)
}

/// Middleware: a request whose handler (reading its body included) does not finish within
/// `PARLEY_REQUEST_TIMEOUT_SECS` is answered 408, which ends it and frees its connection: a body trickled a byte
/// at a time cannot hold a descriptor for ever. A WebSocket's handler returns at the upgrade, so sessions are
/// not limited by this.
pub async fn deadline(req: ServiceRequest, next: Next<BoxBody>) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(limit) = req.app_data::<web::Data<AppState>>().map(|app| app.config.limits.request_timeout) else {
        return next.call(req).await;
    };
    let (method, path) = (req.method().clone(), req.path().to_string());
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(result) => result,
        Err(_) => {
            log::info!("request {method} {path} took over {limit:?}; answered 408");
            // An error rather than a response: a response needs the request, and a clone of it held here
            // would stop the router from writing the path's parameters into it.
            Err(ApiError::RequestTimeout(format!("the request did not arrive within {} s", limit.as_secs())).into())
        }
    }
}
