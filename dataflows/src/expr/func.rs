//! The functions and operators expressions call, with PostgreSQL semantics.
//!
//! NULL in gives NULL out unless the function says otherwise (IS NULL, COALESCE, AND/OR with
//! three-valued logic). Arithmetic is checked: overflow and division by zero are `EvalError`s.

use serde::{Deserialize, Serialize};

use super::ScalarExpr;
use crate::error::EvalError;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::value::{DataType, Value, MICROS_PER_DAY};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UnaryFunc {
    Not,
    Neg,
    IsNull,
    IsNotNull,
    IsTrue,
    IsFalse,
    Cast(DataType),
    Abs,
    Floor,
    Ceil,
    Round,
    Sqrt,
    Ln,
    Exp,
    Sign,
    Lower,
    Upper,
    Length,
    Trim,
    LTrim,
    RTrim,
    Reverse,
    /// `extract(field FROM x)` / `date_part('field', x)` for a timestamp or date.
    Extract(String),
    /// `date_trunc('unit', ts)`.
    DateTrunc(String),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BinaryFunc {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    NotEq,
    Lt,
    Lte,
    Gt,
    Gte,
    /// `||` on text.
    Concat,
    Like,
    ILike,
    Power,
    RoundTo,
    Left,
    Right,
    StrPos,
    Repeat,
    /// `tumble(ts, interval)`: the start of the window `ts` falls in.
    Tumble,
    /// `start + size` where `start` is a window start `tumble(…, size)` made, with the same
    /// size: `tumble_end`. `tumble` fails where the end would be out of range, so this
    /// cannot fail where its argument did not (see [`super::ScalarExpr::cannot_fail`]).
    WindowEnd,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VariadicFunc {
    And,
    Or,
    Coalesce,
    Greatest,
    Least,
    Concat,
    Substr,
    Replace,
    SplitPart,
    LPad,
    RPad,
}

fn overflow() -> EvalError {
    EvalError::Overflow("bigint".into())
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(f.0),
        _ => None,
    }
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

fn type_error(what: &str, v: &Value) -> EvalError {
    EvalError::InvalidArgument(format!("{what} does not accept {}", v.data_type()))
}

fn checked_float(f: f64) -> Result<Value, EvalError> {
    if f.is_finite() {
        Ok(Value::float(f))
    } else {
        Err(EvalError::Overflow("double precision".into()))
    }
}

impl UnaryFunc {
    pub fn eval(&self, v: Value) -> Result<Value, EvalError> {
        use UnaryFunc::*;
        match self {
            IsNull => return Ok(Value::Bool(v.is_null())),
            IsNotNull => return Ok(Value::Bool(!v.is_null())),
            IsTrue => return Ok(Value::Bool(v.is_true())),
            IsFalse => return Ok(Value::Bool(matches!(v, Value::Bool(false)))),
            _ => {}
        }
        if v.is_null() {
            return Ok(Value::Null);
        }
        Ok(match self {
            Not => match v {
                Value::Bool(b) => Value::Bool(!b),
                other => return Err(type_error("NOT", &other)),
            },
            Neg => match v {
                Value::Int(i) => Value::Int(i.checked_neg().ok_or_else(overflow)?),
                Value::Float(f) => Value::float(-f.0),
                Value::Interval(i) => Value::Interval(i.checked_neg().ok_or_else(overflow)?),
                Value::Numeric(d) => Value::numeric(-d),
                other => return Err(type_error("unary minus", &other)),
            },
            Cast(ty) => v.cast(*ty)?,
            Abs => match v {
                Value::Int(i) => Value::Int(i.checked_abs().ok_or_else(overflow)?),
                Value::Float(f) => Value::float(f.0.abs()),
                Value::Numeric(d) => Value::numeric(d.abs()),
                other => return Err(type_error("abs", &other)),
            },
            Floor | Ceil | Round | Sign if matches!(v, Value::Numeric(_)) => {
                let Value::Numeric(d) = v else {
                    unreachable!("matched above")
                };
                Value::numeric(match self {
                    Floor => d.floor(),
                    Ceil => d.ceil(),
                    // As PostgreSQL rounds numeric: half away from zero.
                    Round => d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero),
                    _ => match d.is_zero() {
                        true => Decimal::ZERO,
                        false if d.is_sign_negative() => Decimal::NEGATIVE_ONE,
                        false => Decimal::ONE,
                    },
                })
            }
            Floor | Ceil | Round | Sqrt | Ln | Exp | Sign => {
                if let (Value::Int(i), Floor | Ceil | Round) = (&v, self) {
                    return Ok(Value::Int(*i));
                }
                if let (Value::Int(i), Sign) = (&v, self) {
                    return Ok(Value::Int(i.signum()));
                }
                let x = num(&v).ok_or_else(|| type_error("math function", &v))?;
                match self {
                    Floor => Value::float(x.floor()),
                    Ceil => Value::float(x.ceil()),
                    Round => Value::float(x.round_ties_even()),
                    Sign => Value::float(x.signum()),
                    Sqrt if x < 0.0 => {
                        return Err(EvalError::InvalidArgument(
                            "cannot take square root of a negative number".into(),
                        ))
                    }
                    Sqrt => Value::float(x.sqrt()),
                    Ln if x <= 0.0 => {
                        return Err(EvalError::InvalidArgument(
                            "cannot take logarithm of zero or a negative number".into(),
                        ))
                    }
                    Ln => Value::float(x.ln()),
                    Exp => checked_float(x.exp())?,
                    _ => unreachable!("handled above"),
                }
            }
            Lower | Upper | Length | Trim | LTrim | RTrim | Reverse => {
                let s = text(&v).ok_or_else(|| type_error("string function", &v))?;
                match self {
                    Lower => Value::text(&s.to_lowercase()),
                    Upper => Value::text(&s.to_uppercase()),
                    Length => Value::Int(s.chars().count() as i64),
                    Trim => Value::text(s.trim()),
                    LTrim => Value::text(s.trim_start()),
                    RTrim => Value::text(s.trim_end()),
                    Reverse => Value::text(&s.chars().rev().collect::<String>()),
                    _ => unreachable!("handled above"),
                }
            }
            Extract(field) => extract(field, &v)?,
            DateTrunc(unit) => date_trunc(unit, &v)?,
            IsNull | IsNotNull | IsTrue | IsFalse => unreachable!("handled above"),
        })
    }
}

/// `round(x, places)` on a decimal, half away from zero; negative places round to tens,
/// hundreds, … as PostgreSQL does.
fn round_decimal(x: Decimal, places: i64) -> Result<Value, EvalError> {
    let overflow = || EvalError::Overflow("numeric".into());
    if places >= 0 {
        let places = places.min(Decimal::MAX_SCALE as i64) as u32;
        return Ok(Value::numeric(x.round_dp_with_strategy(
            places,
            RoundingStrategy::MidpointAwayFromZero,
        )));
    }
    // Past 28 places every decimal rounds to zero.
    if places < -28 {
        return Ok(Value::numeric(Decimal::ZERO));
    }
    let unit = Decimal::from_i128_with_scale(10i128.pow((-places) as u32), 0);
    let scaled = x.checked_div(unit).ok_or_else(overflow)?;
    let rounded = scaled.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    Ok(Value::numeric(
        rounded.checked_mul(unit).ok_or_else(overflow)?,
    ))
}

fn timestamp_of(v: &Value) -> Result<i64, EvalError> {
    match v {
        Value::Timestamp(t) => Ok(*t),
        Value::Date(d) => {
            crate::value::date_micros(*d).ok_or_else(|| EvalError::Overflow("timestamp".into()))
        }
        other => Err(type_error("date/time function", other)),
    }
}

fn extract(field: &str, v: &Value) -> Result<Value, EvalError> {
    use chrono::{Datelike, Timelike};
    if let (Value::Interval(us), "epoch") = (v, field) {
        return Ok(Value::float(*us as f64 / 1e6));
    }
    let us = timestamp_of(v)?;
    if field == "epoch" {
        return Ok(Value::float(us as f64 / 1e6));
    }
    let t = chrono::DateTime::from_timestamp_micros(us)
        .ok_or_else(|| EvalError::Overflow("timestamp".into()))?
        .naive_utc();
    let n: i64 = match field {
        "year" => t.year() as i64,
        "month" => t.month() as i64,
        "day" => t.day() as i64,
        "hour" => t.hour() as i64,
        "minute" => t.minute() as i64,
        "second" => {
            return Ok(Value::float(
                t.second() as f64 + t.nanosecond() as f64 / 1e9,
            ))
        }
        "dow" => t.weekday().num_days_from_sunday() as i64,
        "doy" => t.ordinal() as i64,
        "week" => t.iso_week().week() as i64,
        "quarter" => (t.month0() / 3 + 1) as i64,
        "millisecond" | "milliseconds" => (t.second() * 1000 + t.nanosecond() / 1_000_000) as i64,
        other => {
            return Err(EvalError::InvalidArgument(format!(
                "unknown date field \"{other}\""
            )))
        }
    };
    Ok(Value::float(n as f64))
}

fn date_trunc(unit: &str, v: &Value) -> Result<Value, EvalError> {
    use chrono::{Datelike, NaiveDate};
    let us = timestamp_of(v)?;
    let fixed = |step: i64| {
        us.div_euclid(step)
            .checked_mul(step)
            .map(Value::Timestamp)
            .ok_or_else(|| EvalError::Overflow("timestamp".into()))
    };
    match unit {
        "microsecond" | "microseconds" => fixed(1),
        "millisecond" | "milliseconds" => fixed(1_000),
        "second" => fixed(1_000_000),
        "minute" => fixed(60_000_000),
        "hour" => fixed(3_600_000_000),
        "day" => fixed(MICROS_PER_DAY),
        "week" | "month" | "quarter" | "year" => {
            let t = chrono::DateTime::from_timestamp_micros(us)
                .ok_or_else(|| EvalError::Overflow("timestamp".into()))?
                .date_naive();
            let d = match unit {
                "week" => t - chrono::Duration::days(t.weekday().num_days_from_monday() as i64),
                "month" => NaiveDate::from_ymd_opt(t.year(), t.month(), 1).expect("valid"),
                "quarter" => {
                    NaiveDate::from_ymd_opt(t.year(), t.month0() / 3 * 3 + 1, 1).expect("valid")
                }
                _ => NaiveDate::from_ymd_opt(t.year(), 1, 1).expect("valid"),
            };
            Ok(Value::Timestamp(
                d.and_hms_opt(0, 0, 0)
                    .expect("valid")
                    .and_utc()
                    .timestamp_micros(),
            ))
        }
        other => Err(EvalError::InvalidArgument(format!(
            "unknown date_trunc unit \"{other}\""
        ))),
    }
}

impl BinaryFunc {
    /// The infix spelling, for EXPLAIN.
    pub fn infix(&self) -> Option<&'static str> {
        use BinaryFunc::*;
        Some(match self {
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "%",
            Eq => "=",
            NotEq => "<>",
            Lt => "<",
            Lte => "<=",
            Gt => ">",
            Gte => ">=",
            Concat => "||",
            Like => "LIKE",
            ILike => "ILIKE",
            _ => return None,
        })
    }

    pub fn eval(&self, a: &ScalarExpr, b: &ScalarExpr, row: &[Value]) -> Result<Value, EvalError> {
        let a = a.eval(row)?;
        let b = b.eval(row)?;
        self.eval_values(a, b)
    }

    pub fn eval_values(&self, a: Value, b: Value) -> Result<Value, EvalError> {
        use BinaryFunc::*;
        if a.is_null() || b.is_null() {
            return Ok(Value::Null);
        }
        Ok(match self {
            Add | Sub | Mul | Div | Mod => arith(self, a, b)?,
            Eq => Value::Bool(a == b),
            NotEq => Value::Bool(a != b),
            Lt => Value::Bool(a < b),
            Lte => Value::Bool(a <= b),
            Gt => Value::Bool(a > b),
            Gte => Value::Bool(a >= b),
            Concat => Value::text(&format!("{a}{b}")),
            Like | ILike => {
                let (s, p) = (
                    text(&a).ok_or_else(|| type_error("LIKE", &a))?,
                    text(&b).ok_or_else(|| type_error("LIKE", &b))?,
                );
                Value::Bool(super::like_match(s, p, *self == ILike))
            }
            Power => {
                let (x, y) = (
                    num(&a).ok_or_else(|| type_error("power", &a))?,
                    num(&b).ok_or_else(|| type_error("power", &b))?,
                );
                if x == 0.0 && y < 0.0 {
                    return Err(EvalError::DivisionByZero);
                }
                checked_float(x.powf(y))?
            }
            RoundTo if matches!(a, Value::Numeric(_)) => {
                let (Value::Numeric(x), Value::Int(places)) = (&a, &b) else {
                    return Err(type_error("round", &b));
                };
                round_decimal(*x, *places)?
            }
            RoundTo => {
                let x = num(&a).ok_or_else(|| type_error("round", &a))?;
                let Value::Int(d) = b else {
                    return Err(type_error("round", &b));
                };
                let m = 10f64.powi(d.clamp(-300, 300) as i32);
                Value::float((x * m).round_ties_even() / m)
            }
            Left | Right => {
                let s = text(&a).ok_or_else(|| type_error("left/right", &a))?;
                let Value::Int(n) = b else {
                    return Err(type_error("left/right", &b));
                };
                let len = s.chars().count() as i64;
                let take = if n >= 0 { n.min(len) } else { (len + n).max(0) } as usize;
                let out: String = if *self == Left {
                    s.chars().take(take).collect()
                } else {
                    s.chars().skip(len as usize - take).collect()
                };
                Value::text(&out)
            }
            StrPos => {
                let (s, sub) = (
                    text(&a).ok_or_else(|| type_error("strpos", &a))?,
                    text(&b).ok_or_else(|| type_error("strpos", &b))?,
                );
                Value::Int(
                    s.find(sub)
                        .map(|i| s[..i].chars().count() as i64 + 1)
                        .unwrap_or(0),
                )
            }
            Repeat => {
                let s = text(&a).ok_or_else(|| type_error("repeat", &a))?;
                let Value::Int(n) = b else {
                    return Err(type_error("repeat", &b));
                };
                if n.max(0) as u128 * s.len() as u128 > 1 << 26 {
                    return Err(EvalError::InvalidArgument("repeat result too large".into()));
                }
                Value::text(&s.repeat(n.max(0) as usize))
            }
            Tumble => {
                let ts = timestamp_of(&a)?;
                let Value::Interval(w) = b else {
                    return Err(type_error("tumble", &b));
                };
                if w <= 0 {
                    return Err(EvalError::InvalidArgument(
                        "window size must be positive".into(),
                    ));
                }
                // A window whose end is out of range is an error too: then its end
                // (`WindowEnd`) never is where its start was not.
                let start = ts.div_euclid(w).checked_mul(w);
                match start.filter(|s| s.checked_add(w).is_some()) {
                    Some(s) => Value::Timestamp(s),
                    None => return Err(EvalError::Overflow("timestamp".into())),
                }
            }
            WindowEnd => arith(&Add, a, b)?,
        })
    }
}

