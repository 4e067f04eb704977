//! Columns nothing reads are not computed: PostgreSQL never evaluates a subquery's column
//! that the outer query drops, so neither may we.
//!
//! `SELECT true FROM t, LATERAL (SELECT 1 / k FROM u) s` returns rows in PostgreSQL even
//! where `k` is zero: the division is never evaluated. Computed column by column, the division
//! would fail and the view would report an error PostgreSQL does not. Within one
//! map-filter-project, [`super::Mfp`] already skips maps whose value nothing reads; this pass
//! does the same across operators: walking down from the view's output, each operator learns
//! which of its output columns anything above it reads, and a `Map` expression whose column
//! nobody reads, and which could fail, becomes NULL. Column positions never change, so the
//! pass cannot break a reference.
//!
//! An operator whose result depends on whole rows reads all of its input's columns: `DISTINCT`, the
//! threshold of `EXCEPT`/`INTERSECT`, recursion, table functions and temporal filters (kept
//! simple), and a union that subtracts (`INTERSECT ALL`, `l - (l - r)`, whose two copies of `l`
//! cancel only if they agree in every column). Joins, outer ones too, read their keys, their
//! residual predicates and whatever is read above them: an outer join finds a side's unmatched rows
//! by whole row (the side less the rows of it that matched), but both come from the same input
//! rows, so a column made NULL there is NULL in both, and whether a row matches depends only on
//! columns the join reads. (`NOT EXISTS`, planned as a left join, thus leaves the outer query's
//! unread columns unevaluated, as PostgreSQL does.) Top-k and window functions read their keys and
//! arguments and whatever is read above them. An aggregate nothing reads aggregates NULLs, as
//! PostgreSQL drops a subquery's unused outputs. Expressions that cannot fail are left as they are,
//! so plans that share a subplan keep sharing it wherever nothing could have surfaced (an unread
//! `sum` or `avg` can always overflow, so it is always replaced).

use super::group_keys::compute_dependent_keys;
use super::reduce::{AggFunc, AggregateExpr, ReducePlan};
use super::Plan;
use crate::expr::ScalarExpr;
use crate::row::Row;
use crate::value::Value;

/// `plan` with the fallible expressions of columns nothing reads replaced by NULL.
pub fn prune(plan: Plan) -> Plan {
    let all = vec![true; plan.arity()];
    prune_to(plan, &all)
}

