//! Lowering: the decisions made once, before rendering.
//!
//! - Chains of `Map`/`Filter`/`Project` become one `Mfp` per chain.
//! - Trees of inner joins with the filters above them are flattened and rebuilt left-deep in an
//!   order where every step joins on equality keys when the predicates allow it (a greedy
//!   choice that avoids cross joins); single-input predicates are pushed to their input;
//!   the rest become keys or residuals. A final projection restores the column order.
//! - Outer joins keep their shape; equalities in their `ON` become keys.
//! - A filter that bounds a ranking window function's result (`rn <= k`, `rn < k`, `rn = 1`)
//!   becomes the ranking's limit, so only the top k rows per partition are kept.

use super::join::{JoinKind, JoinPlan};
use super::mfp::MfpStep;
use super::reduce::ReducePlan;
use super::top_k::RankKind;
use super::{Mfp, Plan};
use crate::expr::{BinaryFunc, ScalarExpr};
use crate::value::Value;

/// Lowers a plan for rendering, after dropping the work of columns nothing reads
/// ([`super::demand`]).
pub fn lower(plan: Plan) -> Plan {
    lower_plan(super::demand::prune(plan))
}

fn lower_plan(plan: Plan) -> Plan {
    match plan {
        Plan::Filter { input, predicates } if is_inner_join(&input) => {
            let mut preds = predicates;
            let inputs = flatten_inner(*input, &mut preds);
            order_joins(inputs, preds)
        }
        Plan::Join(j) if j.kind == JoinKind::Inner => {
            let mut preds = Vec::new();
            let inputs = flatten_inner(Plan::Join(j), &mut preds);
            order_joins(inputs, preds)
        }
        Plan::Join(j) => {
            let left = lower_plan(*j.left);
            let right = lower_plan(*j.right);
            let left_arity = left.arity();
            let mut conjuncts = Vec::new();
            for r in j.residual {
                r.into_conjuncts(&mut conjuncts);
            }
            let (mut left_key, mut right_key, mut residual) = (j.left_key, j.right_key, Vec::new());
            for c in conjuncts {
                match split_equality(&c, left_arity) {
                    Some((l, r)) => {
                        left_key.push(l);
                        right_key.push(r);
                    }
                    None => residual.push(c),
                }
            }
            super::qual_order::order(&mut residual);
            Plan::Join(JoinPlan {
                left: Box::new(left),
                right: Box::new(right),
                kind: j.kind,
                left_key,
                right_key,
                residual,
            })
        }
        Plan::Map { input, exprs } => {
            let (arity, inner, mut mfp) = as_mfp(lower_plan(*input));
            mfp.then_map(arity, &exprs);
            finish_mfp(inner, mfp)
        }
        Plan::Filter { input, predicates } if is_outer_join(&input) => {
            let Plan::Join(j) = *input else {
                unreachable!("an outer join")
            };
            push_below_outer_join(j, predicates)
        }
        Plan::Filter { input, predicates } => {
            let (_, inner, mut mfp) = as_mfp(lower_plan(*input));
            mfp.then_filter(&predicates);
            finish_mfp(inner, mfp)
        }
        Plan::Project { input, cols } => {
            let (_, inner, mut mfp) = as_mfp(lower_plan(*input));
            mfp.then_project(&cols);
            finish_mfp(inner, mfp)
        }
        Plan::Mfp { input, mfp } => Plan::Mfp {
            input: Box::new(lower_plan(*input)),
            mfp,
        },
        Plan::Reduce(mut r) => {
            r.input = Box::new(lower_plan(*r.input));
            narrow_table_function_input(&mut r);
            Plan::Reduce(r)
        }
        Plan::FlatMap(mut f) => {
            f.input = Box::new(lower_plan(*f.input));
            Plan::FlatMap(f)
        }
        Plan::TemporalFilter(mut t) => {
            t.input = Box::new(lower_plan(*t.input));
            Plan::TemporalFilter(t)
        }
        Plan::Distinct { input } => Plan::Distinct {
            input: Box::new(lower_plan(*input)),
        },
        Plan::Negate { input } => Plan::Negate {
            input: Box::new(lower_plan(*input)),
        },
        Plan::Threshold { input } => Plan::Threshold {
            input: Box::new(lower_plan(*input)),
        },
        Plan::Union { inputs } => Plan::Union {
            inputs: inputs.into_iter().map(lower_plan).collect(),
        },
        Plan::TopK(mut t) => {
            t.input = Box::new(lower_plan(*t.input));
            Plan::TopK(t)
        }
        Plan::LetRec {
            id,
            base,
            step,
            distinct,
            body,
        } => Plan::LetRec {
            id,
            base: Box::new(lower_plan(*base)),
            step: Box::new(lower_plan(*step)),
            distinct,
            body: Box::new(lower_plan(*body)),
        },
        leaf @ (Plan::Get { .. } | Plan::LocalGet { .. } | Plan::Constant { .. }) => leaf,
    }
}

