//! Placing the call: the signed webhook POST, the TwiML, the signed WebSocket handshake, then the stream's
//! tasks (writer, reader, and the speaker of the first `audio`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use awc::error::WsClientError;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use url::Url;

use super::call::{Call, send_frames};
use super::line::{self, Line};
use super::messages::StreamIds;
use super::{CallError, CallOptions, signature, twiml};
use crate::http_client::HttpClients;

/// How long the webhook and the WebSocket handshake may each take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame accepted from the server.
const MAX_FRAME_BYTES: usize = 1 << 20;

fn bad_url(url: &str, reason: impl ToString) -> CallError {
    CallError::BadUrl { url: url.to_string(), reason: reason.to_string() }
}

/// The key to sign with: the auth token, or a wrong one for `bad_signature`.
fn signing_key(opts: &CallOptions) -> String {
    if opts.bad_signature { format!("not-{}", opts.auth_token) } else { opts.auth_token.clone() }
}

/// `url` with its scheme, host and port replaced by `origin`'s.
fn with_origin(url: &Url, origin: &Url) -> Result<Url, CallError> {
    let mut out = url.clone();
    let fail = |_| bad_url(origin.as_str(), "cannot take this origin");
    out.set_scheme(origin.scheme()).map_err(fail)?;
    out.set_host(origin.host_str()).map_err(|e| bad_url(origin.as_str(), e))?;
    out.set_port(origin.port()).map_err(fail)?;
    Ok(out)
}

/// The WebSocket form of an http(s) origin (`https` → `wss`).
fn ws_origin(origin: &Url) -> Result<Url, CallError> {
    let mut ws = origin.clone();
    let scheme = match origin.scheme() {
        "https" | "wss" => "wss",
        _ => "ws",
    };
    ws.set_scheme(scheme).map_err(|_| bad_url(origin.as_str(), "no WebSocket form"))?;
    Ok(ws)
}

/// (URL to sign, URL to connect to) for the webhook and, given the TwiML's stream URL, for the stream.
fn webhook_urls(opts: &CallOptions) -> Result<(String, Url), CallError> {
    let target = Url::parse(&opts.webhook_url).map_err(|e| bad_url(&opts.webhook_url, e))?;
    let signed = match &opts.signed_url_base {
        None => opts.webhook_url.clone(),
        Some(base) => {
            let public = Url::parse(base).map_err(|e| bad_url(base, e))?;
            with_origin(&target, &public)?.to_string()
        }
    };
    Ok((signed, target))
}

fn stream_connect_url(opts: &CallOptions, stream_url: &str, webhook: &Url) -> Result<Url, CallError> {
    let stream = Url::parse(stream_url).map_err(|e| bad_url(stream_url, e))?;
    let Some(base) = &opts.signed_url_base else { return Ok(stream) };
    let public = ws_origin(&Url::parse(base).map_err(|e| bad_url(base, e))?)?;
    if stream.origin() == public.origin() { with_origin(&stream, &ws_origin(webhook)?) } else { Ok(stream) }
}

