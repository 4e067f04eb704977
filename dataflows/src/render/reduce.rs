//! GROUP BY and aggregates.
//!
//! Rows are keyed by their group key with the aggregate arguments as the value; each group's
//! aggregates are recomputed from its current values when it changes, so MIN and MAX stay
//! correct when the current extreme is deleted. Without GROUP BY (`global`) an empty input
//! still produces one row: a constant default row minus "a result exists".

use std::collections::BTreeSet;

use smallvec::SmallVec;

use differential_dataflow::VecCollection;

use super::walk::Pick;
use super::{split, Bundle, Context, Errs, RenderTime, Rows};
use crate::error::EvalError;
use crate::plan::reduce::{AggFunc, AggregateExpr, ReducePlan};
use crate::plan::top_k::{compare_rows, OrderKey};
use crate::plan::Diff;
use crate::row::Row;
use crate::sort_key::SortKey;
use crate::value::{DataType, Value};

pub fn render<'s, T: RenderTime>(ctx: &mut Context<'s, T>, r: &ReducePlan) -> Bundle<'s, T> {
    if super::accumulate::applies(r) {
        return super::accumulate::render(ctx, r);
    }
    if r.aggregates.is_empty() && !r.global {
        return distinct_keys(ctx, r);
    }
    let key = crate::expr::RowExprs::new(r.key.clone());
    // Each aggregate's argument, then its extra arguments (see `AggregateExpr::extra`).
    let args = crate::expr::RowExprs::new(
        r.aggregates
            .iter()
            .flat_map(|a| std::iter::once(&a.expr).chain(&a.extra).cloned())
            .collect(),
    );
    let (mut keyed, mut key_errs) = ctx.map_rows::<(Row, Row)>(
        &r.input,
        Box::new(move |row| Some(key.eval(row).and_then(|k| Ok((k, args.eval(row)?))))),
    );
    if let Some((oks, agg_errs)) = extremes_walked::<T>(keyed.clone(), r) {
        let errs = match agg_errs {
            Some(agg_errs) => key_errs.concat(agg_errs),
            None => key_errs,
        };
        return Bundle::new(oks, errs);
    }
    let mut aggs = r.aggregates.clone();
    if let Some(combine) = combined_in_levels(r) {
        let (partial, errs) = reduce_in_levels(keyed, r.key.len(), &aggs, &combine, &LEVELS);
        keyed = partial;
        key_errs = key_errs.concat(errs);
        aggs = combine;
    }

    let reduced = super::arrange::reduce(
        keyed,
        "Reduce",
        move |_key, vals: &[(&Row, isize)], out: &mut Vec<(Result<Row, EvalError>, isize)>| {
            out.push((aggregate_group(&aggs, vals), 1));
        },
    );
    let (mut oks, agg_errs) = super::map_split(reduced, |(k, res)| res.map(|vals| k.concat(&vals)));

    if r.global {
        let defaults = Row::new(r.aggregates.iter().map(default_value).collect());
        let present = oks.clone().map(|_| Row::empty());
        let missing = ctx
            .constant(vec![(Row::empty(), 1)])
            .concat(present.negate());
        oks = oks.concat(missing.map(move |_| defaults.clone()));
    }
    Bundle::new(oks, key_errs.concat(agg_errs))
}

/// The bucket counts of the levels [`reduce_in_levels`] reduces through, each a divisor of
/// the one before: the one group's `n` rows are recomputed from about `n / 4096` rows, then at
/// most 64, then at most 64 again, where the plain reduce reads all `n` on every change.
///
/// Only without GROUP BY, where the one group holds every row. With a group key the plan
/// cannot tell large groups from small ones, and a level costs the most where it saves
/// nothing: small groups, and groups that change in bulk. Measured with GROUP BY (Nexmark, 4M
/// events, two workers): these two levels took q4 (`max` per auction, a few bids each) from
/// 7.2 to 11.3 s and q7 (`max` per 10-second window) from 8.4 to 10.0 s; one level of 64
/// buckets took q4 from 6.9–7.6 to 8.8–9.8 s while taking a single-row write to a `max` over
/// ten groups of 100,000 rows from 13.5 to 1.5 ms (docs/benchmarks.md, "min and max over a
/// large group").
const LEVELS: [u64; 2] = [1 << 12, 1 << 6];