/// Drops the columns a reduce does not read from below a table function that feeds it.
///
/// A hopping window copies its input row once per window (five times for Nexmark q5's
/// `hop(…, 10 s, 2 s)`), whole, though the reduce above reads two or three columns of each
/// copy. Projecting the input first makes every copy as narrow as the reduce needs.
fn narrow_table_function_input(r: &mut ReducePlan) {
    let Plan::FlatMap(f) = r.input.as_mut() else {
        return;
    };
    let arity = f.input.arity();
    let mut read = Vec::new();
    f.func.support(&mut read);
    let aggregate_args = r
        .aggregates
        .iter()
        .flat_map(|a| std::iter::once(&a.expr).chain(&a.extra));
    for e in r.key.iter().chain(aggregate_args) {
        e.support(&mut read);
    }
    let mut keep: Vec<usize> = read.into_iter().filter(|c| *c < arity).collect();
    keep.sort_unstable();
    keep.dedup();
    if keep.len() == arity {
        return;
    }
    // Input columns move to their place among the kept ones; the function's value, appended
    // after the input's columns, moves up with them.
    let moved = |c: usize| {
        ScalarExpr::Column(match keep.binary_search(&c) {
            Ok(i) => i,
            Err(_) => keep.len() + (c - arity),
        })
    };
    f.func = f.func.substitute(&moved);
    for e in r.key.iter_mut() {
        *e = e.substitute(&moved);
    }
    for a in r.aggregates.iter_mut() {
        a.expr = a.expr.substitute(&moved);
        for e in a.extra.iter_mut() {
            *e = e.substitute(&moved);
        }
    }
    let input = std::mem::replace(
        f.input.as_mut(),
        Plan::Constant {
            rows: Vec::new(),
            arity: 0,
        },
    );
    let (_, inner, mut mfp) = as_mfp(input);
    mfp.then_project(&keep);
    *f.input = finish_mfp(inner, mfp);
}

fn is_outer_join(p: &Plan) -> bool {
    matches!(p, Plan::Join(j) if matches!(j.kind, JoinKind::Left | JoinKind::Right))
}

