//! Identifiers from query strings, validated the same way on every route: a missing one is
//! `missing_<name>`, a malformed one `invalid_<name>`, both 400 with a message the client can act on; a
//! session the caller may not see is reported exactly as a session that does not exist (404), so other users'
//! session ids cannot be confirmed.

use serde::Deserialize;

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::db::{SessionId, SessionRecord, Store, UserId};

/// A required `userId`.
pub fn user_id(raw: Option<&str>) -> Result<UserId, ApiError> {
    raw.ok_or_else(|| ApiError::bad_request("missing_user_id", "the userId query parameter is required"))?
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_user_id", format!("{e}")))
}

/// A required `sessionId`.
pub fn session_id(raw: Option<&str>) -> Result<SessionId, ApiError> {
    raw.ok_or_else(|| ApiError::bad_request("missing_session_id", "the sessionId query parameter is required"))?
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_session_id", format!("{e}")))
}

/// `?sessionId=…[&userId=…]`: a stored session the caller may see (and, when `userId` is given, that user's).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// The conversation (required).
    #[param(required = true, format = Uuid)]
    session_id: Option<String>,
    /// Its user, when the caller wants that checked too (a mismatch is 404).
    user_id: Option<String>,
}

impl SessionQuery {
    pub async fn resolve(&self, store: &Store, caller: &Caller) -> Result<SessionRecord, ApiError> {
        let id = session_id(self.session_id.as_deref())?;
        let owner = self.user_id.as_deref().map(|u| user_id(Some(u))).transpose()?;
        store
            .find_session(&id)
            .await?
            .filter(|s| owner.as_ref().is_none_or(|u| u.as_str() == s.user_id) && caller.may_see(&s.user_id))
            .ok_or_else(|| ApiError::not_found("session_not_found", format!("no session {id}")))
    }
}
