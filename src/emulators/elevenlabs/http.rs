//! `POST /v1/text-to-speech/{voice_id}/stream` and `.../stream/with-timestamps`: checks `xi-api-key` (401
//! object `detail`), the query and the body (422 validation array), applies the next HTTP fault (401, 403,
//! 422 object/array, 429, a cut body), then streams the speech after the time to first byte, optionally at
//! real-time pace (`http_body`), with the `request-id` header a client feeds into `previous_request_ids`:
//! raw audio in the requested format, or newline-delimited JSON lines of base64 audio with the alignment of
//! exactly the characters each line speaks, in seconds from the start of the request's audio.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

use super::control::{ElevenLabsControl, ElevenLabsFault, TtsHttpLog};
use super::http_body::{self, Cut, CutKind, Piece};
use super::speech::{MAX_TEXT_CHARS, SpeechChunk, Voice};
use crate::audio::OutputFormat;
use crate::emulators::common::body::{body_as_json, query_pairs, read_body, request_id};
use crate::providers::elevenlabs::{HttpErrorBody, TimestampedAudio, TtsRequest};

const BODY_LIMIT: usize = 1024 * 1024;

/// `POST .../{voice_id}/stream` (and the non-streaming `POST .../{voice_id}`): raw audio.
pub async fn stream(
    req: HttpRequest,
    payload: web::Payload,
    voice: web::Path<String>,
    control: web::Data<ElevenLabsControl>,
) -> HttpResponse {
    respond(req, payload, voice.into_inner(), control, false).await
}

/// `POST .../{voice_id}/stream/with-timestamps`: JSON lines of audio with character timings.
pub async fn stream_with_timestamps(
    req: HttpRequest,
    payload: web::Payload,
    voice: web::Path<String>,
    control: web::Data<ElevenLabsControl>,
) -> HttpResponse {
    respond(req, payload, voice.into_inner(), control, true).await
}

