//! Aggregates kept as sums in the difference: COUNT, and SUM and AVG of bigints.
//!
//! The general `reduce` recomputes a group's aggregates from all of its values whenever the
//! group changes, which costs as much as the group is large. Counts and integer sums need
//! none of that: each input row contributes numbers (1 for the row, 1 if an argument is not
//! NULL, the argument itself) that can simply be added up. Those numbers travel as the
//! *difference* of the record `(key)` ([`Accums`]), differential adds them up as it
//! consolidates, and one `count` per group turns the totals into the aggregate values. A group
//! change then costs the same whatever the group's size.
//!
//! Sums are kept in `i128`, so they cannot overflow while accumulating; a result outside
//! `bigint` is reported as an evaluation error for that group, like the general path does.

use differential_dataflow::difference::{IsZero, Multiply, Semigroup};
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::{Bundle, Context, RenderTime};
use crate::error::EvalError;
use crate::expr::RowExprs;
use crate::plan::placement;
use crate::plan::reduce::{AggFunc, AggregateExpr, ReducePlan};
use crate::row::Row;
use crate::value::{DataType, Value};

/// Running totals of one group: `[rows, then per aggregate its slots]`.
///
/// The totals travel as the difference of every update and sit in the count's arrangement,
/// so their size is what differential sorts and stores per update. Up to three slots
/// (`count(*)` with one `sum`) that fit in `i64` are kept inline in 32 bytes; a total that
/// leaves `i64` (or a fourth slot) moves to `i128`s on the heap, so sums still cannot overflow
/// while accumulating. Equality, order and hashing look at the values, not at the form.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Accums(Slots);

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Slots {
    Narrow { len: u8, vals: [i64; NARROW] },
    Wide(Vec<i128>),
}

/// Slots kept inline.
pub(super) const NARROW: usize = 3;

impl Accums {
    /// Totals from their values, inline when they fit.
    pub fn from_slots(slots: &[i128]) -> Accums {
        if slots.len() <= NARROW && slots.iter().all(|x| i64::try_from(*x).is_ok()) {
            let mut vals = [0i64; NARROW];
            for (v, x) in vals.iter_mut().zip(slots) {
                *v = *x as i64;
            }
            Accums(Slots::Narrow {
                len: slots.len() as u8,
                vals,
            })
        } else {
            Accums(Slots::Wide(slots.to_vec()))
        }
    }

    /// Totals of `len` slots that fit in `i64` (`vals[len..]` are zero).
    pub(super) fn from_inline(len: usize, vals: [i64; NARROW]) -> Accums {
        debug_assert!(len <= NARROW && vals[len..].iter().all(|x| *x == 0));
        Accums(Slots::Narrow {
            len: len as u8,
            vals,
        })
    }

    fn len(&self) -> usize {
        match &self.0 {
            Slots::Narrow { len, .. } => *len as usize,
            Slots::Wide(v) => v.len(),
        }
    }

    /// Slot `i`, 0 past the end.
    pub fn get(&self, i: usize) -> i128 {
        match &self.0 {
            Slots::Narrow { len, vals } => match i < *len as usize {
                true => vals[i] as i128,
                false => 0,
            },
            Slots::Wide(v) => v.get(i).copied().unwrap_or(0),
        }
    }

    /// The slots, in order.
    pub(super) fn values(&self) -> impl ExactSizeIterator<Item = i128> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Moves to the wide form with at least `len` slots.
    fn widen(&mut self, len: usize) -> &mut Vec<i128> {
        if let Slots::Narrow { .. } = self.0 {
            self.0 = Slots::Wide(self.values().collect());
        }
        let Slots::Wide(v) = &mut self.0 else {
            unreachable!("widened above")
        };
        if v.len() < len {
            v.resize(len, 0);
        }
        v
    }

    /// Back to the inline form when the totals fit again (a retraction undid a large sum).
    fn narrow(&mut self) {
        if let Slots::Wide(v) = &self.0 {
            if v.len() <= NARROW && v.iter().all(|x| i64::try_from(*x).is_ok()) {
                *self = Accums::from_slots(v);
            }
        }
    }
}

impl Default for Accums {
    fn default() -> Accums {
        Accums::from_slots(&[])
    }
}

impl PartialEq for Accums {
    fn eq(&self, other: &Accums) -> bool {
        self.len() == other.len() && self.values().eq(other.values())
    }
}

impl Eq for Accums {}

impl PartialOrd for Accums {
    fn partial_cmp(&self, other: &Accums) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Accums {
    fn cmp(&self, other: &Accums) -> std::cmp::Ordering {
        self.values().cmp(other.values())
    }
}

impl std::hash::Hash for Accums {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for x in self.values() {
            state.write_i128(x);
        }
    }
}