/// A filter over a left (right) join: conditions on the preserved side's columns alone keep
/// or drop the same rows before the join as after it, so they move below it, where they can
/// become join keys of the inner joins there (a `WHERE` over a FROM clause that a correlated
/// subquery's left join sits on, say). The rest stay above.
fn push_below_outer_join(mut j: JoinPlan, predicates: Vec<ScalarExpr>) -> Plan {
    let left_arity = j.left.arity();
    let mut conjuncts = Vec::new();
    for p in predicates {
        p.into_conjuncts(&mut conjuncts);
    }
    let (mut left, mut right, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for c in conjuncts {
        let mut cols = Vec::new();
        c.support(&mut cols);
        let on_left = !cols.is_empty() && cols.iter().all(|&i| i < left_arity);
        let on_right = !cols.is_empty() && cols.iter().all(|&i| i >= left_arity);
        match j.kind {
            JoinKind::Left if on_left => left.push(c),
            JoinKind::Right if on_right => right.push(c.shift(-(left_arity as isize))),
            _ => rest.push(c),
        }
    }
    if !left.is_empty() {
        j.left = Box::new(Plan::Filter {
            input: j.left,
            predicates: left,
        });
    }
    if !right.is_empty() {
        j.right = Box::new(Plan::Filter {
            input: j.right,
            predicates: right,
        });
    }
    let joined = lower_plan(Plan::Join(j));
    if rest.is_empty() {
        return joined;
    }
    let (_, inner, mut mfp) = as_mfp(joined);
    mfp.then_filter(&rest);
    finish_mfp(inner, mfp)
}

fn is_inner_join(p: &Plan) -> bool {
    matches!(p, Plan::Join(j) if j.kind == JoinKind::Inner)
}

fn as_mfp(p: Plan) -> (usize, Plan, Mfp) {
    match p {
        Plan::Mfp { input, mfp } => (input.arity(), *input, mfp),
        other => {
            let arity = other.arity();
            (arity, other, Mfp::identity(arity))
        }
    }
}

fn finish_mfp(input: Plan, mfp: Mfp) -> Plan {
    // A filter that can never hold (`WHERE false`, `WHERE 'a' IN ('b')`) empties the plan
    // without evaluating its input, as PostgreSQL's one-time filter does: errors the input
    // would raise in rows nothing keeps are not reported.
    if never_holds(&input, &mfp) {
        return Plan::Constant {
            rows: vec![],
            arity: mfp.project.len(),
        };
    }
    let input = match input {
        Plan::TopK(mut t) if t.rank.is_some_and(RankKind::is_rank) => {
            let rank_col = t.input.arity();
            for step in &mfp.steps {
                if let super::mfp::MfpStep::Filter(p) = step {
                    let mut conjuncts = Vec::new();
                    p.clone().into_conjuncts(&mut conjuncts);
                    for c in &conjuncts {
                        if let Some(k) = rank_bound(c, rank_col) {
                            t.limit = Some(t.limit.map_or(k, |l| l.min(k)));
                        }
                    }
                }
            }
            Plan::TopK(t)
        }
        other => other,
    };
    // A join's computed inputs drop the columns nothing reads (`narrow.rs`).
    let (input, mfp) = match input {
        Plan::Join(j) => {
            let (j, mfp) = super::narrow::narrow_join(j, mfp);
            (Plan::Join(j), mfp)
        }
        other => (other, mfp),
    };
    if mfp.is_identity(input.arity()) {
        input
    } else {
        Plan::Mfp {
            input: Box::new(input),
            mfp,
        }
    }
}

/// Collects the inputs of a tree of inner joins (lowered), and all their predicates in terms of
/// the concatenated columns.
fn flatten_inner(plan: Plan, preds: &mut Vec<ScalarExpr>) -> Vec<Plan> {
    let mut out = Vec::new();
    flatten_into(plan, 0, preds, &mut out);
    let mut conjuncts = Vec::new();
    for p in preds.drain(..) {
        p.into_conjuncts(&mut conjuncts);
    }
    *preds = conjuncts;
    out
}

fn flatten_into(plan: Plan, offset: usize, preds: &mut Vec<ScalarExpr>, out: &mut Vec<Plan>) {
    match plan {
        Plan::Join(j) if j.kind == JoinKind::Inner => {
            let left_arity = j.left.arity();
            for (l, r) in j.left_key.iter().zip(j.right_key.iter()) {
                let eq = l
                    .shift(offset as isize)
                    .call_binary(BinaryFunc::Eq, r.shift((offset + left_arity) as isize));
                preds.push(eq);
            }
            preds.extend(j.residual.iter().map(|r| r.shift(offset as isize)));
            flatten_into(*j.left, offset, preds, out);
            flatten_into(*j.right, offset + left_arity, preds, out);
        }
        Plan::Filter { input, predicates } if is_inner_join(&input) => {
            preds.extend(predicates.iter().map(|p| p.shift(offset as isize)));
            flatten_into(*input, offset, preds, out);
        }
        other => out.push(lower_plan(other)),
    }
}

/// If `c` is `a = b` with `a` only on the left (< left_arity) and `b` only on the right, or the
/// reverse, returns (left expr, right expr shifted to right-local columns).
fn split_equality(c: &ScalarExpr, left_arity: usize) -> Option<(ScalarExpr, ScalarExpr)> {
    let ScalarExpr::Binary(BinaryFunc::Eq, a, b) = c else {
        return None;
    };
    let side = |e: &ScalarExpr| {
        let mut cols = Vec::new();
        e.support(&mut cols);
        if cols.is_empty() {
            None
        } else if cols.iter().all(|c| *c < left_arity) {
            Some(true)
        } else if cols.iter().all(|c| *c >= left_arity) {
            Some(false)
        } else {
            None
        }
    };
    match (side(a), side(b)) {
        (Some(true), Some(false)) => Some(((**a).clone(), b.shift(-(left_arity as isize)))),
        (Some(false), Some(true)) => Some(((**b).clone(), a.shift(-(left_arity as isize)))),
        _ => None,
    }
}

/// Builds a left-deep join of `inputs` applying `preds` (over the original concatenation).
fn order_joins(inputs: Vec<Plan>, preds: Vec<ScalarExpr>) -> Plan {
    let arities: Vec<usize> = inputs.iter().map(Plan::arity).collect();
    // A join condition that can never hold (`ON 1 >= 4 AND …`) empties the join without
    // evaluating its inputs, as a filter that can never hold does (see `finish_mfp`).
    if preds.iter().any(never_true) {
        return Plan::Constant {
            rows: vec![],
            arity: arities.iter().sum(),
        };
    }
    let preds = super::implied::drop_implied_equalities(&inputs, preds);
    let offsets: Vec<usize> = arities
        .iter()
        .scan(0, |acc, a| {
            let o = *acc;
            *acc += a;
            Some(o)
        })
        .collect();
    let input_of = |col: usize| {
        offsets
            .iter()
            .rposition(|o| *o <= col)
            .expect("column in range")
    };
    let inputs_of = |p: &ScalarExpr| {
        let mut cols = Vec::new();
        p.support(&mut cols);
        let mut ins: Vec<usize> = cols.into_iter().map(input_of).collect();
        ins.sort();
        ins.dedup();
        ins
    };

    // Push single-input predicates down to their input.
    let mut inputs: Vec<Option<Plan>> = inputs.into_iter().map(Some).collect();
    let mut pending = Vec::new();
    let mut local: Vec<Vec<ScalarExpr>> = vec![Vec::new(); inputs.len()];
    for p in preds {
        let ins = inputs_of(&p);
        if ins.len() == 1 {
            local[ins[0]].push(p.shift(-(offsets[ins[0]] as isize)));
        } else {
            pending.push(p);
        }
    }
    for (i, l) in local.into_iter().enumerate() {
        if !l.is_empty() {
            let p = inputs[i].take().expect("present");
            inputs[i] = Some(lower_plan(p.filter(l)));
        }
    }

    // Greedy left-deep order: prefer an input connected to the current set by an equality.
    let n = inputs.len();
    let mut order = vec![0usize];
    let mut current = inputs[0].take().expect("present");
    let mut position = vec![None; offsets.last().map(|o| o + arities[n - 1]).unwrap_or(0)];
    for (c, p) in position.iter_mut().enumerate().take(arities[0]) {
        *p = Some(c);
    }
    let mut width = arities[0];
    while order.len() < n {
        let connected = (0..n).filter(|j| !order.contains(j)).find(|j| {
            pending.iter().any(|p| {
                let ins = inputs_of(p);
                ins.contains(j) && ins.iter().all(|i| i == j || order.contains(i)) && is_equality(p)
            })
        });
        let next = connected.unwrap_or_else(|| {
            (0..n)
                .find(|j| !order.contains(j))
                .expect("an input is left")
        });
        for c in 0..arities[next] {
            position[offsets[next] + c] = Some(width + c);
        }
        order.push(next);
        // Predicates now fully available become keys or residuals of this join.
        let (ready, rest): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|p| inputs_of(p).iter().all(|i| order.contains(i)));
        pending = rest;
        let pos = position.clone();
        let remap = |p: &ScalarExpr| p.substitute(&|c| ScalarExpr::Column(pos[c].expect("placed")));
        let (mut left_key, mut right_key, mut residual) = (Vec::new(), Vec::new(), Vec::new());
        for p in ready {
            let p = remap(&p);
            match split_equality(&p, width) {
                Some((l, r)) => {
                    left_key.push(l);
                    right_key.push(r);
                }
                None => residual.push(p),
            }
        }
        super::qual_order::order(&mut residual);
        let right = inputs[next].take().expect("present");
        width += arities[next];
        current = Plan::Join(JoinPlan {
            left: Box::new(current),
            right: Box::new(right),
            kind: JoinKind::Inner,
            left_key,
            right_key,
            residual,
        });
    }
    // Predicates with no columns at all (constants) apply at the end.
    let pos = position.clone();
    let remaining: Vec<ScalarExpr> = pending
        .iter()
        .map(|p| p.substitute(&|c| ScalarExpr::Column(pos[c].expect("placed"))))
        .collect();
    let restore: Vec<usize> = position.iter().map(|p| p.expect("placed")).collect();
    let (_, inner, mut mfp) = as_mfp(current);
    mfp.then_filter(&remaining);
    mfp.then_project(&restore);
    finish_mfp(inner, mfp)
}

