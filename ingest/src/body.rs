//! Reading a request body under the size limit, gunzipping when asked.

use std::io::Read;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;

use crate::error::IngestError;

/// The whole body, decompressed, at most `limit` bytes either way, read within `deadline`.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, IngestError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(IngestError::BodyTooLarge { limit });
    }
    let raw = tokio::time::timeout(deadline, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| IngestError::BodyTimeout {
            secs: deadline.as_secs(),
        })?
        .map_err(|error| {
            let inner = error.into_inner();
            if inner.is::<http_body_util::LengthLimitError>() {
                IngestError::BodyTooLarge { limit }
            } else {
                IngestError::UnreadableBody(format!("could not read the body: {inner}"))
            }
        })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(raw),
        Some("gzip" | "x-gzip") => gunzip(&raw, limit).map(Bytes::from),
        Some(other) => Err(IngestError::UnreadableBody(format!(
            "unsupported Content-Encoding {other:?} (use gzip or none)"
        ))),
    }
}

fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit));
    flate2::read::GzDecoder::new(raw)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|error| IngestError::UnreadableBody(format!("bad gzip body: {error}")))?;
    if out.len() > limit {
        return Err(IngestError::BodyTooLarge { limit });
    }
    Ok(out)
}
