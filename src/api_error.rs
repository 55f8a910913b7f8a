//! The one error type of the REST API. Every failure renders as `{"error": code, "message": text}` with the
//! right status: client mistakes are 4xx with a message the client can act on, never a 500; database
//! outages are 503 (retryable); anything else is a logged 500 that reveals nothing internal.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::db::StoreError;

/// A failed API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: missing or bad parameters, bad JSON, bad values.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// The request body is larger than the API accepts.
    #[error("{0}")]
    TooLarge(String),
    /// The request (its body) did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// The thing asked for does not exist.
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The server is at a capacity limit; try again later.
    #[error("{0}")]
    Busy(String),
    /// No valid credentials (`token_missing`, `token_invalid`, `token_expired`).
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// Credentials that do not allow this (a refused origin, a token without the scope, a userId that is not
    /// the token's).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// A rate or concurrency limit of this caller; `retry_after` says when to try again.
    #[error("{message}")]
    TooMany { code: &'static str, message: String, retry_after: std::time::Duration },
    /// The database cannot be reached right now.
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    /// What was asked for exists but cannot be served yet (a recording still waiting in another server's
    /// spool); `retry_after` says when to ask again.
    #[error("{message}")]
    NotReady { code: &'static str, message: String, retry_after: std::time::Duration },
    /// A bug or an inconsistency; details are in the server log only.
    #[error("internal error")]
    Internal,
}

/// How every API error is rendered (the OpenAPI description's `Error` schema).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    /// A stable code to act on, e.g. `token_expired`, `session_not_found`, `rate_limited`.
    #[schema(example = "session_not_found")]
    pub error: &'a str,
    /// parley's own sentence for a person.
    pub message: String,
}

/// The error responses of a route that reads one conversation of the caller's (`?session_id=`), described once
/// for the OpenAPI document (`responses(..., SessionReadErrors)`); never built.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum SessionReadErrors {
    /// missing_session_id, invalid_session_id, invalid_user_id, invalid_query
    #[response(status = 400)]
    BadRequest(ErrorBody<'static>),
    /// token_missing, token_invalid, token_expired
    #[response(status = 401)]
    Unauthorized(ErrorBody<'static>),
    /// token_scope, origin_not_allowed
    #[response(status = 403)]
    Forbidden(ErrorBody<'static>),
    /// session_not_found (also another user's session)
    #[response(status = 404)]
    NotFound(ErrorBody<'static>),
    /// rate_limited (see Retry-After)
    #[response(status = 429)]
    TooManyRequests(ErrorBody<'static>),
    /// database_unavailable (see Retry-After)
    #[response(status = 503)]
    Unavailable(ErrorBody<'static>),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn busy(message: impl Into<String>) -> ApiError {
        ApiError::Busy(message.into())
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Unauthorized { code, message: message.into() }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Forbidden { code, message: message.into() }
    }

    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after: std::time::Duration) -> ApiError {
        ApiError::TooMany { code, message: message.into(), retry_after }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::NotFound { code, message: message.into() }
    }

    pub fn not_ready(code: &'static str, message: impl Into<String>, retry_after: std::time::Duration) -> ApiError {
        ApiError::NotReady { code, message: message.into(), retry_after }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::TooMany { code, .. }
            | ApiError::NotReady { code, .. } => code,
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::Busy(_) => "server_busy",
            ApiError::Unavailable => "database_unavailable",
            ApiError::Internal => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable | ApiError::NotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unavailable | ApiError::Busy(_) => {
                res.insert_header(("Retry-After", "5"));
            }
            ApiError::TooMany { retry_after, .. } | ApiError::NotReady { retry_after, .. } => {
                res.insert_header(("Retry-After", retry_after.as_secs().max(1).to_string()));
            }
            ApiError::Unauthorized { .. } => {
                res.insert_header(("WWW-Authenticate", "Bearer"));
            }
            _ => {}
        }
        res.json(ErrorBody { error: self.code(), message: self.to_string() })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if e.is_retryable() {
            log::warn!("request failed, database unavailable: {e}");
            ApiError::Unavailable
        } else {
            log::error!("request failed: {e}");
            ApiError::Internal
        }
    }
}
