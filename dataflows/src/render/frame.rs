//! Window functions over frames: `sum(x) OVER (PARTITION BY … ORDER BY … ROWS BETWEEN …)`,
//! `first_value`, `last_value`, `nth_value`.
//!
//! A partition is recomputed whole when it changes (as rankings are, `top_k.rs`): its rows
//! sorted, each copy of a row a position of its own, and for each position the frame's first
//! and last positions found from the frame's units and bounds. Frames that start at the
//! partition's start (running totals, the default frame) grow monotonically, so one
//! accumulator walks the partition once; frames that end at its end are walked backwards the
//! same way; other frames (moving windows) are aggregated position by position, in time
//! proportional to their width.

use differential_dataflow::consolidation::consolidate;

use super::top_k::Decoded;
use crate::error::EvalError;
use crate::plan::top_k::{compare_fields, Frame, FrameBound, FrameFunc, FrameUnits, OrderKey};
use crate::row::Row;
use crate::value::{DataType, Value};

/// The function of the window stage and what it reads.
pub struct WindowFn {
    pub func: FrameFunc,
    /// The argument's column (unused by `count(*)`).
    pub value: usize,
    pub arg: DataType,
    pub frame: Frame,
}

/// Appends to every position of a partition (`rows`: sorted by `order`, positive
/// multiplicities) its function's value over its frame; equal outputs are consolidated.
pub fn frame_rows(
    rows: &[Decoded<'_>],
    order: &[OrderKey],
    w: &WindowFn,
    out: &mut Vec<(Result<Row, EvalError>, isize)>,
) {
    // Each position's row, the argument of each row, and the peer groups' first and last
    // positions.
    let mut places: Vec<usize> = Vec::new();
    let mut group_of: Vec<usize> = Vec::new();
    let (mut group_first, mut group_last) = (Vec::new(), Vec::new());
    for (i, (_, fields, m)) in rows.iter().enumerate() {
        let m = *m as usize;
        let peer = i > 0 && compare_fields(&rows[i - 1].1, fields, order).is_eq();
        if !peer {
            group_first.push(places.len());
            group_last.push(places.len());
        }
        let g = group_first.len() - 1;
        group_last[g] = places.len() + m - 1;
        for _ in 0..m {
            places.push(i);
            group_of.push(g);
        }
    }
    let args: Vec<Value> = match w.func {
        FrameFunc::CountStar => vec![Value::Null; rows.len()],
        _ => rows
            .iter()
            .map(|(_, fields, _)| Row::decode_field(fields[w.value]))
            .collect(),
    };
    let n = places.len() as i64;
    let groups = Groups {
        first: &group_first,
        last: &group_last,
        range: RangeKeys::of(rows, &places, order, w.frame),
    };
    let bounds = |p: usize| groups.bounds(w.frame, p as i64, group_of[p], n);

    let mut values: Vec<Result<Value, EvalError>> = vec![Ok(Value::Null); places.len()];
    let arg_at = |q: i64| &args[places[q as usize]];
    match w.func {
        FrameFunc::StringAgg { delimiter } => {
            // Text grows with the frame, so each frame is joined on its own.
            let delimiters: Vec<Value> = rows
                .iter()
                .map(|(_, fields, _)| Row::decode_field(fields[delimiter]))
                .collect();
            for (p, v) in values.iter_mut().enumerate() {
                let (start, end) = bounds(p);
                let mut text: Option<String> = None;
                for q in start..=end {
                    let Value::Text(s) = arg_at(q) else { continue };
                    match &mut text {
                        None => text = Some(s.to_string()),
                        Some(t) => {
                            if let Value::Text(d) = &delimiters[places[q as usize]] {
                                t.push_str(d);
                            }
                            t.push_str(s);
                        }
                    }
                }
                *v = Ok(text.map_or(Value::Null, |t| Value::Text(t.into())));
            }
        }
        FrameFunc::FirstValue | FrameFunc::LastValue | FrameFunc::NthValue(_) => {
            for (p, v) in values.iter_mut().enumerate() {
                let (start, end) = bounds(p);
                let at = match w.func {
                    FrameFunc::FirstValue => start,
                    FrameFunc::LastValue => end,
                    FrameFunc::NthValue(k) => start.saturating_add(offset(k) - 1),
                    _ => unreachable!("value functions"),
                };
                if start <= end && (start..=end).contains(&at) {
                    *v = Ok(arg_at(at).clone());
                }
            }
        }
        _ if w.frame.start == FrameBound::UnboundedPreceding => {
            // Frames are prefixes whose ends only move forward.
            let (mut acc, mut upto) = (Acc::new(w.func, w.arg), 0i64);
            for (p, v) in values.iter_mut().enumerate() {
                let (_, end) = bounds(p);
                while upto <= end {
                    acc.add(arg_at(upto));
                    upto += 1;
                }
                *v = acc.value();
            }
        }
        _ if w.frame.end == FrameBound::UnboundedFollowing => {
            // Frames are suffixes whose starts only move backward as positions do.
            let (mut acc, mut from) = (Acc::new(w.func, w.arg), n);
            for (p, v) in values.iter_mut().enumerate().rev() {
                let (start, _) = bounds(p);
                while from > start {
                    from -= 1;
                    acc.add(arg_at(from));
                }
                *v = acc.value();
            }
        }
        _ => {
            for (p, v) in values.iter_mut().enumerate() {
                let (start, end) = bounds(p);
                let mut acc = Acc::new(w.func, w.arg);
                for q in start..=end {
                    acc.add(arg_at(q));
                }
                *v = acc.value();
            }
        }
    }
    for (p, v) in values.into_iter().enumerate() {
        let row = rows[places[p]].0;
        out.push((v.map(|v| row.append(&[v])), 1));
    }
    // Copies of a row with the same value give the same output row.
    consolidate(out);
}

/// An offset as a signed position distance (offsets past any partition's size saturate).
fn offset(k: u64) -> i64 {
    k.min(i64::MAX as u64 / 4) as i64
}

/// A partition's peer groups: each one's first and last position; and for RANGE frames with
/// offsets, each position's ORDER BY value.
struct Groups<'a> {
    first: &'a [usize],
    last: &'a [usize],
    range: Option<RangeKeys>,
}

