//! Request helpers every emulator endpoint uses: the body read with a size limit (so an oversized body gets
//! the provider's own error shape, not actix-web's plain-text 413), the body as JSON for the logs, the
//! query as ordered pairs, and request ids.

use actix_web::{HttpRequest, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body could not be read: {0}")]
    Read(String),
}

/// The whole body, at most `limit` bytes.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Bytes, BodyError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The body as JSON for a log: parsed when it is JSON, else the text (or the read error) as a JSON string.
pub fn body_as_json(body: &Result<Bytes, BodyError>) -> serde_json::Value {
    match body {
        Ok(b) => serde_json::from_slice(b)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(b).into_owned())),
        Err(e) => serde_json::Value::String(e.to_string()),
    }
}

/// The query string as decoded pairs, in order, repeated keys kept.
pub fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A fresh request id (UUID v4), as the providers put in `dg-request-id`, `x-request-id`, `request-id`.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
