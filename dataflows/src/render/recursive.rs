//! WITH RECURSIVE through differential's iterative scopes.
//!
//! The fixed point of `x = base ∪ step(x)` is computed in a nested scope with timestamps
//! `Product<u64, u64>` (outer time, iteration). For `UNION` (not `ALL`) each round is made
//! distinct. A query that keeps producing new rows would loop forever, so rows past
//! `MAX_ITERATIONS` leave the loop and become a `RecursionLimit` error of the view instead.
//! Recursion is one level deep: a recursive CTE inside another is rejected when planning.

use differential_dataflow::collection::AsCollection;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::iterate::Variable;
use differential_dataflow::operators::ThresholdTotal;
use differential_dataflow::VecCollection;
use timely::dataflow::operators::core::OkErr;
use timely::order::Product;

use super::accumulate::Accums;
use super::walk::{Pick, Totals};
use super::{Bundle, Context, Time};
use crate::error::EvalError;
use crate::plan::Diff;
use crate::plan::{LocalId, Plan};
use crate::row::Row;
use crate::sort_key::SortKey;

/// Rounds of recursion before a query is declared divergent.
pub const MAX_ITERATIONS: u64 = 10_000;

/// Timestamps a plan can be rendered at. They differ in `render_letrec`, and in counting and
/// thresholds: outside a loop times are totally ordered, so differential's `*_total` operators
/// apply, which emit changes straight from the input arrangement instead of keeping an output
/// arrangement and replaying each key's history (the general `count` and `threshold`).
pub trait RenderTime: timely::progress::Timestamp + Lattice + timely::ExchangeData + Ord {
    /// The earliest time at logical time `ms` (iteration 0 inside a loop): temporal filters
    /// join it with an update's time to move the update to `ms`.
    fn from_millis(ms: Time) -> Self;

    /// Whether this is a loop's time. Inside a loop, operators exchange as usual and keep no
    /// placement (`plan::placement` describes the outer scope).
    const NESTED: bool;

    /// Each key with its accumulated difference (`count`); `placed` when each key already
    /// lies on the worker its hash places it on (`plan::placement`).
    fn count_keys<'s>(
        keys: VecCollection<'s, Self, Row, Accums>,
        placed: bool,
    ) -> VecCollection<'s, Self, (Row, Accums), isize>;

    /// `rows` with each multiplicity mapped by `f` (`threshold`); `placed` when each row
    /// already lies where the hash of its first column places it, and stays there.
    fn threshold_rows<'s>(
        rows: VecCollection<'s, Self, Row, isize>,
        f: fn(&Row, &isize) -> isize,
        placed: bool,
    ) -> VecCollection<'s, Self, Row, isize>;

    fn render_letrec<'s>(
        ctx: &mut Context<'s, Self>,
        id: LocalId,
        base: Bundle<'s, Self>,
        step: &Plan,
        distinct: bool,
    ) -> Bundle<'s, Self>;

    /// Rows keyed by group beside their sort keys, reduced to what `pick` takes from each
    /// group by walking the groups in order (`render::walk`); `None` inside a loop, whose
    /// times are not totally ordered (callers keep their `reduce` there).
    fn walk<'s>(
        pairs: VecCollection<'s, Self, (Row, (SortKey, Row)), Diff>,
        pick: Pick,
        name: &str,
    ) -> Option<VecCollection<'s, Self, Row, Diff>>;

    /// `min`/`max` walked as [`RenderTime::walk`] does with `Pick::Extremes`, beside running
    /// totals of `count` and integer `sum`/`avg` (`render::walk::Totals`); `None` inside a loop.
    fn walk_with_totals<'s>(
        pairs: VecCollection<'s, Self, (Row, (SortKey, Row)), Diff>,
        count: usize,
        totals: Totals,
        name: &str,
    ) -> Option<VecCollection<'s, Self, Result<Row, EvalError>, Diff>>;
}

impl RenderTime for Time {
    fn from_millis(ms: Time) -> Self {
        ms
    }

    const NESTED: bool = false;

