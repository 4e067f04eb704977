//! ORDER BY … LIMIT as an incremental top-k per group.
//!
//! Each group's rows are re-ranked when the group changes. Large single groups would benefit
//! from a hierarchy of partial top-k's (as Materialize builds); the benchmark says when.

use super::{Bundle, Context, RenderTime};
use crate::error::EvalError;
use crate::plan::top_k::{compare_fields, OrderKey, RankKind, TopKPlan};
use crate::row::Row;
use crate::value::Value;
use smallvec::SmallVec;

pub fn render<'s, T: RenderTime>(ctx: &mut Context<'s, T>, t: &TopKPlan) -> Bundle<'s, T> {
    if let Some(kind) = t.rank {
        return render_rank(ctx, t, kind);
    }
    let input = ctx.render(&t.input);
    let group_key = t.group_key.clone();
    let order = t.order.clone();
    let (limit, offset) = (t.limit, t.offset);
    let oks = input
        .oks
        .map(move |row| (row.project(&group_key), row))
        .reduce_named(
            "TopK",
            move |_key, vals: &[(&Row, isize)], out: &mut Vec<(Row, isize)>| {
                let rows = sorted(vals, &order);
                let mut skip = offset.min(isize::MAX as usize) as isize;
                let mut take = limit
                    .map(|l| l.min(isize::MAX as usize) as isize)
                    .unwrap_or(isize::MAX);
                for (row, _, mut m) in rows {
                    if take == 0 {
                        break;
                    }
                    if skip > 0 {
                        let s = skip.min(m);
                        skip -= s;
                        m -= s;
                    }
                    let n = m.min(take);
                    if n > 0 {
                        out.push((row.clone(), n));
                        take -= n;
                    }
                }
            },
        )
        .map(|(_key, row)| row);
    Bundle::new(oks, input.errs)
}

/// A ranking window function: each group's rows sorted, numbered, and (with a limit) cut to
/// the ranks up to it.
fn render_rank<'s, T: RenderTime>(
    ctx: &mut Context<'s, T>,
    t: &TopKPlan,
    kind: RankKind,
) -> Bundle<'s, T> {
    if let RankKind::Window {
        func,
        value,
        arg,
        frame,
    } = kind
    {
        let w = super::frame::WindowFn {
            func,
            value,
            arg,
            frame,
        };
        return render_window(ctx, t, w);
    }
    let input = ctx.render(&t.input);
    let group_key = t.group_key.clone();
    let order = t.order.clone();
    let limit = t.limit.map(|l| l as i64).unwrap_or(i64::MAX);
    let oks = input
        .oks
        .map(move |row| (row.project(&group_key), row))
        .reduce_named(
            "Rank",
            move |_key, vals: &[(&Row, isize)], out: &mut Vec<(Row, isize)>| {
                let rows = sorted(vals, &order);
                match kind {
                    RankKind::Lag {
                        value,
                        offset,
                        default,
                    } => offset_rows(&rows, value, -(offset as isize), default, out),
                    RankKind::Lead {
                        value,
                        offset,
                        default,
                    } => offset_rows(&rows, value, offset as isize, default, out),
                    _ => rank_rows(&rows, &order, kind, limit, out),
                }
            },
        )
        .map(|(_key, row)| row);
    Bundle::new(oks, input.errs)
}

/// A window function over frames: each group's rows sorted and each given its value, which
/// may fail (a sum that leaves `bigint`).
fn render_window<'s, T: RenderTime>(
    ctx: &mut Context<'s, T>,
    t: &TopKPlan,
    w: super::frame::WindowFn,
) -> Bundle<'s, T> {
    let input = ctx.render(&t.input);
    let group_key = t.group_key.clone();
    let order = t.order.clone();
    let results = input
        .oks
        .map(move |row| (row.project(&group_key), row))
        .reduce_named(
            "Window",
            move |_key, vals: &[(&Row, isize)], out: &mut Vec<(Result<Row, EvalError>, isize)>| {
                super::frame::frame_rows(&sorted(vals, &order), &order, &w, out);
            },
        )
        .map(|(_key, row)| row);
    let (oks, errs) = super::split(results);
    Bundle::new(oks, input.errs.concat(errs))
}

/// Appends ranks to `rows` (sorted, positive multiplicities), keeping ranks up to `limit`.
fn rank_rows(
    rows: &[Decoded<'_>],
    order: &[OrderKey],
    kind: RankKind,
    limit: i64,
    out: &mut Vec<(Row, isize)>,
) {
    let with = |row: &Row, rank: i64| row.append(&[Value::Int(rank)]);
    // Rows before this one (with multiplicity), distinct orderings before it, and the rank
    // of the current run of ties.
    let (mut before, mut distinct, mut tie_rank) = (0i64, 0i64, 0i64);
    let mut previous: Option<&[&[u8]]> = None;
    for (row, fields, m) in rows {
        let m = *m as i64;
        let tied =
            previous.is_some_and(|p| compare_fields(p, fields, order) == std::cmp::Ordering::Equal);
        if !tied {
            distinct += 1;
            tie_rank = before + 1;
        }
        match kind {
            RankKind::RowNumber => {
                for n in (before + 1)..=(before + m).min(limit) {
                    out.push((with(row, n), 1));
                }
                if before + m >= limit {
                    return;
                }
            }
            RankKind::Rank | RankKind::DenseRank => {
                let rank = if kind == RankKind::Rank {
                    tie_rank
                } else {
                    distinct
                };
                if rank > limit {
                    return;
                }
                out.push((with(row, rank), m as isize));
            }
            RankKind::Lag { .. } | RankKind::Lead { .. } | RankKind::Window { .. } => {
                unreachable!("lag, lead and frame functions are not ranks")
            }
        }
        before += m;
        previous = Some(fields);
    }
}

/// `lag`/`lead`: appends to each row (each copy of it: every copy is a place in the order)
/// the `value` column of the row `shift` places away, or its own `default` column (NULL
/// without one) past either end.
fn offset_rows(
    rows: &[Decoded<'_>],
    value: usize,
    shift: isize,
    default: Option<usize>,
    out: &mut Vec<(Row, isize)>,
) {
    let places: Vec<usize> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, (_, _, m))| std::iter::repeat_n(i, *m as usize))
        .collect();
    for (p, &i) in places.iter().enumerate() {
        let (row, fields, _) = &rows[i];
        let other = p
            .checked_add_signed(shift)
            .and_then(|q| places.get(q))
            .map(|&j| rows[j].1[value]);
        let v = match (other, default) {
            (Some(field), _) => Row::decode_field(field),
            (None, Some(d)) => Row::decode_field(fields[d]),
            (None, None) => Value::Null,
        };
        out.push((row.append(&[v]), 1));
    }
    // Copies of a row with the same neighbours give the same output row.
    differential_dataflow::consolidation::consolidate(out);
}

/// A group's rows with positive multiplicity, in `order` (ties broken by the whole row, so the
/// order is total).
fn sorted<'a>(vals: &[(&'a Row, isize)], order: &[OrderKey]) -> Vec<Decoded<'a>> {
    let mut rows: Vec<Decoded> = vals
        .iter()
        .filter(|(_, m)| *m > 0)
        .map(|(r, m)| (*r, r.fields(), *m))
        .collect();
    rows.sort_by(|a, b| compare_fields(&a.1, &b.1, order).then_with(|| a.0.cmp(b.0)));
    rows
}

/// A row, its encoded values (split once for sorting) and its multiplicity.
pub(super) type Decoded<'a> = (&'a Row, SmallVec<[&'a [u8]; 16]>, isize);
