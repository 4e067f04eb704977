//! A join's computed inputs keep only the columns something reads.
//!
//! Every column of a join input travels into the input's arrangement, is copied into every
//! match and compared where rows are; a column nothing above the join reads, nor its keys or
//! residual, is work for nothing. Where an input is already a map-filter-project (computed,
//! not a table read where it lies), dropping such columns from its projection costs nothing.
//! Typical: a window end that only a join key read, until the key was found implied
//! (`implied.rs`).
//!
//! Only columns that cannot change what is reported are dropped: columns passed through from
//! below, and computed columns that cannot fail (a map nothing reads is not evaluated, so a
//! fallible one would take its error with it). An input's first column stays: it decides
//! where the input's rows lie (`placement.rs`).

use super::demand::mark;
use super::index;
use super::join::{JoinKind, JoinPlan};
use super::mfp::{Mfp, MfpStep};
use super::Plan;
use crate::expr::ScalarExpr;

/// `j` with its inputs narrowed to the columns `above` (over `j`'s output), its keys and its
/// residual read, and `above` renumbered to match.
pub fn narrow_join(j: JoinPlan, above: Mfp) -> (JoinPlan, Mfp) {
    if j.kind != JoinKind::Inner {
        return (j, above);
    }
    let (la, ra) = (j.left.arity(), j.right.arity());
    let mut read = vec![false; la + ra];
    for step in &above.steps {
        let (MfpStep::Map(e) | MfpStep::Filter(e)) = step;
        mark(e, &mut read);
    }
    for &c in &above.project {
        if let Some(r) = read.get_mut(c) {
            *r = true;
        }
    }
    for r in &j.residual {
        mark(r, &mut read);
    }
    let mut right_read = read.split_off(la);
    for k in &j.left_key {
        mark(k, &mut read);
    }
    for k in &j.right_key {
        mark(k, &mut right_read);
    }
    let left = narrow_input(&j.left, &read);
    let right = narrow_input(&j.right, &right_read);
    if left.is_none() && right.is_none() {
        return (j, above);
    }
    apply(j, above, left, right)
}

/// Renumbers the join's keys, residual and `above` after its inputs were narrowed: `map`s
/// give each side's old column its new position (`None`: dropped, and read by nothing).
fn apply(
    mut j: JoinPlan,
    mut above: Mfp,
    left: Option<Narrowed>,
    right: Option<Narrowed>,
) -> (JoinPlan, Mfp) {
    let side = |plan: &mut Box<Plan>, narrowed: Option<Narrowed>| match narrowed {
        Some((narrowed, map)) => {
            **plan = narrowed;
            map
        }
        None => (0..plan.arity()).map(Some).collect(),
    };
    let left_map = side(&mut j.left, left);
    let right_map = side(&mut j.right, right);
    let (old_la, old_ra) = (left_map.len(), right_map.len());
    let la = j.left.arity();
    let lpos = |c: usize| left_map[c].expect("a read column is kept");
    let rpos = |c: usize| right_map[c].expect("a read column is kept");
    let whole = |c: usize| match c < old_la {
        true => lpos(c),
        false => la + rpos(c - old_la),
    };
    j.left_key = j
        .left_key
        .iter()
        .map(|k| k.substitute(&|c| ScalarExpr::Column(lpos(c))))
        .collect();
    j.right_key = j
        .right_key
        .iter()
        .map(|k| k.substitute(&|c| ScalarExpr::Column(rpos(c))))
        .collect();
    j.residual = j
        .residual
        .iter()
        .map(|r| r.substitute(&|c| ScalarExpr::Column(whole(c))))
        .collect();
    // `above`'s working row is the join's output, then its own maps.
    let old_arity = old_la + old_ra;
    let new_arity = la + j.right.arity();
    let renumber = |c: usize| match c < old_arity {
        true => whole(c),
        false => c - old_arity + new_arity,
    };
    for step in &mut above.steps {
        let (MfpStep::Map(e) | MfpStep::Filter(e)) = step;
        *e = e.substitute(&|c| ScalarExpr::Column(renumber(c)));
    }
    for c in &mut above.project {
        *c = renumber(*c);
    }
    (j, above)
}

/// A narrowed input, and each old column's new position (`None`: dropped).
type Narrowed = (Plan, Vec<Option<usize>>);

