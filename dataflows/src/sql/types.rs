//! SQL type names and implicit coercions.

use sqlparser::ast;

use crate::error::{Error, Result};
use crate::expr::{ScalarExpr, UnaryFunc};
use crate::value::DataType;

/// Maps a SQL type name to a freshet type.
pub fn sql_type(dt: &ast::DataType) -> Result<DataType> {
    let name = dt.to_string().to_ascii_lowercase();
    let base = name.split('(').next().unwrap_or("").trim();
    Ok(match base {
        "bool" | "boolean" => DataType::Bool,
        "bigint" | "int" | "integer" | "smallint" | "int2" | "int4" | "int8" | "tinyint" => {
            DataType::Int
        }
        "double precision" | "double" | "float" | "float4" | "float8" | "real" => DataType::Float,
        "text" | "varchar" | "character varying" | "char" | "character" | "string" => {
            DataType::Text
        }
        "timestamp" | "timestamp without time zone" | "datetime" => DataType::Timestamp,
        "date" => DataType::Date,
        "interval" => DataType::Interval,
        // A declared precision and scale would round and bound every value written, which
        // freshet does not do yet: refused rather than ignored.
        "numeric" | "decimal" if name.contains('(') => {
            return Err(Error::unsupported(format!(
                "type {name} (numeric with a precision or scale; plain numeric is supported)"
            )))
        }
        "numeric" | "decimal" => DataType::Numeric,
        _ => return Err(Error::unsupported(format!("type {name}"))),
    })
}

/// The type both operands of a comparison or set operation are converted to.
pub fn common_type(a: DataType, b: DataType) -> Option<DataType> {
    use DataType::*;
    Some(match (a, b) {
        (x, y) if x == y => x,
        (Null, y) => y,
        (x, Null) => x,
        (Int, Float) | (Float, Int) => Float,
        // As PostgreSQL: integers widen to numeric, numeric to double precision.
        (Int, Numeric) | (Numeric, Int) => Numeric,
        (Numeric, Float) | (Float, Numeric) => Float,
        (Timestamp, Date) | (Date, Timestamp) => Timestamp,
        (Text, y) => y,
        (x, Text) => x,
        _ => return None,
    })
}

/// Converts `e` of type `from` to `to` (a no-op when they agree).
pub fn coerce(e: ScalarExpr, from: DataType, to: DataType) -> ScalarExpr {
    if from == to || from == DataType::Null {
        e
    } else {
        e.call_unary(UnaryFunc::Cast(to)).reduce_constants()
    }
}
