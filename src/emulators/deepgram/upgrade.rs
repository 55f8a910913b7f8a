//! `GET /v1/listen`: everything Deepgram decides before the WebSocket upgrade. Credentials come from
//! `Authorization: Token|Bearer <key>` or `Sec-WebSocket-Protocol: token, <key>` (the server then echoes
//! `token`); a bad key, bad parameters or an injected refusal get the real refusal shape: an HTTP status with
//! a JSON body, the same text in `dg-error`, and `dg-request-id`. Otherwise the connection goes to a
//! `DeepgramSession` actor.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;

use super::control::{AuthMethod, DeepgramConnectionLog, DeepgramControl, DeepgramFault};
use super::decode::SampleFormat;
use super::session::DeepgramSession;
use crate::emulators::common::abort::Abort;
use crate::emulators::common::body::{query_pairs, request_id};
use crate::providers::deepgram::{ErrorBody, ListenOptions};

/// Largest WebSocket frame accepted (bigger ones close the socket with 1009).
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

const KNOWN_MODELS: [&str; 6] = ["nova-3", "nova-2", "nova", "enhanced", "base", "whisper"];

/// The upgrade handler.
pub async fn listen(req: HttpRequest, stream: web::Payload, control: web::Data<DeepgramControl>) -> HttpResponse {
    let request_id = request_id();
    let query = query_pairs(&req);
    let (auth, key) = credentials(&req);
    let options = ListenOptions::from_query(req.query_string());
    let (number, index, settings, script, fault) = control.shared.update(|s| {
        let index = s.connections.push(|number| DeepgramConnectionLog {
            number,
            request_id: request_id.clone(),
            query,
            options: options.clone().unwrap_or_default(),
            auth: auth.clone(),
            refused: None,
            audio_bytes: 0,
            audio_frames: 0,
            binary_control_frames: Vec::new(),
            texts_received: Vec::new(),
            sent: Vec::new(),
            close_sent: None,
            dropped: false,
            close_received: None,
            open: false,
        });
        let script = s.scripts.pop_front().unwrap_or_default();
        (index as u64 + 1, index, s.settings.clone(), script, s.faults.pop_front())
    });
    let refuse = |status: u16, code: &str, msg: &str| {
        control.shared.update(|s| {
            s.connections.update(index, |l| l.refused = Some(status));
        });
        refusal(status, code, msg, &request_id)
    };
    if let Some(DeepgramFault::RefuseUpgrade(status)) = fault {
        return refuse(status, refusal_code(status), "Injected refusal by the emulator.");
    }
    let key_ok = settings.api_keys.is_empty() || key.as_ref().is_some_and(|k| settings.api_keys.contains(k));
    if !key_ok {
        return refuse(401, "INVALID_AUTH", "Invalid credentials.");
    }
    let options = match options {
        Ok(o) => o,
        Err(e) => return refuse(400, "Bad Request", &e.to_string()),
    };
    let format = match validate(&options) {
        Ok(f) => f,
        Err(msg) => return refuse(400, "Bad Request", &msg),
    };
    let abort = Abort::for_request(&req);
    let session = DeepgramSession::new(
        control.get_ref().clone(),
        index,
        number,
        request_id.clone(),
        settings,
        script,
        fault,
        options,
        format,
        abort.clone(),
    );
    let started =
        ws::WsResponseBuilder::new(session, &req, stream).protocols(&["token"]).frame_size(MAX_FRAME_BYTES).start();
    match started {
        Ok(mut resp) => {
            if let Ok(v) = request_id.parse() {
                resp.headers_mut().insert(actix_web::http::header::HeaderName::from_static("dg-request-id"), v);
            }
            control.shared.update(|s| {
                s.connections.update(index, |l| l.open = true);
            });
            abort.wrap(resp)
        }
        Err(e) => {
            let msg = format!("WebSocket handshake failed: {e}");
            refuse(400, "Bad Request", &msg)
        }
    }
}

