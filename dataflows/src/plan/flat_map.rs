//! Row expansion: table functions that turn one input row into zero or more output rows.
//!
//! A hopping window assigns a row to *several* windows, which no scalar expression can say,
//! so `hop(ts, size, slide)` in a `GROUP BY` becomes a `FlatMap` below the `Reduce`: each input
//! row is emitted once per window it belongs to, with the window's start appended as a new last
//! column, and the group key reads that column. The renderer (`render/flat_map.rs`) applies the
//! function with differential's `flat_map`, so a retraction of the input row retracts every copy.

use serde::{Deserialize, Serialize};

use super::Plan;
use crate::error::EvalError;
use crate::expr::ScalarExpr;
use crate::value::{Value, MICROS_PER_DAY};

/// Most windows one row may belong to (`size / slide`); more is refused when planning, since
/// every input row is copied that many times.
pub const MAX_WINDOWS_PER_ROW: i64 = 10_000;

/// Most values one `generate_series` call may produce: its rows are built in memory at once.
pub const MAX_SERIES: i64 = 1_000_000;

/// A function from one row to a list of values, each appended to a copy of the row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableFunc {
    /// The starts of the hopping windows `[start, start + size)` containing `ts`, where `start`
    /// is a multiple of `slide` (microseconds since the epoch); none when `ts` is NULL.
    Hop {
        ts: ScalarExpr,
        size: i64,
        slide: i64,
    },
    /// `generate_series(start, stop, step)` in FROM: bigints, or timestamps with an interval
    /// step; from `start` while not past `stop`, in the step's direction. None when an
    /// argument is NULL.
    GenerateSeries {
        start: ScalarExpr,
        stop: ScalarExpr,
        step: ScalarExpr,
    },
}

/// Appends `func`'s values to the input row, one output row per value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlatMapPlan {
    pub input: Box<Plan>,
    pub func: TableFunc,
}

impl TableFunc {
    /// Checks a hop's parameters (in microseconds) when planning.
    pub fn hop(ts: ScalarExpr, size: i64, slide: i64) -> Result<TableFunc, String> {
        let shown = |us: i64| Value::Interval(us).to_string();
        if slide <= 0 || size <= 0 {
            return Err(format!(
                "hop size ({}) and slide ({}) must be positive",
                shown(size),
                shown(slide)
            ));
        }
        if size % slide != 0 {
            return Err(format!(
                "hop size ({}) must be a multiple of the slide ({})",
                shown(size),
                shown(slide)
            ));
        }
        if size / slide > MAX_WINDOWS_PER_ROW {
            return Err(format!(
                "hop size ({}) over slide ({}) puts each row in {} windows; at most {MAX_WINDOWS_PER_ROW} are allowed",
                shown(size),
                shown(slide),
                size / slide
            ));
        }
        if size > 1_000_000 * MICROS_PER_DAY {
            return Err(format!("hop size ({}) is too large", shown(size)));
        }
        Ok(TableFunc::Hop { ts, size, slide })
    }

    /// Column positions of the input row the function reads.
    pub fn support(&self, out: &mut Vec<usize>) {
        match self {
            TableFunc::Hop { ts, .. } => ts.support(out),
            TableFunc::GenerateSeries { start, stop, step } => {
                start.support(out);
                stop.support(out);
                step.support(out);
            }
        }
    }

    /// The same function with its column references rewritten through `map`.
    pub fn substitute(&self, map: &impl Fn(usize) -> ScalarExpr) -> TableFunc {
        match self {
            TableFunc::Hop { ts, size, slide } => TableFunc::Hop {
                ts: ts.substitute(map),
                size: *size,
                slide: *slide,
            },
            TableFunc::GenerateSeries { start, stop, step } => TableFunc::GenerateSeries {
                start: start.substitute(map),
                stop: stop.substitute(map),
                step: step.substitute(map),
            },
        }
    }

    /// The values for one row, in ascending order (`row` decoded where [`TableFunc::support`]
    /// says the function reads it).
    pub fn eval(&self, row: &[Value]) -> Result<Vec<Value>, EvalError> {
        match self {
            TableFunc::Hop { ts, size, slide } => {
                let t = match ts.eval(row)? {
                    Value::Null => return Ok(Vec::new()),
                    Value::Timestamp(t) => t,
                    other => {
                        return Err(EvalError::InvalidArgument(format!(
                            "hop does not accept {}",
                            other.data_type()
                        )))
                    }
                };
                let overflow = || EvalError::Overflow("timestamp".into());
                // The latest window containing `t` starts at the multiple of `slide` at or
                // before it; the earlier ones start `slide` apart, while they still reach `t`.
                // A window whose end is out of range is an error too, as with `tumble`: then
                // `hop_end` (`WindowEnd`) never fails where the hop did not.
                let last = t
                    .div_euclid(*slide)
                    .checked_mul(*slide)
                    .filter(|last| last.checked_add(*size).is_some())
                    .ok_or_else(overflow)?;
                let count = size / slide;
                let mut out = Vec::with_capacity(count as usize);
                for i in (0..count).rev() {
                    let start = i
                        .checked_mul(*slide)
                        .and_then(|back| last.checked_sub(back))
                        .ok_or_else(overflow)?;
                    out.push(Value::Timestamp(start));
                }
                Ok(out)
            }
            TableFunc::GenerateSeries { start, stop, step } => {
                let (a, b, s) = (start.eval(row)?, stop.eval(row)?, step.eval(row)?);
                let (a, b, s, wrap): (i64, i64, i64, fn(i64) -> Value) = match (a, b, s) {
                    (Value::Null, _, _) | (_, Value::Null, _) | (_, _, Value::Null) => {
                        return Ok(Vec::new())
                    }
                    (Value::Int(a), Value::Int(b), Value::Int(s)) => (a, b, s, Value::Int),
                    (Value::Timestamp(a), Value::Timestamp(b), Value::Interval(s)) => {
                        (a, b, s, Value::Timestamp)
                    }
                    (a, b, s) => {
                        return Err(EvalError::InvalidArgument(format!(
                            "generate_series does not accept {}, {}, {}",
                            a.data_type(),
                            b.data_type(),
                            s.data_type()
                        )))
                    }
                };
                series(a, b, s)?.into_iter().map(|x| Ok(wrap(x))).collect()
            }
        }
    }
}

