//! Join equalities that the other equalities imply are not join keys.
//!
//! Nexmark q8 joins two windowed groupings on `P.id = A.seller AND P.start = A.start AND
//! P.end = A.end`, where each side's `end` is its `start` plus the window's size (computed
//! after grouping, `group_keys.rs`). Once the starts are equal, so are the ends: the third
//! equality decides nothing, yet as a key it lengthens every key both sides are arranged by
//! (past what a row keeps inline) and is compared in every sort, merge and lookup.
//!
//! An equality `l = r` between two columns of different join inputs is dropped when each
//! column is computed in its input from that input's other columns by the same expression
//! (`l = f(x)`, `r = f(y)`), and the remaining equalities make the arguments equal (`x = y`).
//! `f` must be NULL only where an argument is (then `x = y` holding makes `f(x) = f(y)`
//! true, where a NULL would have made it unknown); the columns stay in the inputs' rows, so
//! anything that reads them, and any error computing them, is as before. Only equalities
//! between two computed columns are candidates, and only the others justify a drop, so no
//! two drops can justify each other.

use super::Plan;
use crate::expr::{BinaryFunc, ScalarExpr};
use crate::value::Value;

/// `preds` (over the concatenated columns of `inputs`) without the equalities the others
/// imply.
pub fn drop_implied_equalities(inputs: &[Plan], preds: Vec<ScalarExpr>) -> Vec<ScalarExpr> {
    let mut computed: Vec<Option<ScalarExpr>> = Vec::new();
    let mut input_of = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let offset = computed.len() as isize;
        for c in computed_columns(input) {
            computed.push(c.map(|e| e.shift(offset)));
            input_of.push(i);
        }
    }
    let candidate = |p: &ScalarExpr| {
        column_equality(p).filter(|&(a, b)| {
            input_of[a] != input_of[b] && computed[a].is_some() && computed[b].is_some()
        })
    };
    let mut classes = Classes::new(computed.len());
    for p in &preds {
        if let Some((a, b)) = column_equality(p) {
            if candidate(p).is_none() {
                classes.union(a, b);
            }
        }
    }
    preds
        .into_iter()
        .filter(|p| {
            let Some((a, b)) = candidate(p) else {
                return true;
            };
            let (f, g) = (computed[a].as_ref(), computed[b].as_ref());
            let implied = f.zip(g).is_some_and(|(f, g)| {
                null_only_from_null(f) && null_only_from_null(g) && classes.same(f, g)
            });
            !implied
        })
        .collect()
}

/// For each output column of `plan`, the expression over its other output columns that
/// computes it, where the plan says so: a map-filter-project's map of projected input columns.
fn computed_columns(plan: &Plan) -> Vec<Option<ScalarExpr>> {
    let mut out = vec![None; plan.arity()];
    let Plan::Mfp { input, mfp } = plan else {
        return out;
    };
    let input_arity = input.arity();
    let maps = mfp.maps();
    let output_of = |c: usize| mfp.project.iter().position(|&p| p == c);
    for (o, &w) in mfp.project.iter().enumerate() {
        let Some(e) = w.checked_sub(input_arity).and_then(|m| maps.get(m)) else {
            continue;
        };
        let mut cols = Vec::new();
        e.support(&mut cols);
        if cols.is_empty()
            || cols
                .iter()
                .any(|&c| c >= input_arity || output_of(c).is_none())
        {
            continue;
        }
        out[o] = Some(e.substitute(&|c| ScalarExpr::Column(output_of(c).expect("projected"))));
    }
    out
}