impl IsZero for Accums {
    fn is_zero(&self) -> bool {
        self.values().all(|x| x == 0)
    }
}

impl Semigroup for Accums {
    fn plus_equals(&mut self, rhs: &Self) {
        if let (Slots::Narrow { len, vals }, Slots::Narrow { len: rl, vals: rv }) =
            (&mut self.0, &rhs.0)
        {
            let mut sum = *vals;
            let fits = sum
                .iter_mut()
                .zip(rv)
                .all(|(a, b)| a.checked_add(*b).map(|x| *a = x).is_some());
            if fits {
                *vals = sum;
                *len = (*len).max(*rl);
                return;
            }
        }
        let v = self.widen(rhs.len());
        for (a, b) in v.iter_mut().zip(rhs.values()) {
            *a += b;
        }
        self.narrow();
    }
}

impl Multiply<isize> for Accums {
    type Output = Accums;
    fn multiply(mut self, rhs: &isize) -> Accums {
        if let Slots::Narrow { vals, .. } = &mut self.0 {
            let mut product = *vals;
            let fits = product
                .iter_mut()
                .all(|a| a.checked_mul(*rhs as i64).map(|x| *a = x).is_some());
            if fits {
                *vals = product;
                return self;
            }
        }
        let len = self.len();
        for a in self.widen(len).iter_mut() {
            *a *= *rhs as i128;
        }
        self.narrow();
        self
    }
}

/// Slots each aggregate keeps: COUNT(*) uses the row count, COUNT one slot, SUM and AVG two
/// (the sum and how many values were not NULL).
pub(super) fn slots(a: &AggregateExpr) -> usize {
    match a.func {
        AggFunc::CountStar => 0,
        AggFunc::Count => 1,
        _ => 2,
    }
}

/// Whether `a` adds up as running totals without a DISTINCT step: `count(*)`, `count`, and
/// `sum`/`avg` of bigints.
pub(super) fn adds_up(a: &AggregateExpr) -> bool {
    !a.distinct
        && a.extra.is_empty()
        && match a.func {
            AggFunc::CountStar | AggFunc::Count => true,
            AggFunc::Sum | AggFunc::Avg => a.arg_type == DataType::Int,
            _ => false,
        }
}

/// Whether every aggregate can be accumulated. A DISTINCT aggregate can when its function
/// can: its argument is made distinct per group first (see [`render`]).
pub fn applies(r: &ReducePlan) -> bool {
    !r.aggregates.is_empty()
        && r.aggregates.iter().all(|a| match a.func {
            AggFunc::CountStar => !a.distinct,
            AggFunc::Count => true,
            AggFunc::Sum | AggFunc::Avg => a.arg_type == DataType::Int,
            _ => false,
        })
}

/// Appends the contributions of an argument `v` to one aggregate's slots.
pub(super) fn contribution(func: AggFunc, v: &Value, acc: &mut impl Extend<i128>) {
    match (func, v) {
        (AggFunc::Count, v) => acc.extend([i128::from(!v.is_null())]),
        (_, Value::Int(x)) => acc.extend([*x as i128, 1]),
        _ => acc.extend([0, 0]),
    }
}

