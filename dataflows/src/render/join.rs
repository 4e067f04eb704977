//! Joins: both sides arranged by their key expressions, matched with `join_core`, residual
//! predicates applied to matches, and outer joins completed with the unmatched rows.
//!
//! Unmatched rows are computed as `side - side ⋉ distinct(matched side rows)`, keyed by the
//! whole row, which stays correct under any sequence of insertions and retractions (a row
//! that loses its last match comes back padded with NULLs).

use std::rc::Rc;

use differential_dataflow::difference::{Multiply, Semigroup};
use differential_dataflow::lattice::Lattice;
use differential_dataflow::{Data, VecCollection};

use super::prefix::{self, KeepFn, PrefixSide, Side};
use super::{Bundle, Context, RenderTime, Rows};
use crate::expr::{RowExprs, ScalarExpr};
use crate::plan::join::{JoinKind, JoinPlan};
use crate::plan::{index, placement};
use crate::plan::{Diff, Plan};
use crate::row::Row;

pub fn render<'s, T: RenderTime>(ctx: &mut Context<'s, T>, j: &JoinPlan) -> Bundle<'s, T> {
    let left_arity = j.left.arity();
    let right_arity = j.right.arity();

    let ((lside, lerrs), (rside, rerrs)) = sides(ctx, j);
    let joined = prefix::join(lside, rside);

    let residual = j.residual.clone();
    let (matched, res_errs) = if residual.is_empty() {
        (joined, ctx.no_errors())
    } else {
        let support = crate::expr::Support::of(&residual);
        let mut values = Vec::new();
        // The matches filtered in the operator that splits off the predicates' errors; a
        // match that passes moves on without a copy.
        let keep = move |row: Row| {
            support.decode(&row, &mut values);
            for p in &residual {
                match p.eval(&values) {
                    Ok(v) if v.is_true() => {}
                    Ok(_) => return None,
                    Err(e) => return Some(Err(e)),
                }
            }
            Some(Ok(row))
        };
        super::read::collection_many(joined, keep, |row, r| (row, r))
    };

    let mut oks = matched.clone();
    if matches!(j.kind, JoinKind::Left | JoinKind::Full) {
        let left = ctx.render(&j.left);
        let matched_left = matched
            .clone()
            .map(move |row| row.project(&(0..left_arity).collect::<Vec<_>>()));
        let unmatched = unmatched(left.oks.clone(), matched_left);
        oks = oks.concat(unmatched.map(move |row| row.concat(&Row::nulls(right_arity))));
    }
    if matches!(j.kind, JoinKind::Right | JoinKind::Full) {
        let right = ctx.render(&j.right);
        let matched_right = matched.map(move |row| {
            row.project(&(left_arity..left_arity + right_arity).collect::<Vec<_>>())
        });
        let unmatched = unmatched(right.oks.clone(), matched_right);
        oks = oks.concat(unmatched.map(move |row| Row::nulls(left_arity).concat(&row)));
    }
    let errs = lerrs.concat(rerrs).concat(res_errs);
    Bundle::new(oks, errs)
}

/// An inner join without residual predicates, each match mapped by `emit` from the left row
/// and the right instead of concatenated (see [`prefix::join_map`]), with the sides' errors.
pub fn render_mapped<'s, T, D, R, F>(
    ctx: &mut Context<'s, T>,
    j: &JoinPlan,
    emit: F,
) -> (VecCollection<'s, T, D, R>, super::Errs<'s, T>)
where
    T: RenderTime,
    D: Data + Ord,
    R: Data + Semigroup + Multiply<Diff, Output = R>,
    F: FnMut(&Row, &Row) -> Option<(D, R)> + Clone + 'static,
{
    debug_assert!(j.kind == JoinKind::Inner && j.residual.is_empty());
    let ((lside, lerrs), (rside, rerrs)) = sides(ctx, j);
    (prefix::join_map(lside, rside, emit), lerrs.concat(rerrs))
}

/// A join side with its errors.
type SideErrs<'s, T> = (Side<'s, T>, super::Errs<'s, T>);

/// Both sides of `j`, each with its errors.
///
/// With several workers, an arrangement read in place lies where the hash of its rows' first
/// column places it (tables, sources, views and indexes are spread that way), so a side keyed
/// anew facing one is spread by its key's first column too: equal keys meet on one worker.
fn sides<'s, T: RenderTime>(
    ctx: &mut Context<'s, T>,
    j: &JoinPlan,
) -> (SideErrs<'s, T>, SideErrs<'s, T>) {
    let lserved = serving(ctx, &j.left, &j.left_key);
    let rserved = serving(ctx, &j.right, &j.right_key);
    let by_first = ctx.scope.peers() > 1;
    // A side whose key starts with its rows' first column, rows that lie where that column
    // places them, is arranged by that field where it lies (`plan::placement`).
    let leads = |side: &Plan, key: &[ScalarExpr]| {
        by_first && !T::NESTED && placement::leads_in_place(side, key)
    };
    let (lplaced, rplaced) = (leads(&j.left, &j.left_key), leads(&j.right, &j.right_key));
    let (lin, rin) = (lserved.is_some() || lplaced, rserved.is_some() || rplaced);
    let (lby_first, rby_first) = (by_first && (rin || lplaced), by_first && (lin || rplaced));
    (
        side(
            ctx,
            &j.left,
            &j.left_key,
            lserved,
            (lby_first, lplaced),
            "JoinLeft",
        ),
        side(
            ctx,
            &j.right,
            &j.right_key,
            rserved,
            (rby_first, rplaced),
            "JoinRight",
        ),
    )
}

