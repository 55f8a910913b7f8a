//! `GET /api/sessions[?userId=…][&limit=…][&cursor=…]`: a user's conversations, newest first: the token's own
//! user (another `userId` is 404, like a user with no sessions at all), or with an API key the `userId` given.
//! `limit` is 1–100 (default 20); `nextCursor` in the answer fetches the following page.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::guard;
use crate::api_error::{ApiError, ErrorBody};
use crate::auth::{Caller, Scope};
use crate::db::{PhoneCall, SessionCursor, SessionId, SessionRecord, TurnUsage, UserId};
use crate::state::AppState;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;
/// The longest label `firstWords` gives, in characters (before the "…").
pub const FIRST_WORDS_CHARS: usize = 60;

/// The beginning of `text`, whitespace collapsed, cut at the last whole word within [`FIRST_WORDS_CHARS`]
/// (a single longer word is cut inside); "…" marks that there was more. `None` for blank text.
fn first_words(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let whole = words.join(" ");
    if whole.is_empty() {
        return None;
    }
    if whole.chars().count() <= FIRST_WORDS_CHARS {
        return Some(whole);
    }
    let mut label = String::new();
    for word in words {
        let sep = usize::from(!label.is_empty());
        if label.chars().count() + sep + word.chars().count() > FIRST_WORDS_CHARS {
            break;
        }
        if sep == 1 {
            label.push(' ');
        }
        label.push_str(word);
    }
    if label.is_empty() {
        label = whole.chars().take(FIRST_WORDS_CHARS).collect();
    }
    Some(format!("{label}…"))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// Whose sessions: with a client token its own user (default), with an API key required.
    user_id: Option<String>,
    /// Page size, 1-100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `nextCursor` of the page before.
    cursor: Option<String>,
}

/// A stored conversation, without its messages.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    session_id: SessionId,
    created_at: chrono::DateTime<chrono::Utc>,
    last_activity_at: chrono::DateTime<chrono::Utc>,
    model_id: String,
    voice_id: String,
    /// The phone call (`callSid`, `from`, `to`) when the session was one; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    call: Option<PhoneCall>,
    message_count: i64,
    /// The first words the user said (or typed), up to [`FIRST_WORDS_CHARS`] characters cut at a word with
    /// "…" when there was more: what a list of conversations is labelled by. Null before the user said anything.
    first_words: Option<String>,
    /// What the conversation used: speech seconds, LLM tokens (and whether any were estimated), synthesized
    /// characters and tool calls, summed over its replies.
    usage: TurnUsage,
}

/// A page of conversations, newest first.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    user_id: UserId,
    sessions: Vec<Session>,
    /// Fetches the next page; null on the last one.
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
            call: s.call,
            message_count: s.message_count,
            first_words: s.first_user_message.as_deref().and_then(first_words),
            usage: s.usage,
        }
    }
}

/// A user's conversations, newest first.
#[utoipa::path(
    get,
    path = "/api/sessions",
    tag = "history",
    params(Params),
    security(("clientToken" = []), ("apiKey" = [])),
    responses(
        (status = 200, body = Page),
        (status = 400, description = "missing_user_id (API key), invalid_user_id, invalid_limit, invalid_cursor",
         body = ErrorBody),
        (status = 401, description = "token_missing, token_invalid, token_expired", body = ErrorBody),
        (status = 403, description = "token_scope, origin_not_allowed", body = ErrorBody),
        (status = 404, description = "user_not_found (a client token naming another user)", body = ErrorBody),
        (status = 429, description = "rate_limited (see Retry-After)", body = ErrorBody),
        (status = 503, description = "database_unavailable (see Retry-After)", body = ErrorBody),
    ),
)]
pub async fn list(
    req: HttpRequest,
    app: web::Data<AppState>,
    params: web::Query<Params>,
) -> Result<HttpResponse, ApiError> {
    let caller = guard::caller(&req, &app, Scope::History)?;
    let user: UserId = match (&caller, params.user_id.as_deref()) {
        (Caller::User(claims), None) => claims.user_id.clone(),
        (Caller::User(claims), Some(raw)) => {
            let asked = super::params::user_id(Some(raw))?;
            if asked != claims.user_id {
                return Err(ApiError::not_found("user_not_found", format!("no sessions of {asked}")));
            }
            asked
        }
        (Caller::Operator, raw) => super::params::user_id(raw)?,
    };
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

#[cfg(test)]
mod tests {
    use super::first_words;

    #[test]
    fn first_words_are_cut_at_a_whole_word_and_marked_when_there_was_more() {
        assert_eq!(first_words("  What is   the capital\nof France? "), Some("What is the capital of France?".into()));
        assert_eq!(first_words(" \n "), None);
        let long = "Tell me everything you know about the weather on the moon and why there is none at all";
        let label = first_words(long).unwrap();
        assert_eq!(label, "Tell me everything you know about the weather on the moon…");
        assert!(label.chars().count() <= 61, "{label}");
        let word = "x".repeat(100);
        assert_eq!(first_words(&word).unwrap().chars().count(), 61, "one long word is cut inside");
        assert_eq!(first_words("Ça coûte combien ?"), Some("Ça coûte combien ?".into()));
    }
}
