//! `GET /v1/catalog`: tables, views, sources, sinks and indexes with their columns and
//! definitions.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

pub async fn get(State(state): State<AppState>) -> Json<Value> {
    let items = state.engine.catalog();
    let of_kind = |k: &str| {
        items
            .iter()
            .filter(|i| i.kind == k)
            .map(|i| json!(i))
            .collect::<Vec<_>>()
    };
    let (latest, since) = state.engine.frontiers();
    let (processes, workers) = state.engine.topology();
    let failure = state.engine.failure();
    Json(json!({
        "tables": of_kind("table"),
        "views": of_kind("view"),
        "sources": of_kind("source"),
        "sinks": of_kind("sink"),
        "indexes": of_kind("index"),
        "timestamps": {"latest": latest, "earliest_retained": since},
        "cluster": {
            "processes": processes,
            "workers_per_process": workers,
            "state": if failure.is_some() { "failed" } else { "running" },
            "failure": failure,
        },
    }))
}
