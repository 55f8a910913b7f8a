//! `POST /api/feedback {"message_id": 123, "feedback": "positive" | "negative" | null}`: rates an assistant
//! message (null clears the rating) of the caller's own conversations (any, with an API key). 404 for an
//! unknown message and for another user's (the two cannot be told apart), 400 for anything malformed or for a
//! user's own message.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::guard;
use crate::api_error::ApiError;
use crate::auth::Scope;
use crate::db::{Feedback, FeedbackOutcome, MessageId};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct Body {
    #[serde(alias = "messageId")]
    message_id: Option<Value>,
    /// `None` when absent, `Some(Value::Null)` when explicitly null (which clears the rating).
    #[serde(default, deserialize_with = "present")]
    feedback: Option<Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

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
    Ok(HttpResponse::Ok().json(json!({"message_id": id, "feedback": feedback})))
}
