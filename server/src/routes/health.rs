//! `/healthz` (alive), `/readyz` (ready to serve), `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.engine.failure() {
        None => (StatusCode::OK, Json(json!({"status": "ok"}))),
        Some(message) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "failed", "message": message})),
        ),
    }
}

/// Ready once the engine runs and every source has read the history that existed when it
/// started (a source still backfilling, or stalled on a missing broker, is named).
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if let Some(message) = state.engine.failure() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": message})),
        );
    }
    if let Some((rows, total, records, records_total)) = state.engine.recovery_progress() {
        let percent = if total > 0 {
            (rows as f64 * 1000.0 / total as f64).round() / 10.0
        } else {
            0.0
        };
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "ready": false,
                "reason": "recovering from the data directory",
                "recovery": {
                    "rows": rows, "rows_total": total, "percent": percent,
                    "records": records, "records_total": records_total,
                },
            })),
        );
    }
    let backfilling = state.engine.sources_backfilling();
    if !backfilling.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "ready": false,
                "reason": "sources are still reading their history",
                "sources": backfilling,
            })),
        );
    }
    let (latest, _) = state.engine.frontiers();
    (
        StatusCode::OK,
        Json(json!({"ready": true, "latest_timestamp": latest})),
    )
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.metrics.render(&state.engine);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
