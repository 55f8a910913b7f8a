//! `GET /api/history?sessionId=…[&userId=…]`: the messages of one conversation, in order, for its owner's
//! token (or an API key). Another user's session is not found, exactly like one that does not exist. Audio
//! links are signed (they expire after `PARLEY_MEDIA_URL_TTL_SECS`). A message that cannot be decrypted is
//! returned with `content: null` and a `contentError`, never as garbage.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::guard;
use super::params::SessionQuery;

use crate::api_error::{ApiError, SessionReadErrors};
use crate::auth::Scope;
use crate::db::{
    Feedback, HeardSource, MessageId, ReplyOutcome, Role, SessionId, StoredMessage, ToolRecord, TurnUsage,
};
use crate::state::AppState;

/// A stored message of a conversation.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    id: MessageId,
    role: Role,
    /// What the listener heard; null when the row cannot be decrypted (see `contentError`).
    content: Option<String>,
    /// Why `content` is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_error: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    feedback: Option<Feedback>,
    /// A signed link to the message's recording (expires after `PARLEY_MEDIA_URL_TTL_SECS`).
    audio_url: Option<String>,
    /// An assistant reply cut short (by the listener, or by a provider failure).
    interrupted: bool,
    /// How an assistant reply ended: `completed`, `interrupted` or `partial` (a provider failure); null for
    /// user messages and replies stored before parley recorded it.
    outcome: Option<ReplyOutcome>,
    /// Everything the LLM generated, when the listener heard less than that (`content` is what was heard).
    generated_content: Option<String>,
    /// How much of the reply's audio was heard, when it did not play out whole, and who says so (`client`
    /// acknowledgements or the server's `estimate`).
    heard_ms: Option<u64>,
    heard_source: Option<HeardSource>,
    /// The tool calls made while the reply was generated, each with its arguments and its result or error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolRecord>,
    /// The LLM that answered (a fallback's name when the primary failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    llm: Option<String>,
    /// What the turn used.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<TurnUsage>,
}

/// One conversation with its messages, in order.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct History {
    session_id: SessionId,
    user_id: String,
    /// The phone call (`callSid`, `from`, `to`) when the session was one; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    call: Option<crate::db::PhoneCall>,
    messages: Vec<Message>,
}

impl Message {
    fn new(m: StoredMessage, app: &AppState) -> Message {
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
            audio_url: m.audio_url.and_then(Result::ok).map(|url| super::recordings::signed(app, &url)),
            interrupted: m.interrupted,
            outcome: m.outcome,
            // Unreadable generated text is left out: the content error, if any, already flags the row.
            generated_content: m.generated.and_then(Result::ok),
            heard_ms: m.heard.map(|(ms, _)| ms),
            heard_source: m.heard.map(|(_, source)| source),
            tool_calls: m.tools.unwrap_or_default(),
            llm: m.llm,
            usage: m.usage,
        }
    }
}

/// The messages of one conversation of the caller's (any user's, with an API key).
#[utoipa::path(
    get,
    path = "/api/history",
    tag = "history",
    params(SessionQuery),
    security(("clientToken" = []), ("apiKey" = [])),
    responses(
        (status = 200, body = History),
        SessionReadErrors,
    ),
)]
pub async fn get(
    req: HttpRequest,
    app: web::Data<AppState>,
    query: web::Query<SessionQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = guard::caller(&req, &app, Scope::History)?;
    let session = query.resolve(&app.store, &caller).await?;
    let messages = app.store.session_messages(&session.id).await?;
    Ok(HttpResponse::Ok().json(History {
        session_id: session.id,
        user_id: session.user_id,
        call: session.call,
        messages: messages.into_iter().map(|m| Message::new(m, &app)).collect(),
    }))
}