/// How the results of `r`'s aggregates over parts of a group combine into the group's, when
/// `r` is reduced in levels ([`reduce_in_levels`]): the extremes of the parts' extremes, the
/// sum of their counts and sums. Levels are used without GROUP BY only ([`LEVELS`]), and only
/// when every aggregate combines so: not `avg` (a sum and a count), not DISTINCT counts and
/// sums, not `string_agg`.
fn combined_in_levels(r: &ReducePlan) -> Option<Vec<AggregateExpr>> {
    if !r.global {
        return None;
    }
    (r.aggregates.iter())
        .map(|a| match a.func {
            _ if !a.extra.is_empty() => None,
            AggFunc::Min | AggFunc::Max => Some(a.clone()),
            AggFunc::Sum if !a.distinct => Some(a.clone()),
            AggFunc::Count | AggFunc::CountStar if !a.distinct => Some(AggregateExpr::new(
                AggFunc::Sum,
                a.expr.clone(),
                false,
                DataType::Int,
            )),
            _ => None,
        })
        .collect()
}

/// Aggregates without GROUP BY reduced in levels: the group's rows are spread over
/// `levels[0]` buckets by their hash, each bucket reduced to its partial results (`aggs`),
/// then over `levels[1]` buckets of those (`combine`, see [`combined_in_levels`]), and so on;
/// the pairs returned (group key, partial results) go to the group's own reduce, which
/// combines them too.
/// Differential's reduce recomputes a changed group from all its rows, so a plain `max` over a
/// million rows reads a million rows for every write that touches it (about 140 ms in
/// `freshet serve` with two workers); through the levels a write reads a bucket's rows and at
/// most as many partial results as the next level has buckets. Each level's rows have one
/// column per aggregate, like the input's, so [`aggregate_group`] computes every level. The buckets of one group also spread over the workers, where a group is otherwise
/// reduced on one.
fn reduce_in_levels<'s, T: RenderTime>(
    keyed: VecCollection<'s, T, (Row, Row), Diff>,
    key_len: usize,
    aggs: &[AggregateExpr],
    combine: &[AggregateExpr],
    levels: &[u64],
) -> (VecCollection<'s, T, (Row, Row), Diff>, Errs<'s, T>) {
    use differential_dataflow::Hashable;
    let with_bucket =
        |key: &Row, bucket: u64| key.concat(&Row::new(vec![Value::Int(bucket as i64)]));
    let first = levels[0] - 1;
    let mut stage = keyed.map(move |(k, v)| (with_bucket(&k, v.hashed() & first), v));
    let mut errs = Vec::new();
    for (level, next) in levels.iter().skip(1).map(Some).chain([None]).enumerate() {
        let aggs = if level == 0 { aggs } else { combine }.to_vec();
        let reduced = super::arrange::reduce(
            stage,
            &format!("Reduce: buckets, level {}", level + 1),
            move |_key, vals: &[(&Row, isize)], out: &mut Vec<(Result<Row, EvalError>, isize)>| {
                out.push((aggregate_group(&aggs, vals), 1));
            },
        )
        .map(|(k, res)| res.map(|v| (k, v)));
        let (oks, level_errs) = split(reduced);
        errs.push(level_errs);
        stage = match next {
            Some(&buckets) => oks.map(move |(k, v)| {
                // A bucket key ends with its bucket, an integer.
                let bucket = match k.get(key_len) {
                    Value::Int(b) => b,
                    _ => 0,
                };
                (
                    with_bucket(&k.prefix(key_len), bucket as u64 & (buckets - 1)),
                    v,
                )
            }),
            None => oks.map(move |(k, v)| (k.prefix(key_len), v)),
        };
    }
    let errs = errs
        .into_iter()
        .reduce(|a, b| a.concat(b))
        .expect("at least one level");
    (stage, errs)
}

