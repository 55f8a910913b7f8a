//! Reads a request body with a size limit, so an oversized body becomes the provider's own error shape
//! (the caller renders it) instead of actix-web's plain-text 413.

use actix_web::web;
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

/// A fresh request id (UUID v4), as the providers put in `dg-request-id`, `x-request-id`, `request-id`.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
