//! Group keys that other group keys determine are computed after grouping, not grouped by.
//!
//! Windowed queries group by a window's start and its end: `GROUP BY seller, tumble(ts, i),
//! tumble_end(ts, i)` (Nexmark q8). The end is the start plus the size, so it splits no group
//! the start does not, yet as a key it is evaluated for every input row, travels in every
//! row's key to the worker that groups it, and is compared in every sort and merge of the
//! grouping's batches: a third of q8's work, and the longer key no longer fits in a row's
//! inline bytes. Any key that is an expression of other keys (`GROUP BY a, a + 1`, or the same
//! key twice) is such a key: grouping by the rest makes the same groups, and the key is
//! computed once per group from the group's row.
//!
//! A key may also be a column the input computes from another key's column (a subquery's
//! `hop_end(…)` beside its `hop(…)`, Nexmark q5): the input's maps, through its filters and
//! projections, say how.
//!
//! Errors stay as they were where anything reads the column: a key that fails fails for every
//! row of its group alike (it is a function of the group's other keys), so the group either
//! has no row and an error before, or an error computed from its row after. A key nothing
//! reads moves only if, computed from the other keys, it cannot fail (`tumble_end` from its
//! `tumble` key): PostgreSQL evaluates every grouping expression, and a column nothing reads
//! would not be evaluated after the grouping (see `demand.rs`).

use super::reduce::ReducePlan;
use super::Plan;
use crate::expr::ScalarExpr;

/// What goes above a reduce whose dependent keys were dropped: the keys' expressions over the
/// reduce's output, appended, then the projection that restores the original column order.
#[derive(Debug)]
pub struct Above {
    pub exprs: Vec<ScalarExpr>,
    pub cols: Vec<usize>,
}

impl Above {
    /// `reduced` with the dropped keys computed and the columns in their original order.
    pub fn wrap(self, reduced: Plan) -> Plan {
        reduced.map(self.exprs).project(self.cols)
    }
}