    fn walk<'s>(
        pairs: VecCollection<'s, Self, (Row, (SortKey, Row)), Diff>,
        pick: Pick,
        name: &str,
    ) -> Option<VecCollection<'s, Self, Row, Diff>> {
        Some(super::walk::render(pairs, pick, name))
    }

    fn walk_with_totals<'s>(
        pairs: VecCollection<'s, Self, (Row, (SortKey, Row)), Diff>,
        count: usize,
        totals: Totals,
        name: &str,
    ) -> Option<VecCollection<'s, Self, Result<Row, EvalError>, Diff>> {
        Some(super::walk::render_with_totals(pairs, count, totals, name))
    }

    fn count_keys<'s>(
        keys: VecCollection<'s, Self, Row, Accums>,
        placed: bool,
    ) -> VecCollection<'s, Self, (Row, Accums), isize> {
        super::totals::count_totals(keys, placed)
    }

    fn threshold_rows<'s>(
        rows: VecCollection<'s, Self, Row, isize>,
        f: fn(&Row, &isize) -> isize,
        placed: bool,
    ) -> VecCollection<'s, Self, Row, isize> {
        let name = "Arrange: ThresholdTotal";
        match placed {
            true => super::prefix::arrange_in_place(rows, name).threshold_total(f),
            false => super::arrange::by_self(rows, name).threshold_total(f),
        }
    }

    fn render_letrec<'s>(
        ctx: &mut Context<'s, Self>,
        id: LocalId,
        base: Bundle<'s, Self>,
        step: &Plan,
        distinct: bool,
    ) -> Bundle<'s, Self> {
        let outer = ctx.scope;
        ctx.materialize_imports();
        let gets = ctx.gets.clone();
        let locals = ctx.locals.clone();
        let (oks, errs) = outer.scoped::<Product<Time, u64>, _, _>("WithRecursive", |inner| {
            let mut inner_ctx: Context<'_, Product<Time, u64>> = Context::new(inner);
            for (gid, b) in gets {
                inner_ctx
                    .gets
                    .insert(gid, Bundle::new(b.oks.enter(inner), b.errs.enter(inner)));
            }
            for (lid, b) in locals {
                inner_ctx
                    .locals
                    .insert(lid, Bundle::new(b.oks.enter(inner), b.errs.enter(inner)));
            }
            let base_oks = base.oks.enter(inner);
            let (variable, current) = Variable::new(inner, Product::new(Default::default(), 1));
            let current = current.concat(base_oks.clone());
            inner_ctx
                .locals
                .insert(id, Bundle::new(current.clone(), inner_ctx.no_errors()));
            let stepped = inner_ctx.render(step);
            let mut next = base_oks.clone().concat(stepped.oks);
            if distinct {
                next = next.distinct();
            } else {
                next = next.consolidate();
            }
            // Rows born too deep in the recursion leave the loop as errors.
            let (bounded, too_deep) = next.inner.ok_err(
                |(row, t, d): (crate::row::Row, Product<Time, u64>, isize)| {
                    if t.inner < MAX_ITERATIONS {
                        Ok((row, t, d))
                    } else {
                        Err((EvalError::RecursionLimit(MAX_ITERATIONS), t, d))
                    }
                },
            );
            let bounded = bounded.as_collection();
            variable.set(bounded.clone().concat(base_oks.negate()));
            let errs = stepped.errs.concat(too_deep.as_collection());
            (bounded.leave(outer), errs.leave(outer))
        });
        let errs = errs
            .map(|e| (e, ()))
            .reduce(|_e, _v, out: &mut Vec<((), isize)>| out.push(((), 1)))
            .map(|(e, ())| e);
        Bundle::new(oks, base.errs.concat(errs))
    }
}

impl RenderTime for Product<Time, u64> {
    fn from_millis(ms: Time) -> Self {
        Product::new(ms, 0)
    }

    const NESTED: bool = true;

    fn walk<'s>(
        _pairs: VecCollection<'s, Self, (Row, (SortKey, Row)), Diff>,
        _pick: Pick,
        _name: &str,
    ) -> Option<VecCollection<'s, Self, Row, Diff>> {
        None
    }

    fn walk_with_totals<'s>(
        _pairs: VecCollection<'s, Self, (Row, (SortKey, Row)), Diff>,
        _count: usize,
        _totals: Totals,
        _name: &str,
    ) -> Option<VecCollection<'s, Self, Result<Row, EvalError>, Diff>> {
        None
    }

    fn count_keys<'s>(
        keys: VecCollection<'s, Self, Row, Accums>,
        _placed: bool,
    ) -> VecCollection<'s, Self, (Row, Accums), isize> {
        // Inside an iteration keys are exchanged as usual.
        keys.count()
    }

    fn threshold_rows<'s>(
        rows: VecCollection<'s, Self, Row, isize>,
        f: fn(&Row, &isize) -> isize,
        _placed: bool,
    ) -> VecCollection<'s, Self, Row, isize> {
        rows.threshold_named("Threshold", f)
    }

    fn render_letrec<'s>(
        ctx: &mut Context<'s, Self>,
        _id: LocalId,
        base: Bundle<'s, Self>,
        _step: &Plan,
        _distinct: bool,
    ) -> Bundle<'s, Self> {
        // Rejected by the planner; render the base alone so every worker stays in step.
        tracing::error!("nested WITH RECURSIVE reached the renderer");
        let _ = ctx;
        base
    }
}
