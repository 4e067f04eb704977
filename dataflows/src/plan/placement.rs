//! Which plans' rows already lie on the worker that their first column places them on.
//!
//! Every arrangement of rows (tables, sources, views, indexes) is spread over workers by the
//! hash of its rows' first column (`render::prefix::arrange_by_first_column`), and every
//! arrangement by key by the hash of the key row, which for a one-column key is that same hash
//! of the key's value. Where the rows reaching such an arrangement already lie where it would
//! send them, its exchange hashes and copies every row only to hand it to the worker it is on;
//! the renderer then connects the arrangement in place (timely's `Pipeline`) instead.
//!
//! A table's writes arrive split into the workers' shares by this hash
//! (`Command::into_shares`). For views, [`placed`] follows the placement through the plan:
//! what reads an arrangement keeps its placement as long as its first column stays first, and
//! a join or a group on one column produces each row on the worker of that column's value.
//! Debug builds check every row connected in place (`render::prefix::check_placed`), so the
//! oracle tests with two and three workers check these rules.

use super::join::{JoinKind, JoinPlan};
use super::Plan;
use crate::expr::ScalarExpr;

/// Whether every row of `plan` lies on the worker that the hash of its first column places it
/// on (as `Row::placement_hash`, modulo the number of workers).
pub fn placed(plan: &Plan) -> bool {
    match plan {
        // Every catalog item is arranged by its first column (a table's rows, a source's, a
        // view's, an index's), and read where it lies.
        Plan::Get { .. } => true,
        // Filters keep rows where they are; maps append columns.
        Plan::Filter { input, .. } | Plan::Map { input, .. } | Plan::Negate { input } => {
            placed(input)
        }
        Plan::Project { input, cols } => cols.first() == Some(&0) && placed(input),
        Plan::Mfp { input, mfp } => mfp.project.first() == Some(&0) && placed(input),
        Plan::Union { inputs } => !inputs.is_empty() && inputs.iter().all(placed),
        // Matches are made on the worker of their key: for a key of one column, the worker
        // its value places a row on; for a longer key, the worker of its first field when
        // either side lies by it (`render::join::sides` then spreads both sides by it). The
        // left row's first column is that field when the left key starts with it.
        Plan::Join(j) => {
            j.kind == JoinKind::Inner
                && j.left_key.first() == Some(&ScalarExpr::Column(0))
                && ((j.left_key.len() == 1 && j.right_key.len() == 1)
                    || leads_in_place(&j.left, &j.left_key)
                    || leads_in_place(&j.right, &j.right_key))
        }
        // A group is reduced on the worker of its key row's hash; its row starts with the key.
        // A `GROUP BY` without aggregates whose key starts with placed rows' first column is
        // made distinct where the rows lie (`render::reduce::distinct_keys`). Without GROUP
        // BY, the row of an empty input is made on worker 0.
        Plan::Reduce(r) => {
            !r.global
                && (r.key.len() == 1
                    || (r.aggregates.is_empty() && leads_in_place(&r.input, &r.key)))
        }
        _ => false,
    }
}

/// Whether rows of `input` keyed by `key` already lie where their key row's hash places them:
/// `key` is `input`'s first column alone, and `input` is [`placed`].
pub fn keyed_in_place(input: &Plan, key: &[ScalarExpr]) -> bool {
    key.len() == 1 && leads_in_place(input, key)
}

/// Whether rows of `input` keyed by `key` lie where the hash of the key's first field places
/// them: that field is `input`'s first column, and `input` is [`placed`].
pub fn leads_in_place(input: &Plan, key: &[ScalarExpr]) -> bool {
    key.first() == Some(&ScalarExpr::Column(0)) && placed(input)
}

/// Whether the matches of join `j` lie where a group key of one column of theirs places them:
/// that column (on the right side when `.0`, at position `.1` there) is the join's key of one
/// column, so each match is made on the worker of the group's value (the running totals
/// computed in a join's output, `render::accumulate::render_over_join`).
pub fn join_groups_in_place(j: &JoinPlan, (right, col): (bool, usize)) -> bool {
    let (own, other) = match right {
        false => (&j.left_key, &j.right_key),
        true => (&j.right_key, &j.left_key),
    };
    other.len() == 1 && own.as_slice() == [ScalarExpr::Column(col)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::reduce::ReducePlan;

    fn get() -> Plan {
        Plan::Get { id: 1, arity: 2 }
    }

    fn join(left_key: usize, kind: JoinKind, keys: usize) -> Plan {
        Plan::Join(JoinPlan {
            left: Box::new(get()),
            right: Box::new(get()),
            kind,
            left_key: (0..keys)
                .map(|i| ScalarExpr::Column(left_key + i))
                .collect(),
            right_key: (0..keys).map(ScalarExpr::Column).collect(),
            residual: vec![],
        })
    }

    fn reduce(keys: usize, global: bool) -> Plan {
        Plan::Reduce(ReducePlan {
            input: Box::new(get()),
            key: (0..keys).map(ScalarExpr::Column).collect(),
            aggregates: vec![],
            global,
        })
    }

    #[test]
    fn reading_keeps_placement_while_the_first_column_stays_first() {
        assert!(placed(&get()));
        let project = |cols: Vec<usize>| Plan::Project {
            input: Box::new(get()),
            cols,
        };
        assert!(placed(&project(vec![0])));
        assert!(!placed(&project(vec![1, 0])));
        assert!(!placed(&project(vec![])));
        assert!(!placed(&Plan::LocalGet { id: 1, arity: 2 }));
        assert!(!placed(&Plan::Distinct {
            input: Box::new(get())
        }));
    }

    #[test]
    fn joins_and_groups_on_one_column_place_their_rows() {
        assert!(placed(&join(0, JoinKind::Inner, 1)));
        // The left row's first column is not the key, or the key hashes two values.
        assert!(!placed(&join(1, JoinKind::Inner, 1)));
        // Unmatched rows of an outer join are made elsewhere.
        assert!(!placed(&join(0, JoinKind::Left, 1)));
        assert!(placed(&reduce(1, false)));
        assert!(!placed(&reduce(0, true)));
        // Distinct keys led by the input's first column stay where the input lies.
        assert!(placed(&reduce(2, false)));
        let mut counted = reduce(2, false);
        if let Plan::Reduce(r) = &mut counted {
            r.aggregates.push(crate::plan::reduce::AggregateExpr::new(
                crate::plan::reduce::AggFunc::CountStar,
                ScalarExpr::Column(0),
                false,
                crate::value::DataType::Int,
            ));
        }
        assert!(!placed(&counted));
        // A longer join key: placed when a side lies by its first field.
        assert!(placed(&join(0, JoinKind::Inner, 2)));
    }

    #[test]
    fn totals_over_a_join_lie_by_its_key_of_one_column() {
        let Plan::Join(j) = join(1, JoinKind::Inner, 1) else {
            unreachable!()
        };
        assert!(join_groups_in_place(&j, (false, 1)));
        assert!(join_groups_in_place(&j, (true, 0)));
        assert!(!join_groups_in_place(&j, (false, 0)));
        let Plan::Join(j) = join(0, JoinKind::Inner, 2) else {
            unreachable!()
        };
        assert!(!join_groups_in_place(&j, (false, 0)));
    }

    #[test]
    fn a_union_is_placed_when_every_input_is() {
        let union = |inputs| Plan::Union { inputs };
        assert!(placed(&union(vec![get(), reduce(1, false)])));
        assert!(!placed(&union(vec![get(), join(1, JoinKind::Inner, 1)])));
        assert!(!placed(&union(vec![])));
    }
}
