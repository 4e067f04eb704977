//! CSV: a header line naming columns, then one record per line (inserts). An empty field is
//! NULL, as in PostgreSQL's `COPY … CSV`.

use freshet_dataflows::value::parse_text;
use freshet_dataflows::{Row, Schema, Value};

use super::{FormatError, Updates};

/// Decodes CSV with a header line. The first bad record fails the whole input.
pub fn decode_with_header(schema: &Schema, input: &[u8]) -> Result<Updates, FormatError> {
    check_quoting(input)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| FormatError {
            line: 1,
            message: format!("malformed CSV header: {e}"),
        })?
        .clone();
    let mut positions = Vec::with_capacity(headers.len());
    for h in headers.iter() {
        let i = schema.index_of(h.trim()).ok_or_else(|| FormatError {
            line: 1,
            message: format!("unknown column \"{h}\""),
        })?;
        positions.push(i);
    }
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| FormatError {
            line: e.position().map(|p| p.line()).unwrap_or(0),
            message: format!("malformed CSV: {e}"),
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let mut values = vec![Value::Null; schema.len()];
        for (field, &i) in record.iter().zip(&positions) {
            values[i] =
                decode_field(schema, i, field).map_err(|message| FormatError { line, message })?;
        }
        for (v, c) in values.iter().zip(&schema.columns) {
            if v.is_null() && !c.nullable {
                return Err(FormatError {
                    line,
                    message: format!("missing value for NOT NULL column \"{}\"", c.name),
                });
            }
        }
        out.push((Row::new(values), 1));
    }
    Ok(out)
}

/// Rejects what the `csv` crate would quietly accept: a quoted field that never closes (it
/// would swallow the rest of the input) and text after a closing quote (`"ab"c`).
fn check_quoting(input: &[u8]) -> Result<(), FormatError> {
    #[derive(PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        AfterQuote,
    }
    let mut state = State::FieldStart;
    let mut line = 1u64;
    let mut opened_at = 1u64;
    for &b in input {
        state = match (state, b) {
            (State::Quoted, b'"') => State::AfterQuote,
            (State::Quoted, _) => State::Quoted,
            (State::AfterQuote, b'"') => State::Quoted,
            (State::AfterQuote | State::FieldStart | State::Unquoted, b',') => State::FieldStart,
            (State::AfterQuote | State::FieldStart | State::Unquoted, b'\n') => State::FieldStart,
            (State::AfterQuote, b'\r') => State::AfterQuote,
            (State::AfterQuote, _) => {
                return Err(FormatError {
                    line,
                    message: "malformed CSV: text after a closing quote".into(),
                })
            }
            (State::FieldStart, b'"') => {
                opened_at = line;
                State::Quoted
            }
            (State::FieldStart | State::Unquoted, _) => State::Unquoted,
        };
        if b == b'\n' {
            line += 1;
        }
    }
    if state == State::Quoted {
        return Err(FormatError {
            line: opened_at,
            message: "malformed CSV: quoted field is never closed".into(),
        });
    }
    Ok(())
}

/// Decodes one field of column `i`.
pub fn decode_field(schema: &Schema, i: usize, field: &str) -> Result<Value, String> {
    if field.is_empty() {
        return Ok(Value::Null);
    }
    let col = &schema.columns[i];
    let value = parse_text(field, col.ty).ok_or_else(|| {
        format!(
            "column \"{}\": invalid {} value \"{field}\"",
            col.name, col.ty
        )
    })?;
    col.fit(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_dataflows::{Column, DataType};

    #[test]
    fn numeric_fields_fit_their_columns_bounds() {
        use freshet_dataflows::schema::NumericBounds;
        let schema = Schema::new(vec![Column {
            numeric: Some(NumericBounds {
                precision: 4,
                scale: 1,
            }),
            ..Column::new("price", DataType::Numeric, true)
        }]);
        let got = decode_with_header(
            &schema,
            b"price
1.25
-999.94
",
        )
        .unwrap();
        let text: Vec<String> = got.iter().map(|(r, _)| r.get(0).to_string()).collect();
        assert_eq!(text, ["1.3", "-999.9"]);
        let err = decode_with_header(
            &schema,
            b"price
1
999.95
",
        )
        .unwrap_err();
        assert_eq!(err.line, 3);
        assert!(
            err.message.contains("numeric field overflow"),
            "{}",
            err.message
        );
    }

    #[test]
    fn decodes_with_header_and_reports_lines() {
        let schema = Schema::new(vec![
            Column::new("id", DataType::Int, false),
            Column::new("name", DataType::Text, true),
        ]);
        let got = decode_with_header(&schema, b"name,id\na,1\n,2\n").unwrap();
        assert_eq!(got[1].0, Row::new(vec![Value::Int(2), Value::Null]));
        let err = decode_with_header(&schema, b"id,name\n1,a\nx,b\n").unwrap_err();
        assert_eq!(err.line, 3);
        let err = decode_with_header(&schema, b"id,nope\n1,a\n").unwrap_err();
        assert_eq!(err.line, 1);
        let err = decode_with_header(&schema, b"id,name\n1,a\n2,\"open\n").unwrap_err();
        assert_eq!(err.line, 3);
        let err = decode_with_header(&schema, b"id,name\n1,\"ab\"c\n").unwrap_err();
        assert_eq!(err.line, 2);
        let ok = decode_with_header(&schema, b"id,name\r\n1,\"a \"\"b\"\" ,\nc\"\r\n").unwrap();
        assert_eq!(
            ok[0].0,
            Row::new(vec![Value::Int(1), Value::text("a \"b\" ,\nc")])
        );
    }
}
