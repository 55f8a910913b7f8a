//! Recordings over HTTP.
//!
//! - `GET /api/recordings?sessionId=…[&userId=…]`: a session's recordings with durations and metadata.
//! - `GET /audio_recordings/{userId}/{sessionId}/{file}`: the audio itself, whichever backend holds it (or from
//!   the spool while it waits to be stored), so the links in `/api/history` always play.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::api_error::ApiError;
use crate::db::{RecordingRecord, RecordingStatus, SessionId, Store, UserId};
use crate::recording::{self, Storage};
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    session_id: Option<String>,
    user_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    #[serde(flatten)]
    record: RecordingRecord,
    url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    session_id: SessionId,
    recordings: Vec<Listed>,
}

pub async fn list(store: web::Data<Store>, params: web::Query<Params>) -> Result<HttpResponse, ApiError> {
    let session_id: SessionId = params
        .session_id
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("missing_session_id", "the sessionId query parameter is required"))?
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_session_id", format!("{e}")))?;
    let user: Option<UserId> = match params.user_id.as_deref() {
        Some(u) => Some(u.parse().map_err(|e| ApiError::bad_request("invalid_user_id", format!("{e}")))?),
        None => None,
    };
    store
        .find_session(&session_id)
        .await?
        .filter(|s| user.as_ref().is_none_or(|u| u.as_str() == s.user_id))
        .ok_or_else(|| ApiError::not_found("session_not_found", format!("no session {session_id}")))?;
    let recordings = store
        .session_recordings(&session_id)
        .await?
        .into_iter()
        .map(|record| Listed { url: recording::playback_url(&record.object_key), record })
        .collect();
    Ok(HttpResponse::Ok().json(Listing { session_id, recordings }))
}

pub async fn file(
    app: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user, session, name) = path.into_inner();
    let not_found = || ApiError::not_found("recording_not_found", "no such recording");
    let key = format!("{}/{user}/{session}/{name}", recording::ROOT);
    let record = app.store.find_recording_by_key(&key).await?.ok_or_else(not_found)?;
    let bytes = match (&record.status, &record.spool_path) {
        (RecordingStatus::Pending | RecordingStatus::Failed, Some(spool)) => {
            tokio::fs::read(spool).await.map_err(|_| not_found())?
        }
        _ => fetch(&app.recordings, &key).await?,
    };
    Ok(HttpResponse::Ok()
        .content_type(record.content_type)
        // A recording never changes once written.
        .insert_header(("Cache-Control", "private, max-age=31536000, immutable"))
        .body(bytes))
}

async fn fetch(storage: &Storage, key: &str) -> Result<Vec<u8>, ApiError> {
    storage.get(key).await.map_err(|e| {
        log::warn!("recording {key} could not be read from storage: {e}");
        if e.transient {
            ApiError::Unavailable
        } else {
            ApiError::not_found("recording_not_found", "no such recording")
        }
    })
}
