//! Column descriptions of tables, views and query results.

use serde::{Deserialize, Serialize};

use rust_decimal::{Decimal, RoundingStrategy};

use crate::value::{DataType, Value};

/// One column: name, type and whether it may hold NULL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: DataType,
    pub nullable: bool,
    /// A `numeric(precision, scale)` column's bounds, which every value written is fitted to.
    /// Always serialized: commands cross processes in bincode, which has no absent fields.
    #[serde(default)]
    pub numeric: Option<NumericBounds>,
}

/// The precision (digits in all) and scale (digits after the point) of a `numeric(p, s)`
/// column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumericBounds {
    pub precision: u8,
    pub scale: u8,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: DataType, nullable: bool) -> Column {
        Column {
            name: name.into(),
            ty,
            nullable,
            numeric: None,
        }
    }

    /// `v` (of this column's type) as the column stores it: for `numeric(p, s)`, rounded to
    /// `s` places (half away from zero) and refused when it then has more than `p - s` digits
    /// before the point, as PostgreSQL does.
    pub fn fit(&self, v: Value) -> Result<Value, String> {
        if self.fits(&v) {
            return Ok(v);
        }
        let (Some(b), Value::Numeric(d)) = (self.numeric, &v) else {
            return Ok(v);
        };
        let rounded =
            d.round_dp_with_strategy(u32::from(b.scale), RoundingStrategy::MidpointAwayFromZero);
        let whole_digits = u32::from(b.precision - b.scale);
        let limit = Decimal::from_i128_with_scale(10i128.pow(whole_digits), 0);
        if rounded.abs() >= limit {
            return Err(format!(
                "column \"{}\": numeric field overflow: a numeric({}, {}) value must be less \
                 than 10^{whole_digits} in absolute value, found {d}",
                self.name, b.precision, b.scale
            ));
        }
        Ok(Value::numeric(rounded))
    }

    /// Whether `v` is already as [`Column::fit`] would store it, so a row of such values can be
    /// kept as it is. Numerics are normalized (no trailing zeros), so one with at most `s`
    /// places is unchanged by rounding to `s`.
    pub fn fits(&self, v: &Value) -> bool {
        let (Some(b), Value::Numeric(d)) = (self.numeric, v) else {
            return true;
        };
        if d.scale() > u32::from(b.scale) {
            return false;
        }
        let whole_digits = u32::from(b.precision - b.scale);
        d.abs() < Decimal::from_i128_with_scale(10i128.pow(whole_digits), 0)
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
