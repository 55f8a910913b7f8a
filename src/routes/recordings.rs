//! Recordings over HTTP.
//!
//! - `GET /api/recordings?sessionId=…`: a session's recordings with durations and metadata, for its owner's
//!   token (or an API key), each with a signed `url`.
//! - `GET /audio_recordings/{userId}/{sessionId}/{file}?exp=…&sig=…`: the audio itself, whichever backend
//!   holds it (or from the spool while it waits to be stored), so the links in `/api/history` always play. The
//!   link is its own credential (an `<audio>` tag sends no header): signed for that object, until it expires;
//!   unsigned, expired or altered links are 403. HTTP Range requests get 206 (Safari on iOS plays nothing
//!   without them). A recording still waiting in the spool of another instance sharing the database (which
//!   this one cannot read) is 503 with `Retry-After` (`recording_not_ready`) until that instance has stored it
//!   where this one can find it.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::guard;
use super::params::SessionQuery;

use crate::api_error::{ApiError, ErrorBody, SessionReadErrors};
use crate::auth::{Scope, now_secs};
use crate::db::{RecordingRecord, RecordingStatus, SessionId};
use crate::recording::{self, Storage};
use crate::state::AppState;

/// A recording with a signed link to its audio.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    #[serde(flatten)]
    record: RecordingRecord,
    /// The audio, signed (expires after `PARLEY_MEDIA_URL_TTL_SECS`).
    url: String,
}

/// A session's recordings.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    session_id: SessionId,
    recordings: Vec<Listed>,
}

/// When a client is told to ask again for a recording still in another instance's spool: storing one
/// normally takes a moment.
const NOT_READY_RETRY: Duration = Duration::from_secs(10);

/// The signed form of an audio link (`/audio_recordings/...`), valid `PARLEY_MEDIA_URL_TTL_SECS`.
pub fn signed(app: &AppState, link: &str) -> String {
    app.auth.media.sign(link, now_secs() + app.config.auth.media_url_ttl.as_secs() as i64)
}

/// A session's recordings, each with a signed link.
#[utoipa::path(
    get,
    path = "/api/recordings",
    tag = "history",
    params(SessionQuery),
    security(("clientToken" = []), ("apiKey" = [])),
    responses(
        (status = 200, body = Listing),
        SessionReadErrors,
    ),
)]
pub async fn list(
    req: HttpRequest,
    app: web::Data<AppState>,
    query: web::Query<SessionQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = guard::caller(&req, &app, Scope::History)?;
    let session = query.resolve(&app.store, &caller).await?;
    let recordings = app
        .store
        .session_recordings(&session.id)
        .await?
        .into_iter()
        .map(|record| Listed { url: signed(&app, &recording::playback_url(&record.object_key)), record })
        .collect();
    Ok(HttpResponse::Ok().json(Listing { session_id: session.id, recordings }))
}

/// The signature of an audio link.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// When the link expires (Unix seconds).
    #[param(value_type = i64, required = true)]
    exp: Option<String>,
    /// The link's signature.
    #[param(required = true)]
    sig: Option<String>,
}

