//! The parts of a conjunction are tested cheapest first, as PostgreSQL tests them.
//!
//! A condition that fails on some row (`1 / a > 0`) reports an error only if it is evaluated
//! there, and a row is dropped at the first part that is not true. PostgreSQL sorts the
//! conjuncts of every scan's and join's condition by their estimated cost per row (each
//! operator or function call counts one; `AND`, `OR`, `NOT`, `IS [NOT] NULL`, `IS TRUE`,
//! `COALESCE` and `CASE` nothing of their own), keeping the written order among equals. So
//! `WHERE 1 / a > 0 AND a <> 0` tests `a <> 0` first and returns rows where `a` is 0, and an
//! inner join tests its `ON x.v > y.k` before a costlier `WHERE` condition over both sides.
//! freshet orders filters and join residuals the same way, so it reports errors where
//! PostgreSQL does, not more.

use crate::expr::{ScalarExpr, UnaryFunc, VariadicFunc};

/// Sorts `conjuncts` cheapest first, stably.
pub fn order(conjuncts: &mut [ScalarExpr]) {
    conjuncts.sort_by_cached_key(cost);
}

/// PostgreSQL's estimate, in operator calls per row.
fn cost(e: &ScalarExpr) -> usize {
    match e {
        ScalarExpr::Column(_) | ScalarExpr::Literal(_) => 0,
        ScalarExpr::Unary(f, a) => {
            let own = match f {
                UnaryFunc::Not
                | UnaryFunc::IsNull
                | UnaryFunc::IsNotNull
                | UnaryFunc::IsTrue
                | UnaryFunc::IsFalse => 0,
                _ => 1,
            };
            own + cost(a)
        }
        ScalarExpr::Binary(_, a, b) => 1 + cost(a) + cost(b),
        ScalarExpr::Variadic(f, args) => {
            let own = match f {
                VariadicFunc::And | VariadicFunc::Or | VariadicFunc::Coalesce => 0,
                _ => 1,
            };
            own + args.iter().map(cost).sum::<usize>()
        }
        ScalarExpr::If { cond, then, els } => cost(cond) + cost(then) + cost(els),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::BinaryFunc;
    use crate::value::Value;

    #[test]
    fn cheaper_conjuncts_come_first_and_equals_keep_their_order() {
        let col = ScalarExpr::Column;
        let lit = |i| ScalarExpr::Literal(Value::Int(i));
        let costly = lit(1)
            .call_binary(BinaryFunc::Div, col(0))
            .call_binary(BinaryFunc::Gt, lit(0));
        let cheap = col(0).call_binary(BinaryFunc::NotEq, lit(0));
        let also_cheap = col(1).call_binary(BinaryFunc::Lt, lit(5));
        let free = col(2).call_unary(UnaryFunc::IsNotNull);
        let mut conjuncts = vec![
            costly.clone(),
            cheap.clone(),
            free.clone(),
            also_cheap.clone(),
        ];
        order(&mut conjuncts);
        assert_eq!(conjuncts, vec![free, cheap, also_cheap, costly]);
    }
}