/// GROUP BY whose aggregates are `min` and `max`, alone or beside ones that add up (`count`,
/// integer `sum`/`avg`, none DISTINCT): each group's rows arranged by each extreme's argument
/// in its order (one arrangement, each extreme's values led by its index), and each changed
/// group's extremes found by walking from its first values (`render::walk`), so a write to a
/// large group reads a value or two, not the group. The other aggregates are running totals
/// kept by the same operator (`walk::Totals`): the first extreme's arranged values carry their
/// arguments after its own column; the result's errors are totals outside `bigint`. `None`
/// without GROUP BY (the levels spread the one group over the workers), inside loops, and
/// for other aggregates. (Walking the extremes, keeping the totals elsewhere and joining the
/// two by group was measured first and not kept: q17, 240,000 small groups, 7.6 → 16.4 s.)
fn extremes_walked<'s, T: RenderTime>(
    keyed: VecCollection<'s, T, (Row, Row), Diff>,
    r: &ReducePlan,
) -> Option<(Rows<'s, T>, Option<Errs<'s, T>>)> {
    let extreme =
        |a: &AggregateExpr| a.extra.is_empty() && matches!(a.func, AggFunc::Min | AggFunc::Max);
    let count = r.aggregates.iter().filter(|a| extreme(a)).count();
    let alone = count == r.aggregates.len();
    let beside =
        (r.aggregates.iter()).all(|a| (extreme(a) && !a.distinct) || super::accumulate::adds_up(a));
    let applies =
        !r.global && !T::NESTED && (1..=usize::from(u8::MAX)).contains(&count) && (alone || beside);
    if !applies {
        return None;
    }
    // Argument positions (each aggregate has one, `count(*)`'s unused) of the extremes and of
    // the totals' arguments; an argument equal to the first extreme's is read from its column
    // instead of being carried twice (`sum(x)` beside `max(x)`).
    let first = r.aggregates.iter().find(|a| extreme(a)).map(|a| &a.expr);
    let mut orders: Vec<(usize, [OrderKey; 1])> = Vec::new();
    let mut carried: Vec<usize> = Vec::new();
    let mut order = Vec::new();
    let mut aggs = Vec::new();
    let mut shared = Vec::new();
    for (at, a) in r.aggregates.iter().enumerate() {
        if extreme(a) {
            order.push(Some(orders.len()));
            let key = OrderKey {
                column: 0,
                desc: a.func == AggFunc::Max,
                nulls_first: false,
            };
            orders.push((at, [key]));
        } else {
            order.push(None);
            let same = Some(&a.expr) == first;
            if a.func != AggFunc::CountStar && !same {
                carried.push(at);
            }
            shared.push(same);
            aggs.push(a.clone());
        }
    }
    let pairs = keyed.flat_map(move |(key, args)| {
        let fields = args.fields();
        (orders.iter().enumerate())
            .map(|(i, (at, order))| {
                let field = fields[*at];
                let sort = SortKey::of(&[i as u8], &[field], order);
                let value = if i == 0 {
                    let rest = carried.iter().map(|c| Some(fields[*c]));
                    Row::from_fields(std::iter::once(Some(field)).chain(rest))
                } else {
                    Row::from_fields([Some(field)])
                };
                (key.clone(), (sort, value))
            })
            .collect::<SmallVec<[_; 4]>>()
    });
    if alone {
        let oks = T::walk(pairs, Pick::Extremes { count }, "Reduce: extremes")?;
        return Some((oks, None));
    }
    let totals = super::walk::Totals {
        aggs,
        shared,
        order,
    };
    let results = T::walk_with_totals(pairs, count, totals, "Reduce: extremes and totals")?;
    let (oks, errs) = split(results);
    Some((oks, Some(errs)))
}

/// GROUP BY without aggregates: each group's key once, a threshold on the keys (Nexmark q8's
/// two sides). The general path would arrange every row's key beside an empty value and keep
/// an output arrangement of the groups for nothing.
fn distinct_keys<'s, T: RenderTime>(ctx: &mut Context<'s, T>, r: &ReducePlan) -> Bundle<'s, T> {
    let key = crate::expr::RowExprs::new(r.key.clone());
    let (keys, errs) = ctx.map_rows(&r.input, Box::new(move |row| Some(key.eval(row))));
    // Keys that start with their rows' first column lie where that column places them.
    let placed = !T::NESTED && crate::plan::placement::leads_in_place(&r.input, &r.key);
    Bundle::new(super::threshold::distinct_placed(keys, placed), errs)
}

/// The value of an aggregate over no rows.
fn default_value(a: &AggregateExpr) -> Value {
    match a.func {
        AggFunc::Count | AggFunc::CountStar => Value::Int(0),
        _ => Value::Null,
    }
}

/// Computes every aggregate of one group from its (value row, multiplicity) pairs.
fn aggregate_group(aggs: &[AggregateExpr], vals: &[(&Row, isize)]) -> Result<Row, EvalError> {
    if aggs.iter().all(reads_fields) {
        return aggregate_fields(aggs, vals);
    }
    aggregate_values(aggs, vals)
}

