//! Planning temporal filters: `now()` in `WHERE`.
//!
//! `now()` (also spelled `mz_now()` and `current_timestamp`) is the view's logical time, so it
//! can only appear where its meaning is "the row is in the result while this holds": in a
//! top-level `AND`-ed condition of `WHERE` that compares it with an expression of the row.
//! Such conditions are taken out of `WHERE` here and become a `TemporalFilter` plan node
//! (`plan/temporal.rs`); the other conditions stay an ordinary filter below it.
//!
//! Accepted: `now() <op> e` and `e <op> now()` for `<`, `<=`, `>`, `>=`, `=`, where `now()`
//! may carry terms added or subtracted (`now() - ts < INTERVAL '1 hour'` is moved around to
//! `now() < ts + INTERVAL '1 hour'`), and `BETWEEN` (two such comparisons). Anywhere else —
//! the select list, `ON`, `GROUP BY`, `HAVING`, `ORDER BY`, inside `OR` or `NOT` — `now()`
//! would need the result to be recomputed as the clock moves, and it is refused with an error
//! naming the place.

use std::ops::ControlFlow;

use sqlparser::ast::{self, BinaryOperator, Expr};

use super::expr::{function_name, ExprBinder};
use super::scope::Scope;
use super::types::coerce;
use crate::error::{Error, Result};
use crate::plan::{BoundOp, Plan, TemporalFilterPlan, TimeBound};
use crate::value::DataType;

/// What users are told a temporal filter looks like.
const HINT: &str = "now() may only be compared with an expression of the row in a WHERE condition \
joined to the others by AND (a temporal filter), for example WHERE ts + INTERVAL '1 hour' > now()";

/// Whether `name` is a spelling of `now()`.
pub fn is_now_name(name: &str) -> bool {
    matches!(name, "now" | "mz_now" | "current_timestamp")
}

/// Whether `e` is a call of `now()`.
fn is_now_call(e: &Expr) -> bool {
    matches!(e, Expr::Function(f) if is_now_name(&function_name(&f.name)))
}

/// Whether `e` calls `now()` (not looking into subqueries, which are planned on their own).
pub fn contains_now(e: &Expr) -> bool {
    struct Finder {
        depth: usize,
        found: bool,
    }
    impl ast::Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, _q: &ast::Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _q: &ast::Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, x: &Expr) -> ControlFlow<()> {
            if self.depth == 0 && is_now_call(x) {
                self.found = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder {
        depth: 0,
        found: false,
    };
    let _ = ast::Visit::visit(e, &mut finder);
    finder.found
}

/// The error for `now()` in a place that cannot hold it (`place` as in "in the select list").
pub fn unsupported_now(place: &str) -> Error {
    Error::Unsupported(format!("now() {place} is not supported: {HINT}"))
}

/// Refuses `now()` anywhere in `e`.
pub fn reject_now(e: &Expr, place: &str) -> Result<()> {
    if contains_now(e) {
        return Err(unsupported_now(place));
    }
    Ok(())
}

/// A `WHERE` clause taken apart: the conditions without `now()`, and the temporal bounds as
/// `now() <op> <expression>` with the expression still unbound.
#[derive(Debug, Default)]
pub struct SplitWhere {
    pub rest: Option<Expr>,
    pub bounds: Vec<(BoundOp, Expr)>,
}

/// Splits `w` into ordinary conditions and temporal bounds.
pub fn split_where(w: &Expr) -> Result<SplitWhere> {
    if !contains_now(w) {
        return Ok(SplitWhere {
            rest: Some(w.clone()),
            bounds: Vec::new(),
        });
    }
    let mut conjuncts = Vec::new();
    split_and(w, &mut conjuncts);
    let mut rest = Vec::new();
    let mut bounds = Vec::new();
    for c in conjuncts {
        if contains_now(&c) {
            bounds_of(&c, &mut rest, &mut bounds)?;
        } else {
            rest.push(c);
        }
    }
    Ok(SplitWhere {
        rest: rest.into_iter().reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::And,
            right: Box::new(b),
        }),
        bounds,
    })
}

