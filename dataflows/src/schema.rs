//! Column descriptions of tables, views and query results.

use serde::{Deserialize, Serialize};

use crate::value::DataType;

/// One column: name, type and whether it may hold NULL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: DataType,
    pub nullable: bool,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: DataType, nullable: bool) -> Column {
        Column {
            name: name.into(),
            ty,
            nullable,
        }
    }
}

/// The columns of a relation, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub columns: Vec<Column>,
}

impl Schema {
    pub fn new(columns: Vec<Column>) -> Schema {
        Schema { columns }
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Index of the column named `name`: an exact match, or else the only column whose name
    /// differs just in case (so ingest keys like `Price` find `price`).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.columns.iter().position(|c| c.name == name) {
            return Some(i);
        }
        let mut matches = self
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name.eq_ignore_ascii_case(name));
        match (matches.next(), matches.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// Columns as the API shows them: `[{"name", "type"}]`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.columns
                .iter()
                .map(|c| serde_json::json!({"name": c.name, "type": c.ty.name()}))
                .collect(),
        )
    }
}
