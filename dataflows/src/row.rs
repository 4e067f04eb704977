//! Rows: the records every collection holds.
//!
//! Callers use only the methods here (`get`, `iter`, `len`, `concat`, …), never the field, so
//! the representation can later become packed bytes with a borrowed datum view (as Materialize
//! does) without touching the planner or the renderer.
//!
//! Rows are immutable and shared: differential dataflow clones records as it batches, merges
//! and joins them, and a clone of a `Row` is a reference-count increment, not an allocation.

use std::cmp::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// An ordered tuple of values.
///
/// Beside the shared values, a row carries `key`: two words that encode its first two values so
/// that comparing keys orders rows as comparing their values does, as far as the keys tell
/// them apart (`a < b` implies `key(a) <= key(b)`). When the encoding is exact (at most two
/// values, each one small enough), equal keys mean equal rows. Differential spends much of its
/// time comparing records while it sorts, merges and consolidates batches, and following the
/// pointers to the values was most of that time; with the key inline, rows of one or two
/// small columns never need the pointer to be compared.
#[derive(Clone, Debug)]
pub struct Row {
    key: [u64; 2],
    values: Arc<[Value]>,
}

// Rows travel (and are logged) as their values only; the key is recomputed.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Row")]
struct Repr(Arc<[Value]>);

impl Serialize for Row {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Repr(Arc::clone(&self.values)).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
        Repr::deserialize(d).map(|r| Row::from_arc(r.0))
    }
}

impl Default for Row {
    fn default() -> Row {
        Row::empty()
    }
}

impl std::hash::Hash for Row {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.values.hash(state);
    }
}

impl PartialEq for Row {
    fn eq(&self, other: &Row) -> bool {
        self.key == other.key
            && (self.key[1] & INEXACT == 0
                || Arc::ptr_eq(&self.values, &other.values)
                || self.values == other.values)
    }
}

impl Eq for Row {}

impl PartialOrd for Row {
    fn partial_cmp(&self, other: &Row) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Row {
    fn cmp(&self, other: &Row) -> Ordering {
        match self.key.cmp(&other.key) {
            Ordering::Equal
                if self.key[1] & INEXACT == 0 || Arc::ptr_eq(&self.values, &other.values) =>
            {
                Ordering::Equal
            }
            Ordering::Equal => self.values.cmp(&other.values),
            unequal => unequal,
        }
    }
}

/// The low bit of the second word: set when equal keys do not imply equal rows. (The low bit
/// of the first word is set when the first value is inexact, and then this one is set too.)
const INEXACT: u64 = 1;
/// Bits of one value's code that hold the value; the four above them hold its variant (0 for
/// a missing value), so a code fits in 63 bits.
const PAYLOAD_BITS: u32 = 59;
const PAYLOAD_MAX: u64 = (1 << PAYLOAD_BITS) - 1;
/// Integers in `-LIMIT < x < LIMIT - 1` are encoded exactly; the two payloads beyond stand for
/// everything below and above, so the order holds and exact codes never collide with them.
const LIMIT: i64 = 1 << (PAYLOAD_BITS - 1);

/// A value's code (orders like the value) and whether it is exact (equal codes, equal values).
fn code(value: &Value) -> (u64, bool) {
    let int = |x: i64| {
        if x <= -LIMIT {
            (0, false)
        } else if x >= LIMIT - 1 {
            (PAYLOAD_MAX, false)
        } else {
            ((x + LIMIT) as u64, true)
        }
    };
    let (variant, (payload, exact)) = match value {
        Value::Null => (1, (0, true)),
        Value::Bool(b) => (2, (*b as u64, true)),
        Value::Int(x) => (3, int(*x)),
        Value::Float(f) => (4, {
            let f = f.0;
            let payload = if f.is_nan() {
                // `OrderedFloat` puts NaN above everything.
                PAYLOAD_MAX
            } else {
                // -0.0 equals 0.0; flip the bits so their unsigned order is the float order.
                let bits = if f == 0.0 { 0u64 } else { f.to_bits() };
                let ordered = if bits >> 63 == 1 {
                    !bits
                } else {
                    bits | 1 << 63
                };
                ordered >> (64 - PAYLOAD_BITS)
            };
            (payload, false)
        }),
        Value::Text(t) => (5, {
            // The first seven bytes, zero-padded, then the length up to seven: byte-wise
            // string order, exact for strings of up to seven bytes.
            let mut b = [0u8; 8];
            let n = t.len().min(7);
            b[1..1 + n].copy_from_slice(&t.as_bytes()[..n]);
            ((u64::from_be_bytes(b) << 3) | n as u64, t.len() <= 7)
        }),
        Value::Timestamp(x) => (6, int(*x)),
        Value::Date(d) => (7, int(i64::from(*d))),
        Value::Interval(x) => (8, int(*x)),
    };
    ((variant << PAYLOAD_BITS) | payload, exact)
}

/// The key of a row with `values` (see [`Row`]).
fn key(values: &[Value]) -> [u64; 2] {
    let Some(first) = values.first() else {
        return [0, 0];
    };
    let (c0, exact0) = code(first);
    if !exact0 {
        // An exact value sorts before the inexact ones that share its code (a string of seven
        // bytes before the longer ones that start with it), hence the low bit; and rows in
        // the same bucket of the first value must not be ordered by their second.
        return [(c0 << 1) | 1, INEXACT];
    }
    let (c1, exact1) = values.get(1).map(code).unwrap_or((0, true));
    let exact = exact1 && values.len() <= 2;
    [c0 << 1, (c1 << 1) | u64::from(!exact)]
}

impl Row {
    pub fn new(values: Vec<Value>) -> Row {
        Row::from_arc(Arc::from(values))
    }