/// Places a call: POSTs the webhook, reads the TwiML, opens the stream and sends `connected` and `start`;
/// the first `audio` then plays in the background (`Call::finish_speaking` waits for it).
pub async fn place_call(opts: CallOptions) -> Result<Call, CallError> {
    let client = HttpClients::new().build();
    let call_sid = opts.call_sid.clone().unwrap_or_else(|| format!("CA{}", uuid::Uuid::new_v4().simple()));
    let params: Vec<(String, String)> = [
        ("CallSid", call_sid.as_str()),
        ("AccountSid", opts.account_sid.as_str()),
        ("From", opts.from.as_str()),
        ("To", opts.to.as_str()),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("ApiVersion", "2010-04-01"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let (signed_webhook, webhook) = webhook_urls(&opts)?;
    let key = signing_key(&opts);
    let request = client
        .post(webhook.as_str())
        .insert_header(("X-Twilio-Signature", signature(&key, &signed_webhook, &params)))
        .timeout(TIMEOUT)
        .send_form(&params);
    let mut response = request.await.map_err(|e| CallError::WebhookUnreachable(e.to_string()))?;
    let body = response.body().limit(1 << 20).await.map_err(|e| CallError::WebhookUnreachable(e.to_string()))?;
    let twiml = String::from_utf8_lossy(&body).into_owned();
    if !response.status().is_success() {
        return Err(CallError::WebhookStatus { status: response.status().as_u16(), body: twiml });
    }
    let stream = twiml::parse(&twiml)?;
    if !stream.connect {
        return Err(CallError::NotBidirectional);
    }
    let connect_url = stream_connect_url(&opts, &stream.url, &webhook)?;
    let handshake = client
        .ws(connect_url.as_str())
        .max_frame_size(MAX_FRAME_BYTES)
        .header("X-Twilio-Signature", signature(&key, &stream.url, &[]))
        .connect();
    let framed = match tokio::time::timeout(TIMEOUT, handshake).await {
        Err(_) => return Err(CallError::StreamUnreachable("the handshake took too long".into())),
        Ok(Err(WsClientError::InvalidResponseStatus(status))) => return Err(CallError::StreamRefused(status.as_u16())),
        Ok(Err(e)) => return Err(CallError::StreamUnreachable(e.to_string())),
        Ok(Ok((_, framed))) => framed,
    };
    let stream_sid = format!("MZ{}", uuid::Uuid::new_v4().simple());
    let ids =
        StreamIds { account_sid: opts.account_sid.clone(), call_sid: call_sid.clone(), stream_sid: stream_sid.clone() };
    let (tx, rx) = mpsc::unbounded_channel();
    let line = Arc::new(Line::new(tx));
    let (sink, frames) = framed.split();
    let writer =
        actix_web::rt::spawn(line::write(sink, rx, ids, stream.parameters.clone(), line.started, opts.realtime));
    let reader = actix_web::rt::spawn(line::read(frames, line.clone(), stream_sid.clone()));
    let mic = Arc::new(tokio::sync::Mutex::new(()));
    let speaker = {
        // Taken here, so a `play` right after `place_call` waits for the first audio.
        let held = mic.clone().lock_owned().await;
        let line = line.clone();
        let (audio, silence, realtime) = (opts.audio, opts.trailing_silence_ms, opts.realtime);
        actix_web::rt::spawn(async move {
            send_frames(&line, &audio, silence, realtime, true).await;
            drop(held);
        })
    };
    Ok(Call {
        twiml,
        stream,
        stream_sid,
        call_sid,
        realtime: opts.realtime,
        line,
        mic,
        reader: Mutex::new(Some(reader)),
        writer,
        speaker: Mutex::new(Some(speaker)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(base: Option<&str>) -> CallOptions {
        let mut o = CallOptions::new("http://127.0.0.1:8080/twilio/voice?x=1", "t");
        o.signed_url_base = base.map(str::to_string);
        o
    }

    #[test]
    fn without_a_public_base_everything_is_signed_and_reached_as_written() {
        let o = opts(None);
        let (signed, target) = webhook_urls(&o).unwrap();
        assert_eq!(signed, "http://127.0.0.1:8080/twilio/voice?x=1");
        let ws = stream_connect_url(&o, "wss://agent.example.com/ws/twilio", &target).unwrap();
        assert_eq!(ws.as_str(), "wss://agent.example.com/ws/twilio");
    }

    #[test]
    fn behind_a_proxy_the_public_url_is_signed_and_the_local_one_reached() {
        let o = opts(Some("https://agent.example.com"));
        let (signed, target) = webhook_urls(&o).unwrap();
        assert_eq!(signed, "https://agent.example.com/twilio/voice?x=1");
        let ws = stream_connect_url(&o, "wss://agent.example.com/ws/twilio?a=b", &target).unwrap();
        assert_eq!(ws.as_str(), "ws://127.0.0.1:8080/ws/twilio?a=b");
        let elsewhere = stream_connect_url(&o, "wss://other.example.com/ws", &target).unwrap();
        assert_eq!(elsewhere.as_str(), "wss://other.example.com/ws");
        assert!(webhook_urls(&opts(Some("not a url"))).is_err());
    }
}
