//! Typed SQL values and their types.
//!
//! `Value` is the unit every row is made of. It is totally ordered and hashable (floats via
//! `OrderedFloat`), because differential dataflow sorts and exchanges rows by value. NULL sorts
//! first, which matches neither PostgreSQL's `NULLS LAST` default nor anything else by accident:
//! presentation order is decided by the ORDER BY finishing, not by this `Ord`.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike};
use ordered_float::OrderedFloat;
use serde::{Deserialize, Serialize};

use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::EvalError;

/// Microseconds in one day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The SQL types freshet knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DataType {
    Bool,
    Int,
    Float,
    Text,
    /// Microseconds since the Unix epoch, without time zone.
    Timestamp,
    /// Days since the Unix epoch.
    Date,
    /// A duration in microseconds.
    Interval,
    /// An exact decimal (up to 28 digits after the point, 96-bit mantissa).
    Numeric,
    /// The type of a bare `NULL` literal before it meets a context.
    Null,
}

impl DataType {
    /// The PostgreSQL-style name shown to users.
    pub fn name(&self) -> &'static str {
        match self {
            DataType::Bool => "boolean",
            DataType::Int => "bigint",
            DataType::Float => "double precision",
            DataType::Text => "text",
            DataType::Timestamp => "timestamp",
            DataType::Date => "date",
            DataType::Interval => "interval",
            DataType::Numeric => "numeric",
            DataType::Null => "null",
        }
    }

    /// Whether values of this type are numbers.
    pub fn is_numeric(&self) -> bool {
        matches!(self, DataType::Int | DataType::Float | DataType::Numeric)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One SQL value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(OrderedFloat<f64>),
    Text(Arc<str>),
    Timestamp(i64),
    Date(i32),
    Interval(i64),
    /// Always normalized (no trailing zeros after the point), so that equal numbers are equal
    /// values with equal encodings: build through [`Value::numeric`].
    Numeric(Decimal),
}

impl Value {
    pub fn text(s: &str) -> Value {
        Value::Text(Arc::from(s))
    }

    pub fn float(f: f64) -> Value {
        Value::Float(OrderedFloat(f))
    }

    /// A numeric value, normalized (see [`Value::Numeric`]).
    pub fn numeric(d: Decimal) -> Value {
        Value::Numeric(d.normalize())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The type of this value (`Null` for NULL).
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Null => DataType::Null,
            Value::Bool(_) => DataType::Bool,
            Value::Int(_) => DataType::Int,
            Value::Float(_) => DataType::Float,
            Value::Text(_) => DataType::Text,
            Value::Timestamp(_) => DataType::Timestamp,
            Value::Date(_) => DataType::Date,
            Value::Interval(_) => DataType::Interval,
            Value::Numeric(_) => DataType::Numeric,
        }
    }

    /// Truthiness for WHERE and HAVING: only `true` passes; NULL and false do not.
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    /// Converts this value to `ty`, following PostgreSQL's explicit cast rules.
    pub fn cast(&self, ty: DataType) -> Result<Value, EvalError> {
        let bad = || EvalError::InvalidCast {
            value: self.to_string(),
            to: ty.name().to_string(),
        };
        Ok(match (self, ty) {
            (Value::Null, _) => Value::Null,
            (v, t) if v.data_type() == t => v.clone(),
            (_, DataType::Null) => return Err(bad()),
            (Value::Int(i), DataType::Float) => Value::float(*i as f64),
            (Value::Float(f), DataType::Int) => {
                let r = f.0.round_ties_even();
                if !r.is_finite() || r < i64::MIN as f64 || r >= i64::MAX as f64 {
                    return Err(EvalError::Overflow("bigint".into()));
                }
                Value::Int(r as i64)
            }
            (Value::Bool(b), DataType::Int) => Value::Int(*b as i64),
            (Value::Int(i), DataType::Numeric) => Value::numeric(Decimal::from(*i)),
            (Value::Numeric(d), DataType::Int) => d
                .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
                .to_i64()
                .map(Value::Int)
                .ok_or_else(|| EvalError::Overflow("bigint".into()))?,
            (Value::Float(f), DataType::Numeric) => {
                if !f.0.is_finite() {
                    return Err(bad());
                }
                Value::numeric(
                    Decimal::from_f64(f.0).ok_or_else(|| EvalError::Overflow("numeric".into()))?,
                )
            }
            (Value::Numeric(d), DataType::Float) => Value::float(
                d.to_f64()
                    .ok_or_else(|| EvalError::Overflow("double precision".into()))?,
            ),
            (Value::Int(i), DataType::Bool) => Value::Bool(*i != 0),
            (v, DataType::Text) => Value::text(&v.to_string()),
            (Value::Text(s), t) => parse_text(s.trim(), t).ok_or_else(bad)?,
            (Value::Timestamp(us), DataType::Date) => {
                Value::Date(us.div_euclid(MICROS_PER_DAY) as i32)
            }
            (Value::Date(d), DataType::Timestamp) => Value::Timestamp(
                date_micros(*d).ok_or_else(|| EvalError::Overflow("timestamp".into()))?,
            ),
            _ => return Err(bad()),
        })
    }

    /// JSON form used by the HTTP API: numbers, strings, booleans and null.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(f.0)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| serde_json::Value::String(f.0.to_string())),
            // numeric too: a string is as exact as the value, where a JSON number is a
            // double to most readers.
            other => serde_json::Value::String(other.to_string()),
        }
    }

    /// Reads a JSON value as a value of type `ty` (ingest and literals in JSON bodies).
    pub fn from_json(json: &serde_json::Value, ty: DataType) -> Result<Value, String> {
        use serde_json::Value as J;
        let mismatch = || format!("expected {}, found {}", ty.name(), json);
        Ok(match (json, ty) {
            (J::Null, _) => Value::Null,
            (J::Bool(b), DataType::Bool) => Value::Bool(*b),
            (J::Number(n), DataType::Int) => Value::Int(n.as_i64().ok_or_else(mismatch)?),
            (J::Number(n), DataType::Float) => Value::float(n.as_f64().ok_or_else(mismatch)?),
            // The number as written (serde_json keeps integers exact and other numbers as the
            // shortest decimal that reads back as the same double).
            (J::Number(n), DataType::Numeric) => {
                parse_numeric(&n.to_string()).ok_or_else(mismatch)?
            }
            (J::Number(n), DataType::Timestamp) => {
                Value::Timestamp(n.as_i64().ok_or_else(mismatch)?.saturating_mul(1000))
            }
            (J::String(s), DataType::Text) => Value::text(s),
            (J::String(s), t) => parse_text(s.trim(), t).ok_or_else(mismatch)?,
            _ => return Err(mismatch()),
        })
    }
}