/// Exact arithmetic on two decimals: overflow past 96 bits of mantissa is an error; a result
/// with more than 28 digits after the point is rounded there.
fn decimal_arith(f: &BinaryFunc, x: Decimal, y: Decimal) -> Result<Value, EvalError> {
    use BinaryFunc::*;
    let overflow = || EvalError::Overflow("numeric".into());
    if matches!(f, Div | Mod) && y.is_zero() {
        return Err(EvalError::DivisionByZero);
    }
    let r = match f {
        Add => x.checked_add(y),
        Sub => x.checked_sub(y),
        Mul => x.checked_mul(y),
        Div => x.checked_div(y),
        Mod => x.checked_rem(y),
        _ => unreachable!("arith"),
    };
    Ok(Value::numeric(r.ok_or_else(overflow)?))
}

fn arith(f: &BinaryFunc, a: Value, b: Value) -> Result<Value, EvalError> {
    use BinaryFunc::*;
    Ok(match (a, b) {
        (Value::Numeric(x), Value::Numeric(y)) => decimal_arith(f, x, y)?,
        (Value::Numeric(x), Value::Int(y)) => decimal_arith(f, x, Decimal::from(y))?,
        (Value::Int(x), Value::Numeric(y)) => decimal_arith(f, Decimal::from(x), y)?,
        (Value::Int(x), Value::Int(y)) => Value::Int(match f {
            Add => x.checked_add(y).ok_or_else(overflow)?,
            Sub => x.checked_sub(y).ok_or_else(overflow)?,
            Mul => x.checked_mul(y).ok_or_else(overflow)?,
            Div if y == 0 => return Err(EvalError::DivisionByZero),
            Div => x.checked_div(y).ok_or_else(overflow)?,
            Mod if y == 0 => return Err(EvalError::DivisionByZero),
            Mod => x.checked_rem(y).unwrap_or(0),
            _ => unreachable!("arith"),
        }),
        (Value::Timestamp(t), Value::Interval(i)) => match f {
            Add => Value::Timestamp(t.checked_add(i).ok_or_else(overflow)?),
            Sub => Value::Timestamp(t.checked_sub(i).ok_or_else(overflow)?),
            _ => {
                return Err(EvalError::InvalidArgument(
                    "invalid timestamp arithmetic".into(),
                ))
            }
        },
        (Value::Interval(i), Value::Timestamp(t)) if *f == Add => {
            Value::Timestamp(t.checked_add(i).ok_or_else(overflow)?)
        }
        (Value::Timestamp(x), Value::Timestamp(y)) if *f == Sub => {
            Value::Interval(x.checked_sub(y).ok_or_else(overflow)?)
        }
        (Value::Interval(x), Value::Interval(y)) => match f {
            Add => Value::Interval(x.checked_add(y).ok_or_else(overflow)?),
            Sub => Value::Interval(x.checked_sub(y).ok_or_else(overflow)?),
            _ => {
                return Err(EvalError::InvalidArgument(
                    "invalid interval arithmetic".into(),
                ))
            }
        },
        (Value::Date(d), Value::Int(n)) => match f {
            Add => Value::Date(
                d.checked_add(i32::try_from(n).map_err(|_| overflow())?)
                    .ok_or_else(overflow)?,
            ),
            Sub => Value::Date(
                d.checked_sub(i32::try_from(n).map_err(|_| overflow())?)
                    .ok_or_else(overflow)?,
            ),
            _ => return Err(EvalError::InvalidArgument("invalid date arithmetic".into())),
        },
        (Value::Date(x), Value::Date(y)) if *f == Sub => Value::Int(x as i64 - y as i64),
        (Value::Interval(i), Value::Float(n)) | (Value::Float(n), Value::Interval(i))
            if *f == Mul =>
        {
            let us = i as f64 * n.0;
            if !us.is_finite() || us.abs() >= i64::MAX as f64 {
                return Err(EvalError::Overflow("interval".into()));
            }
            Value::Interval(us.round() as i64)
        }
        (Value::Interval(i), Value::Float(n)) if *f == Div => {
            if n.0 == 0.0 {
                return Err(EvalError::DivisionByZero);
            }
            Value::Interval((i as f64 / n.0).round() as i64)
        }
        (Value::Date(d), Value::Interval(i)) => {
            return arith(
                f,
                Value::Timestamp(crate::value::date_micros(d).ok_or_else(overflow)?),
                Value::Interval(i),
            )
        }
        (a, b) => {
            let (x, y) = (
                num(&a).ok_or_else(|| type_error("arithmetic", &a))?,
                num(&b).ok_or_else(|| type_error("arithmetic", &b))?,
            );
            match f {
                Add => checked_float(x + y)?,
                Sub => checked_float(x - y)?,
                Mul => checked_float(x * y)?,
                Div if y == 0.0 => return Err(EvalError::DivisionByZero),
                Div => checked_float(x / y)?,
                Mod if y == 0.0 => return Err(EvalError::DivisionByZero),
                Mod => checked_float(x % y)?,
                _ => unreachable!("arith"),
            }
        }
    })
}

