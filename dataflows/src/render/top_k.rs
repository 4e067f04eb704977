//! ORDER BY … LIMIT as an incremental top-k per group.
//!
//! Each group's rows are re-ranked when the group changes. Large single groups would benefit
//! from a hierarchy of partial top-k's (as Materialize builds); the benchmark says when.

use super::walk::Pick;
use super::{Bundle, Context, RenderTime};
use crate::error::EvalError;
use crate::plan::top_k::{compare_fields, OrderKey, RankKind, TopKPlan};
use crate::row::Row;
use crate::sort_key::SortKey;
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
    // With a limit, a write reads the rows up to it, not its whole group (`render::walk`).
    if let (Some(limit), false) = (limit, T::NESTED) {
        let pairs = input.oks.clone().map(move |row| {
            let sort = SortKey::of(&[], &row.fields(), &order);
            (row.project(&group_key), (sort, row))
        });
        let pick = Pick::First { offset, limit };
        if let Some(oks) = T::walk(pairs, pick, "TopK") {
            return Bundle::new(oks, input.errs);
        }
    }
    let order = t.order.clone();
    let group_key = t.group_key.clone();
    let oks = super::arrange::reduce(
        input.oks.map(move |row| (row.project(&group_key), row)),
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
    // Ranks cut to a limit read each changed group up to it (`render::walk`).
    let ranks = matches!(
        kind,
        RankKind::RowNumber | RankKind::Rank | RankKind::DenseRank
    );
    if let (true, Some(_), false) = (ranks, t.limit, T::NESTED) {
        let pairs = input.oks.clone().map(move |row| {
            let sort = SortKey::of(&[], &row.fields(), &order);
            (row.project(&group_key), (sort, row))
        });
        if let Some(oks) = T::walk(pairs, Pick::Ranks { kind, limit }, "Rank") {
            return Bundle::new(oks, input.errs);
        }
    }
    let group_key = t.group_key.clone();
    let order = t.order.clone();
    let oks = super::arrange::reduce(
        input.oks.map(move |row| (row.project(&group_key), row)),
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
                RankKind::PercentRank | RankKind::CumeDist | RankKind::Ntile(_) => {
                    distribution_rows(&rows, &order, kind, out)
                }
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
    let results = super::arrange::reduce(
        input.oks.map(move |row| (row.project(&group_key), row)),
        "Window",
        move |_key, vals: &[(&Row, isize)], out: &mut Vec<(Result<Row, EvalError>, isize)>| {
            super::frame::frame_rows(&sorted(vals, &order), &order, &w, out);
        },
    );
    let (oks, errs) = super::map_split(results, |(_key, row)| row);
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
    let mut ranker = Ranker::new(kind, limit);
    let mut previous: Option<&[&[u8]]> = None;
    for (row, fields, m) in rows {
        let tied =
            previous.is_some_and(|p| compare_fields(p, fields, order) == std::cmp::Ordering::Equal);
        let more = ranker.rank(tied, *m as i64, |rank, n| {
            out.push((row.append(&[Value::Int(rank)]), n))
        });
        if !more {
            return;
        }
        previous = Some(fields);
    }
}

/// Numbers a group's rows, taken in order, for `row_number`, `rank` or `dense_rank`, up to a
/// limit: shared by the reduce ([`rank_rows`]) and the walk (`render::walk`).
pub(super) struct Ranker {
    kind: RankKind,
    limit: i64,
    /// Rows before the next one (with multiplicity).
    before: i64,
    /// Distinct orderings so far.
    distinct: i64,
    /// The rank of the current run of ties.
    tie_rank: i64,
}

impl Ranker {
    pub(super) fn new(kind: RankKind, limit: i64) -> Ranker {
        Ranker {
            kind,
            limit,
            before: 0,
            distinct: 0,
            tie_rank: 0,
        }
    }

    /// Ranks the next row, of multiplicity `m` (positive), `tied` with the one before it in
    /// the order: `emit` gets each (rank, multiplicity) it is kept with. Returns whether a
    /// later row can still rank within the limit.
    pub(super) fn rank(&mut self, tied: bool, m: i64, mut emit: impl FnMut(i64, isize)) -> bool {
        if !tied {
            self.distinct += 1;
            self.tie_rank = self.before + 1;
        }
        match self.kind {
            RankKind::RowNumber => {
                for n in (self.before + 1)..=(self.before + m).min(self.limit) {
                    emit(n, 1);
                }
                if self.before + m >= self.limit {
                    return false;
                }
            }
            RankKind::Rank | RankKind::DenseRank => {
                let rank = match self.kind {
                    RankKind::Rank => self.tie_rank,
                    _ => self.distinct,
                };
                if rank > self.limit {
                    return false;
                }
                emit(rank, m as isize);
            }
            _ => unreachable!("only row_number, rank and dense_rank are ranks"),
        }
        self.before += m;
        true
    }
}

/// `percent_rank`, `cume_dist` and `ntile`: appended to every position of the group (each copy
/// of a row is one), from its place among the group's `n` positions and its peers.
fn distribution_rows(
    rows: &[Decoded<'_>],
    order: &[OrderKey],
    kind: RankKind,
    out: &mut Vec<(Row, isize)>,
) {
    let n: usize = rows.iter().map(|(_, _, m)| *m as usize).sum();
    let peer = |i: usize, j: usize| compare_fields(&rows[i].1, &rows[j].1, order).is_eq();
    // Where each row's peers end (one past their last position), found backwards.
    let mut peers_end = vec![0; rows.len()];
    let mut after = n;
    for i in (0..rows.len()).rev() {
        peers_end[i] = match i + 1 < rows.len() && peer(i, i + 1) {
            true => peers_end[i + 1],
            false => after,
        };
        after -= rows[i].2 as usize;
    }
    // Positions before the current row's peers, and the current row's first position.
    let (mut before_peers, mut position) = (0usize, 0usize);
    for (i, (row, _, m)) in rows.iter().enumerate() {
        let m = *m as usize;
        if i > 0 && !peer(i - 1, i) {
            before_peers = position;
        }
        for p in position..position + m {
            let v = match kind {
                RankKind::PercentRank if n > 1 => {
                    Value::float(before_peers as f64 / (n - 1) as f64)
                }
                RankKind::PercentRank => Value::float(0.0),
                RankKind::CumeDist => Value::float(peers_end[i] as f64 / n as f64),
                RankKind::Ntile(buckets) => Value::Int(ntile(p, n, buckets) as i64),
                _ => unreachable!("distribution functions"),
            };
            out.push((row.append(&[v]), 1));
        }
        position += m;
    }
    differential_dataflow::consolidation::consolidate(out);
}

/// The bucket (from 1) of position `p` of `n` cut into `buckets` buckets, the first `n %
/// buckets` of them one larger.
fn ntile(p: usize, n: usize, buckets: u64) -> usize {
    let buckets = buckets.min(n as u64).max(1) as usize;
    let (size, larger) = (n / buckets, n % buckets);
    let in_larger = larger * (size + 1);
    match p < in_larger {
        true => p / (size + 1) + 1,
        false => larger + (p - in_larger) / size + 1,
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
