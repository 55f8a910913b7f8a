//! Phone calls through Twilio (see README "Phone calls"):
//!
//! - `POST /twilio/voice`: the number's "A call comes in" webhook (form-encoded `CallSid`, `From`, `To`, …).
//!   Answers TwiML that connects the call to a bidirectional Media Stream at `wss://HOST/ws/twilio`, with the
//!   call, the numbers and the agent (`[phone_numbers]` by the called number, else the default) as stream
//!   parameters.
//! - `GET /ws/twilio`: that stream's WebSocket; the session itself opens on the stream's `start`
//!   (`session::twilio`).
//!
//! Both check `X-Twilio-Signature` (HMAC-SHA1 with `TWILIO_AUTH_TOKEN` over the URL Twilio requested, plus
//! the POST parameters for the webhook) and answer 403 `twilio_signature` when it is missing or wrong. The
//! URL is `PARLEY_PUBLIC_URL` + the request's path and query when set (the address Twilio sees, in front of
//! a proxy), else the request's own scheme and host (`Forwarded`/`X-Forwarded-*` included). Without
//! `TWILIO_AUTH_TOKEN` both answer 404 `phone_not_configured`: no unsigned call ever reaches a session.
//!
//! The stream's `start` parameters are trusted only with parley's seal (`session::twilio::seal`, keyed with
//! the Auth Token) that the webhook wrote beside them: the handshake's signature covers the URL only, the same
//! for every call, so without the seal a replayed handshake could claim any caller.

use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;

use crate::api_error::{ApiError, ErrorBody};
use crate::audio::OutputFormat;
use crate::audio::level::InputEncoding;
use crate::db::SessionId;
use crate::providers::twilio::{signature, twiml};
use crate::session::client_socket::{ClientSocket, FrameGuard};
use crate::session::settings::{AudioIn, SessionParams};
use crate::session::twilio::{TwilioWire, call, stream_parameters};
use crate::state::AppState;

/// Where the Media Stream connects, below the public URL.
pub const STREAM_PATH: &str = "/ws/twilio";

/// Phone audio both ways: 8 kHz μ-law, as Twilio streams it.
const ULAW_8000: OutputFormat = OutputFormat { encoding: crate::audio::Encoding::Ulaw, sample_rate: 8000 };

/// The Auth Token, or 404 when phone calls are not set up.
fn auth_token(app: &AppState) -> Result<&str, ApiError> {
    app.config.twilio.auth_token.as_ref().map(|t| t.expose()).ok_or_else(|| {
        ApiError::not_found("phone_not_configured", "phone calls are not set up on this server (no TWILIO_AUTH_TOKEN)")
    })
}

/// `scheme://host[:port]` as Twilio reaches this server.
fn public_base(req: &HttpRequest, app: &AppState) -> String {
    match &app.config.twilio.public_url {
        Some(url) => url.clone(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}

/// The `wss://` (or `ws://`) form of an `https://` (or `http://`) base.
fn socket_base(base: &str) -> String {
    if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    }
}

/// Refuses a request whose `X-Twilio-Signature` is not Twilio's for `url` and `params`.
fn check_signature(req: &HttpRequest, token: &str, url: &str, params: &[(String, String)]) -> Result<(), ApiError> {
    let given = req.headers().get("X-Twilio-Signature").and_then(|v| v.to_str().ok());
    match given {
        Some(sig) if signature::verify(token, url, params, sig) => Ok(()),
        Some(_) => {
            log::warn!("twilio: a bad X-Twilio-Signature for {url} was refused");
            Err(ApiError::forbidden("twilio_signature", "X-Twilio-Signature does not match this request"))
        }
        None => Err(ApiError::forbidden("twilio_signature", "X-Twilio-Signature is missing")),
    }
}

fn path_and_query(req: &HttpRequest) -> &str {
    req.uri().path_and_query().map_or(req.uri().path(), |p| p.as_str())
}

/// The webhook's form fields parley reads (Twilio sends more; all of them are covered by the signature).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the form for the OpenAPI description; the handler reads the raw pairs
pub struct CallWebhook {
    #[schema(rename = "CallSid")]
    call_sid: String,
    #[schema(rename = "From")]
    from: String,
    #[schema(rename = "To")]
    to: String,
}

/// `POST /twilio/voice`: TwiML connecting the call to the stream.
#[utoipa::path(
    post,
    path = "/twilio/voice",
    tag = "phone",
    request_body(content = CallWebhook, content_type = "application/x-www-form-urlencoded"),
    security(("twilioSignature" = [])),
    responses(
        (status = 200, description = "TwiML: <Connect><Stream> to /ws/twilio with the call's sealed parameters",
         body = String, content_type = "text/xml"),
        (status = 403, description = "twilio_signature: missing or wrong X-Twilio-Signature", body = ErrorBody),
        (status = 404, description = "phone_not_configured: no TWILIO_AUTH_TOKEN", body = ErrorBody),
        (status = 503, description = "server_busy: shutting down", body = ErrorBody),
    ),
)]
pub async fn voice(req: HttpRequest, body: web::Bytes, app: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let token = auth_token(&app)?;
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let base = public_base(&req, &app);
    check_signature(&req, token, &format!("{base}{}", path_and_query(&req)), &params)?;
    if app.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::busy("the server is shutting down"));
    }
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
    let (call_sid, from, to) = (get("CallSid"), get("From"), get("To"));
    let agent = call::agent_for_number(&app.session.agents, to).agent.clone();
    log::info!("twilio: call {call_sid} from {from} to {to}: agent {agent}");
    let parameters = stream_parameters(token, call_sid, from, to, &agent);
    let parameters: Vec<(&str, &str)> = parameters.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let xml = twiml::connect_stream(&format!("{}{STREAM_PATH}", socket_base(&base)), &parameters);
    Ok(HttpResponse::Ok().content_type("text/xml; charset=utf-8").body(xml))
}

/// `GET /ws/twilio`: the call's Media Stream; the session opens on its `start` message.
pub async fn stream(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = auth_token(&app)?;
    let url = format!("{}{}", socket_base(&public_base(&req, &app)), path_and_query(&req));
    check_signature(&req, token, &url, &[])?;
    if app.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::busy("the server is shutting down; call again in a moment"));
    }
    let agents = app.session.agents.clone();
    // Who calls is known at `start`; until then the session holds the default agent and no user.
    let params = SessionParams {
        settings: agents.default_agent().clone(),
        session_id: SessionId::generate(),
        user_id: call::user_id(None, "", ""),
        resumed: false,
        history: Vec::new(),
        audio_in: AudioIn { encoding: InputEncoding::Mulaw, sample_rate: 8000 },
        output_format: ULAW_8000,
        peer: req.peer_addr().map(|a| a.to_string()),
        reservation: None,
        call: None,
    };
    let max_text = params.settings.max_text_frame_bytes;
    let wire = TwilioWire::new(agents, token.to_string(), max_text);
    let actor = ClientSocket::new(wire, params, app.session.clone(), app.http.clone());
    let limit = max_text * 4;
    ws::WsResponseBuilder::new(actor, &req, FrameGuard::new(payload, limit))
        .frame_size(limit)
        .start()
        .map_err(|e| ApiError::bad_request("not_a_websocket", format!("expected a WebSocket upgrade: {e}")))
}

#[cfg(test)]
mod tests {
    use super::socket_base;

    #[test]
    fn the_stream_url_follows_the_public_scheme() {
        assert_eq!(socket_base("https://calls.example.com"), "wss://calls.example.com");
        assert_eq!(socket_base("http://127.0.0.1:8080"), "ws://127.0.0.1:8080");
    }
}
