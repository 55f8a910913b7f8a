//! `POST /v1/text-to-speech/{voice_id}/stream`: checks `xi-api-key` (401 object `detail`), the query and the
//! body (422 validation array), applies the next HTTP fault (401, 403, 422 object/array, 429, cut body), then
//! streams chunked audio in the requested format after the time to first byte, optionally at real-time pace,
//! with the `request-id` header a client feeds into `previous_request_ids`.

use std::collections::VecDeque;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::Value;

use super::control::{ElevenLabsControl, ElevenLabsFault, TtsHttpLog};
use super::speech::{MAX_TEXT_CHARS, Voice};
use crate::audio::OutputFormat;
use crate::emulators::common::body::{body_as_json, query_pairs, read_body, request_id};
use crate::emulators::common::guard::Unfinished;
use crate::providers::elevenlabs::{HttpErrorBody, TtsRequest};

const BODY_LIMIT: usize = 1024 * 1024;

/// The handler.
pub async fn stream(
    req: HttpRequest,
    payload: web::Payload,
    voice: web::Path<String>,
    control: web::Data<ElevenLabsControl>,
) -> HttpResponse {
    let request_id = request_id();
    let query = query_pairs(&req);
    let body = read_body(payload, BODY_LIMIT).await;
    let body_value = body_as_json(&body);
    let field = |k: &str| body_value.get(k).and_then(Value::as_str).map(str::to_string);
    let (index, settings, fault) = control.shared.update(|s| {
        s.http.push(TtsHttpLog {
            number: s.http.len() as u64 + 1,
            voice_id: voice.into_inner(),
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
        (s.http.len() - 1, s.settings.clone(), fault)
    });
    let fail = |status: u16, body: HttpErrorBody| {
        control.shared.update(|s| {
            s.http[index].status = status;
            s.http[index].completed = true;
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
    let mut chunks = VecDeque::new();
    for (i, chunk) in voice.speak(&tts.text).into_iter().enumerate() {
        let delay = match (i, settings.realtime_pacing) {
            (0, _) => settings.time_to_first_byte,
            (_, true) => Duration::from_secs_f64(chunk.duration_ms / 1000.0),
            (_, false) => Duration::ZERO,
        };
        chunks.push_back((Bytes::from(chunk.audio), delay));
    }
    control.shared.update(|s| s.http[index].status = 200);
    let cut_after = match fault {
        Some(ElevenLabsFault::CutBody { after_bytes }) => Some(after_bytes),
        _ => None,
    };
    let c = control.get_ref().clone();
    let guard = Unfinished::new(move || c.shared.update(|s| s.http[index].client_went_away = true));
    let state = Body { chunks, cut_after, sent: 0, control: control.get_ref().clone(), index, guard, failed: false };
    HttpResponse::Ok()
        .insert_header(("request-id", request_id.as_str()))
        .content_type(format.mime_type())
        .streaming(futures_util::stream::unfold(state, next_chunk))
}

struct Body {
    chunks: VecDeque<(Bytes, Duration)>,
    cut_after: Option<usize>,
    sent: usize,
    control: ElevenLabsControl,
    index: usize,
    guard: Unfinished,
    failed: bool,
}

async fn next_chunk(mut b: Body) -> Option<(Result<Bytes, std::io::Error>, Body)> {
    let i = b.index;
    if b.failed {
        return None;
    }
    if b.cut_after.is_some_and(|cut| b.sent >= cut) {
        // Let the bytes already written reach the client before the connection is aborted.
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        b.guard.finish();
        b.failed = true;
        b.control.shared.update(|s| {
            s.http[i].cut = true;
            s.http[i].completed = true;
        });
        return Some((Err(std::io::Error::other("emulated cut of the audio body")), b));
    }
    let Some((mut bytes, delay)) = b.chunks.pop_front() else {
        b.guard.finish();
        b.control.shared.update(|s| s.http[i].completed = true);
        return None;
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(cut) = b.cut_after {
        bytes = bytes.slice(..bytes.len().min(cut - b.sent));
    }
    b.sent += bytes.len();
    let n = bytes.len();
    b.control.shared.update(|s| s.http[i].bytes_sent += n);
    Some((Ok(bytes), b))
}
