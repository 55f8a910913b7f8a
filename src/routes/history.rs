//! `GET /api/history?sessionId=…[&userId=…]`: the messages of one conversation, in order. With `userId` the
//! session must belong to that user (a mismatch is reported as not found, so ids of other users' sessions
//! cannot be confirmed). A message that cannot be decrypted is returned with `content: null` and a
//! `contentError`, never as garbage.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::params::SessionQuery;

use crate::api_error::ApiError;
use crate::db::{Feedback, MessageId, Role, SessionId, StoredMessage};
use crate::state::AppState;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    id: MessageId,
    role: Role,
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_error: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    feedback: Option<Feedback>,
    audio_url: Option<String>,
    /// An assistant reply cut short by the user; `content` is what was generated until then.
    interrupted: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct History {
    session_id: SessionId,
    user_id: String,
    messages: Vec<Message>,
}

impl From<StoredMessage> for Message {
    fn from(m: StoredMessage) -> Message {
        let (content, content_error) = match m.content {
            Ok(text) => (Some(text), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Message {
            id: m.id,
            role: m.role,
            content,
            content_error,
            created_at: m.created_at,
            feedback: m.feedback,
            // A link that cannot be opened is as good as none; the content error already flags the row.
            audio_url: m.audio_url.and_then(Result::ok),
            interrupted: m.interrupted,
        }
    }
}

pub async fn get(app: web::Data<AppState>, query: web::Query<SessionQuery>) -> Result<HttpResponse, ApiError> {
    let session = query.resolve(&app.store).await?;
    let messages = app.store.session_messages(&session.id).await?;
    Ok(HttpResponse::Ok().json(History {
        session_id: session.id,
        user_id: session.user_id,
        messages: messages.into_iter().map(Message::from).collect(),
    }))
}