/// `r` without the keys other keys determine, and what computes them above it; or `r`
/// unchanged and `None`. `read` marks the output columns anything above reads.
pub fn compute_dependent_keys(r: ReducePlan, read: &[bool]) -> (ReducePlan, Option<Above>) {
    let n = r.key.len();
    let computed = computed_columns(&r.input);
    let mut kept = vec![true; n];
    let express = |e: &ScalarExpr, kept: &[bool]| {
        let keys = Keys {
            keys: &r.key,
            kept,
            computed: &computed,
        };
        express(e, &keys)
    };
    // Last to first, so that of two equal keys the first stays.
    for j in (0..n).rev() {
        kept[j] = false;
        let dependent = express(&r.key[j], &kept).is_some_and(|e| {
            // Unread, it must fail only where a kept key fails (those are evaluated).
            reads_a_key(&e) && (read.get(j) != Some(&false) || e.cannot_fail())
        });
        kept[j] = !dependent;
    }
    // Each dropped key was expressed over keys kept at the time, some dropped since; those
    // are expressed over the final set in turn, so every dropped key is. Checked regardless:
    // a key that cannot be is kept.
    let mut dependent: Vec<Option<ScalarExpr>> = vec![None; n];
    loop {
        let mut changed = false;
        for j in 0..n {
            if kept[j] {
                continue;
            }
            match express(&r.key[j], &kept) {
                Some(e) => dependent[j] = Some(e),
                None => {
                    kept[j] = true;
                    dependent[j] = None;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    if kept.iter().all(|k| *k) || !kept.iter().any(|k| *k) {
        return (r, None);
    }

    // New positions of the kept keys in the reduced output.
    let mut position = vec![usize::MAX; n];
    let mut new_keys = Vec::new();
    for (j, k) in r.key.iter().enumerate() {
        if kept[j] {
            position[j] = new_keys.len();
            new_keys.push(k.clone());
        }
    }
    let kept_len = new_keys.len();
    let aggs = r.aggregates.len();
    let mut exprs = Vec::new();
    let mut cols = Vec::with_capacity(n + aggs);
    for j in 0..n {
        match &dependent[j] {
            None => cols.push(position[j]),
            // A repeated key is the same column again.
            Some(ScalarExpr::Column(k)) => cols.push(position[*k]),
            Some(e) => {
                cols.push(kept_len + aggs + exprs.len());
                exprs.push(e.substitute(&|k| ScalarExpr::Column(position[k])));
            }
        }
    }
    cols.extend(kept_len..kept_len + aggs);
    let reduced = ReducePlan { key: new_keys, ..r };
    (reduced, Some(Above { exprs, cols }))
}

/// The keys, which of them are kept, and the input's columns that its own maps compute from
/// its other columns (a subquery's `hop_end(…)` beside its `hop(…)`).
struct Keys<'a> {
    keys: &'a [ScalarExpr],
    kept: &'a [bool],
    computed: &'a [Option<ScalarExpr>],
}

/// `e` as an expression over the kept keys, its columns naming keys by their position in
/// `keys`; `None` if it reads an input column that is neither a kept key nor computed by the
/// input from them.
fn express(e: &ScalarExpr, k: &Keys) -> Option<ScalarExpr> {
    if let Some(i) = (0..k.keys.len()).find(|&i| k.kept[i] && k.keys[i] == *e) {
        return Some(ScalarExpr::Column(i));
    }
    let sub = |e: &ScalarExpr| express(e, k).map(Box::new);
    Some(match e {
        // Computed columns read only earlier columns, so this ends.
        ScalarExpr::Column(c) => return express(k.computed.get(*c)?.as_ref()?, k),
        ScalarExpr::Literal(_) => e.clone(),
        ScalarExpr::Unary(f, a) => ScalarExpr::Unary(f.clone(), sub(a)?),
        ScalarExpr::Binary(f, a, b) => ScalarExpr::Binary(f.clone(), sub(a)?, sub(b)?),
        ScalarExpr::Variadic(f, es) => ScalarExpr::Variadic(
            f.clone(),
            es.iter().map(|e| express(e, k)).collect::<Option<_>>()?,
        ),
        ScalarExpr::If { cond, then, els } => ScalarExpr::If {
            cond: sub(cond)?,
            then: sub(then)?,
            els: sub(els)?,
        },
    })
}

/// For each output column of `plan`, the expression over its earlier output columns that
/// computes it, where the plan says so: its own maps, through filters and projections.
fn computed_columns(plan: &Plan) -> Vec<Option<ScalarExpr>> {
    match plan {
        Plan::Map { input, exprs } => {
            let mut out = computed_columns(input);
            out.extend(exprs.iter().cloned().map(Some));
            out
        }
        Plan::Filter { input, .. } => computed_columns(input),
        Plan::Project { input, cols } => {
            let below = computed_columns(input);
            // Earlier outputs only, so a column is never computed from itself or a later one.
            let at = |c: usize, before: usize| cols[..before].iter().position(|&p| p == c);
            cols.iter()
                .enumerate()
                .map(|(o, &c)| {
                    let e = below.get(c)?.as_ref()?;
                    let mut support = Vec::new();
                    e.support(&mut support);
                    if support.iter().any(|&s| at(s, o).is_none()) {
                        return None;
                    }
                    Some(e.substitute(&|s| ScalarExpr::Column(at(s, o).expect("checked"))))
                })
                .collect()
        }
        _ => vec![None; plan.arity()],
    }
}

/// Whether `e` reads any column (a constant key is left as it is).
fn reads_a_key(e: &ScalarExpr) -> bool {
    e.arity_needed() > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::BinaryFunc;
    use crate::value::Value;

    fn reduce(key: Vec<ScalarExpr>) -> ReducePlan {
        ReducePlan {
            input: Box::new(Plan::Get { id: 1, arity: 2 }),
            key,
            aggregates: vec![],
            global: false,
        }
    }

    fn plan(key: Vec<ScalarExpr>, read: &[bool]) -> Plan {
        match compute_dependent_keys(reduce(key), read) {
            (r, None) => Plan::Reduce(r),
            (r, Some(above)) => above.wrap(Plan::Reduce(r)),
        }
    }

    fn col(c: usize) -> ScalarExpr {
        ScalarExpr::Column(c)
    }

    fn plus_one(e: ScalarExpr) -> ScalarExpr {
        e.call_binary(BinaryFunc::Add, ScalarExpr::Literal(Value::Int(1)))
    }

    #[test]
    fn a_key_computed_from_another_moves_above_the_grouping() {
        let plan = plan(vec![col(0), plus_one(col(0)), col(1)], &[]);
        let Plan::Project { input, cols } = plan else {
            panic!("a projection: {plan:?}")
        };
        assert_eq!(cols, vec![0, 2, 1]);
        let Plan::Map { input, exprs } = *input else {
            panic!("a map")
        };
        assert_eq!(exprs, vec![plus_one(col(0))]);
        let Plan::Reduce(r) = *input else {
            panic!("a reduce")
        };
        assert_eq!(r.key, vec![col(0), col(1)]);
    }

    #[test]
    fn independent_and_constant_keys_stay() {
        let keys = vec![col(0), plus_one(col(1)), ScalarExpr::Literal(Value::Int(3))];
        let plan = plan(keys.clone(), &[]);
        assert!(matches!(plan, Plan::Reduce(r) if r.key == keys));
    }

    #[test]
    fn a_repeated_key_is_grouped_by_once() {
        let plan = plan(vec![col(1), col(1)], &[]);
        let Plan::Project { input, cols } = plan else {
            panic!("a projection: {plan:?}")
        };
        assert_eq!(cols, vec![0, 0]);
        assert!(matches!(*input, Plan::Reduce(r) if r.key == vec![col(1)]));
    }

    #[test]
    fn a_fallible_key_nothing_reads_stays_a_key() {
        let keys = vec![col(0), plus_one(col(0))];
        let plan = plan(keys.clone(), &[true, false]);
        assert!(matches!(plan, Plan::Reduce(r) if r.key == keys));
    }

    #[test]
    fn a_window_end_nothing_reads_is_not_a_key() {
        // `tumble_end` from its `tumble` key cannot fail where the key did not.
        let size = ScalarExpr::Literal(Value::Interval(10));
        let start = col(0).call_binary(BinaryFunc::Tumble, size.clone());
        let end = start
            .clone()
            .call_binary(BinaryFunc::WindowEnd, size.clone());
        // (The columns keep their order, so no projection follows the map.)
        let plan = plan(vec![start, end], &[true, false]);
        let Plan::Map { exprs, .. } = plan else {
            panic!("a map: {plan:?}")
        };
        assert_eq!(exprs, vec![col(0).call_binary(BinaryFunc::WindowEnd, size)]);
    }

    #[test]
    fn a_column_the_input_computes_from_a_key_is_determined_by_it() {
        // The input computes its column 2 as `#0 + 1`, then keeps (#1, #0, #2): grouping by
        // its columns 1 and 2 is grouping by column 1, the second key `#0 + 1` of it.
        let input = Plan::Get { id: 1, arity: 2 }
            .map(vec![plus_one(col(0))])
            .project(vec![1, 0, 2]);
        let r = ReducePlan {
            input: Box::new(input),
            key: vec![col(1), col(2)],
            aggregates: vec![],
            global: false,
        };
        let (r, above) = compute_dependent_keys(r, &[]);
        assert_eq!(r.key, vec![col(1)]);
        assert_eq!(above.expect("moved").exprs, vec![plus_one(col(0))]);
    }

    #[test]
    fn chains_of_dependent_keys_resolve_to_the_kept_ones() {
        // a + 1 + 1 depends on a + 1, which depends on a.
        let keys = vec![plus_one(plus_one(col(0))), plus_one(col(0)), col(0)];
        let plan = plan(keys, &[]);
        let Plan::Project { input, cols } = plan else {
            panic!("a projection")
        };
        let Plan::Map { input, exprs } = *input else {
            panic!("a map")
        };
        assert!(matches!(*input, Plan::Reduce(ref r) if r.key == vec![col(0)]));
        assert_eq!(exprs, vec![plus_one(plus_one(col(0))), plus_one(col(0))]);
        assert_eq!(cols, vec![1, 2, 0]);
    }
}