/// [`aggregate_group`] for any aggregates, over the rows unpacked into values.
fn aggregate_values(aggs: &[AggregateExpr], vals: &[(&Row, isize)]) -> Result<Row, EvalError> {
    let rows: Vec<(Vec<Value>, isize)> = vals.iter().map(|(r, m)| (r.unpack(), *m)).collect();
    let mut out = Vec::with_capacity(aggs.len());
    let mut at = 0;
    for a in aggs {
        out.push(match a.func {
            AggFunc::StringAgg => string_agg(a, &rows, at)?,
            _ => aggregate_one(a, rows.iter().map(|(r, m)| (&r[at], *m)))?,
        });
        at += 1 + a.extra.len();
    }
    Ok(Row::new(out))
}

/// Whether [`aggregate_fields`] computes `a`: one argument, no DISTINCT, and a function that
/// counts, picks an extreme or adds.
fn reads_fields(a: &AggregateExpr) -> bool {
    use AggFunc::*;
    !a.distinct && a.extra.is_empty() && matches!(a.func, CountStar | Count | Min | Max | Sum | Avg)
}

/// One aggregate's state while [`aggregate_fields`] walks its group.
enum Acc<'a> {
    Count(i64),
    /// The least (`max` false) or greatest non-NULL encoding so far.
    Extreme {
        max: bool,
        best: Option<&'a [u8]>,
    },
    /// The argument's values, for `sum` and `avg` ([`aggregate_one`] adds them).
    Values(Vec<(Value, isize)>),
}

/// [`aggregate_group`] for aggregates that [`reads_fields`]: the rows' encoded fields are read
/// in place, not unpacked into values. Encodings of one type compare as their values do, so
/// `min` and `max` compare bytes and decode only the winner; counts look at the tag alone;
/// only `sum` and `avg` decode their arguments. With `max(x)` beside a count or a sum, every
/// change to a group recomputes it from all its rows, so this is the hot path of such views.
fn aggregate_fields(aggs: &[AggregateExpr], vals: &[(&Row, isize)]) -> Result<Row, EvalError> {
    let mut accs: SmallVec<[Acc; 8]> = aggs
        .iter()
        .map(|a| match a.func {
            AggFunc::Min => Acc::Extreme {
                max: false,
                best: None,
            },
            AggFunc::Max => Acc::Extreme {
                max: true,
                best: None,
            },
            AggFunc::Sum | AggFunc::Avg => Acc::Values(Vec::with_capacity(vals.len())),
            _ => Acc::Count(0),
        })
        .collect();
    let mut fields: SmallVec<[&[u8]; 16]> = SmallVec::new();
    for (row, m) in vals {
        if *m < 0 {
            return Err(EvalError::InvalidArgument(
                "aggregate input has a negative multiplicity".into(),
            ));
        }
        fields.clear();
        row.extend_fields(aggs.len(), &mut fields);
        for ((a, acc), field) in aggs.iter().zip(&mut accs).zip(&fields) {
            let null = Row::field_is_null(field);
            match acc {
                Acc::Count(n) if a.func == AggFunc::CountStar || !null => *n += *m as i64,
                Acc::Count(_) => {}
                Acc::Extreme { .. } if null || *m == 0 => {}
                Acc::Extreme { max, best } => {
                    let better = match best {
                        None => true,
                        Some(b) if *max => *field > *b,
                        Some(b) => *field < *b,
                    };
                    if better {
                        *best = Some(field);
                    }
                }
                Acc::Values(items) => {
                    if !null {
                        items.push((Row::decode_field(field), *m));
                    }
                }
            }
        }
    }
    let mut out = Vec::with_capacity(aggs.len());
    for (a, acc) in aggs.iter().zip(accs) {
        out.push(match acc {
            Acc::Count(n) => Value::Int(n),
            Acc::Extreme { best, .. } => best.map_or(Value::Null, Row::decode_field),
            Acc::Values(items) => aggregate_one(a, items.iter().map(|(v, m)| (v, *m)))?,
        });
    }
    Ok(Row::new(out))
}

