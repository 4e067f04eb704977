//! `POST /v1/sql`: run statements, in order, stopping at the first error.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blocking, body};
use crate::error::{ApiError, ApiResult};
use crate::json::statement_result;
use crate::state::AppState;

#[derive(Deserialize)]
struct SqlRequest {
    sql: String,
}

pub async fn post(
    State(state): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let raw = body(raw)?;
    let req: SqlRequest = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("expected {{\"sql\": \"…\"}}: {e}"))
    })?;
    let engine = state.engine.clone();
    let outcome = blocking(move || engine.execute(&req.sql)).await?;
    match outcome {
        Ok(results) => Ok(Json(
            json!({ "results": results.iter().map(statement_result).collect::<Vec<_>>() }),
        )),
        Err(e) => Err(ApiError::from(e.error).with("statement_index", e.statement_index)),
    }
}