/// `start`, `start + step`, … while not past `stop` (in the step's direction).
fn series(start: i64, stop: i64, step: i64) -> Result<Vec<i64>, EvalError> {
    if step == 0 {
        return Err(EvalError::InvalidArgument(
            "step size cannot equal zero".into(),
        ));
    }
    let span = i128::from(stop) - i128::from(start);
    if span != 0 && (span < 0) != (step < 0) {
        return Ok(Vec::new());
    }
    let count = span / i128::from(step) + 1;
    if count > i128::from(MAX_SERIES) {
        return Err(EvalError::InvalidArgument(format!(
            "generate_series would produce {count} rows; at most {MAX_SERIES} are allowed per call"
        )));
    }
    // Every value lies between start and stop, so none overflows.
    Ok((0..count as i64).map(|i| start + i * step).collect())
}

impl std::fmt::Display for TableFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableFunc::Hop { ts, size, slide } => write!(
                f,
                "hop({ts}, {}, {})",
                Value::Interval(*size),
                Value::Interval(*slide)
            ),
            TableFunc::GenerateSeries { start, stop, step } => {
                write!(f, "generate_series({start}, {stop}, {step})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(ts: i64, size: i64, slide: i64) -> Vec<i64> {
        let f = TableFunc::hop(ScalarExpr::Column(0), size, slide).expect("valid hop");
        f.eval(&[Value::Timestamp(ts)])
            .expect("no error")
            .into_iter()
            .map(|v| match v {
                Value::Timestamp(t) => t,
                other => panic!("not a timestamp: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn each_row_lands_in_every_window_that_contains_it() {
        assert_eq!(windows(7, 10, 5), vec![0, 5]);
        assert_eq!(windows(5, 10, 5), vec![0, 5]);
        assert_eq!(windows(4, 10, 5), vec![-5, 0]);
        assert_eq!(windows(-1, 6, 2), vec![-6, -4, -2]);
        assert_eq!(windows(3, 3, 3), vec![3]);
        for ts in -20..20 {
            for w in windows(ts, 12, 4) {
                assert!(w <= ts && ts < w + 12 && w.rem_euclid(4) == 0);
            }
        }
    }

    #[test]
    fn a_window_whose_end_is_out_of_range_is_an_error() {
        let hop = |ts: i64| {
            let f = TableFunc::hop(ScalarExpr::Column(0), 10, 5).expect("valid");
            f.eval(&[Value::Timestamp(ts)])
        };
        // The last window containing i64::MAX - 20 starts at a multiple of 5 and ends 10 later.
        assert!(hop(i64::MAX - 20).is_ok());
        assert_eq!(
            hop(i64::MAX - 2),
            Err(EvalError::Overflow("timestamp".into()))
        );
    }

    #[test]
    fn series_run_in_the_steps_direction_and_stop_at_the_bound() {
        assert_eq!(series(1, 5, 2), Ok(vec![1, 3, 5]));
        assert_eq!(series(1, 6, 2), Ok(vec![1, 3, 5]));
        assert_eq!(series(5, 1, -2), Ok(vec![5, 3, 1]));
        assert_eq!(series(5, 1, 1), Ok(vec![]));
        assert_eq!(series(3, 3, -1), Ok(vec![3]));
        assert_eq!(series(i64::MAX - 1, i64::MAX, 5), Ok(vec![i64::MAX - 1]));
        assert!(series(1, 2, 0).is_err());
        assert!(series(0, i64::MAX, 1).is_err());
    }

    #[test]
    fn null_is_in_no_window_and_bad_parameters_are_refused() {
        let f = TableFunc::hop(ScalarExpr::Column(0), 10, 5).unwrap();
        assert_eq!(f.eval(&[Value::Null]), Ok(vec![]));
        assert!(TableFunc::hop(ScalarExpr::Column(0), 10, 3).is_err());
        assert!(TableFunc::hop(ScalarExpr::Column(0), 0, 5).is_err());
        assert!(TableFunc::hop(ScalarExpr::Column(0), 10, -5).is_err());
        assert!(TableFunc::hop(ScalarExpr::Column(0), 1_000_000, 1).is_err());
    }
}