/// Renders the reduce with every aggregate accumulated.
///
/// A DISTINCT aggregate cannot add up its rows' arguments directly: a value seen twice in a
/// group counts once. Its `(group key, argument)` pairs are made distinct first (a threshold,
/// which costs the same per change whatever the group's size) and each distinct pair then
/// contributes to the aggregate's slots alone, beside the other aggregates' contributions. The
/// general path would instead recompute the group's whole set of values at every change, which
/// is what made one large `count(DISTINCT …)` group the slowest Nexmark query (q15).
pub fn render<'s, T: RenderTime>(ctx: &mut Context<'s, T>, r: &ReducePlan) -> Bundle<'s, T> {
    if let Some(bundle) = render_over_join(ctx, r) {
        return bundle;
    }
    let distinct: Vec<usize> = (0..r.aggregates.len())
        .filter(|i| r.aggregates[*i].distinct)
        .collect();
    let mut of = Contributions::new(r);
    let width = of.width;
    if distinct.is_empty() {
        // Each row read (in place when the input is an arrangement) straight into its key,
        // with its contributions times its multiplicity as the difference; made where the row
        // lies when that is its key's worker.
        let read: super::ReadFn<(Row, Accums)> =
            Box::new(move |row: &Row| Some(of.of(row).map(|(key, acc, _)| (key, acc))));
        let (contributions, errs) =
            ctx.read_each(&r.input, read, |(key, acc): (Row, Accums), m| {
                (key, acc.multiply(&m))
            });
        let placed = placement::keyed_in_place(&r.input, &r.key);
        let (oks, agg_errs) = totals(ctx, r, contributions, placed);
        return Bundle::new(oks, errs.concat(agg_errs));
    }
    let read = move |row: &Row| Some(of.of(row).map(|(k, acc, args)| (k, acc, Row::new(args))));
    let (evaluated, errs) = ctx.map_rows(&r.input, Box::new(read));
    let rows = evaluated.clone().explode(|(key, acc, _)| Some((key, acc)));
    // (key…, which DISTINCT aggregate, argument) once per group, aggregate and distinct
    // non-NULL argument: one threshold for all of them.
    let n = r.key.len();
    let pairs = evaluated.flat_map(move |(key, _, args)| {
        args.into_values()
            .into_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_null())
            .map(move |(nth, v)| key.append(&[Value::Int(nth as i64), v]))
    });
    // Where each DISTINCT aggregate's slots start, and its function.
    let targets: Vec<(usize, AggFunc)> = distinct
        .iter()
        .map(|&i| {
            let slot = 1 + r.aggregates[..i].iter().map(slots).sum::<usize>();
            (slot, r.aggregates[i].func)
        })
        .collect();
    let once = super::threshold::distinct(pairs);
    let contributions = rows.concat(once.explode(move |row| {
        let Value::Int(nth) = row.get(n) else {
            return None;
        };
        let (slot, func) = *targets.get(nth as usize)?;
        let mut acc: SmallVec<[i128; 3]> = smallvec::smallvec![0; width];
        let mut own = SmallVec::<[i128; 3]>::new();
        contribution(func, &row.get(n + 1), &mut own);
        acc[slot..slot + own.len()].copy_from_slice(&own);
        Some((row.prefix(n), Accums::from_slots(&acc)))
    }));
    // The DISTINCT aggregates' pairs come from a threshold spread by whole pair, not from
    // where the input's rows lie.
    let (oks, agg_errs) = totals(ctx, r, contributions, false);
    Bundle::new(oks, errs.concat(agg_errs))
}

/// What each input row adds to its group: its key, its contributions to the aggregates that
/// add up, and the arguments of its DISTINCT aggregates. A row whose key or any argument fails
/// to evaluate contributes to no aggregate.
struct Contributions {
    key: RowExprs,
    aggs: Vec<AggregateExpr>,
    /// The columns the arguments read, decoded into `values` for each row.
    support: crate::expr::Support,
    values: Vec<Value>,
    width: usize,
}

impl Contributions {
    fn new(r: &ReducePlan) -> Self {
        let aggs = r.aggregates.clone();
        let support = crate::expr::Support::of(
            aggs.iter()
                .filter(|a| a.func != AggFunc::CountStar)
                .map(|a| &a.expr),
        );
        Contributions {
            key: RowExprs::new(r.key.clone()),
            width: 1 + aggs.iter().map(slots).sum::<usize>(),
            aggs,
            support,
            values: Vec::new(),
        }
    }

    fn of(&mut self, row: &Row) -> Result<(Row, Accums, Vec<Value>), EvalError> {
        let key = self.key.eval(row)?;
        self.support.decode(row, &mut self.values);
        let mut acc: SmallVec<[i128; 3]> = SmallVec::with_capacity(self.width);
        acc.push(1i128);
        let mut distinct_args = Vec::new();
        for a in &self.aggs {
            if a.func == AggFunc::CountStar {
                continue;
            }
            let v = a.expr.eval(&self.values)?;
            if a.distinct {
                acc.extend(std::iter::repeat_n(0, slots(a)));
                distinct_args.push(v);
            } else {
                contribution(a.func, &v, &mut acc);
            }
        }
        Ok((key, Accums::from_slots(&acc), distinct_args))
    }
}

/// Each group's result row from its rows' contributions (and its errors: a total outside
/// `bigint`), with the one row of a global aggregate over no rows.
fn totals<'s, T: RenderTime>(
    ctx: &mut Context<'s, T>,
    r: &ReducePlan,
    contributions: VecCollection<'s, T, Row, Accums>,
    placed: bool,
) -> (super::Rows<'s, T>, super::Errs<'s, T>) {
    let aggs = r.aggregates.clone();
    let totals = T::count_keys(contributions, placed);
    let (mut oks, agg_errs) = super::map_split(totals, move |(key, acc)| {
        finish(&aggs, &acc).map(|vals| key.append(&vals))
    });
    if r.global {
        let defaults = Row::new(
            r.aggregates
                .iter()
                .map(|a| match a.func {
                    AggFunc::Count | AggFunc::CountStar => Value::Int(0),
                    _ => Value::Null,
                })
                .collect(),
        );
        let present = oks.clone().map(|_| Row::empty());
        let missing = ctx
            .constant(vec![(Row::empty(), 1)])
            .concat(present.negate());
        oks = oks.concat(missing.map(move |_| defaults.clone()));
    }
    (oks, agg_errs)
}