/// `string_agg` over the group's rows, whose columns from `at` hold its value, delimiter and
/// ORDER BY keys. Ties in the ORDER BY (and the whole order, without one) fall back to the
/// order of the rows, which is sorted by all argument columns: deterministic on every worker.
fn string_agg(
    a: &AggregateExpr,
    rows: &[(Vec<Value>, isize)],
    at: usize,
) -> Result<Value, EvalError> {
    let mut items: Vec<(&[Value], isize)> = Vec::new();
    for (r, m) in rows {
        if *m < 0 {
            return Err(EvalError::InvalidArgument(
                "aggregate input has a negative multiplicity".into(),
            ));
        }
        let args = &r[at..at + 1 + a.extra.len()];
        if !args[0].is_null() {
            items.push((args, if a.distinct { 1 } else { *m }));
        }
    }
    if a.distinct {
        // The rows are sorted by every aggregate's arguments, this one's not necessarily
        // first: sort by its own before dropping repeats.
        items.sort_by(|x, y| x.0.cmp(y.0));
        items.dedup_by(|x, y| x.0 == y.0);
    }
    // The keys' columns count from the delimiter (`extra`); here they count from the value.
    let order: Vec<OrderKey> = a
        .order
        .iter()
        .map(|k| OrderKey {
            column: k.column + 1,
            ..k.clone()
        })
        .collect();
    items.sort_by(|(x, _), (y, _)| compare_rows(x, y, &order));
    let mut text = String::new();
    let mut first = true;
    for (args, m) in items {
        let Value::Text(value) = &args[0] else {
            continue;
        };
        for _ in 0..m {
            if !first {
                // A NULL delimiter joins with nothing between.
                if let Value::Text(d) = &args[1] {
                    text.push_str(d);
                }
            }
            text.push_str(value);
            first = false;
        }
    }
    Ok(match first {
        true => Value::Null,
        false => Value::Text(text.into()),
    })
}