/// `input` without the columns `read` leaves unmarked that may go; `None` when none may.
fn narrow_input(input: &Plan, read: &[bool]) -> Option<Narrowed> {
    let Plan::Mfp { input: below, mfp } = input else {
        return None;
    };
    if index::side_item(input).is_some() {
        return None;
    }
    let below_arity = below.arity();
    let maps = mfp.maps();
    let may_go = |o: usize| {
        o > 0
            && !read[o]
            && match mfp.project[o].checked_sub(below_arity) {
                None => true,
                Some(m) => maps[m].cannot_fail(),
            }
    };
    if !(0..mfp.project.len()).any(may_go) {
        return None;
    }
    let mut map = Vec::with_capacity(mfp.project.len());
    let mut project = Vec::new();
    for (o, &w) in mfp.project.iter().enumerate() {
        match may_go(o) {
            true => map.push(None),
            false => {
                map.push(Some(project.len()));
                project.push(w);
            }
        }
    }
    let narrowed = Mfp {
        steps: mfp.steps.clone(),
        project,
    }
    .without_unread_maps(below_arity);
    let plan = match narrowed.is_identity(below_arity) {
        true => (**below).clone(),
        false => Plan::Mfp {
            input: below.clone(),
            mfp: narrowed,
        },
    };
    Some((plan, map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::BinaryFunc;
    use crate::plan::reduce::ReducePlan;
    use crate::value::Value;

    /// Rows `(a, b)` grouped, then `a + b` (fallible) and `b = 1` (cannot fail) computed.
    fn computed() -> Plan {
        let grouped = Plan::Reduce(ReducePlan {
            input: Box::new(Plan::Get { id: 1, arity: 2 }),
            key: vec![ScalarExpr::Column(0), ScalarExpr::Column(1)],
            aggregates: vec![],
            global: false,
        });
        let sum = ScalarExpr::Column(0).call_binary(BinaryFunc::Add, ScalarExpr::Column(1));
        let one =
            ScalarExpr::Column(1).call_binary(BinaryFunc::Eq, ScalarExpr::Literal(Value::Int(1)));
        Plan::Mfp {
            input: Box::new(grouped),
            mfp: Mfp {
                steps: vec![MfpStep::Map(sum), MfpStep::Map(one)],
                project: vec![0, 1, 2, 3],
            },
        }
    }

    fn join(left: Plan, right: Plan) -> JoinPlan {
        JoinPlan {
            left: Box::new(left),
            right: Box::new(right),
            kind: JoinKind::Inner,
            left_key: vec![ScalarExpr::Column(0)],
            right_key: vec![ScalarExpr::Column(0)],
            residual: vec![],
        }
    }

    #[test]
    fn unread_columns_that_cannot_fail_leave_computed_inputs() {
        // Above reads the right side's last column (7) only; the keys read column 0 of each.
        let above = Mfp {
            steps: vec![],
            project: vec![7],
        };
        let (j, above) = narrow_join(join(computed(), computed()), above);
        // Left: column 1 (passed through) and column 3 (cannot fail) go; the sum stays, as
        // it could fail. Right: columns 1 and 2 are unread but 2 could fail.
        let Plan::Mfp { mfp, .. } = j.left.as_ref() else {
            panic!("left stays computed")
        };
        assert_eq!(mfp.project, vec![0, 2]);
        assert_eq!(mfp.steps.len(), 1, "the unread map is gone");
        let Plan::Mfp { mfp, .. } = j.right.as_ref() else {
            panic!("right stays computed")
        };
        assert_eq!(mfp.project.len(), 3);
        // The right's last column is now the join's fifth (2 left + 3 right).
        assert_eq!(above.project, vec![4]);
        assert_eq!(j.left_key, vec![ScalarExpr::Column(0)]);
    }

    #[test]
    fn tables_and_outer_joins_stay_whole() {
        let table = Plan::Get { id: 1, arity: 3 };
        let above = Mfp {
            steps: vec![],
            project: vec![0],
        };
        let (j, _) = narrow_join(join(table.clone(), table.clone()), above.clone());
        assert_eq!(*j.left, table);
        let mut outer = join(computed(), computed());
        outer.kind = JoinKind::Left;
        let (j, same) = narrow_join(outer, above.clone());
        assert_eq!(*j.left, computed());
        assert_eq!(same, above);
    }
}