/// The key and how it was sent.
fn credentials(req: &HttpRequest) -> (AuthMethod, Option<String>) {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some((scheme, key)) = header("authorization").and_then(|v| v.trim().split_once(' '))
        && (scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
    {
        return (AuthMethod::Header(scheme.to_string()), Some(key.trim().to_string()));
    }
    if let Some(protocols) = header("sec-websocket-protocol") {
        let parts: Vec<&str> = protocols.split(',').map(str::trim).collect();
        if let [first, key, ..] = parts.as_slice()
            && first.eq_ignore_ascii_case("token")
        {
            return (AuthMethod::Subprotocol, Some((*key).to_string()));
        }
    }
    (AuthMethod::None, None)
}

/// The checks Deepgram makes on parameters; the audio format the session will read.
fn validate(o: &ListenOptions) -> Result<SampleFormat, String> {
    if let Some(model) = &o.model {
        // A known model, or a variant of one (`nova-2-phonecall`, `whisper-large`).
        let base = KNOWN_MODELS.iter().any(|m| {
            model == m
                || model
                    .strip_prefix(&format!("{m}-"))
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()))
        });
        if !base {
            return Err("No such model/language/tier combination found.".to_string());
        }
    }
    if let Some(lang) = &o.language {
        let mut parts = lang.split('-');
        let primary = parts.next().unwrap_or("");
        let ok = lang == "multi"
            || ((2..=3).contains(&primary.len())
                && primary.chars().all(|c| c.is_ascii_lowercase())
                && parts.all(|p| (2..=4).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric())));
        if !ok {
            return Err("No such model/language/tier combination found.".to_string());
        }
    }
    if o.channels == Some(0) {
        return Err("channels must be at least 1.".to_string());
    }
    let format = match o.encoding.as_deref() {
        None | Some("linear16") => SampleFormat::Linear16,
        Some("mulaw") => SampleFormat::Mulaw,
        Some("alaw") => SampleFormat::Alaw,
        Some(other) => {
            return Err(format!("encoding {other} is not supported by the emulator (linear16, mulaw, alaw)."));
        }
    };
    if o.encoding.is_some() && o.sample_rate.is_none() {
        return Err("sample_rate is required when encoding is set.".to_string());
    }
    if o.sample_rate.is_some_and(|r| !(1000..=192_000).contains(&r)) {
        return Err("sample_rate must be between 1000 and 192000.".to_string());
    }
    Ok(format)
}

fn refusal_code(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "INVALID_AUTH",
        402 => "ASR_PAYMENT_REQUIRED",
        403 => "INSUFFICIENT_PERMISSIONS",
        429 => "TOO_MANY_REQUESTS",
        _ => "INTERNAL_SERVER_ERROR",
    }
}

fn refusal(status: u16, code: &str, msg: &str, request_id: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ErrorBody {
        err_code: code.to_string(),
        err_msg: msg.to_string(),
        request_id: request_id.to_string(),
        message: None,
    };
    HttpResponse::build(status).insert_header(("dg-error", msg)).insert_header(("dg-request-id", request_id)).json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(q: &str) -> ListenOptions {
        ListenOptions::from_query(q).unwrap()
    }

    #[test]
    fn raw_encoding_without_sample_rate_unknown_model_and_bad_language_are_refused() {
        assert!(validate(&opts("encoding=linear16")).is_err());
        assert!(validate(&opts("model=nova-9")).is_err());
        assert!(validate(&opts("language=english")).is_err());
        assert!(validate(&opts("encoding=opus&sample_rate=48000")).is_err());
    }

    #[test]
    fn usual_parameters_are_accepted() {
        let q = "model=nova-3&language=en-US&encoding=linear16&sample_rate=16000&channels=1";
        assert_eq!(validate(&opts(q)), Ok(SampleFormat::Linear16));
        assert_eq!(validate(&opts("model=nova-2-phonecall&encoding=mulaw&sample_rate=8000")), Ok(SampleFormat::Mulaw));
        assert!(validate(&opts("language=multi")).is_ok());
    }
}
