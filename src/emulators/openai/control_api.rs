//! The control API on the OpenAI emulator's own listener, for a test or tool driving a separate emulator
//! process (`parley emulate`) over HTTP; it steers the same `OpenAiControl` the Rust API does. No key is
//! needed. Bodies are JSON; a bad one gets 400 `{"error": "bad_request", "message": ..}`.
//!
//! - `POST /_control/replies`: `{"text": ".."}` or `{"tools": [{"name": .., "arguments": ..}]}` (or an array
//!   of them), queued in order; a string `arguments` is sent verbatim, any other JSON value serialised.
//! - `POST /_control/faults`: `{"fault": "503"}` (the `--openai-fault` spelling), queued for one request.
//! - `POST /_control/down`: `{"prefix": "primary", "fault": "503"}` (fault optional, default 503): every
//!   request under `/primary/v1/...` fails so until `DELETE /_control/down/primary`.
//! - `POST /_control/torture`: `{"torture": "no-tool-index,whole-tool-arguments"}` (the `--openai-torture`
//!   spelling) replaces the torture flags.
//! - `GET /_control/requests`: the request log, a JSON array of `ChatRequestLog`.
//! - `POST /_control/reset`: forgets queued replies and faults, down prefixes and the log.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::control::{OpenAiControl, Reply};
use super::fault::prefix_segment;
use super::script::ReplyBody;

/// Adds the `/_control/...` routes (the control handle is already app data).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/_control/replies", web::post().to(replies))
        .route("/_control/faults", web::post().to(faults))
        .route("/_control/down", web::post().to(down))
        .route("/_control/down/{prefix}", web::delete().to(up))
        .route("/_control/torture", web::post().to(torture))
        .route("/_control/requests", web::get().to(requests))
        .route("/_control/reset", web::post().to(reset));
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<ReplyBody>),
    One(ReplyBody),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    fault: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownBody {
    prefix: String,
    fault: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TortureBody {
    torture: String,
}

fn bad(message: impl Into<String>) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": "bad_request", "message": message.into()}))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, HttpResponse> {
    serde_json::from_slice(body).map_err(|e| bad(format!("the body is not the JSON this route takes: {e}")))
}

async fn replies(control: web::Data<OpenAiControl>, body: web::Bytes) -> HttpResponse {
    let bodies = match parse::<OneOrMany>(&body) {
        Ok(OneOrMany::One(b)) => vec![b],
        Ok(OneOrMany::Many(bs)) => bs,
        Err(resp) => return resp,
    };
    let replies: Result<Vec<Reply>, String> = bodies.into_iter().map(Reply::try_from).collect();
    match replies {
        Ok(replies) => {
            let queued = control.shared.update(|s| {
                s.replies.extend(replies);
                s.replies.len()
            });
            HttpResponse::Ok().json(json!({"queued": queued}))
        }
        Err(e) => bad(e),
    }
}

async fn faults(control: web::Data<OpenAiControl>, body: web::Bytes) -> HttpResponse {
    let b: FaultBody = match parse(&body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    match b.fault.parse() {
        Ok(f) => {
            control.push_fault(f);
            let queued = control.shared.read(|s| s.faults.len());
            HttpResponse::Ok().json(json!({"queued": queued}))
        }
        Err(e) => bad(e),
    }
}

async fn down(control: web::Data<OpenAiControl>, body: web::Bytes) -> HttpResponse {
    let b: DownBody = match parse(&body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let prefix = match prefix_segment(&b.prefix) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    match b.fault.as_deref().unwrap_or("503").parse() {
        Ok(f) => {
            control.set_down(prefix, Some(f));
            HttpResponse::Ok().json(json!({"down": prefix}))
        }
        Err(e) => bad(e),
    }
}

async fn up(control: web::Data<OpenAiControl>, prefix: web::Path<String>) -> HttpResponse {
    control.set_down(&prefix, None);
    HttpResponse::NoContent().finish()
}

async fn torture(control: web::Data<OpenAiControl>, body: web::Bytes) -> HttpResponse {
    let b: TortureBody = match parse(&body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    match b.torture.parse() {
        Ok(t) => {
            control.set_torture(t);
            HttpResponse::NoContent().finish()
        }
        Err(e) => bad(e),
    }
}

async fn requests(control: web::Data<OpenAiControl>) -> HttpResponse {
    HttpResponse::Ok().json(control.requests())
}

async fn reset(control: web::Data<OpenAiControl>) -> HttpResponse {
    control.reset();
    HttpResponse::NoContent().finish()
}