/// Parses the text form of a value of type `ty`; `None` when it does not parse.
pub fn parse_text(s: &str, ty: DataType) -> Option<Value> {
    Some(match ty {
        DataType::Bool => match s.to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "on" | "1" => Value::Bool(true),
            "f" | "false" | "no" | "off" | "0" => Value::Bool(false),
            _ => return None,
        },
        DataType::Int => Value::Int(s.parse().ok()?),
        DataType::Float => Value::float(s.parse().ok()?),
        DataType::Text => Value::text(s),
        DataType::Timestamp => Value::Timestamp(parse_timestamp(s)?),
        DataType::Date => Value::Date(parse_date(s)?),
        DataType::Interval => Value::Interval(parse_interval(s)?),
        DataType::Numeric => parse_numeric(s)?,
        DataType::Null => return None,
    })
}

/// Parses a decimal (`12.5`, `-0.001`, `1e6`); `None` when it does not parse or does not fit.
pub fn parse_numeric(s: &str) -> Option<Value> {
    let d = match s.contains(['e', 'E']) {
        true => Decimal::from_scientific(s).ok()?,
        false => Decimal::from_str_exact(s).ok()?,
    };
    Some(Value::numeric(d))
}

/// Microseconds since the epoch at the start of day `d` (`None` past the timestamp range).
pub fn date_micros(d: i32) -> Option<i64> {
    (d as i64).checked_mul(MICROS_PER_DAY)
}

fn epoch_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some((d - epoch_date()).num_days() as i32)
}

/// Parses `YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z]` or a bare date.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    parse_date(s).and_then(date_micros)
}

/// Parses intervals such as `5 seconds`, `1 hour`, `250 ms`, `1 day 2 hours`.
pub fn parse_interval(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut parts = s.split_whitespace().peekable();
    parts.peek()?;
    while let Some(num) = parts.next() {
        // Allow "5s" style as well as "5 seconds".
        let (n, unit) = match num.find(|c: char| c.is_ascii_alphabetic()) {
            Some(i) => (&num[..i], num[i..].to_string()),
            None => (num, parts.next()?.to_string()),
        };
        let n: f64 = n.parse().ok()?;
        let unit_us: f64 = match unit.to_ascii_lowercase().as_str() {
            "us" | "usec" | "microsecond" | "microseconds" => 1.0,
            "ms" | "msec" | "millisecond" | "milliseconds" => 1e3,
            "s" | "sec" | "secs" | "second" | "seconds" => 1e6,
            "m" | "min" | "mins" | "minute" | "minutes" => 60e6,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600e6,
            "d" | "day" | "days" => 86400e6,
            "w" | "week" | "weeks" => 7.0 * 86400e6,
            _ => return None,
        };
        total = total.checked_add((n * unit_us) as i64)?;
    }
    Some(total)
}