async fn respond(
    req: HttpRequest,
    payload: web::Payload,
    voice_id: String,
    control: web::Data<ElevenLabsControl>,
    with_timestamps: bool,
) -> HttpResponse {
    let request_id = request_id();
    let query = query_pairs(&req);
    let body = read_body(payload, BODY_LIMIT).await;
    let body_value = body_as_json(&body);
    let field = |k: &str| body_value.get(k).and_then(Value::as_str).map(str::to_string);
    let (index, settings, fault) = control.shared.update(|s| {
        let index = s.http.push(|number| TtsHttpLog {
            number,
            voice_id,
            with_timestamps,
            query: query.clone(),
            text: field("text"),
            previous_text: field("previous_text"),
            next_text: field("next_text"),
            previous_request_ids: body_value
                .get("previous_request_ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            body: body_value.clone(),
            request_id: request_id.clone(),
            status: 0,
            bytes_sent: 0,
            completed: false,
            cut: false,
            client_went_away: false,
        });
        let fault = s.take_fault(ElevenLabsFault::applies_to_http);
        (index, s.settings.clone(), fault)
    });
    let fail = |status: u16, body: HttpErrorBody| {
        control.shared.update(|s| {
            s.http.update(index, |l| {
                l.status = status;
                l.completed = true;
            });
        });
        HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .insert_header(("request-id", request_id.as_str()))
            .content_type("application/json")
            .body(body.to_json())
    };
    let key = req.headers().get("xi-api-key").and_then(|v| v.to_str().ok());
    let key_ok = settings.api_keys.is_empty() || key.is_some_and(|k| settings.api_keys.iter().any(|a| a == k));
    if !key_ok || fault == Some(ElevenLabsFault::Unauthorized) {
        return fail(401, HttpErrorBody::status("invalid_api_key", "Invalid API key"));
    }
    match fault {
        Some(ElevenLabsFault::Forbidden) => {
            let msg = "This voice or output format is only available on the Creator plan and above (emulated).";
            return fail(403, HttpErrorBody::status("only_for_creator+", msg));
        }
        Some(ElevenLabsFault::Unprocessable { array: false }) => {
            return fail(
                422,
                HttpErrorBody::status("invalid_request", "The request could not be processed (emulated)."),
            );
        }
        Some(ElevenLabsFault::Unprocessable { array: true }) => {
            return fail(422, HttpErrorBody::validation(&["body", "text"], "Field required", "missing"));
        }
        Some(ElevenLabsFault::TooManyRequests) => {
            let msg = "Too many concurrent requests for your subscription (emulated). Please retry with backoff.";
            return fail(429, HttpErrorBody::status("too_many_concurrent_requests", msg));
        }
        _ => {}
    }
    let format_text = query.iter().find(|(k, _)| k == "output_format").map_or("mp3_44100_128", |(_, v)| v.as_str());
    let voice = match format_text
        .parse::<OutputFormat>()
        .map_err(|e| e.to_string())
        .and_then(|f| Voice::new(f).map(|v| (f, v)).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(msg) => {
            return fail(422, HttpErrorBody::validation(&["query", "output_format"], &msg, "enum"));
        }
    };
    let bytes = match body {
        Ok(b) => b,
        Err(e) => {
            return fail(422, HttpErrorBody::validation(&["body"], &e.to_string(), "value_error"));
        }
    };
    let tts: TtsRequest = match serde_json::from_slice::<Value>(&bytes) {
        Err(e) => {
            return fail(
                422,
                HttpErrorBody::validation(&["body", "0"], &format!("JSON decode error: {e}"), "json_invalid"),
            );
        }
        Ok(v) if v.get("text").is_none() => {
            return fail(422, HttpErrorBody::validation(&["body", "text"], "Field required", "missing"));
        }
        Ok(v) => match serde_json::from_value(v) {
            Ok(t) => t,
            Err(e) => {
                return fail(422, HttpErrorBody::validation(&["body"], &e.to_string(), "value_error"));
            }
        },
    };
    if tts.text.chars().count() > MAX_TEXT_CHARS {
        let msg = format!("The text is longer than the limit of {MAX_TEXT_CHARS} characters per request.");
        return fail(400, HttpErrorBody::status("max_character_limit_exceeded", &msg));
    }
    let (format, mut voice) = voice;
    let mut due = settings.time_to_first_byte;
    let pieces = voice
        .speak(&tts.text)
        .into_iter()
        .map(|chunk| {
            let piece = Piece { due, bytes: if with_timestamps { timestamped(&chunk) } else { chunk.audio.into() } };
            if settings.realtime_pacing {
                // The next piece only once this one's audio has played.
                due += Duration::from_secs_f64(chunk.duration_ms / 1000.0);
            }
            piece
        })
        .collect();
    control.shared.update(|s| s.http.update(index, |l| l.status = 200));
    let cut = match fault {
        Some(ElevenLabsFault::CutBody { after_bytes }) => Some(Cut { after_bytes, kind: CutKind::ChunkBoundary }),
        Some(ElevenLabsFault::CutInsideChunk { after_bytes }) => Some(Cut { after_bytes, kind: CutKind::InsideChunk }),
        Some(ElevenLabsFault::CutContentLength { after_bytes }) => {
            Some(Cut { after_bytes, kind: CutKind::ContentLength })
        }
        _ => None,
    };
    let mut builder = HttpResponse::Ok();
    builder.insert_header(("request-id", request_id.as_str()));
    builder.content_type(if with_timestamps { "application/json".to_string() } else { format.mime_type() });
    http_body::respond(builder, pieces, cut, control.get_ref().clone(), index)
}

/// The `with-timestamps` line of one chunk (the normalised text is the text itself here).
fn timestamped(chunk: &SpeechChunk) -> Bytes {
    let alignment = chunk.http_alignment();
    let line = TimestampedAudio {
        audio_base64: base64::engine::general_purpose::STANDARD.encode(&chunk.audio),
        normalized_alignment: Some(alignment.clone()),
        alignment: Some(alignment),
    };
    line.to_line().into()
}