impl VariadicFunc {
    pub fn eval(&self, args: &[ScalarExpr], row: &[Value]) -> Result<Value, EvalError> {
        use VariadicFunc::*;
        match self {
            // Three-valued logic: FALSE wins over NULL for AND, TRUE wins over NULL for OR.
            // Operands are evaluated left to right and evaluation stops at the deciding value.
            And | Or => {
                let decisive = *self == Or;
                let mut saw_null = false;
                for a in args {
                    match a.eval(row)? {
                        Value::Bool(b) if b == decisive => return Ok(Value::Bool(decisive)),
                        Value::Null => saw_null = true,
                        Value::Bool(_) => {}
                        other => return Err(type_error("AND/OR", &other)),
                    }
                }
                Ok(if saw_null {
                    Value::Null
                } else {
                    Value::Bool(!decisive)
                })
            }
            Coalesce => {
                for a in args {
                    let v = a.eval(row)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Ok(Value::Null)
            }
            Greatest | Least => {
                let mut best: Option<Value> = None;
                for a in args {
                    let v = a.eval(row)?;
                    if v.is_null() {
                        continue;
                    }
                    best = Some(match best {
                        None => v,
                        Some(b) if (*self == Greatest) == (v > b) => v,
                        Some(b) => b,
                    });
                }
                Ok(best.unwrap_or(Value::Null))
            }
            Concat => {
                let mut s = String::new();
                for a in args {
                    let v = a.eval(row)?;
                    if !v.is_null() {
                        s.push_str(&v.to_string());
                    }
                }
                Ok(Value::text(&s))
            }
            _ => {
                let vals = args
                    .iter()
                    .map(|a| a.eval(row))
                    .collect::<Result<Vec<_>, _>>()?;
                if vals.iter().any(Value::is_null) {
                    return Ok(Value::Null);
                }
                self.eval_strict(&vals)
            }
        }
    }

    fn eval_strict(&self, vals: &[Value]) -> Result<Value, EvalError> {
        use VariadicFunc::*;
        let s = text(&vals[0]).ok_or_else(|| type_error("string function", &vals[0]))?;
        let int = |i: usize| match vals.get(i) {
            Some(Value::Int(n)) => Ok(*n),
            Some(other) => Err(type_error("string function", other)),
            None => Err(EvalError::InvalidArgument("missing argument".into())),
        };
        let txt = |i: usize| match vals.get(i) {
            Some(Value::Text(t)) => Ok(t.clone()),
            Some(other) => Err(type_error("string function", other)),
            None => Err(EvalError::InvalidArgument("missing argument".into())),
        };
        Ok(match self {
            Substr => {
                // substr(s, start [, len]) with 1-based start; positions before 1 eat length.
                let start = int(1)?;
                let chars: Vec<char> = s.chars().collect();
                let end = if vals.len() > 2 {
                    let len = int(2)?;
                    if len < 0 {
                        return Err(EvalError::InvalidArgument(
                            "negative substring length not allowed".into(),
                        ));
                    }
                    start.saturating_add(len)
                } else {
                    i64::MAX
                };
                let lo = start.max(1) as usize - 1;
                let hi = (end.max(1) as usize - 1).min(chars.len());
                if lo >= hi {
                    Value::text("")
                } else {
                    Value::text(&chars[lo..hi].iter().collect::<String>())
                }
            }
            Replace => {
                let from = txt(1)?;
                if from.is_empty() {
                    Value::text(s)
                } else {
                    Value::text(&s.replace(&*from, &txt(2)?))
                }
            }
            SplitPart => {
                let n = int(2)?;
                if n == 0 {
                    return Err(EvalError::InvalidArgument(
                        "field position must not be zero".into(),
                    ));
                }
                let delim = txt(1)?;
                let fields: Vec<&str> = if delim.is_empty() {
                    vec![s]
                } else {
                    s.split(&*delim).collect()
                };
                // Negative positions count from the end (PostgreSQL 14+).
                let idx = if n > 0 {
                    Some(n as usize - 1)
                } else {
                    fields.len().checked_sub(n.unsigned_abs() as usize)
                };
                let part = idx.and_then(|i| fields.get(i).copied());
                Value::text(part.unwrap_or(""))
            }
            LPad | RPad => {
                let len = int(1)?.max(0) as usize;
                if len > 1 << 24 {
                    return Err(EvalError::InvalidArgument(
                        "requested length too large".into(),
                    ));
                }
                let fill: Vec<char> = if vals.len() > 2 {
                    txt(2)?.chars().collect()
                } else {
                    vec![' ']
                };
                let chars: Vec<char> = s.chars().collect();
                if chars.len() >= len || fill.is_empty() {
                    Value::text(&chars[..len.min(chars.len())].iter().collect::<String>())
                } else {
                    let pad: String = fill.iter().cycle().take(len - chars.len()).collect();
                    if *self == LPad {
                        Value::text(&format!("{pad}{s}"))
                    } else {
                        Value::text(&format!("{s}{pad}"))
                    }
                }
            }
            And | Or | Coalesce | Greatest | Least | Concat => unreachable!("not strict"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tumbling_window_whose_end_is_out_of_range_is_an_error() {
        let size = Value::Interval(10);
        let last = BinaryFunc::Tumble.eval_values(Value::Timestamp(i64::MAX - 20), size.clone());
        let start = last.expect("its end is in range");
        assert!(BinaryFunc::WindowEnd
            .eval_values(start, size.clone())
            .is_ok());
        let past = BinaryFunc::Tumble.eval_values(Value::Timestamp(i64::MAX - 3), size);
        assert!(matches!(past, Err(EvalError::Overflow(_))));
    }
}
