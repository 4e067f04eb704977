//! JSON lines: one object per line, keyed by column name (an insert), or
//! `{"insert": {…}}` / `{"delete": {…}}`.

use freshet_dataflows::{Row, Schema, Value};
use serde_json::Map;

use super::{FormatError, Updates};

/// Decodes newline-delimited JSON. Blank lines are skipped. The first bad line fails the
/// whole input, so callers can apply all or nothing.
pub fn decode_ndjson(schema: &Schema, input: &str) -> Result<Updates, FormatError> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line_no = i as u64 + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        out.push(decode_line(schema, trimmed).map_err(|message| FormatError {
            line: line_no,
            message,
        })?);
    }
    Ok(out)
}

/// Decodes one JSON record into an update.
pub fn decode_line(schema: &Schema, line: &str) -> Result<(Row, isize), String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("malformed JSON: {e}"))?;
    let serde_json::Value::Object(obj) = value else {
        return Err("expected a JSON object".into());
    };
    let is_envelope = obj.len() == 1
        && (obj.contains_key("insert") || obj.contains_key("delete"))
        && schema.index_of("insert").is_none()
        && schema.index_of("delete").is_none();
    if is_envelope {
        let (kind, inner) = obj.into_iter().next().expect("one entry");
        let serde_json::Value::Object(fields) = inner else {
            return Err(format!("\"{kind}\" must be an object"));
        };
        let row = object_row(schema, &fields)?;
        return Ok((row, if kind == "insert" { 1 } else { -1 }));
    }
    Ok((object_row(schema, &obj)?, 1))
}

/// Builds a row from an object keyed by column name; absent columns are NULL.
pub fn object_row(schema: &Schema, obj: &Map<String, serde_json::Value>) -> Result<Row, String> {
    let mut values = vec![Value::Null; schema.len()];
    for (k, v) in obj {
        let i = schema
            .index_of(k)
            .ok_or_else(|| format!("unknown column \"{k}\""))?;
        let col = &schema.columns[i];
        values[i] =
            Value::from_json(v, col.ty).map_err(|e| format!("column \"{}\": {e}", col.name))?;
    }
    for (v, c) in values.iter().zip(&schema.columns) {
        if v.is_null() && !c.nullable {
            return Err(format!("missing value for NOT NULL column \"{}\"", c.name));
        }
    }
    Ok(Row::new(values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_dataflows::{Column, DataType};

    fn schema() -> Schema {
        Schema::new(vec![
            Column::new("id", DataType::Int, false),
            Column::new("name", DataType::Text, true),
        ])
    }

    #[test]
    fn decodes_inserts_and_deletes() {
        let got = decode_ndjson(
            &schema(),
            "{\"id\": 1, \"name\": \"a\"}\n\n{\"delete\": {\"id\": 2}}\n",
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (Row::new(vec![Value::Int(1), Value::text("a")]), 1));
        assert_eq!(got[1], (Row::new(vec![Value::Int(2), Value::Null]), -1));
    }

    #[test]
    fn reports_the_bad_line() {
        let err = decode_ndjson(&schema(), "{\"id\": 1}\n{\"id\": \"x\"}\n").unwrap_err();
        assert_eq!(err.line, 2);
        let err = decode_ndjson(&schema(), "{\"name\": \"a\"}").unwrap_err();
        assert!(err.message.contains("NOT NULL"), "{}", err.message);
        let err = decode_ndjson(&schema(), "{\"id\": 1, \"bogus\": 2}").unwrap_err();
        assert!(err.message.contains("unknown column"), "{}", err.message);
        let err = decode_ndjson(&schema(), "{\"id\": 1").unwrap_err();
        assert!(err.message.contains("malformed JSON"), "{}", err.message);
    }
}
