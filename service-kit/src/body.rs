//! Request bodies read with a per-route cap.
//!
//! Actix's own body extractors answer an oversized body with a plain-text
//! 413 before any service code runs; reading the payload stream here lets
//! each service pick the cap per route and answer in its own format.
//! Bodies are taken as sent: a `Content-Encoding` is not decoded (upstream's
//! services do not decode request bodies either), so a compressed body can
//! never inflate past the cap.

use actix_web::web::{Bytes, BytesMut, Payload};
use futures::StreamExt;

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// More than `limit` bytes (announced or sent).
    TooLarge { limit: usize },
    /// The client's stream broke or was malformed.
    Invalid(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge { limit } => write!(
                f,
                "Request body is larger than {limit} bytes, the most this resource accepts"
            ),
            BodyError::Invalid(detail) => write!(f, "Invalid request body: {detail}"),
        }
    }
}

/// Reads the whole body, refusing it as soon as it passes `limit` bytes.
/// `content_length` (the header, when valid) refuses early without reading.
pub async fn read_body(
    mut payload: Payload,
    content_length: Option<u64>,
    limit: usize,
) -> Result<Bytes, BodyError> {
    if content_length.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Invalid(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The `Content-Length` header as a number, when present and valid.
pub fn content_length(request: &actix_web::HttpRequest) -> Option<u64> {
    request
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}
