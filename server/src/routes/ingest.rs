//! `POST /v1/tables/{name}/rows`: NDJSON or CSV, applied atomically at one timestamp.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use freshet_inputs::format::{csv, json as ndjson, FormatError};
use serde_json::{json, Value};

use super::{blocking, body};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn post(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let raw = body(raw)?;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-ndjson")
        .to_ascii_lowercase();
    let engine = state.engine.clone();
    // Small bodies (single-row writes, the common case) are decoded and queued right here:
    // queuing only takes the coordinator lock briefly, and the wait for durability is async,
    // so many concurrent writers share the log's group commit without a thread each. Large
    // bodies, and writes with deletes (checked against the table, which waits for the
    // workers), run on the blocking pool.
    if raw.len() <= INLINE_BODY {
        let updates = decode(&engine, &name, &content_type, &raw)?;
        if updates.iter().all(|(_, d)| *d > 0) {
            let inserted = updates.len();
            let (ts, pending) = engine.start_write(&name, updates)?;
            pending.durable().await?;
            return Ok(Json(
                json!({"inserted": inserted, "deleted": 0, "timestamp": ts}),
            ));
        }
    }
    let result = blocking(move || -> ApiResult<Value> {
        let updates = decode(&engine, &name, &content_type, &raw)?;
        let inserted = updates.iter().filter(|(_, d)| *d > 0).count();
        let deleted = updates.len() - inserted;
        let ts = engine.write(&name, updates)?;
        Ok(json!({"inserted": inserted, "deleted": deleted, "timestamp": ts}))
    })
    .await??;
    Ok(Json(result))
}

/// Bodies up to this size are handled without the blocking pool.
const INLINE_BODY: usize = 16 << 10;

/// The body's rows, by its content type.
fn decode(
    engine: &freshet_dataflows::engine::Engine,
    name: &str,
    content_type: &str,
    raw: &[u8],
) -> ApiResult<Vec<(freshet_dataflows::Row, freshet_dataflows::plan::Diff)>> {
    let schema = engine.table_schema(name)?;
    let bad_line =
        |e: FormatError| ApiError::bad_request("invalid_data", e.message).with("line", e.line);
    if content_type.starts_with("text/csv") {
        csv::decode_with_header(&schema, raw).map_err(bad_line)
    } else if [
        "application/x-ndjson",
        "application/json",
        "application/jsonl",
        "application/x-www-form-urlencoded",
    ]
    .iter()
    .any(|t| content_type.starts_with(t))
    {
        // curl -d sends form-urlencoded by default; its body is still our NDJSON.
        let text = std::str::from_utf8(raw).map_err(|e| {
            ApiError::bad_request("invalid_data", format!("body is not UTF-8: {e}"))
        })?;
        ndjson::decode_ndjson(&schema, text).map_err(bad_line)
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {content_type} is not supported; use application/x-ndjson or text/csv"
            ),
        ))
    }
}