/// The arrangement that serves `side` by `key` in place, with the indexed columns its rows
/// start with: the item's own for its leading columns, else an index (the rule of
/// `plan::index`).
fn serving<'s, T: RenderTime>(
    ctx: &Context<'s, T>,
    side: &Plan,
    key: &[ScalarExpr],
) -> Option<(prefix::RowArranged<'s, T>, usize)> {
    let id = index::side_item(side)?;
    let cols = index::key_columns(key)?;
    let imported = ctx.imported.get(&id)?;
    let own = match index::is_leading(&cols) {
        true => Some(imported.whole.clone()),
        false => None,
    };
    let by_index = || {
        let indexes = ctx
            .imported
            .iter()
            .filter_map(|(ix, imported)| imported.index.as_ref().map(|on| (*ix, on)));
        let (ix, on) = index::serving(indexes, id, &cols)?;
        let whole = ctx.imported.get(&ix)?.whole.clone();
        Some((whole, on.columns.len()))
    };
    own.map(|whole| (whole, 0)).or_else(by_index)
}

/// `side` as a join side by `key`, with `side`'s errors: read in place from `served` (see
/// [`serving`] and [`super::prefix`]), else keyed row by row (in place when it is imported)
/// and arranged as `(key, row)` pairs, spread over workers by the key's first column when
/// `by_first` (it faces a side read in place or lies by that column itself: `placed`, then
/// arranged where it lies), else by the whole key.
fn side<'s, T: RenderTime>(
    ctx: &mut Context<'s, T>,
    side: &Plan,
    key: &[ScalarExpr],
    served: Option<(prefix::RowArranged<'s, T>, usize)>,
    (by_first, placed): (bool, bool),
    name: &str,
) -> SideErrs<'s, T> {
    // The side's table, view or source, and the filter (if any) that `WHERE` put over it.
    let source = index::side_item(side);
    let filter = match side {
        Plan::Mfp { input, mfp } if source.is_some() => Some((
            input.as_ref(),
            mfp.evaluator(input.arity()),
            mfp.cannot_fail(),
        )),
        _ => None,
    };
    let imported = source.and_then(|id| ctx.imported.get(&id));
    if let (Some((whole, skip)), Some(imported)) = (served, imported) {
        let prefix = |keep| {
            Side::Prefix(PrefixSide {
                arranged: whole,
                n: key.len(),
                skip,
                keep,
            })
        };
        let errs = imported.errs.clone();
        let Some((input, eval, cannot_fail)) = filter else {
            return (prefix(None), errs);
        };
        let eval = Rc::new(eval);
        let keep: KeepFn = {
            let (eval, mut scratch) = (Rc::clone(&eval), Vec::new());
            Box::new(move |row: &Row| eval.passes(row, &mut scratch) == Ok(true))
        };
        let arranged = prefix(Some(keep));
        if cannot_fail {
            return (arranged, errs);
        }
        // The filter's own errors (a division by zero in `WHERE`), in a second pass.
        let mut scratch = Vec::new();
        let (_, errs) = ctx.map_rows::<Row>(
            input,
            Box::new(move |row| eval.passes(row, &mut scratch).err().map(Err)),
        );
        return (arranged, errs);
    }
    let (keyed, errs) = keyed(ctx, side, key.to_vec());
    let arranged = match by_first {
        true => prefix::arrange_key_by_first_field(keyed, name, placed),
        false => super::arrange::by_key(keyed, name),
    };
    (Side::Keyed(arranged), errs)
}

/// `(key, row)` pairs of `side`'s rows whose key has no NULL (NULL never equals anything),
/// with `side`'s errors and those evaluating the key.
fn keyed<'s, T: RenderTime>(
    ctx: &mut Context<'s, T>,
    side: &Plan,
    key: Vec<ScalarExpr>,
) -> (
    differential_dataflow::VecCollection<'s, T, (Row, Row), crate::plan::Diff>,
    super::Errs<'s, T>,
) {
    let key = RowExprs::new(key);
    ctx.map_rows::<(Row, Row)>(
        side,
        Box::new(move |row| key.eval_not_null(row).map(|k| k.map(|k| (k, row.clone())))),
    )
}

/// Rows of `side` with no match: `side - side ⋉ distinct(matched)`.
fn unmatched<'s, T: Timestamp2>(side: Rows<'s, T>, matched: Rows<'s, T>) -> Rows<'s, T> {
    let present = matched.distinct();
    let hits = side
        .clone()
        .map(|r| (r, ()))
        .semijoin(present)
        .map(|(r, ())| r);
    side.concat(hits.negate())
}

/// The bounds `unmatched` needs.
pub trait Timestamp2: timely::progress::Timestamp + Lattice + timely::ExchangeData {}
impl<T: timely::progress::Timestamp + Lattice + timely::ExchangeData> Timestamp2 for T {}
