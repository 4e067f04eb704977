//! `GET /v1/views/{name}` (tables too), optionally `?as_of=T`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::blocking;
use crate::error::ApiResult;
use crate::json::{columns, rows};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ReadParams {
    as_of: Option<u64>,
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Result<Query<ReadParams>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params.map_err(super::bad_query)?;
    let engine = state.engine.clone();
    let result = blocking(move || engine.read(&name, params.as_of)).await??;
    Ok(Json(
        json!({"columns": columns(&result.columns), "rows": rows(&result.rows), "timestamp": result.timestamp}),
    ))
}
