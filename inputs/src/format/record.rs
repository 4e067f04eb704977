//! One record at a time: a line of a file or the value of a Kafka message, decoded into a row
//! of the source's columns.
//!
//! HTTP ingest decodes whole bodies all-or-nothing; sources decode record by record so that a
//! bad record becomes an error beside the good ones instead of stopping the source.

use std::borrow::Cow;

use freshet_dataflows::connector::Format;
use freshet_dataflows::plan::Diff;
use freshet_dataflows::{Row, Schema, Value};

/// Decodes records of one format into rows of one schema.
#[derive(Clone, Debug)]
pub struct RecordDecoder {
    schema: Schema,
    format: Format,
    /// CSV: the column each field fills, in field order.
    csv_columns: Vec<usize>,
}

impl RecordDecoder {
    /// CSV fields fill the columns in declaration order until a header says otherwise.
    pub fn new(schema: Schema, format: Format) -> RecordDecoder {
        let csv_columns = (0..schema.len()).collect();
        RecordDecoder {
            schema,
            format,
            csv_columns,
        }
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Maps CSV fields to columns by the names in a header line.
    pub fn use_csv_header(&mut self, header: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(trim_eol(header))
            .map_err(|_| "the CSV header is not valid UTF-8".to_string())?;
        let mut fields = Vec::new();
        split_csv(text, &mut fields)?;
        let mut columns = Vec::with_capacity(fields.len());
        for f in &fields {
            let i = self
                .schema
                .index_of(f.trim())
                .ok_or_else(|| format!("CSV header names unknown column \"{f}\""))?;
            columns.push(i);
        }
        self.csv_columns = columns;
        Ok(())
    }

    /// Decodes one record; `None` for a blank line.
    pub fn decode(&self, record: &[u8]) -> Option<Result<(Row, Diff), String>> {
        let record = trim_eol(record);
        if record.iter().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        let text = match std::str::from_utf8(record) {
            Ok(t) => t,
            Err(_) => return Some(Err("record is not valid UTF-8".into())),
        };
        Some(match self.format {
            Format::Json => crate::format::json::decode_line(&self.schema, text.trim()),
            Format::Csv => self.decode_csv(text).map(|r| (r, 1)),
        })
    }

    fn decode_csv(&self, text: &str) -> Result<Row, String> {
        let mut fields = Vec::with_capacity(self.csv_columns.len());
        split_csv(text, &mut fields)?;
        if fields.len() != self.csv_columns.len() {
            return Err(format!(
                "expected {} CSV fields, found {}",
                self.csv_columns.len(),
                fields.len()
            ));
        }
        let mut values = vec![Value::Null; self.schema.len()];
        for (field, &i) in fields.iter().zip(&self.csv_columns) {
            values[i] = crate::format::csv::decode_field(&self.schema, i, field)?;
        }
        for (v, c) in values.iter().zip(&self.schema.columns) {
            if v.is_null() && !c.nullable {
                return Err(format!("missing value for NOT NULL column \"{}\"", c.name));
            }
        }
        Ok(Row::new(values))
    }
}

/// A line without its `\n` or `\r\n`.
pub fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits one CSV line into fields: commas separate, double quotes enclose (a doubled quote
/// inside is one quote). Borrowed where no unescaping is needed.
fn split_csv<'a>(line: &'a str, out: &mut Vec<Cow<'a, str>>) -> Result<(), String> {
    let bytes = line.as_bytes();
    let mut i = 0;
    loop {
        if bytes.get(i) == Some(&b'"') {
            let mut value = String::new();
            let mut j = i + 1;
            loop {
                match bytes.get(j) {
                    None => return Err("malformed CSV: quoted field is never closed".into()),
                    Some(b'"') if bytes.get(j + 1) == Some(&b'"') => {
                        value.push('"');
                        j += 2;
                    }
                    Some(b'"') => {
                        j += 1;
                        break;
                    }
                    Some(_) => {
                        let next = line[j..].find('"').map(|k| j + k).unwrap_or(bytes.len());
                        value.push_str(&line[j..next]);
                        j = next;
                    }
                }
            }
            out.push(Cow::Owned(value));
            match bytes.get(j) {
                None => return Ok(()),
                Some(b',') => i = j + 1,
                Some(_) => return Err("malformed CSV: text after a closing quote".into()),
            }
        } else {
            let end = line[i..].find(',').map(|k| i + k);
            match end {
                Some(e) => {
                    out.push(Cow::Borrowed(&line[i..e]));
                    i = e + 1;
                }
                None => {
                    out.push(Cow::Borrowed(&line[i..]));
                    return Ok(());
                }
            }
        }
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
    fn csv_records_with_quotes_and_headers() {
        let mut d = RecordDecoder::new(schema(), Format::Csv);
        let (row, diff) = d.decode(b"1,\"a, \"\"b\"\"\"\r\n").unwrap().unwrap();
        assert_eq!(row, Row::new(vec![Value::Int(1), Value::text("a, \"b\"")]));
        assert_eq!(diff, 1);
        assert!(d.decode(b"   \n").is_none());
        assert!(d.decode(b"x,y\n").unwrap().is_err());
        assert!(d.decode(b"1\n").unwrap().is_err());
        assert!(d.decode(b"1,\"open\n").unwrap().is_err());
        assert!(
            d.decode(b",a\n").unwrap().is_err(),
            "NOT NULL column left empty"
        );
        d.use_csv_header(b"name,id\n").unwrap();
        let (row, _) = d.decode(b"z,7").unwrap().unwrap();
        assert_eq!(row, Row::new(vec![Value::Int(7), Value::text("z")]));
        assert!(d.use_csv_header(b"nope,id").is_err());
    }

    #[test]
    fn json_records_insert_and_delete() {
        let d = RecordDecoder::new(schema(), Format::Json);
        let (row, diff) = d.decode(br#"{"delete": {"id": 3}}"#).unwrap().unwrap();
        assert_eq!(row, Row::new(vec![Value::Int(3), Value::Null]));
        assert_eq!(diff, -1);
        assert!(d.decode(b"{\"id\": \"x\"}").unwrap().is_err());
    }
}
