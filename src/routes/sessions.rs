//! `GET /api/sessions?userId=…[&limit=…][&cursor=…]`: a user's conversations, newest first. `limit` is 1–100
//! (default 20); `nextCursor` in the answer fetches the following page.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::api_error::ApiError;
use crate::db::{SessionCursor, SessionId, SessionRecord, UserId};
use crate::state::AppState;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    user_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Session {
    session_id: SessionId,
    created_at: chrono::DateTime<chrono::Utc>,
    last_activity_at: chrono::DateTime<chrono::Utc>,
    model_id: String,
    voice_id: String,
    message_count: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    user_id: UserId,
    sessions: Vec<Session>,
    next_cursor: Option<String>,
}

impl From<SessionRecord> for Session {
    fn from(s: SessionRecord) -> Session {
        Session {
            session_id: s.id,
            created_at: s.created_at,
            last_activity_at: s.last_activity_at,
            model_id: s.model_id,
            voice_id: s.voice_id,
            message_count: s.message_count,
        }
    }
}

pub async fn list(app: web::Data<AppState>, params: web::Query<Params>) -> Result<HttpResponse, ApiError> {
    let user: UserId = super::params::user_id(params.user_id.as_deref())?;
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(raw) => raw.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
            ApiError::bad_request("invalid_limit", format!("limit must be 1-{MAX_LIMIT}, got {raw:?}"))
        })?,
    };
    let cursor = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(SessionCursor::decode(raw).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "cursor must be a nextCursor value from an earlier page")
        })?),
    };
    let page = app.store.list_sessions(&user, limit, cursor.as_ref()).await?;
    Ok(HttpResponse::Ok().json(Page {
        user_id: user,
        sessions: page.sessions.into_iter().map(Session::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}
