//! Rows: the records every collection holds.
//!
//! Callers use only the methods here (`get`, `iter`, `len`, `concat`, …), never the field, so
//! the representation can later become packed bytes with a borrowed datum view (as Materialize
//! does) without touching the planner or the renderer.
//!
//! Rows are immutable and shared: differential dataflow clones records as it batches, merges
//! and joins them, and a clone of a `Row` is a reference-count increment, not an allocation.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// An ordered tuple of values.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Row(Arc<[Value]>);

impl std::hash::Hash for Row {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

// Differential compares records constantly while it sorts, merges and consolidates; clones of
// one row share their allocation, so a pointer check settles many comparisons at once.
impl PartialEq for Row {
    fn eq(&self, other: &Row) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for Row {}

impl PartialOrd for Row {
    fn partial_cmp(&self, other: &Row) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Row {
    fn cmp(&self, other: &Row) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            std::cmp::Ordering::Equal
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl Row {
    pub fn new(values: Vec<Value>) -> Row {
        Row(Arc::from(values))
    }

    pub fn empty() -> Row {
        Row(Arc::from(Vec::new()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, i: usize) -> &Value {
        &self.0[i]
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Value> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Value] {
        &self.0
    }

    pub fn into_values(self) -> Vec<Value> {
        self.0.to_vec()
    }

    /// This row followed by `other` (one allocation).
    pub fn concat(&self, other: &Row) -> Row {
        Row(self.0.iter().chain(other.0.iter()).cloned().collect())
    }

    /// The values at `cols`, in that order.
    pub fn project(&self, cols: &[usize]) -> Row {
        Row(cols.iter().map(|c| self.0[*c].clone()).collect())
    }

    /// A row of `n` NULLs.
    pub fn nulls(n: usize) -> Row {
        Row(std::iter::repeat_n(Value::Null, n).collect())
    }

    /// The row as JSON values in column order.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.0.iter().map(Value::to_json).collect())
    }
}

impl From<Vec<Value>> for Row {
    fn from(v: Vec<Value>) -> Row {
        Row::new(v)
    }
}

impl FromIterator<Value> for Row {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Row {
        Row(iter.into_iter().collect())
    }
}
