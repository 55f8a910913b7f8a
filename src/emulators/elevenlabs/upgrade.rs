//! `GET /v1/text-to-speech/{voice_id}/stream-input` and `/multi-stream-input`: reads the query
//! (`output_format`, `inactivity_timeout`, `auto_mode`, `authorization`) and the `xi-api-key` header, takes
//! the next socket fault, logs the connection and hands it to a `TtsSocket`. Like the real service, it
//! accepts the upgrade even for a bad key or format and then reports the problem in-band with a 1008 close.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;

use super::control::{ElevenLabsControl, ElevenLabsFault, TtsSocketLog};
use super::socket::{MAX_FRAME_BYTES, SocketSetup, TtsSocket};
use crate::audio::OutputFormat;
use crate::emulators::common::abort::Abort;
use crate::emulators::common::body::query_pairs;
use crate::emulators::synth::Renderer;

/// Default and largest `inactivity_timeout`, in seconds.
const DEFAULT_INACTIVITY_S: u64 = 20;
const MAX_INACTIVITY_S: u64 = 180;

/// `GET .../{voice_id}/stream-input` and `.../{voice_id}/multi-stream-input`.
pub async fn socket(
    req: HttpRequest,
    stream: web::Payload,
    path: web::Path<(String, String)>,
    control: web::Data<ElevenLabsControl>,
) -> HttpResponse {
    let (voice_id, endpoint) = path.into_inner();
    let multi = match endpoint.as_str() {
        "stream-input" => false,
        "multi-stream-input" => true,
        _ => return HttpResponse::NotFound().json(serde_json::json!({"detail": "Not Found"})),
    };
    start(req, stream, voice_id, control.get_ref().clone(), multi)
}

fn start(
    req: HttpRequest,
    stream: web::Payload,
    voice_id: String,
    control: ElevenLabsControl,
    multi: bool,
) -> HttpResponse {
    let query = query_pairs(&req);
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let header_key = req.headers().get("xi-api-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let query_token = param("authorization").map(|a| a.strip_prefix("Bearer ").unwrap_or(&a).to_string());
    let mut startup_error = None;
    let format = match param("output_format").unwrap_or_else(|| "mp3_44100_128".into()).parse::<OutputFormat>() {
        Ok(f) => match Renderer::new(f) {
            Ok(_) => f,
            Err(e) => {
                startup_error = Some(("invalid_output_format".to_string(), e.to_string()));
                f
            }
        },
        Err(e) => {
            startup_error = Some(("invalid_output_format".to_string(), e.to_string()));
            "pcm_16000".parse().unwrap_or(OutputFormat { encoding: crate::audio::Encoding::Pcm, sample_rate: 16000 })
        }
    };
    let inactivity_s = match param("inactivity_timeout").map(|v| v.parse::<u64>()) {
        None => DEFAULT_INACTIVITY_S,
        Some(Ok(s)) if (1..=MAX_INACTIVITY_S).contains(&s) => s,
        Some(_) => {
            let m = format!("inactivity_timeout must be a whole number of seconds between 1 and {MAX_INACTIVITY_S}.");
            startup_error = Some(("invalid_request".to_string(), m));
            DEFAULT_INACTIVITY_S
        }
    };
    let auto_mode = param("auto_mode").is_some_and(|v| v == "true");
    let path = req.path().to_string();
    let (index, settings, fault) = control.shared.update(|s| {
        let index = s.sockets.push(|number| TtsSocketLog {
            number,
            path,
            voice_id,
            multi,
            query: query.clone(),
            key_in_header: header_key.is_some(),
            received: Vec::new(),
            contexts_opened: Vec::new(),
            contexts_closed: Vec::new(),
            sent: Vec::new(),
            audio_bytes_sent: 0,
            close_sent: None,
            close_received: None,
            dropped: false,
            open: true,
        });
        let fault = s.take_fault(ElevenLabsFault::applies_to_socket);
        (index, s.settings.clone(), fault)
    });
    let valid = |k: &Option<String>| k.as_ref().is_some_and(|k| settings.api_keys.contains(k));
    let offered = header_key.is_some() || query_token.is_some();
    let authed = settings.api_keys.is_empty() || valid(&header_key) || valid(&query_token);
    let refused = !authed || fault == Some(ElevenLabsFault::Unauthorized);
    if offered && refused {
        startup_error.get_or_insert(("invalid_api_key".to_string(), "Invalid API key".to_string()));
    }
    let setup = SocketSetup {
        index,
        multi,
        inactivity: settings.inactivity_timeout.unwrap_or(Duration::from_secs(inactivity_s)),
        authed: authed && fault != Some(ElevenLabsFault::Unauthorized),
        settings,
        fault,
        format,
        auto_mode,
        startup_error,
    };
    let abort = Abort::for_request(&req);
    let socket = TtsSocket::new(control.clone(), setup, abort.clone());
    match ws::WsResponseBuilder::new(socket, &req, stream).frame_size(MAX_FRAME_BYTES).start() {
        Ok(resp) => abort.wrap(resp),
        Err(e) => {
            control.shared.update(|s| s.sockets.update(index, |l| l.open = false));
            HttpResponse::BadRequest().body(format!("WebSocket handshake failed: {e}"))
        }
    }
}
