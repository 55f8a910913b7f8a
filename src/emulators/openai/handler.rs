//! `POST /v1/chat/completions` and `POST /{prefix}/v1/chat/completions`: checks the key (401 JSON, never
//! SSE), parses the body (400 with OpenAI's error shape), applies the fault (the prefix's while it is down,
//! else the next queued one: 429/500/503 as JSON; mid-stream error, cut or hang inside the stream), then
//! answers with a paced SSE stream or a whole `chat.completion`. The stream is a lazily polled body: when the
//! client goes away actix drops it, and a guard records that in the log.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::control::{ChatRequestLog, OpenAiControl, OpenAiFault};
use super::errors;
use super::framing::{self, Event};
use super::reply::{Completion, default_reply, prompt_tokens};
use super::respond::{End, Guard, Plan, next_write, whole};
use crate::emulators::common::body::{BodyError, body_as_json, read_body, request_id};
use crate::providers::openai::{ApiErrorBody, ChatRequest, ChatStreamDecoder};

const BODY_LIMIT: usize = 8 * 1024 * 1024;
const LOGGED_HEADERS: [&str; 6] =
    ["authorization", "content-type", "accept", "openai-organization", "openai-project", "user-agent"];

/// The handler.
pub async fn chat_completions(
    req: HttpRequest,
    payload: web::Payload,
    control: web::Data<OpenAiControl>,
) -> HttpResponse {
    let request_id = request_id();
    let headers = LOGGED_HEADERS
        .iter()
        .filter_map(|h| Some((h.to_string(), req.headers().get(*h)?.to_str().ok()?.to_string())))
        .collect();
    let body = read_body(payload, BODY_LIMIT).await;
    let body_value = body_as_json(&body);
    let key = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .map(str::to_string);
    let prefix = req.match_info().get("prefix").map(str::to_string);
    let (number, settings, fault, down) = control.shared.update(|s| {
        let number = s.next_number();
        // A down prefix fails every request without taking what is queued for the working base URL.
        let down = prefix.as_ref().and_then(|p| s.down.get(p).cloned());
        let is_down = down.is_some();
        let fault = down.or_else(|| s.faults.pop_front());
        s.log(ChatRequestLog {
            number,
            request_id: request_id.clone(),
            prefix: prefix.clone(),
            body: body_value,
            headers,
            stream: false,
            status: 0,
            fault: fault.clone(),
            usage: None,
            deltas_sent: 0,
            done_sent: false,
            completed: false,
            client_went_away: false,
        });
        (number, s.settings.clone(), fault, is_down)
    });
    let log = |f: &dyn Fn(&mut ChatRequestLog)| control.log(number, f);
    let fail = |status: u16, body: ApiErrorBody, extra: &[(&str, String)]| {
        log(&|r| {
            r.status = status;
            r.completed = true;
        });
        let mut resp = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        resp.insert_header(("x-request-id", request_id.as_str()));
        for (k, v) in extra {
            resp.insert_header((*k, v.as_str()));
        }
        resp.content_type("application/json").body(body.to_json())
    };

    let key_ok = settings.api_keys.is_empty() || key.as_ref().is_some_and(|k| settings.api_keys.contains(k));
    if !key_ok || fault == Some(OpenAiFault::Unauthorized) {
        let msg = match &key {
            None => "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".to_string(),
            Some(k) => format!("Incorrect API key provided: {}. You can find your API key at your provider's dashboard.", mask(k)),
        };
        return fail(401, ApiErrorBody::new(msg, "invalid_request_error", Some("invalid_api_key")), &[]);
    }
    let bytes = match body {
        Ok(b) => b,
        Err(BodyError::TooLarge(n)) => {
            let msg = format!("Request body too large: the limit is {n} bytes.");
            return fail(413, ApiErrorBody::new(msg, "invalid_request_error", None), &[]);
        }
        Err(e) => {
            return fail(400, ApiErrorBody::new(e.to_string(), "invalid_request_error", None), &[]);
        }
    };
    let chat: ChatRequest = match serde_json::from_slice(&bytes) {
        Ok(c) => c,
        Err(e) => {
            let msg = format!(
                "We could not parse the JSON body of your request ({e}). The body must be a chat completion request: at least \"model\" and \"messages\"."
            );
            return fail(400, ApiErrorBody::new(msg, "invalid_request_error", None), &[]);
        }
    };
    if chat.messages.is_empty() {
        let body = ApiErrorBody::new("[] is too short - 'messages'", "invalid_request_error", None);
        return fail(400, body, &[]);
    }
    if let Some((status, body, extra)) = errors::status_fault(fault.as_ref()) {
        return fail(status, body, &extra);
    }

    let completion = Completion {
        id: format!("chatcmpl-{}", request_id.split('-').next().unwrap_or_default()),
        created: chrono::Utc::now().timestamp(),
        model: chat.model.clone(),
        include_usage: chat.wants_usage(),
        prompt_tokens: prompt_tokens(&chat),
    };
    // Only a request that gets an answer takes the scripted reply: a refused one (401, 400, a status fault)
    // leaves it for the retry or the fallback.
    let scripted = control.shared.update(|s| if down { s.replies.front().cloned() } else { s.replies.pop_front() });
    let reply = scripted.unwrap_or_else(|| default_reply(&chat));
    let stream = chat.is_streaming();
    log(&|r| {
        r.stream = stream;
        r.status = 200;
    });
    if !stream {
        return whole(&completion, &reply, fault, &settings, &request_id, control.get_ref().clone(), number).await;
    }

    let payloads = completion.stream(&reply, &settings.torture);
    let mut events = Vec::new();
    let mut deltas = 0;
    let mut end = End::Done;
    for p in payloads {
        let cutoff = match &fault {
            Some(OpenAiFault::ErrorMidStream { after_deltas }) => Some((*after_deltas, End::Error)),
            Some(OpenAiFault::CutAfter { after_deltas }) => Some((*after_deltas, End::Cut)),
            Some(OpenAiFault::NeverEnds { after_deltas }) => Some((*after_deltas, End::Hang)),
            _ => None,
        };
        if let Some((n, how)) = cutoff
            && p.is_delta
            && deltas == n
        {
            end = how;
            break;
        }
        let delay = match (events.is_empty(), p.is_delta) {
            (true, _) => settings.time_to_first_token,
            (false, true) if deltas > 0 => settings.inter_token_delay,
            _ => Duration::ZERO,
        };
        deltas += usize::from(p.is_delta);
        events.push((Event { data: p.json, delay }, p.is_delta));
    }
    match end {
        End::Done => events.push((Event { data: "[DONE]".into(), delay: Duration::ZERO }, false)),
        End::Error => {
            let err = json!({"error": {"message": "The server had an error while processing your request (emulated mid-stream failure).", "type": "server_error", "param": null, "code": null}});
            events.push((Event { data: err.to_string(), delay: settings.inter_token_delay }, false));
        }
        End::Cut | End::Hang => {}
    }
    let events: Vec<Event> = events.into_iter().map(|(e, _)| e).collect();
    let plan = Plan {
        writes: framing::writes(&events, &settings.torture).into(),
        end,
        first: true,
        seen: ChatStreamDecoder::new(),
    };
    let guard = Guard::new(control.get_ref().clone(), number);
    let body = futures_util::stream::unfold((plan, guard), next_write);
    HttpResponse::Ok()
        .insert_header(("x-request-id", request_id.as_str()))
        .insert_header(("cache-control", "no-cache"))
        .content_type("text/event-stream; charset=utf-8")
        .streaming(body)
}

fn mask(key: &str) -> String {
    let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("****{tail}")
}
