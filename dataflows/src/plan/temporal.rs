//! Temporal filters: `WHERE` conditions that compare `now()` with an expression of the row.
//!
//! A view is a function of time, so `now()` is the logical time itself (milliseconds since the
//! epoch, see `engine`), not the wall clock when a row happened to be processed. A condition such
//! as `ts + INTERVAL '1 hour' > now()` then says *during which logical times* the row belongs to
//! the result: from when it was inserted until `ts + 1 hour`. Each row's conditions reduce to an
//! interval `[lower, upper)` of logical times, and the renderer (`render/temporal.rs`) emits the
//! row at `lower` and its retraction at `upper`, both possibly in the future. Differential holds
//! future updates until the frontier reaches them, so rows leave views on time and state stays
//! bounded — the idea behind Materialize's `mz_now()` filters.
//!
//! Timestamps are microseconds, logical times milliseconds: `now()` at logical time `t` is the
//! timestamp `t * 1000`, and bounds are converted exactly (a row whose timestamp bound falls
//! inside a millisecond is decided by the conversion, never rounded the wrong way).

use serde::{Deserialize, Serialize};

use super::Plan;
use crate::error::EvalError;
use crate::expr::ScalarExpr;
use crate::value::Value;

/// Microseconds per logical-time tick (a millisecond).
const MICROS_PER_TICK: i64 = 1_000;

/// How `now()` compares with a bound: the condition is `now() <op> expr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoundOp {
    Lt,
    Lte,
    Gt,
    Gte,
    Eq,
}

impl BoundOp {
    /// The operator with its operands swapped (`x < now()` is `now() > x`).
    pub fn flip(self) -> BoundOp {
        match self {
            BoundOp::Lt => BoundOp::Gt,
            BoundOp::Lte => BoundOp::Gte,
            BoundOp::Gt => BoundOp::Lt,
            BoundOp::Gte => BoundOp::Lte,
            BoundOp::Eq => BoundOp::Eq,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            BoundOp::Lt => "<",
            BoundOp::Lte => "<=",
            BoundOp::Gt => ">",
            BoundOp::Gte => ">=",
            BoundOp::Eq => "=",
        }
    }
}

/// One condition `now() <op> expr`; `expr` is a timestamp computed from the row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeBound {
    pub op: BoundOp,
    pub expr: ScalarExpr,
}

impl std::fmt::Display for TimeBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "now() {} {}", self.op.symbol(), self.expr)
    }
}

/// Keeps each input row during the logical times where every bound holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemporalFilterPlan {
    pub input: Box<Plan>,
    pub bounds: Vec<TimeBound>,
}

/// When a row is present: logical times `lower <= t < upper` (`upper` `None`: forever).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub lower: u64,
    pub upper: Option<u64>,
}

/// The first logical time whose `now()` is at least `us`.
fn first_tick_at_or_after(us: i64) -> u64 {
    // ceil(us / 1000), and times before the epoch are all "at or after" from tick 0.
    let ticks = us.div_euclid(MICROS_PER_TICK) + i64::from(us.rem_euclid(MICROS_PER_TICK) != 0);
    ticks.max(0) as u64
}

/// The first logical time whose `now()` is after `us`.
fn first_tick_after(us: i64) -> u64 {
    (us.div_euclid(MICROS_PER_TICK) + 1).max(0) as u64
}

impl TemporalFilterPlan {
    /// The logical times during which `row` passes every bound; `None` when it never does
    /// (a bound is NULL, or the bounds contradict each other).
    /// `row` is decoded where the bounds read it (`Support::of` their expressions).
    pub fn validity(bounds: &[TimeBound], row: &[Value]) -> Result<Option<Validity>, EvalError> {
        let mut lower = 0u64;
        let mut upper: Option<u64> = None;
        for b in bounds {
            let us = match b.expr.eval(row)? {
                Value::Null => return Ok(None),
                Value::Timestamp(us) => us,
                other => {
                    return Err(EvalError::InvalidArgument(format!(
                        "a temporal filter compares now() with a timestamp, not {}",
                        other.data_type()
                    )))
                }
            };
            // `now() >= x` starts at the first tick at or after x; `now() > x` after it;
            // `now() < x` ends there; `now() <= x` ends after it; `=` is both.
            let (from, until) = match b.op {
                BoundOp::Gte => (Some(first_tick_at_or_after(us)), None),
                BoundOp::Gt => (Some(first_tick_after(us)), None),
                BoundOp::Lt => (None, Some(first_tick_at_or_after(us))),
                BoundOp::Lte => (None, Some(first_tick_after(us))),
                BoundOp::Eq => (Some(first_tick_at_or_after(us)), Some(first_tick_after(us))),
            };
            if let Some(f) = from {
                lower = lower.max(f);
            }
            if let Some(u) = until {
                upper = Some(upper.map_or(u, |x| x.min(u)));
            }
        }
        if upper.is_some_and(|u| u <= lower) {
            return Ok(None);
        }
        Ok(Some(Validity { lower, upper }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(op: BoundOp, us: i64) -> TimeBound {
        TimeBound {
            op,
            expr: ScalarExpr::Literal(Value::Timestamp(us)),
        }
    }

    fn validity(bounds: &[TimeBound]) -> Option<Validity> {
        TemporalFilterPlan::validity(bounds, &[]).expect("no error")
    }

    #[test]
    fn bounds_convert_exactly_to_milliseconds() {
        // now() < 5000µs: present at 0..5 ms. now() < 5001µs: also at 5 ms (5000µs < 5001µs).
        let v = validity(&[bound(BoundOp::Lt, 5_000)]).unwrap();
        assert_eq!((v.lower, v.upper), (0, Some(5)));
        let v = validity(&[bound(BoundOp::Lt, 5_001)]).unwrap();
        assert_eq!(v.upper, Some(6));
        let v = validity(&[bound(BoundOp::Lte, 5_000)]).unwrap();
        assert_eq!(v.upper, Some(6));
        let v = validity(&[bound(BoundOp::Gte, 5_000)]).unwrap();
        assert_eq!((v.lower, v.upper), (5, None));
        let v = validity(&[bound(BoundOp::Gt, 5_000)]).unwrap();
        assert_eq!(v.lower, 6);
        let v = validity(&[bound(BoundOp::Gt, 4_999)]).unwrap();
        assert_eq!(v.lower, 5);
        let v = validity(&[bound(BoundOp::Eq, 5_000)]).unwrap();
        assert_eq!((v.lower, v.upper), (5, Some(6)));
        // A timestamp strictly inside a millisecond is never equal to a tick's now().
        assert_eq!(validity(&[bound(BoundOp::Eq, 5_500)]), None);
    }

    #[test]
    fn bounds_combine_and_contradict() {
        let v = validity(&[bound(BoundOp::Gte, 2_000), bound(BoundOp::Lt, 9_000)]).unwrap();
        assert_eq!((v.lower, v.upper), (2, Some(9)));
        assert_eq!(
            validity(&[bound(BoundOp::Gte, 9_000), bound(BoundOp::Lt, 2_000)]),
            None
        );
        // Before the epoch: always past the lower bound, never before the upper one.
        assert_eq!(validity(&[bound(BoundOp::Gt, -7_500)]).unwrap().lower, 0);
        assert_eq!(validity(&[bound(BoundOp::Lt, -7_500)]), None);
        let null = TimeBound {
            op: BoundOp::Lt,
            expr: ScalarExpr::Literal(Value::Null),
        };
        assert_eq!(validity(&[null]), None);
    }
}
