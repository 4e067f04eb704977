//! SQL type names and implicit coercions.

use sqlparser::ast;

use crate::error::{Error, Result};
use crate::expr::{ScalarExpr, UnaryFunc};
use crate::schema::NumericBounds;
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
        // Precision and scale bound a column's values (`column_type`); a cast to them is not
        // supported: refused rather than ignored.
        "numeric" | "decimal" if name.contains('(') => {
            return Err(Error::unsupported(format!(
                "type {name} outside a column definition (cast to numeric, then round)"
            )))
        }
        "numeric" | "decimal" => DataType::Numeric,
        _ => return Err(Error::unsupported(format!("type {name}"))),
    })
}

/// A column definition's type, with a `numeric(precision[, scale])`'s bounds.
pub fn column_type(dt: &ast::DataType) -> Result<(DataType, Option<NumericBounds>)> {
    let info = match dt {
        ast::DataType::Numeric(info) | ast::DataType::Decimal(info) | ast::DataType::Dec(info) => {
            info
        }
        _ => return Ok((sql_type(dt)?, None)),
    };
    let (precision, scale) = match info {
        ast::ExactNumberInfo::None => return Ok((DataType::Numeric, None)),
        ast::ExactNumberInfo::Precision(p) => (*p, 0),
        ast::ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    // freshet's numeric holds 28 digits for certain (a 96-bit mantissa).
    if !(1..=28).contains(&precision) {
        return Err(Error::plan(format!(
            "NUMERIC precision {precision} must be between 1 and 28"
        )));
    }
    let scale = u64::try_from(scale)
        .ok()
        .filter(|s| *s <= precision)
        .ok_or_else(|| {
            Error::plan(format!(
                "NUMERIC scale {scale} must be between 0 and precision {precision}"
            ))
        })?;
    Ok((
        DataType::Numeric,
        Some(NumericBounds {
            precision: precision as u8,
            scale: scale as u8,
        }),
    ))
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