fn aggregate_one<'a>(
    a: &AggregateExpr,
    vals: impl Iterator<Item = (&'a Value, isize)>,
) -> Result<Value, EvalError> {
    // Multiplicities are positive for consolidated, valid input; a negative one would mean a
    // retraction of something never inserted, which we report rather than hide.
    let mut items: Vec<(&Value, i64)> = Vec::new();
    for (v, m) in vals {
        if m < 0 {
            return Err(EvalError::InvalidArgument(
                "aggregate input has a negative multiplicity".into(),
            ));
        }
        if !matches!(a.func, AggFunc::CountStar | AggFunc::Single) && v.is_null() {
            continue;
        }
        items.push((v, m as i64));
    }
    if a.distinct {
        let set: BTreeSet<&Value> = items.iter().map(|(v, _)| *v).collect();
        items = set.into_iter().map(|v| (v, 1)).collect();
    }
    Ok(match a.func {
        // Needs its delimiter beside the value: `aggregate_group` calls `string_agg`.
        AggFunc::StringAgg => {
            return Err(EvalError::InvalidArgument(
                "string_agg evaluated without its delimiter".into(),
            ))
        }
        AggFunc::CountStar | AggFunc::Count => Value::Int(items.iter().map(|(_, m)| m).sum()),
        AggFunc::Single => match items.as_slice() {
            [] => Value::Null,
            [(v, 1)] => (*v).clone(),
            _ => return Err(EvalError::MultipleRows),
        },
        // The group's values are sorted by the whole argument row, not by this argument.
        AggFunc::Min => items
            .iter()
            .map(|(v, _)| *v)
            .min()
            .cloned()
            .unwrap_or(Value::Null),
        AggFunc::Max => items
            .iter()
            .map(|(v, _)| *v)
            .max()
            .cloned()
            .unwrap_or(Value::Null),
        AggFunc::Sum | AggFunc::Avg => {
            if items.is_empty() {
                return Ok(Value::Null);
            }
            let count: i64 = items.iter().map(|(_, m)| m).sum();
            match (a.arg_type, a.func) {
                (DataType::Int, AggFunc::Sum) => {
                    let mut s: i64 = 0;
                    for (v, m) in &items {
                        if let Value::Int(x) = v {
                            s = x
                                .checked_mul(*m)
                                .and_then(|p| s.checked_add(p))
                                .ok_or_else(|| EvalError::Overflow("bigint".into()))?;
                        }
                    }
                    Value::Int(s)
                }
                (DataType::Numeric, AggFunc::Sum | AggFunc::Avg) => {
                    let overflow = || EvalError::Overflow("numeric".into());
                    let mut s = rust_decimal::Decimal::ZERO;
                    for (v, m) in &items {
                        if let Value::Numeric(x) = v {
                            s = x
                                .checked_mul((*m).into())
                                .and_then(|p| s.checked_add(p))
                                .ok_or_else(overflow)?;
                        }
                    }
                    if a.func == AggFunc::Avg {
                        s = s.checked_div(count.into()).ok_or_else(overflow)?;
                    }
                    Value::numeric(s)
                }
                (DataType::Interval, AggFunc::Avg) => {
                    let total: i128 = items
                        .iter()
                        .map(|(v, m)| {
                            if let Value::Interval(x) = v {
                                *x as i128 * *m as i128
                            } else {
                                0
                            }
                        })
                        .sum();
                    Value::Interval((total / count as i128) as i64)
                }
                (DataType::Interval, AggFunc::Sum) => {
                    let mut s: i64 = 0;
                    for (v, m) in &items {
                        if let Value::Interval(x) = v {
                            s = x
                                .checked_mul(*m)
                                .and_then(|p| s.checked_add(p))
                                .ok_or_else(|| EvalError::Overflow("interval".into()))?;
                        }
                    }
                    Value::Interval(s)
                }
                _ => {
                    // Integer sums stay exact for AVG; floats accumulate as f64.
                    let exact: Option<i128> = items.iter().try_fold(0i128, |acc, (v, m)| match v {
                        Value::Int(x) => Some(acc + *x as i128 * *m as i128),
                        _ => None,
                    });
                    let sum = match exact {
                        Some(s) => s as f64,
                        None => items
                            .iter()
                            .map(|(v, m)| match v {
                                Value::Float(f) => f.0 * *m as f64,
                                Value::Int(x) => *x as f64 * *m as f64,
                                _ => 0.0,
                            })
                            .sum(),
                    };
                    if a.func == AggFunc::Avg {
                        Value::float(sum / count as f64)
                    } else {
                        Value::float(sum)
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rust_decimal::Decimal;

    use super::*;
    use crate::expr::ScalarExpr;

    fn random_value(rng: &mut impl Rng, ty: DataType) -> Value {
        if rng.random_ratio(1, 6) {
            return Value::Null;
        }
        match ty {
            DataType::Int => Value::Int(rng.random_range(-5..5) * 1_000_000_007),
            DataType::Float => {
                let pick = [0.0, -0.0, f64::NAN, f64::INFINITY, -2.5, 1e-300, 7.25];
                Value::float(pick[rng.random_range(0..pick.len())])
            }
            DataType::Numeric => Value::numeric(Decimal::new(
                rng.random_range(-99_999..99_999),
                rng.random_range(0..6),
            )),
            _ => {
                let pick = ["", "a", "a\0b", "a\0", "ab", "b", "é", "Z"];
                Value::Text(pick[rng.random_range(0..pick.len())].into())
            }
        }
    }

    /// The fields path gives what unpacking every row gives, for every function it takes, over
    /// groups with NULLs, repeats, zeros of both signs, NaN and text with zero bytes.
    #[test]
    fn fields_path_matches_the_values_path() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for ty in [
            DataType::Int,
            DataType::Float,
            DataType::Numeric,
            DataType::Text,
        ] {
            let funcs: &[AggFunc] = match ty {
                DataType::Text => &[
                    AggFunc::CountStar,
                    AggFunc::Count,
                    AggFunc::Min,
                    AggFunc::Max,
                ],
                _ => &[
                    AggFunc::CountStar,
                    AggFunc::Count,
                    AggFunc::Min,
                    AggFunc::Max,
                    AggFunc::Sum,
                    AggFunc::Avg,
                ],
            };
            let aggs: Vec<AggregateExpr> = (funcs.iter())
                .enumerate()
                .map(|(i, f)| AggregateExpr::new(*f, ScalarExpr::Column(i), false, ty))
                .collect();
            assert!(aggs.iter().all(reads_fields));
            for _ in 0..300 {
                let group: Vec<(Row, isize)> = (0..rng.random_range(0..8))
                    .map(|_| {
                        let v = random_value(&mut rng, ty);
                        (
                            Row::new(vec![v; funcs.len()]),
                            rng.random_range(1..4i64) as isize,
                        )
                    })
                    .collect();
                let vals: Vec<(&Row, isize)> = group.iter().map(|(r, m)| (r, *m)).collect();
                let fields = aggregate_fields(&aggs, &vals).map(|r| r.unpack());
                let values = aggregate_values(&aggs, &vals).map(|r| r.unpack());
                assert_eq!(fields, values, "{ty:?} over {group:?}");
            }
        }
        let negative = Row::new(vec![Value::Int(1)]);
        let count = [AggregateExpr::new(
            AggFunc::Count,
            ScalarExpr::Column(0),
            false,
            DataType::Int,
        )];
        assert!(aggregate_fields(&count, &[(&negative, -1)]).is_err());
    }
}
