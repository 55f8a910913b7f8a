//! `POST /api/feedback {"message_id": 123, "feedback": "positive" | "negative" | null}`: rates an assistant
//! message (null clears the rating) of the caller's own conversations (any, with an API key). 404 for an
//! unknown message and for another user's (the two cannot be told apart), 400 for anything malformed or for a
//! user's own message.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::guard;
use crate::api_error::{ApiError, ErrorBody};
use crate::auth::Scope;
use crate::db::{Feedback, FeedbackOutcome, MessageId};
use crate::state::AppState;

/// A rating to set (the fields are checked by hand so that each mistake gets its own error code).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = FeedbackRequest)]
pub struct Body {
    /// The assistant message to rate (`messageId` is accepted too; a numeric string as well).
    #[serde(alias = "messageId")]
    #[schema(value_type = i64, minimum = 1, required = true)]
    message_id: Option<Value>,
    /// `None` when absent, `Some(Value::Null)` when explicitly null (which clears the rating).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Feedback>, required = true)]
    feedback: Option<Value>,
}

/// The rating as stored.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Rated {
    message_id: MessageId,
    feedback: Option<Feedback>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Rates an assistant message (null clears the rating).
#[utoipa::path(
    post,
    path = "/api/feedback",
    tag = "history",
    request_body = Body,
    security(("clientToken" = []), ("apiKey" = [])),
    responses(
        (status = 200, body = Rated),
        (status = 400, description = "invalid_message_id, invalid_feedback, not_an_assistant_message, invalid_json",
         body = ErrorBody),
        (status = 401, description = "token_missing, token_invalid, token_expired", body = ErrorBody),
        (status = 403, description = "token_scope, origin_not_allowed", body = ErrorBody),
        (status = 404, description = "message_not_found (also another user's message)", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 429, description = "rate_limited (see Retry-After)", body = ErrorBody),
        (status = 503, description = "database_unavailable (see Retry-After)", body = ErrorBody),
    ),
)]
pub async fn post(req: HttpRequest, app: web::Data<AppState>, body: web::Json<Body>) -> Result<HttpResponse, ApiError> {
    let caller = guard::caller(&req, &app, Scope::History)?;
    let id = match &body.message_id {
        Some(Value::Number(n)) => n.as_i64().filter(|n| *n > 0),
        Some(Value::String(s)) => s.parse::<i64>().ok().filter(|n| *n > 0),
        _ => None,
    }
    .map(MessageId)
    .ok_or_else(|| ApiError::bad_request("invalid_message_id", "message_id must be a positive integer"))?;
    let feedback = match &body.feedback {
        Some(Value::Null) => None,
        Some(Value::String(s)) if s == "positive" => Some(Feedback::Positive),
        Some(Value::String(s)) if s == "negative" => Some(Feedback::Negative),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_feedback",
                "feedback must be \"positive\", \"negative\" or null",
            ));
        }
    };
    if !app.store.message_owner(id).await?.is_some_and(|owner| caller.may_see(&owner)) {
        return Err(ApiError::not_found("message_not_found", format!("no message {id}")));
    }
    match app.store.set_feedback(id, feedback).await? {
        FeedbackOutcome::Updated => {}
        FeedbackOutcome::NotFound => {
            return Err(ApiError::not_found("message_not_found", format!("no message {id}")));
        }
        FeedbackOutcome::NotAssistant => {
            return Err(ApiError::bad_request(
                "not_an_assistant_message",
                format!("message {id} is the user's; feedback rates assistant messages"),
            ));
        }
    }
    Ok(HttpResponse::Ok().json(Rated { message_id: id, feedback }))
}
