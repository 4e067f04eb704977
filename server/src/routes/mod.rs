//! HTTP routes, one module per resource.

pub mod catalog;
pub mod console;
pub mod health;
pub mod ingest;
pub mod read;
pub mod sql;
pub mod subscribe;
pub mod ws;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;

use crate::error::ApiError;

/// The request body, with the size limit answered as 413 in our error shape.
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body exceeds the configured limit (--max-body-bytes)",
            )
        } else {
            ApiError::bad_request("bad_request", e.body_text())
        }
    })
}

/// A query string that does not parse, in our error shape.
pub fn bad_query(e: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::bad_request("bad_request", e.body_text())
}

/// Runs blocking engine work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("task failed: {e}"),
        )
    })
}
