//! Recordings over HTTP.
//!
//! - `GET /api/recordings?sessionId=…[&userId=…]`: a session's recordings with durations and metadata.
//! - `GET /audio_recordings/{userId}/{sessionId}/{file}`: the audio itself, whichever backend holds it (or from
//!   the spool while it waits to be stored), so the links in `/api/history` always play.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::params::SessionQuery;

use crate::api_error::ApiError;
use crate::db::{RecordingRecord, RecordingStatus, SessionId};
use crate::recording::{self, Storage};
use crate::state::AppState;

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

pub async fn list(app: web::Data<AppState>, query: web::Query<SessionQuery>) -> Result<HttpResponse, ApiError> {
    let session = query.resolve(&app.store).await?;
    let recordings = app
        .store
        .session_recordings(&session.id)
        .await?
        .into_iter()
        .map(|record| Listed { url: recording::playback_url(&record.object_key), record })
        .collect();
    Ok(HttpResponse::Ok().json(Listing { session_id: session.id, recordings }))
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