/// `plan`, of whose output columns only those marked in `read` are read above it.
fn prune_to(plan: Plan, read: &[bool]) -> Plan {
    match plan {
        Plan::Get { .. } | Plan::LocalGet { .. } | Plan::Constant { .. } => plan,
        Plan::Map { input, mut exprs } => {
            let arity = input.arity();
            let mut needed = read.to_vec();
            needed.resize(arity + exprs.len(), true);
            // Last to first: a kept expression may read an earlier one's column.
            for (i, e) in exprs.iter_mut().enumerate().rev() {
                if needed[arity + i] {
                    mark(e, &mut needed);
                } else if !e.cannot_fail() {
                    *e = ScalarExpr::Literal(Value::Null);
                }
            }
            needed.truncate(arity);
            Plan::Map {
                input: Box::new(prune_to(*input, &needed)),
                exprs,
            }
        }
        Plan::Filter { input, predicates } => {
            let mut needed = read.to_vec();
            for p in &predicates {
                mark(p, &mut needed);
            }
            Plan::Filter {
                input: Box::new(prune_to(*input, &needed)),
                predicates,
            }
        }
        Plan::Project { input, cols } => {
            let mut needed = vec![false; input.arity()];
            for (&c, &r) in cols.iter().zip(read) {
                if r && c < needed.len() {
                    needed[c] = true;
                }
            }
            Plan::Project {
                input: Box::new(prune_to(*input, &needed)),
                cols,
            }
        }
        Plan::Join(mut j) => {
            let left_arity = j.left.arity();
            let mut needed = read.to_vec();
            needed.resize(left_arity + j.right.arity(), true);
            for r in &j.residual {
                mark(r, &mut needed);
            }
            let mut right = needed.split_off(left_arity);
            for k in &j.left_key {
                mark(k, &mut needed);
            }
            for k in &j.right_key {
                mark(k, &mut right);
            }
            j.left = Box::new(prune_to(*j.left, &needed));
            j.right = Box::new(prune_to(*j.right, &right));
            Plan::Join(j)
        }
        // A global aggregate is one row whatever its input: read by nothing, it is one row
        // of NULLs, and its input is never evaluated (as in PostgreSQL).
        Plan::Reduce(r) if r.global && r.key.is_empty() && !read.contains(&true) => {
            Plan::Constant {
                rows: vec![(Row::new(vec![Value::Null; r.aggregates.len()]), 1)],
                arity: r.aggregates.len(),
            }
        }
        Plan::Reduce(r) => {
            // Keys other keys determine are computed after grouping (`group_keys.rs`).
            let keys = r.key.len();
            match compute_dependent_keys(r, read) {
                (r, None) => prune_reduce(r, read),
                (r, Some(above)) => {
                    let mut reduce_read = vec![true; r.key.len()];
                    reduce_read.extend(
                        (0..r.aggregates.len()).map(|i| read.get(keys + i) != Some(&false)),
                    );
                    above.wrap(prune_reduce(r, &reduce_read))
                }
            }
        }
        // `INTERSECT ALL` is `l - (l - r)`: its rows cancel only if both copies of `l` agree
        // in every column, so a union that subtracts reads whole rows.
        Plan::Union { inputs } if inputs.iter().any(|p| matches!(p, Plan::Negate { .. })) => {
            Plan::Union {
                inputs: inputs.into_iter().map(prune).collect(),
            }
        }
        Plan::Union { inputs } => Plan::Union {
            inputs: inputs.into_iter().map(|p| prune_to(p, read)).collect(),
        },
        Plan::Negate { input } => Plan::Negate {
            input: Box::new(prune_to(*input, read)),
        },
        // Whole rows matter from here down.
        Plan::Distinct { input } => Plan::Distinct {
            input: Box::new(prune(*input)),
        },
        Plan::Threshold { input } => Plan::Threshold {
            input: Box::new(prune(*input)),
        },
        // The order among ties is fixed by whole rows, but only where SQL leaves it open: a
        // column nothing above reads may change which of two tied rows comes first, never a
        // value anything reads.
        Plan::TopK(mut t) => {
            let arity = t.input.arity();
            let mut needed: Vec<bool> = (0..arity).map(|c| read.get(c) == Some(&true)).collect();
            let rank_cols = t.rank.map(|r| r.columns()).unwrap_or_default();
            let keys = t.order.iter().map(|k| k.column);
            for c in t.group_key.iter().copied().chain(keys).chain(rank_cols) {
                if let Some(n) = needed.get_mut(c) {
                    *n = true;
                }
            }
            t.input = Box::new(prune_to(*t.input, &needed));
            Plan::TopK(t)
        }
        Plan::FlatMap(mut f) => {
            f.input = Box::new(prune(*f.input));
            Plan::FlatMap(f)
        }
        Plan::TemporalFilter(mut t) => {
            t.input = Box::new(prune(*t.input));
            Plan::TemporalFilter(t)
        }
        Plan::LetRec {
            id,
            base,
            step,
            distinct,
            body,
        } => Plan::LetRec {
            id,
            base: Box::new(prune(*base)),
            step: Box::new(prune(*step)),
            distinct,
            body: Box::new(prune_to(*body, read)),
        },
        // Already fused (lowered plans are not pruned again): left as it is.
        Plan::Mfp { input, mfp } => Plan::Mfp {
            input: Box::new(prune(*input)),
            mfp,
        },
    }
}

/// A reduce with its input pruned to what its keys and the aggregates anything reads need;
/// an aggregate nothing reads aggregates NULLs.
fn prune_reduce(mut r: ReducePlan, read: &[bool]) -> Plan {
    let mut needed = vec![false; r.input.arity()];
    for k in &r.key {
        mark(k, &mut needed);
    }
    // An aggregate nothing reads aggregates NULLs (PostgreSQL drops a subquery's unused
    // outputs, aggregates too): neither its argument nor its own overflow can fail.
    let keys = r.key.len();
    for (i, a) in r.aggregates.iter_mut().enumerate() {
        if read.get(keys + i) == Some(&false) && could_fail(a) {
            a.expr = ScalarExpr::Literal(Value::Null);
            for e in &mut a.extra {
                *e = ScalarExpr::Literal(Value::Null);
            }
        }
    }
    for a in &r.aggregates {
        mark(&a.expr, &mut needed);
        for e in &a.extra {
            mark(e, &mut needed);
        }
    }
    r.input = Box::new(prune_to(*r.input, &needed));
    Plan::Reduce(r)
}

/// Whether aggregate `a` could fail on some input in a way a NULL argument avoids: its
/// arguments can fail, or it sums. (A scalar subquery's `Single` fails on a second row
/// whatever its value, so it is not one.)
fn could_fail(a: &AggregateExpr) -> bool {
    match a.func {
        AggFunc::Single => false,
        AggFunc::Sum | AggFunc::Avg => true,
        _ => !a.expr.cannot_fail() || a.extra.iter().any(|e| !e.cannot_fail()),
    }
}

/// Marks the columns `e` reads in `needed` (columns past its end are ignored).
pub(super) fn mark(e: &ScalarExpr, needed: &mut [bool]) {
    let mut cols = Vec::new();
    e.support(&mut cols);
    for c in cols {
        if let Some(n) = needed.get_mut(c) {
            *n = true;
        }
    }
}