/// The reduce rendered into the join below it, when that is an inner equi-join without
/// residual predicates (under at most a projection) and the group key and every argument are
/// plain columns, with no DISTINCT aggregate: the join then emits each match's group key and
/// contributions straight from its two sides' rows. Otherwise it would build the joined row
/// only for this operator to take it apart again (and sort and consolidate those rows once
/// more on the way).
fn render_over_join<'s, T: RenderTime>(
    ctx: &mut Context<'s, T>,
    r: &ReducePlan,
) -> Option<Bundle<'s, T>> {
    use crate::expr::ScalarExpr;
    use crate::plan::join::JoinKind;
    use crate::plan::Plan;
    let (j, project) = match r.input.as_ref() {
        Plan::Join(j) => (j, None),
        Plan::Mfp { input, mfp } if mfp.steps.is_empty() => match input.as_ref() {
            Plan::Join(j) => (j, Some(mfp.project.clone())),
            _ => return None,
        },
        _ => return None,
    };
    if j.kind != JoinKind::Inner
        || !j.residual.is_empty()
        || r.aggregates.iter().any(|a| a.distinct)
    {
        return None;
    }
    // A column of the reduce's input as (from the right side, position there) in the join.
    let left_arity = j.left.arity();
    let joined = |e: &ScalarExpr| {
        let ScalarExpr::Column(c) = e else {
            return None;
        };
        let c = match &project {
            Some(p) => *p.get(*c)?,
            None => *c,
        };
        Some(match c < left_arity {
            true => (false, c),
            false => (true, c - left_arity),
        })
    };
    let key: Vec<(bool, usize)> = r.key.iter().map(joined).collect::<Option<_>>()?;
    let placed = match key.as_slice() {
        [group] => placement::join_groups_in_place(j, *group),
        _ => false,
    };
    let args: Vec<(AggFunc, Option<(bool, usize)>)> = r
        .aggregates
        .iter()
        .map(|a| match a.func {
            AggFunc::CountStar => Some((a.func, None)),
            _ => joined(&a.expr).map(|c| (a.func, Some(c))),
        })
        .collect::<Option<_>>()?;
    let width = 1 + r.aggregates.iter().map(slots).sum::<usize>();
    // Each side is walked only as far as the last column read from it.
    let reach = |right: bool| {
        let cols = key
            .iter()
            .chain(args.iter().filter_map(|(_, c)| c.as_ref()));
        cols.filter(|(r, _)| *r == right)
            .map(|(_, i)| i + 1)
            .max()
            .unwrap_or(0)
    };
    let (left_reach, right_reach) = (reach(false), reach(true));
    let emit = move |left: &Row, right: &Row| {
        let mut lf = SmallVec::new();
        left.extend_fields(left_reach, &mut lf);
        let mut rf = SmallVec::new();
        right.extend_fields(right_reach, &mut rf);
        let field = |&(r, i): &(bool, usize)| match r {
            false => lf.get(i).copied(),
            true => rf.get(i).copied(),
        };
        let key = Row::from_fields(key.iter().map(field));
        let mut acc = SmallVec::<[i128; 3]>::with_capacity(width);
        acc.push(1);
        for (func, col) in &args {
            if let Some(c) = col {
                let v = field(c).map_or(Value::Null, Row::decode_field);
                contribution(*func, &v, &mut acc);
            }
        }
        Some((key, Accums::from_slots(&acc)))
    };
    let (contributions, join_errs) = super::join::render_mapped(ctx, j, emit);
    let (oks, agg_errs) = totals(ctx, r, contributions, placed);
    Some(Bundle::new(oks, join_errs.concat(agg_errs)))
}