fn fmt_timestamp(us: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match DateTime::from_timestamp_micros(us) {
        Some(t) => {
            let t = t.naive_utc();
            write!(f, "{}", t.format("%Y-%m-%d %H:%M:%S"))?;
            let micros = t.nanosecond() / 1000;
            if micros != 0 {
                let digits = format!("{micros:06}");
                write!(f, ".{}", digits.trim_end_matches('0'))?;
            }
            Ok(())
        }
        None => write!(f, "{us}"),
    }
}

/// Doubles as PostgreSQL prints them: the shortest form that reads back exactly, with an
/// exponent for very large or small magnitudes.
fn fmt_float(x: f64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if x.is_nan() {
        return f.write_str("NaN");
    }
    if x.is_infinite() {
        return f.write_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
    }
    let abs = x.abs();
    if abs != 0.0 && !(1e-4..1e15).contains(&abs) {
        let s = format!("{x:e}");
        // Rust writes 1e20 / 1.5e-7; PostgreSQL writes 1e+20 / 1.5e-07.
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ("-", d),
            None => ("+", exp),
        };
        return write!(f, "{mantissa}e{sign}{digits:0>2}");
    }
    write!(f, "{x}")
}

fn fmt_interval(us: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (sign, us) = if us < 0 {
        ("-", -(us as i128))
    } else {
        ("", us as i128)
    };
    let days = us / MICROS_PER_DAY as i128;
    let rem = us % MICROS_PER_DAY as i128;
    let (h, m, s, frac) = (
        rem / 3_600_000_000,
        rem / 60_000_000 % 60,
        rem / 1_000_000 % 60,
        rem % 1_000_000,
    );
    if days != 0 {
        write!(f, "{sign}{days} {}", if days == 1 { "day" } else { "days" })?;
        if rem == 0 {
            return Ok(());
        }
        f.write_str(" ")?;
    }
    write!(f, "{sign}{h:02}:{m:02}:{s:02}")?;
    if frac != 0 {
        let digits = format!("{frac:06}");
        write!(f, ".{}", digits.trim_end_matches('0'))?;
    }
    Ok(())
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => fmt_float(x.0, f),
            Value::Text(s) => f.write_str(s),
            Value::Timestamp(us) => fmt_timestamp(*us, f),
            Value::Date(d) => {
                match epoch_date().checked_add_signed(chrono::Duration::days(*d as i64)) {
                    Some(date) => write!(f, "{}", date.format("%Y-%m-%d")),
                    None => write!(f, "{d} days after 1970-01-01"),
                }
            }
            Value::Interval(us) => fmt_interval(*us, f),
            Value::Numeric(d) => write!(f, "{d}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_round_trip_through_text() {
        let ts = Value::Timestamp(parse_timestamp("2026-11-25 10:11:12.5").unwrap());
        assert_eq!(ts.to_string(), "2026-11-25 10:11:12.5");
        assert_eq!(
            Value::text(&ts.to_string())
                .cast(DataType::Timestamp)
                .unwrap(),
            ts
        );
        let d = Value::text("2024-02-29").cast(DataType::Date).unwrap();
        assert_eq!(d.to_string(), "2024-02-29");
        assert!(Value::text("abc").cast(DataType::Int).is_err());
        assert_eq!(
            Value::float(2.5).cast(DataType::Int).unwrap(),
            Value::Int(2)
        );
        assert_eq!(
            Value::float(3.5).cast(DataType::Int).unwrap(),
            Value::Int(4)
        );
        assert_eq!(Value::float(2.0).to_string(), "2");
        assert_eq!(Value::float(1e20).to_string(), "1e+20");
        assert_eq!(
            Value::Interval(93_600_000_000).to_string(),
            "1 day 02:00:00"
        );
        assert_eq!(Value::Interval(2 * MICROS_PER_DAY).to_string(), "2 days");
    }

    #[test]
    fn intervals_parse() {
        assert_eq!(parse_interval("5 seconds"), Some(5_000_000));
        assert_eq!(parse_interval("1 hour"), Some(3_600_000_000));
        assert_eq!(parse_interval("250 ms"), Some(250_000));
        assert_eq!(parse_interval("2 minutes"), Some(120_000_000));
        assert_eq!(parse_interval("1 day 2 hours"), Some(93_600_000_000));
        assert_eq!(parse_interval("bogus"), None);
    }
}