/// The audio of a recording, by the signed link `/api/history` and `/api/recordings` give (no header needed, so
/// it plays in an `<audio>` tag). Answers `Range` requests.
#[utoipa::path(
    get,
    path = "/audio_recordings/{user}/{session}/{file}",
    tag = "history",
    params(
        ("user" = String, Path, description = "The recording's user"),
        ("session" = String, Path, description = "The recording's session"),
        ("file" = String, Path, description = "The recording's file name"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. bytes=0-1023"),
        LinkQuery,
    ),
    responses(
        (status = 200, description = "The whole recording, as recorded (audio/mpeg, audio/wav, ...)",
         body = String, content_type = "audio/*"),
        (status = 206, description = "The range asked for", body = String, content_type = "audio/*"),
        (status = 403, description = "link_invalid: unsigned, expired or altered", body = ErrorBody),
        (status = 404, description = "recording_not_found", body = ErrorBody),
        (status = 416, description = "the range lies outside the recording (empty body)"),
        (status = 503, description = "recording_not_ready, database_unavailable (see Retry-After)", body = ErrorBody),
    ),
)]
pub async fn file(
    req: HttpRequest,
    app: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    link: web::Query<LinkQuery>,
) -> Result<HttpResponse, ApiError> {
    let (user, session, name) = path.into_inner();
    let key = format!("{}/{user}/{session}/{name}", recording::ROOT);
    if let Err(e) =
        app.auth.media.verify(&recording::playback_url(&key), link.exp.as_deref(), link.sig.as_deref(), now_secs())
    {
        log::info!("audio link refused for {key}: {e}");
        return Err(ApiError::forbidden(
            "link_invalid",
            "this audio link is not valid (or has expired); ask the history for a fresh one",
        ));
    }
    let not_found = || ApiError::not_found("recording_not_found", "no such recording");
    let record = app.store.find_recording_by_key(&key).await?.ok_or_else(not_found)?;
    let bytes = match (&record.status, &record.spool_path) {
        (RecordingStatus::Pending | RecordingStatus::Failed, Some(spool))
            if app.instance.holds(record.instance_id.as_deref()) =>
        {
            let size = u64::try_from(record.size_bytes).unwrap_or_default();
            match recording::spool::read_recording(spool.as_ref(), record.spool_offset, size).await {
                Ok(bytes) => bytes,
                // Stored meanwhile (the spool copy went with it): the store has it now.
                Err(_) => fetch(&app.recordings, &key).await?,
            }
        }
        (RecordingStatus::Pending | RecordingStatus::Failed, Some(_)) => {
            // In another instance's spool; shared storage may already hold it, otherwise it is not here yet.
            app.recordings.get(&key).await.map_err(|e| {
                log::info!(
                    "recording {key} is still in the spool of instance {} ({e}); asked to retry",
                    record.instance_id.as_deref().unwrap_or_default()
                );
                ApiError::not_ready(
                    "recording_not_ready",
                    "this recording is still being stored by another server; try again shortly",
                    NOT_READY_RETRY,
                )
            })?
        }
        _ => fetch(&app.recordings, &key).await?,
    };
    Ok(ranged(&req, bytes, &record.content_type))
}

/// The whole body (200), or the part a `Range: bytes=…` header asks for (206; 416 when it lies outside).
fn ranged(req: &HttpRequest, bytes: Vec<u8>, content_type: &str) -> HttpResponse {
    let total = bytes.len() as u64;
    let mut res = match req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => {
            let mut res = HttpResponse::Ok();
            res.insert_header((header::ACCEPT_RANGES, "bytes"));
            return finish(res, content_type, bytes);
        }
        Some(range) => match byte_range(range, total) {
            Some((start, end)) => {
                let mut res = HttpResponse::PartialContent();
                res.insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{total}")));
                res.insert_header((header::ACCEPT_RANGES, "bytes"));
                let part = bytes[start as usize..=end as usize].to_vec();
                return finish(res, content_type, part);
            }
            None => HttpResponse::RangeNotSatisfiable(),
        },
    };
    res.insert_header((header::CONTENT_RANGE, format!("bytes */{total}"))).finish()
}

fn finish(mut res: actix_web::HttpResponseBuilder, content_type: &str, body: Vec<u8>) -> HttpResponse {
    res.content_type(content_type.to_string())
        // A recording never changes once written.
        .insert_header(("Cache-Control", "private, max-age=31536000, immutable"))
        .body(body)
}

/// The inclusive byte range of a single-range `bytes=` header over `total` bytes, if satisfiable.
fn byte_range(header: &str, total: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || total == 0 {
        return None; // one range is all a media element asks for
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok().filter(|n| *n > 0)?;
            (total.saturating_sub(n), total - 1)
        }
        (start, "") => (start.parse().ok()?, total - 1),
        (start, end) => (start.parse().ok()?, end.parse::<u64>().ok()?.min(total - 1)),
    };
    (start <= end && start < total).then_some((start, end))
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

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn byte_ranges_follow_rfc_9110() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(byte_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(byte_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(byte_range("bytes=0-5000", 1000), Some((0, 999)), "an end past the size is the size");
        assert_eq!(byte_range("bytes=1000-", 1000), None);
        assert_eq!(byte_range("bytes=5-1", 1000), None);
        assert_eq!(byte_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(byte_range("items=0-1", 1000), None);
        assert_eq!(byte_range("bytes=-0", 1000), None);
        assert_eq!(byte_range("bytes=0-0", 0), None);
    }
}