fn is_equality(p: &ScalarExpr) -> bool {
    matches!(p, ScalarExpr::Binary(BinaryFunc::Eq, _, _))
}

/// The largest rank `pred` lets through, if it is a bound on column `col`: `col <= k`,
/// `col < k`, `col = k` (and the same written the other way round).
fn rank_bound(pred: &ScalarExpr, col: usize) -> Option<usize> {
    use crate::value::Value;
    let ScalarExpr::Binary(f, a, b) = pred else {
        return None;
    };
    let (f, k) = match (a.as_ref(), b.as_ref()) {
        (ScalarExpr::Column(c), ScalarExpr::Literal(Value::Int(k))) if *c == col => (f.clone(), *k),
        (ScalarExpr::Literal(Value::Int(k)), ScalarExpr::Column(c)) if *c == col => {
            let flipped = match f {
                BinaryFunc::Gte => BinaryFunc::Lte,
                BinaryFunc::Gt => BinaryFunc::Lt,
                BinaryFunc::Eq => BinaryFunc::Eq,
                _ => return None,
            };
            (flipped, *k)
        }
        _ => return None,
    };
    let bound = match f {
        BinaryFunc::Lte | BinaryFunc::Eq => k,
        BinaryFunc::Lt => k - 1,
        _ => return None,
    };
    Some(bound.max(0) as usize)
}