/// Each position's ORDER BY value, negated when the order is descending so that values rise
/// with positions; NULLs (all at one end) are `None`.
/// The positions holding values (not NULL) are found once, as `values`.
enum RangeKeys {
    Int(Vec<Option<i128>>, std::ops::Range<usize>),
    Float(Vec<Option<f64>>, std::ops::Range<usize>),
}

impl RangeKeys {
    fn of(
        rows: &[Decoded<'_>],
        places: &[usize],
        order: &[OrderKey],
        frame: Frame,
    ) -> Option<Self> {
        let offset = |b| matches!(b, FrameBound::Preceding(_) | FrameBound::Following(_));
        if frame.units != FrameUnits::Range || !(offset(frame.start) || offset(frame.end)) {
            return None;
        }
        let key = order.first()?;
        let sign = if key.desc { -1 } else { 1 };
        let values: Vec<Value> = rows
            .iter()
            .map(|(_, fields, _)| Row::decode_field(fields[key.column]))
            .collect();
        // NULLs sort together at one end.
        let present = |i: &usize| !values[*i].is_null();
        let lo = places.iter().position(present).unwrap_or(0);
        let hi = places.iter().rposition(present).map_or(lo, |h| h + 1);
        Some(match frame.float {
            true => RangeKeys::Float(
                places
                    .iter()
                    .map(|&i| match values[i] {
                        Value::Float(f) => Some(f.0 * sign as f64),
                        _ => None,
                    })
                    .collect(),
                lo..hi,
            ),
            false => RangeKeys::Int(
                places
                    .iter()
                    .map(|&i| match values[i] {
                        Value::Int(x) | Value::Timestamp(x) | Value::Interval(x) => {
                            Some(x as i128 * sign as i128)
                        }
                        _ => None,
                    })
                    .collect(),
                lo..hi,
            ),
        })
    }

    /// The first position whose value is at least (`first`), or the last whose value is at
    /// most, position `p`'s value moved by `k` (forward when `ahead`); `None` when `p`'s value
    /// is NULL.
    fn find(&self, p: usize, k: u64, ahead: bool, first: bool) -> Option<i64> {
        match self {
            RangeKeys::Int(keys, values) => {
                let k = k as i128;
                search(keys, values.clone(), p, if ahead { k } else { -k }, first)
            }
            RangeKeys::Float(keys, values) => {
                let k = f64::from_bits(k);
                search(keys, values.clone(), p, if ahead { k } else { -k }, first)
            }
        }
    }
}

/// [`RangeKeys::find`] over one kind of value.
fn search<K>(
    keys: &[Option<K>],
    values: std::ops::Range<usize>,
    p: usize,
    delta: K,
    first: bool,
) -> Option<i64>
where
    K: PartialOrd + Copy + std::ops::Add<Output = K>,
{
    let target = keys[p]? + delta;
    // Values (not NULL) are contiguous and rising.
    let lo = values.start;
    let values = &keys[values];
    let at = match first {
        true => values.partition_point(|x| x.is_some_and(|x| x < target)),
        false => values.partition_point(|x| x.is_some_and(|x| x <= target)),
    };
    Some(lo as i64 + at as i64 - i64::from(!first))
}

impl Groups<'_> {
    /// A RANGE bound with an offset: found by value, or for a NULL value the first (last)
    /// of its peers, the NULLs, as PostgreSQL has it.
    fn range_find(&self, p: i64, g: usize, k: u64, ahead: bool, first: bool) -> i64 {
        let found = self
            .range
            .as_ref()
            .and_then(|r| r.find(p as usize, k, ahead, first));
        match (found, first) {
            (Some(at), _) => at,
            (None, true) => self.first[g] as i64,
            (None, false) => self.last[g] as i64,
        }
    }

