//! JSON shapes of results, shared by the SQL, read and subscribe routes.

use freshet_dataflows::engine::StatementResult;
use freshet_dataflows::{Column, Row};
use serde_json::{json, Value};

pub fn columns(cols: &[Column]) -> Value {
    Value::Array(
        cols.iter()
            .map(|c| json!({"name": c.name, "type": c.ty.name()}))
            .collect(),
    )
}

pub fn rows(rows: &[Row]) -> Value {
    Value::Array(rows.iter().map(Row::to_json).collect())
}

pub fn statement_result(r: &StatementResult) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("tag".into(), Value::String(r.tag.clone()));
    if let Some(ts) = r.timestamp {
        obj.insert("timestamp".into(), json!(ts));
    }
    if let Some(cols) = &r.columns {
        obj.insert("columns".into(), columns(cols));
    }
    if let Some(rs) = &r.rows {
        obj.insert("rows".into(), rows(rs));
    }
    Value::Object(obj)
}