/// Binds the bounds against the FROM clause and puts the temporal filter over `plan`.
pub fn plan_filter(plan: Plan, scope: &Scope, bounds: Vec<(BoundOp, Expr)>) -> Result<Plan> {
    if bounds.is_empty() {
        return Ok(plan);
    }
    let mut bound = Vec::with_capacity(bounds.len());
    for (op, e) in bounds {
        let (x, t) = ExprBinder::new(scope).bind(&e)?;
        let expr = match t.ty {
            DataType::Timestamp | DataType::Null => x,
            DataType::Date => coerce(x, DataType::Date, DataType::Timestamp),
            DataType::Text if x.is_literal() => coerce(x, DataType::Text, DataType::Timestamp),
            other => {
                return Err(Error::plan(format!(
                    "now() is a timestamp and cannot be compared with {other} ({e})"
                )))
            }
        };
        bound.push(TimeBound { op, expr });
    }
    Ok(Plan::TemporalFilter(TemporalFilterPlan {
        input: Box::new(plan),
        bounds: bound,
    }))
}

fn split_and(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        Expr::Nested(inner) => match inner.as_ref() {
            Expr::BinaryOp {
                op: BinaryOperator::And,
                ..
            }
            | Expr::Nested(_) => split_and(inner, out),
            _ => out.push(e.clone()),
        },
        other => out.push(other.clone()),
    }
}

fn comparison(op: &BinaryOperator) -> Option<BoundOp> {
    Some(match op {
        BinaryOperator::Lt => BoundOp::Lt,
        BinaryOperator::LtEq => BoundOp::Lte,
        BinaryOperator::Gt => BoundOp::Gt,
        BinaryOperator::GtEq => BoundOp::Gte,
        BinaryOperator::Eq => BoundOp::Eq,
        _ => return None,
    })
}

/// Reads one condition that mentions `now()`: bounds go to `bounds`, parts without `now()`
/// (one side of a `BETWEEN`) to `rest`.
fn bounds_of(c: &Expr, rest: &mut Vec<Expr>, bounds: &mut Vec<(BoundOp, Expr)>) -> Result<()> {
    match c {
        Expr::Nested(inner) => bounds_of(inner, rest, bounds),
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } => {
            for (op, other) in [(BinaryOperator::GtEq, low), (BinaryOperator::LtEq, high)] {
                let cmp = Expr::BinaryOp {
                    left: expr.clone(),
                    op,
                    right: other.clone(),
                };
                if contains_now(&cmp) {
                    bounds_of(&cmp, rest, bounds)?;
                } else {
                    rest.push(cmp);
                }
            }
            Ok(())
        }
        Expr::Between { negated: true, .. } => Err(unsupported_now("in NOT BETWEEN")),
        Expr::BinaryOp { op, .. } if *op == BinaryOperator::Or => Err(unsupported_now("inside OR")),
        Expr::UnaryOp {
            op: ast::UnaryOperator::Not,
            ..
        } => Err(unsupported_now("inside NOT")),
        Expr::BinaryOp { left, op, right } if comparison(op).is_some() => {
            let op = comparison(op).expect("checked");
            if let (Some(terms), false) = (now_terms(left), contains_now(right)) {
                bounds.push((op, move_terms(right, terms)));
                Ok(())
            } else if let (Some(terms), false) = (now_terms(right), contains_now(left)) {
                bounds.push((op.flip(), move_terms(left, terms)));
                Ok(())
            } else {
                Err(unsupported_now(&format!(
                    "in {c} (now() must be on one side of the comparison, alone or with terms added or subtracted)"
                )))
            }
        }
        Expr::BinaryOp {
            op: BinaryOperator::NotEq,
            ..
        } => Err(unsupported_now("compared with <>")),
        other => Err(unsupported_now(&format!("in {other}"))),
    }
}