    /// The first and last positions of the frame of position `p` (in peer group `g`) among
    /// `n`; empty when the first is after the last.
    fn bounds(&self, frame: Frame, p: i64, g: usize, n: i64) -> (i64, i64) {
        let count = self.first.len();
        let first = |g: usize| self.first[g] as i64;
        let last = |g: usize| self.last[g] as i64;
        // Unbounded ends are matched first: what is left of ROWS and RANGE bounds is an
        // offset or the current row.
        let rows = |b: FrameBound| match b {
            FrameBound::Preceding(k) => p - offset(k),
            FrameBound::Following(k) => p.saturating_add(offset(k)),
            _ => p,
        };
        let range = |b: FrameBound, first: bool| match b {
            FrameBound::Preceding(k) => self.range_find(p, g, k, false, first),
            FrameBound::Following(k) => self.range_find(p, g, k, true, first),
            _ if first => self.first[g] as i64,
            _ => self.last[g] as i64,
        };
        let start = match (frame.units, frame.start) {
            (_, FrameBound::UnboundedPreceding) => 0,
            (_, FrameBound::UnboundedFollowing) => n,
            (FrameUnits::Rows, b) => rows(b),
            (FrameUnits::Range, b) => range(b, true),
            (FrameUnits::Groups, FrameBound::Preceding(k)) => {
                first(g.saturating_sub(offset(k) as usize))
            }
            (FrameUnits::Groups, FrameBound::CurrentRow) => first(g),
            (FrameUnits::Groups, FrameBound::Following(k)) => {
                match g.checked_add(offset(k) as usize) {
                    Some(h) if h < count => first(h),
                    _ => n,
                }
            }
        };
        let end = match (frame.units, frame.end) {
            (_, FrameBound::UnboundedFollowing) => n - 1,
            (_, FrameBound::UnboundedPreceding) => -1,
            (FrameUnits::Rows, b) => rows(b),
            (FrameUnits::Range, b) => range(b, false),
            (FrameUnits::Groups, FrameBound::Preceding(k)) => {
                match g.checked_sub(offset(k) as usize) {
                    Some(h) => last(h),
                    None => -1,
                }
            }
            (FrameUnits::Groups, FrameBound::CurrentRow) => last(g),
            (FrameUnits::Groups, FrameBound::Following(k)) => {
                last(g.saturating_add(offset(k) as usize).min(count - 1))
            }
        };
        (start.max(0), end.min(n - 1))
    }
}

/// A window aggregate's running state. NULL arguments are skipped (but `count(*)` counts
/// rows); integer sums are exact and must fit `bigint` when read, as in `GROUP BY`.
struct Acc {
    func: FrameFunc,
    arg: DataType,
    count: i64,
    int: i128,
    float: f64,
    /// A numeric sum; `None` once it overflowed (an error when read).
    decimal: Option<rust_decimal::Decimal>,
    best: Option<Value>,
}

impl Acc {
    fn new(func: FrameFunc, arg: DataType) -> Acc {
        Acc {
            func,
            arg,
            count: 0,
            int: 0,
            float: 0.0,
            decimal: Some(rust_decimal::Decimal::ZERO),
            best: None,
        }
    }

    fn add(&mut self, v: &Value) {
        if self.func == FrameFunc::CountStar {
            self.count += 1;
            return;
        }
        if v.is_null() {
            return;
        }
        self.count += 1;
        match (self.func, v) {
            (FrameFunc::Sum | FrameFunc::Avg, Value::Int(x) | Value::Interval(x)) => {
                self.int += *x as i128
            }
            (FrameFunc::Sum | FrameFunc::Avg, Value::Float(f)) => self.float += f.0,
            (FrameFunc::Sum | FrameFunc::Avg, Value::Numeric(d)) => {
                self.decimal = self.decimal.and_then(|s| s.checked_add(*d))
            }
            (FrameFunc::Min, _) if self.best.as_ref().is_none_or(|b| v < b) => {
                self.best = Some(v.clone())
            }
            (FrameFunc::Max, _) if self.best.as_ref().is_none_or(|b| v > b) => {
                self.best = Some(v.clone())
            }
            _ => {}
        }
    }