/// `(a, b)` for a predicate `#a = #b`.
fn column_equality(p: &ScalarExpr) -> Option<(usize, usize)> {
    match p {
        ScalarExpr::Binary(BinaryFunc::Eq, a, b) => match (&**a, &**b) {
            (ScalarExpr::Column(a), ScalarExpr::Column(b)) => Some((*a, *b)),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `e` is NULL only where a column it reads is: columns, non-NULL literals, and
/// arithmetic and windows over them (which return NULL only for a NULL argument).
fn null_only_from_null(e: &ScalarExpr) -> bool {
    use BinaryFunc::{Add, Mul, Sub, Tumble, WindowEnd};
    match e {
        ScalarExpr::Column(_) => true,
        ScalarExpr::Literal(v) => *v != Value::Null,
        ScalarExpr::Binary(Add | Sub | Mul | Tumble | WindowEnd, a, b) => {
            null_only_from_null(a) && null_only_from_null(b)
        }
        _ => false,
    }
}

/// Classes of columns the equalities make equal (a union-find).
struct Classes {
    parent: Vec<usize>,
}

impl Classes {
    fn new(n: usize) -> Self {
        Classes {
            parent: (0..n).collect(),
        }
    }

    fn find(&self, mut c: usize) -> usize {
        while self.parent[c] != c {
            c = self.parent[c];
        }
        c
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        self.parent[a.max(b)] = a.min(b);
    }

    /// Whether `f` and `g` are the same expression of equal columns.
    fn same(&self, f: &ScalarExpr, g: &ScalarExpr) -> bool {
        match (f, g) {
            (ScalarExpr::Column(a), ScalarExpr::Column(b)) => self.find(*a) == self.find(*b),
            (ScalarExpr::Literal(a), ScalarExpr::Literal(b)) => a == b,
            (ScalarExpr::Unary(u, a), ScalarExpr::Unary(v, b)) => u == v && self.same(a, b),
            (ScalarExpr::Binary(u, a1, a2), ScalarExpr::Binary(v, b1, b2)) => {
                u == v && self.same(a1, b1) && self.same(a2, b2)
            }
            (ScalarExpr::Variadic(u, a), ScalarExpr::Variadic(v, b)) => {
                u == v && a.len() == b.len() && a.iter().zip(b).all(|(a, b)| self.same(a, b))
            }
            (
                ScalarExpr::If {
                    cond: c1,
                    then: t1,
                    els: e1,
                },
                ScalarExpr::If {
                    cond: c2,
                    then: t2,
                    els: e2,
                },
            ) => self.same(c1, c2) && self.same(t1, t2) && self.same(e1, e2),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::mfp::{Mfp, MfpStep};
    use crate::value::Value;

    /// A two-column input (`start`, and `start + 10` computed from it) over table `id`.
    fn with_end(id: u64) -> Plan {
        let end =
            ScalarExpr::Column(0).call_binary(BinaryFunc::Add, ScalarExpr::Literal(Value::Int(10)));
        Plan::Mfp {
            input: Box::new(Plan::Get { id, arity: 1 }),
            mfp: Mfp {
                steps: vec![MfpStep::Map(end)],
                project: vec![0, 1],
            },
        }
    }

    fn eq(a: usize, b: usize) -> ScalarExpr {
        ScalarExpr::Column(a).call_binary(BinaryFunc::Eq, ScalarExpr::Column(b))
    }

    #[test]
    fn equal_starts_imply_equal_ends() {
        let inputs = [with_end(1), with_end(2)];
        let kept = drop_implied_equalities(&inputs, vec![eq(0, 2), eq(1, 3)]);
        assert_eq!(kept, vec![eq(0, 2)]);
        // Written the other way round too.
        let kept = drop_implied_equalities(&inputs, vec![eq(3, 1), eq(2, 0)]);
        assert_eq!(kept, vec![eq(2, 0)]);
    }

    #[test]
    fn an_end_equality_alone_stays() {
        let inputs = [with_end(1), with_end(2)];
        assert_eq!(
            drop_implied_equalities(&inputs, vec![eq(1, 3)]),
            vec![eq(1, 3)]
        );
    }

    #[test]
    fn different_expressions_do_not_imply() {
        let mut other = with_end(2);
        if let Plan::Mfp { mfp, .. } = &mut other {
            mfp.steps = vec![MfpStep::Map(
                ScalarExpr::Column(0)
                    .call_binary(BinaryFunc::Add, ScalarExpr::Literal(Value::Int(11))),
            )];
        }
        let inputs = [with_end(1), other];
        let preds = vec![eq(0, 2), eq(1, 3)];
        assert_eq!(drop_implied_equalities(&inputs, preds.clone()), preds);
    }

    #[test]
    fn columns_computed_from_hidden_columns_imply_nothing() {
        // Both columns of each side are computed from an input column the side does not
        // keep: nothing relates them to the other equality.
        let computed = |id| Plan::Mfp {
            input: Box::new(Plan::Get { id, arity: 1 }),
            mfp: Mfp {
                steps: vec![
                    MfpStep::Map(
                        ScalarExpr::Column(0)
                            .call_binary(BinaryFunc::Add, ScalarExpr::Literal(Value::Int(1))),
                    ),
                    MfpStep::Map(
                        ScalarExpr::Column(0)
                            .call_binary(BinaryFunc::Add, ScalarExpr::Literal(Value::Int(2))),
                    ),
                ],
                project: vec![1, 2],
            },
        };
        let inputs = [computed(1), computed(2)];
        let preds = vec![eq(0, 2), eq(1, 3)];
        assert_eq!(drop_implied_equalities(&inputs, preds.clone()), preds);
    }
}
