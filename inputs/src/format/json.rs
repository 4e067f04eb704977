//! JSON lines: one object per line, keyed by column name (an insert), or
//! `{"insert": {…}}` / `{"delete": {…}}`.

use std::borrow::Cow;
use std::fmt;

use freshet_dataflows::value::parse_text;
use freshet_dataflows::{DataType, Row, Schema, Value};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
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
///
/// Values are decoded straight into typed values of the schema's columns (no intermediate
/// `serde_json::Value` tree, no allocated keys), because ingest decodes millions of lines.
pub fn decode_line(schema: &Schema, line: &str) -> Result<(Row, isize), String> {
    let mut de = serde_json::Deserializer::from_str(line);
    let record = RecordSeed { schema }
        .deserialize(&mut de)
        .map_err(|e| message(&e))?;
    de.end().map_err(|e| format!("malformed JSON: {e}"))?;
    Ok(record)
}

/// Builds a row from an object keyed by column name; absent columns are NULL.
pub fn object_row(schema: &Schema, obj: &Map<String, serde_json::Value>) -> Result<Row, String> {
    let mut values = vec![Value::Null; schema.len()];
    for (k, v) in obj {
        let i = schema
            .index_of(k)
            .ok_or_else(|| format!("unknown column \"{k}\""))?;
        let col = &schema.columns[i];
        let value =
            Value::from_json(v, col.ty).map_err(|e| format!("column \"{}\": {e}", col.name))?;
        values[i] = col.fit(value)?;
    }
    check_not_null(schema, &values)?;
    Ok(Row::new(values))
}

fn check_not_null(schema: &Schema, values: &[Value]) -> Result<(), String> {
    for (v, c) in values.iter().zip(&schema.columns) {
        if v.is_null() && !c.nullable {
            return Err(format!("missing value for NOT NULL column \"{}\"", c.name));
        }
    }
    Ok(())
}

/// Our own messages travel through serde as custom errors; JSON syntax errors get a prefix.
fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if e.is_data() {
        // serde_json appends " at line L column C"; the caller reports the line.
        match text.rfind(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        }
    } else {
        format!("malformed JSON: {text}")
    }
}

/// A whole record: a row object, or `{"insert": row}` / `{"delete": row}`.
struct RecordSeed<'a> {
    schema: &'a Schema,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = (Row, isize);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(RecordVisitor {
            schema: self.schema,
        })
    }
}

struct RecordVisitor<'a> {
    schema: &'a Schema,
}

impl<'de> Visitor<'de> for RecordVisitor<'_> {
    type Value = (Row, isize);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let schema = self.schema;
        let envelope_names =
            schema.index_of("insert").is_none() && schema.index_of("delete").is_none();
        let mut values = vec![Value::Null; schema.len()];
        let mut seen_column = false;
        let mut envelope: Option<isize> = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let key = key.0.as_ref();
            if envelope_names
                && !seen_column
                && envelope.is_none()
                && (key == "insert" || key == "delete")
            {
                let row = map.next_value_seed(RowSeed { schema })?;
                envelope = Some(if key == "insert" { 1 } else { -1 });
                values = row.into_values();
                continue;
            }
            if envelope.is_some() {
                return Err(de::Error::custom(
                    "an \"insert\"/\"delete\" record must have exactly one key",
                ));
            }
            seen_column = true;
            read_column(&mut map, schema, key, &mut values)?;
        }
        if envelope.is_none() {
            check_not_null(schema, &values).map_err(de::Error::custom)?;
        }
        Ok((Row::new(values), envelope.unwrap_or(1)))
    }
}

/// Reads the value of column `key` into its place in `values`.
fn read_column<'de, A: MapAccess<'de>>(
    map: &mut A,
    schema: &Schema,
    key: &str,
    values: &mut [Value],
) -> Result<(), A::Error> {
    let i = schema
        .index_of(key)
        .ok_or_else(|| de::Error::custom(format!("unknown column \"{key}\"")))?;
    let value = map.next_value_seed(ValueSeed { schema, column: i })?;
    values[i] = schema.columns[i].fit(value).map_err(de::Error::custom)?;
    Ok(())
}

/// A row object.
struct RowSeed<'a> {
    schema: &'a Schema,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Row;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Row, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Row;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of column values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
        let schema = self.schema;
        let mut values = vec![Value::Null; schema.len()];
        while let Some(key) = map.next_key::<Key<'de>>()? {
            read_column(&mut map, schema, key.0.as_ref(), &mut values)?;
        }
        check_not_null(schema, &values).map_err(de::Error::custom)?;
        Ok(Row::new(values))
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a column name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// One column's value, converted to the column's type as it is read.
struct ValueSeed<'a> {
    schema: &'a Schema,
    column: usize,
}

impl ValueSeed<'_> {
    fn ty(&self) -> DataType {
        self.schema.columns[self.column].ty
    }

    fn mismatch<E: de::Error>(&self, found: &dyn fmt::Display) -> E {
        let col = &self.schema.columns[self.column];
        E::custom(format!(
            "column \"{}\": expected {}, found {found}",
            col.name,
            col.ty.name()
        ))
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} value", self.ty().name())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        match self.ty() {
            DataType::Bool => Ok(Value::Bool(v)),
            _ => Err(self.mismatch(&v)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        match self.ty() {
            DataType::Int => Ok(Value::Int(v)),
            DataType::Float => Ok(Value::float(v as f64)),
            DataType::Timestamp => Ok(Value::Timestamp(v.saturating_mul(1000))),
            DataType::Numeric => Value::Int(v)
                .cast(DataType::Numeric)
                .map_err(|_| self.mismatch(&v)),
            _ => Err(self.mismatch(&v)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        match i64::try_from(v) {
            Ok(i) => self.visit_i64(i),
            Err(_) if self.ty() == DataType::Float => Ok(Value::float(v as f64)),
            Err(_) if self.ty() == DataType::Numeric => {
                parse_text(&v.to_string(), DataType::Numeric).ok_or_else(|| self.mismatch(&v))
            }
            Err(_) => Err(self.mismatch(&v)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.ty() {
            DataType::Float => Ok(Value::float(v)),
            // The shortest decimal that reads back as this double: `12.34` stays 12.34. A
            // number with more digits than a double holds loses them; a string keeps them all.
            DataType::Numeric => Value::float(v)
                .cast(DataType::Numeric)
                .map_err(|_| self.mismatch(&v)),
            _ => Err(self.mismatch(&v)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        match self.ty() {
            DataType::Text => Ok(Value::text(v)),
            ty => parse_text(v.trim(), ty).ok_or_else(|| self.mismatch(&format!("\"{v}\""))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<Value, A::Error> {
        Err(self.mismatch(&"an object"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> Result<Value, A::Error> {
        Err(self.mismatch(&"an array"))
    }
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