    fn decimal_sum(&self) -> Result<rust_decimal::Decimal, EvalError> {
        self.decimal
            .ok_or_else(|| EvalError::Overflow("numeric".into()))
    }

    fn value(&self) -> Result<Value, EvalError> {
        let fits =
            |what: &str| i64::try_from(self.int).map_err(|_| EvalError::Overflow(what.into()));
        Ok(match self.func {
            FrameFunc::CountStar | FrameFunc::Count => Value::Int(self.count),
            FrameFunc::Min | FrameFunc::Max => self.best.clone().unwrap_or(Value::Null),
            _ if self.count == 0 => Value::Null,
            FrameFunc::Sum => match self.arg {
                DataType::Int => Value::Int(fits("bigint")?),
                DataType::Interval => Value::Interval(fits("interval")?),
                DataType::Float => Value::float(self.float),
                DataType::Numeric => Value::numeric(self.decimal_sum()?),
                _ => Value::Null,
            },
            FrameFunc::Avg => match self.arg {
                DataType::Int => Value::float(self.int as f64 / self.count as f64),
                DataType::Interval => Value::Interval((self.int / self.count as i128) as i64),
                DataType::Float => Value::float(self.float / self.count as f64),
                DataType::Numeric => Value::numeric(
                    self.decimal_sum()?
                        .checked_div(self.count.into())
                        .ok_or_else(|| EvalError::Overflow("numeric".into()))?,
                ),
                _ => Value::Null,
            },
            FrameFunc::FirstValue
            | FrameFunc::LastValue
            | FrameFunc::NthValue(_)
            | FrameFunc::StringAgg { .. } => {
                unreachable!("value functions and string_agg take no accumulator")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sum(#1)` over `frame`, rows `(key, value)` ordered by key, for each position.
    fn sums(input: &[(i64, i64, isize)], frame: Frame) -> Vec<(i64, i64, Option<i64>)> {
        let rows: Vec<Row> = input
            .iter()
            .map(|(k, v, _)| Row::new(vec![Value::Int(*k), Value::Int(*v)]))
            .collect();
        let decoded: Vec<Decoded> = rows
            .iter()
            .zip(input)
            .map(|(r, (_, _, m))| (r, r.fields(), *m))
            .collect();
        let order = [OrderKey {
            column: 0,
            desc: false,
            nulls_first: false,
        }];
        let w = WindowFn {
            func: FrameFunc::Sum,
            value: 1,
            arg: DataType::Int,
            frame,
        };
        let mut out = Vec::new();
        frame_rows(&decoded, &order, &w, &mut out);
        let int = |v: Value| match v {
            Value::Int(x) => Some(x),
            _ => None,
        };
        let mut got: Vec<_> = out
            .into_iter()
            .map(|(r, m)| {
                assert_eq!(m, 1);
                let r = r.expect("no error");
                (
                    int(r.get(0)).unwrap(),
                    int(r.get(1)).unwrap(),
                    int(r.get(2)),
                )
            })
            .collect();
        got.sort();
        got
    }

    #[test]
    fn rows_range_and_groups_frames() {
        // Keys 1, 2, 2, 3 with values 1, 10, 100, 1000: the two 2s are peers. Each frame's
        // sums, for the rows in that order.
        let rows = [(1, 1, 1), (2, 10, 1), (2, 100, 1), (3, 1000, 1)];
        use FrameBound::*;
        let cases = [
            (
                FrameUnits::Range,
                UnboundedPreceding,
                CurrentRow,
                [Some(1), Some(111), Some(111), Some(1111)],
            ),
            (
                FrameUnits::Rows,
                Preceding(1),
                CurrentRow,
                [Some(1), Some(11), Some(110), Some(1100)],
            ),
            (
                FrameUnits::Groups,
                Preceding(1),
                Preceding(1),
                [None, Some(1), Some(1), Some(110)],
            ),
            (
                FrameUnits::Range,
                CurrentRow,
                UnboundedFollowing,
                [Some(1111), Some(1110), Some(1110), Some(1000)],
            ),
            (
                FrameUnits::Rows,
                Following(1),
                Following(5),
                [Some(1110), Some(1100), Some(1000), None],
            ),
        ];
        for (units, start, end, want) in cases {
            let frame = Frame {
                units,
                start,
                end,
                float: false,
            };
            let got: Vec<Option<i64>> = sums(&rows, frame).into_iter().map(|r| r.2).collect();
            assert_eq!(got, want, "{frame}");
        }
    }
}