/// If `e` is `now()` with terms added or subtracted, those terms in order (`true` for `+`).
fn now_terms(e: &Expr) -> Option<Vec<(bool, Expr)>> {
    match e {
        _ if is_now_call(e) => Some(Vec::new()),
        Expr::Nested(inner) => now_terms(inner),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Plus,
            right,
        } => {
            let (now_side, term) = if contains_now(right) {
                (right, left)
            } else {
                (left, right)
            };
            if contains_now(term) {
                return None;
            }
            let mut terms = now_terms(now_side)?;
            terms.push((true, term.as_ref().clone()));
            Some(terms)
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Minus,
            right,
        } if !contains_now(right) => {
            let mut terms = now_terms(left)?;
            terms.push((false, right.as_ref().clone()));
            Some(terms)
        }
        _ => None,
    }
}

/// `now() ± terms <op> other` as `now() <op> other ∓ terms` (undoing the last term first).
fn move_terms(other: &Expr, terms: Vec<(bool, Expr)>) -> Expr {
    let mut out = other.clone();
    for (plus, term) in terms.into_iter().rev() {
        out = Expr::Nested(Box::new(Expr::BinaryOp {
            left: Box::new(out),
            op: if plus {
                BinaryOperator::Minus
            } else {
                BinaryOperator::Plus
            },
            right: Box::new(Expr::Nested(Box::new(term))),
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn parse(sql: &str) -> Expr {
        Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .expect("tokenizes")
            .parse_expr()
            .expect("parses")
    }

    fn split(sql: &str) -> Result<(Option<String>, Vec<String>)> {
        let s = split_where(&parse(sql))?;
        Ok((
            s.rest.map(|e| e.to_string()),
            s.bounds
                .into_iter()
                .map(|(op, e)| format!("{op:?} {e}"))
                .collect(),
        ))
    }

    #[test]
    fn conditions_become_bounds_on_now() {
        let (rest, bounds) = split("a = 1 AND ts + INTERVAL '1 hour' > now()").unwrap();
        assert_eq!(rest.as_deref(), Some("a = 1"));
        assert_eq!(bounds, vec!["Lt ts + INTERVAL '1 hour'"]);
        let (_, bounds) = split("now() - ts <= INTERVAL '5 seconds'").unwrap();
        assert_eq!(bounds, vec!["Lte (INTERVAL '5 seconds' + (ts))"]);
        let (_, bounds) = split("mz_now() + INTERVAL '1 minute' >= ts").unwrap();
        assert_eq!(bounds, vec!["Gte (ts - (INTERVAL '1 minute'))"]);
        let (rest, bounds) =
            split("(ts BETWEEN now() - INTERVAL '1 day' AND now()) AND b").unwrap();
        assert_eq!(rest.as_deref(), Some("b"));
        assert_eq!(
            bounds,
            vec!["Lte (ts + (INTERVAL '1 day'))", "Gte ts"],
            "ts >= now() - 1 day is now() <= ts + 1 day; ts <= now() is now() >= ts"
        );
        let (rest, bounds) = split("now() BETWEEN lo AND hi").unwrap();
        assert_eq!(rest, None);
        assert_eq!(bounds, vec!["Gte lo", "Lte hi"]);
    }

    #[test]
    fn now_elsewhere_is_refused() {
        for (sql, place) in [
            ("ts > now() OR a = 1", "inside OR"),
            ("NOT (ts > now())", "inside NOT"),
            ("ts <> now()", "compared with <>"),
            ("now() NOT BETWEEN a AND b", "NOT BETWEEN"),
            ("now() > now() - ts", "one side"),
            ("now() * 2 > ts", "one side"),
            ("coalesce(now(), ts) > ts", "one side"),
            ("ts IS NULL OR now() > ts", "inside OR"),
        ] {
            let err = split(sql).expect_err(sql).to_string();
            assert!(err.contains(place), "{sql}: {err}");
            assert!(err.contains("not supported"), "{sql}: {err}");
        }
    }
}