/// Whether a filter of `mfp` is a conjunction with a constant part that is false or NULL.
fn never_holds(input: &Plan, mfp: &Mfp) -> bool {
    // Columns every row holds the same literal in (the input's, then the mfp's own maps), put
    // into the conditions that read them: `WHERE c >= …` over a subquery's constant column
    // `c` is then a constant too.
    let mut constants = constant_columns(input);
    // As in PostgreSQL, which moves a condition on a subquery's columns below its window
    // functions only when it reads their partition keys alone (and never below a LIMIT): over
    // a ranking or top-k, a constant column counts only where a partition key holds the same
    // literal (a window over `PARTITION BY DATE '…'`, say).
    let partition_keys: Option<Vec<Value>> = match input {
        Plan::TopK(t) => Some(
            (t.group_key.iter())
                .filter_map(|&c| constants.get(c).cloned().flatten())
                .collect(),
        ),
        _ => None,
    };
    let counts = |v: Option<Value>| match &partition_keys {
        Some(keys) => v.filter(|v| keys.contains(v)),
        None => v,
    };
    constants = constants.into_iter().map(counts).collect();
    for step in &mfp.steps {
        match step {
            MfpStep::Map(e) => constants.push(counts(literal(e, &constants))),
            MfpStep::Filter(p) => {
                let mut conjuncts = Vec::new();
                with_constants(p, &constants).into_conjuncts(&mut conjuncts);
                if conjuncts.iter().any(never_true) {
                    return true;
                }
            }
        }
    }
    false
}

/// For each output column of `plan`, the literal every row holds there, where the plan says
/// so: literal maps, through projections and the operators that pass their input's columns
/// on unchanged (ranking, top-k).
fn constant_columns(plan: &Plan) -> Vec<Option<Value>> {
    match plan {
        Plan::Mfp { input, mfp } => {
            let mut constants = constant_columns(input);
            for step in &mfp.steps {
                if let MfpStep::Map(e) = step {
                    constants.push(literal(e, &constants));
                }
            }
            mfp.project.iter().map(|&c| constants[c].clone()).collect()
        }
        Plan::TopK(t) => {
            let mut constants = constant_columns(&t.input);
            constants.resize(plan.arity(), None);
            constants
        }
        _ => vec![None; plan.arity()],
    }
}

/// `e` with the `constants` columns put in as literals.
fn with_constants(e: &ScalarExpr, constants: &[Option<Value>]) -> ScalarExpr {
    e.substitute(&|c| match constants.get(c) {
        Some(Some(v)) => ScalarExpr::Literal(v.clone()),
        _ => ScalarExpr::Column(c),
    })
}

/// The literal `e` is given the `constants` columns, if it is one.
fn literal(e: &ScalarExpr, constants: &[Option<Value>]) -> Option<Value> {
    match with_constants(e, constants).reduce_constants() {
        ScalarExpr::Literal(v) => Some(v),
        _ => None,
    }
}

/// Whether `conjunct` is constant and not true (false or NULL).
fn never_true(conjunct: &ScalarExpr) -> bool {
    matches!(conjunct.reduce_constants(), ScalarExpr::Literal(v) if !v.is_true())
}