/// The aggregate values from a group's totals (on the stack for up to four aggregates: one
/// result row is made per group and time a total changes).
pub(super) fn finish(
    aggs: &[AggregateExpr],
    acc: &Accums,
) -> Result<SmallVec<[Value; 4]>, EvalError> {
    let at = |i: usize| acc.get(i);
    let rows = at(0);
    if rows < 0 {
        return Err(EvalError::InvalidArgument(
            "aggregate input has a negative multiplicity".into(),
        ));
    }
    let int = |x: i128| {
        i64::try_from(x)
            .map(Value::Int)
            .map_err(|_| EvalError::Overflow("bigint".into()))
    };
    let mut out = SmallVec::with_capacity(aggs.len());
    let mut slot = 1;
    for a in aggs {
        out.push(match a.func {
            AggFunc::CountStar => int(rows)?,
            AggFunc::Count => int(at(slot))?,
            AggFunc::Sum | AggFunc::Avg => {
                let (sum, n) = (at(slot), at(slot + 1));
                if n == 0 {
                    Value::Null
                } else if a.func == AggFunc::Sum {
                    int(sum)?
                } else {
                    Value::float(sum as f64 / n as f64)
                }
            }
            _ => {
                return Err(EvalError::InvalidArgument(
                    "not an accumulable aggregate".into(),
                ))
            }
        });
        slot += slots(a);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::ScalarExpr;

    fn agg(func: AggFunc) -> AggregateExpr {
        AggregateExpr::new(func, ScalarExpr::Column(0), false, DataType::Int)
    }

    #[test]
    fn totals_stay_inline_until_they_leave_i64() {
        assert_eq!(std::mem::size_of::<Accums>(), 32);
        let narrow = |a: &Accums| matches!(a.0, Slots::Narrow { .. });
        let mut acc = Accums::from_slots(&[1, i64::MAX as i128]);
        assert!(narrow(&acc));
        // Past i64: wide, and exact.
        acc.plus_equals(&Accums::from_slots(&[1, 10]));
        assert!(!narrow(&acc));
        assert_eq!(acc.get(1), i64::MAX as i128 + 10);
        // Retracting brings it back inline, equal to the same totals built inline.
        acc.plus_equals(&Accums::from_slots(&[-1, -10]));
        assert!(narrow(&acc));
        assert_eq!(acc, Accums::from_slots(&[1, i64::MAX as i128]));
        // Multiplying out of range widens too; equality and order ignore the form.
        let big = Accums::from_slots(&[2, i64::MAX as i128]).multiply(&-3);
        assert_eq!(big.get(1), -3 * i64::MAX as i128);
        let wide = Accums(Slots::Wide(vec![1, 2]));
        assert_eq!(wide, Accums::from_slots(&[1, 2]));
        assert_eq!(
            wide.cmp(&Accums::from_slots(&[1, 3])),
            std::cmp::Ordering::Less
        );
        // Four slots are wide from the start; the missing slot of a shorter total adds as 0.
        let mut four = Accums::from_slots(&[1, 2, 3, 4]);
        four.plus_equals(&Accums::from_slots(&[1, 1]));
        assert_eq!(four, Accums::from_slots(&[2, 3, 3, 4]));
        four.plus_equals(&four.clone().multiply(&-1));
        assert!(four.is_zero());
    }

    #[test]
    fn totals_become_values() {
        let aggs = [
            agg(AggFunc::CountStar),
            agg(AggFunc::Count),
            agg(AggFunc::Sum),
            agg(AggFunc::Avg),
        ];
        // Three rows, two non-NULL arguments summing to 7 (for both SUM and AVG).
        let mut acc = Accums::from_slots(&[1, 1, 3, 1, 3, 1]);
        acc.plus_equals(&Accums::from_slots(&[1, 1, 4, 1, 4, 1]).multiply(&1));
        acc.plus_equals(&Accums::from_slots(&[1, 0, 0, 0, 0, 0]));
        let row = finish(&aggs, &acc).unwrap();
        assert_eq!(
            row.to_vec(),
            vec![
                Value::Int(3),
                Value::Int(2),
                Value::Int(7),
                Value::float(3.5)
            ]
        );
        // Only NULL arguments: SUM and AVG are NULL.
        let row = finish(&aggs, &Accums::from_slots(&[2, 0, 0, 0, 0, 0])).unwrap();
        assert_eq!(row[2], Value::Null);
        // A sum outside bigint is an error, not a wrapped number.
        let big = Accums::from_slots(&[2, 2, i64::MAX as i128 * 2, 2, 0, 2]);
        assert_eq!(
            finish(&aggs, &big),
            Err(EvalError::Overflow("bigint".into()))
        );
        // Retractions cancel to zero.
        let mut z = Accums::from_slots(&[1, 1, 5, 1, 5, 1]);
        z.plus_equals(&Accums::from_slots(&[1, 1, 5, 1, 5, 1]).multiply(&-1));
        assert!(z.is_zero());
    }
}