    fn from_arc(values: Arc<[Value]>) -> Row {
        Row {
            key: key(&values),
            values,
        }
    }

    pub fn empty() -> Row {
        Row::from_arc(Arc::from(Vec::new()))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn get(&self, i: usize) -> &Value {
        &self.values[i]
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Value> {
        self.values.iter()
    }

    pub fn as_slice(&self) -> &[Value] {
        &self.values
    }

    pub fn into_values(self) -> Vec<Value> {
        self.values.to_vec()
    }

    /// This row followed by `other` (one allocation).
    pub fn concat(&self, other: &Row) -> Row {
        Row::from_arc(
            self.values
                .iter()
                .chain(other.values.iter())
                .cloned()
                .collect(),
        )
    }

    /// The values at `cols`, in that order.
    pub fn project(&self, cols: &[usize]) -> Row {
        Row::from_arc(cols.iter().map(|c| self.values[*c].clone()).collect())
    }

    /// A row of `n` NULLs.
    pub fn nulls(n: usize) -> Row {
        Row::from_arc(std::iter::repeat_n(Value::Null, n).collect())
    }

    /// The row as JSON values in column order.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.values.iter().map(Value::to_json).collect())
    }
}

impl Row {
    /// The row as [`Row::to_json`] writes it, serialized straight from the values (no
    /// `serde_json::Value` tree per row: sinks write millions of rows).
    pub fn json(&self) -> JsonRow<'_> {
        JsonRow(self)
    }
}

/// A row serialized as a JSON array (see [`Row::json`]).
pub struct JsonRow<'a>(&'a Row);

impl Serialize for JsonRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0.iter() {
            seq.serialize_element(&JsonValue(v))?;
        }
        seq.end()
    }
}

/// One value as [`Value::to_json`] makes it.
struct JsonValue<'a>(&'a Value);

impl Serialize for JsonValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) if f.0.is_finite() => s.serialize_f64(f.0),
            Value::Float(f) => s.collect_str(&f.0),
            Value::Text(t) => s.serialize_str(t),
            other => s.collect_str(other),
        }
    }
}

/// Sorts `updates` by row, sums the diffs of equal rows and drops those that cancel.
pub fn consolidate(updates: &mut Vec<(Row, crate::plan::Diff)>) {
    differential_dataflow::consolidation::consolidate(updates);
}

impl From<Vec<Value>> for Row {
    fn from(v: Vec<Value>) -> Row {
        Row::new(v)
    }
}

impl FromIterator<Value> for Row {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Row {
        Row::from_arc(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values at the edges of every encoding, in no particular order.
    fn samples() -> Vec<Value> {
        let mut v = vec![Value::Null, Value::Bool(false), Value::Bool(true)];
        for x in [
            i64::MIN,
            -LIMIT - 1,
            -LIMIT,
            -LIMIT + 1,
            -8,
            -1,
            0,
            1,
            7,
            8,
            LIMIT - 2,
            LIMIT - 1,
            LIMIT,
            i64::MAX,
        ] {
            v.extend([
                Value::Int(x),
                Value::Timestamp(x),
                Value::Interval(x),
                Value::Date(x.clamp(i32::MIN as i64, i32::MAX as i64) as i32),
            ]);
        }
        for f in [
            f64::NEG_INFINITY,
            -1e300,
            -1.5,
            -0.0,
            0.0,
            1e-300,
            1.5,
            1e300,
            f64::INFINITY,
            f64::NAN,
        ] {
            v.push(Value::float(f));
        }
        for t in [
            "",
            "a",
            "a\0",
            "ab",
            "abcdef",
            "abcdefg",
            "abcdefg\0",
            "abcdefgh",
            "abcdefgz",
            "b",
            "é",
        ] {
            v.push(Value::text(t));
        }
        v
    }

    #[test]
    fn row_order_is_value_order() {
        let values = samples();
        let mut rows: Vec<Vec<Value>> = vec![vec![]];
        for a in &values {
            rows.push(vec![a.clone()]);
            for b in [
                Value::Null,
                Value::Int(1),
                Value::text("x"),
                Value::float(0.5),
            ] {
                rows.push(vec![a.clone(), b.clone()]);
                rows.push(vec![a.clone(), b.clone(), Value::Int(0)]);
            }
            for b in &values {
                rows.push(vec![Value::Int(1), b.clone()]);
            }
        }
        let packed: Vec<Row> = rows.iter().map(|r| Row::new(r.clone())).collect();
        for (a, ra) in rows.iter().zip(&packed) {
            for (b, rb) in rows.iter().zip(&packed) {
                assert_eq!(ra.cmp(rb), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(ra == rb, a == b, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn json_writes_what_to_json_builds() {
        let mut values = samples();
        values.extend([
            Value::text("quote \" and \\ and \n"),
            Value::Timestamp(1_732_540_000_123_456),
            Value::Date(20_000),
            Value::Interval(90_061_000_001),
        ]);
        let row = Row::new(values);
        assert_eq!(
            serde_json::to_string(&row.json()).unwrap(),
            row.to_json().to_string()
        );
    }

    #[test]
    fn serializes_as_its_values() {
        let row = Row::new(vec![Value::Int(3), Value::text("x")]);
        let json = serde_json::to_string(&row).unwrap();
        let values: Vec<Value> = vec![Value::Int(3), Value::text("x")];
        assert_eq!(json, serde_json::to_string(&values).unwrap());
        let back: Row = serde_json::from_str(&json).unwrap();
        assert_eq!(back, row);
        assert_eq!(back.cmp(&row), Ordering::Equal);
    }
}
