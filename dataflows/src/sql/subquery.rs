//! Subqueries inside expressions, decorrelated into joins where that is possible.
//!
//! - A scalar subquery `(SELECT x …)` becomes a one-row relation (its value, NULL when it has no
//!   rows, an evaluation error when it has several) cross-joined to the FROM clause.
//! - `EXISTS (…)` becomes a one-row relation holding `count(*) > 0`, joined the same way.
//! - `x IN (SELECT c …)` as a top-level conjunct of WHERE becomes a join with the distinct
//!   values of `c` on `x = c`, which lowering turns into an arrangement-keyed semi-join.
//!
//! Each becomes a hidden column named `__subquery.sN` that the rewritten expression refers to.
//! Correlated subqueries (that mention columns of the outer query) are not supported yet and
//! are reported as such.

use std::ops::ControlFlow;

use sqlparser::ast::{self, Expr, Ident, VisitMut, VisitorMut};

use super::query::QueryPlanner;
use super::scope::{Scope, ScopeColumn};
use crate::error::{Error, Result};
use crate::expr::{BinaryFunc, ScalarExpr};
use crate::plan::join::JoinPlan;
use crate::plan::reduce::{AggFunc, AggregateExpr, ReducePlan};
use crate::plan::{JoinKind, Plan};
use crate::value::{DataType, Value};

const TABLE: &str = "__subquery";

/// A relation produced from a subquery, to be joined to the FROM clause.
struct Extra {
    plan: Plan,
    name: String,
    ty: DataType,
}

/// Rewrites subqueries in `select` (WHERE and, unless `aggregating`, the select list) and
/// joins their relations to `plan`, extending `scope` with their hidden columns.
pub fn rewrite(
    planner: &mut QueryPlanner<'_>,
    select: &mut ast::Select,
    plan: Plan,
    scope: Scope,
    aggregating: bool,
) -> Result<(Plan, Scope)> {
    let mut extras = Vec::new();
    let mut counter = 0usize;

    // Top-level `x IN (SELECT …)` conjuncts of WHERE become semi-joins.
    if let Some(w) = select.selection.take() {
        let mut conjuncts = Vec::new();
        split_and(w, &mut conjuncts);
        let mut kept = Vec::new();
        for c in conjuncts {
            match c {
                Expr::In {
                    expr,
                    target: ast::InTarget::Subquery(q),
                    negated: false,
                    ..
                } => {
                    let (sub, cols) = plan_subquery(planner, &q)?;
                    let name = format!("s{counter}");
                    counter += 1;
                    extras.push(Extra {
                        plan: sub.distinct(),
                        name: name.clone(),
                        ty: cols,
                    });
                    kept.push(Expr::BinaryOp {
                        left: expr,
                        op: ast::BinaryOperator::Eq,
                        right: Box::new(reference(&name)),
                    });
                }
                other => kept.push(other),
            }
        }
        select.selection = kept.into_iter().reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: ast::BinaryOperator::And,
            right: Box::new(b),
        });
    }

    let mut visitor = Rewriter {
        planner,
        extras: &mut extras,
        counter: &mut counter,
        depth: 0,
        error: None,
    };
    if let Some(w) = select.selection.as_mut() {
        let _ = w.visit(&mut visitor);
    }
    if let Some(e) = visitor.error.take() {
        return Err(e);
    }
    for item in select.projection.iter_mut() {
        if let ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } =
            item
        {
            if aggregating && has_subquery(e) {
                return Err(Error::unsupported(
                    "a subquery in the select list of an aggregating query",
                ));
            }
            let _ = e.visit(&mut visitor);
        }
    }
    if let Some(e) = visitor.error.take() {
        return Err(e);
    }
    if select.having.as_ref().is_some_and(has_subquery) {
        return Err(Error::unsupported("a subquery in HAVING"));
    }

    let mut plan = plan;
    let mut scope = scope;
    for extra in extras {
        plan = Plan::Join(JoinPlan {
            left: Box::new(plan),
            right: Box::new(extra.plan),
            kind: JoinKind::Inner,
            left_key: vec![],
            right_key: vec![],
            residual: vec![],
        });
        scope.columns.push(ScopeColumn {
            table: Some(TABLE.into()),
            name: extra.name,
            ty: extra.ty,
            nullable: true,
            hidden: true,
        });
    }
    Ok((plan, scope))
}

struct Rewriter<'p, 'a> {
    planner: &'p mut QueryPlanner<'a>,
    extras: &'p mut Vec<Extra>,
    counter: &'p mut usize,
    /// How many queries deep the traversal is: only depth 0 belongs to this SELECT.
    depth: usize,
    error: Option<Error>,
}

impl VisitorMut for Rewriter<'_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, _q: &mut ast::Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &mut ast::Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if self.depth > 0 || self.error.is_some() {
            return ControlFlow::Continue(());
        }
        let result = match e {
            Expr::Subquery(q) => self.scalar(q),
            Expr::Exists { subquery, negated } => self.exists(subquery).map(|r| if *negated { Expr::UnaryOp { op: ast::UnaryOperator::Not, expr: Box::new(r) } } else { r }),
            Expr::In { target: ast::InTarget::Subquery(_), .. } => Err(Error::unsupported(
                "IN (subquery) other than as a condition of WHERE joined by AND (NOT IN is not supported yet)",
            )),
            _ => return ControlFlow::Continue(()),
        };
        match result {
            Ok(r) => *e = r,
            Err(err) => self.error = Some(err),
        }
        ControlFlow::Continue(())
    }
}

impl Rewriter<'_, '_> {
    fn next_name(&mut self) -> String {
        let n = format!("s{}", self.counter);
        *self.counter += 1;
        n
    }

    fn scalar(&mut self, q: &ast::Query) -> Result<Expr> {
        let (sub, ty) = plan_subquery(self.planner, q)?;
        let single = Plan::Reduce(ReducePlan {
            input: Box::new(sub),
            key: vec![],
            aggregates: vec![AggregateExpr {
                func: AggFunc::Single,
                expr: ScalarExpr::Column(0),
                distinct: false,
                arg_type: ty,
            }],
            global: true,
        });
        let name = self.next_name();
        self.extras.push(Extra {
            plan: single,
            name: name.clone(),
            ty,
        });
        Ok(reference(&name))
    }

    fn exists(&mut self, q: &ast::Query) -> Result<Expr> {
        let planned = self.planner.plan_query(q).map_err(correlated)?;
        let count = Plan::Reduce(ReducePlan {
            input: Box::new(planned.visible_plan()),
            key: vec![],
            aggregates: vec![AggregateExpr {
                func: AggFunc::CountStar,
                expr: ScalarExpr::Literal(Value::Null),
                distinct: false,
                arg_type: DataType::Null,
            }],
            global: true,
        });
        let test = count
            .map(vec![ScalarExpr::Column(0).call_binary(
                BinaryFunc::Gt,
                ScalarExpr::Literal(Value::Int(0)),
            )])
            .project(vec![1]);
        let name = self.next_name();
        self.extras.push(Extra {
            plan: test,
            name: name.clone(),
            ty: DataType::Bool,
        });
        Ok(reference(&name))
    }
}

/// Plans a subquery that must produce one column.
fn plan_subquery(planner: &mut QueryPlanner<'_>, q: &ast::Query) -> Result<(Plan, DataType)> {
    let planned = planner.plan_query(q).map_err(correlated)?;
    if planned.columns.len() != 1 {
        return Err(Error::plan(format!(
            "subquery must return only one column, not {}",
            planned.columns.len()
        )));
    }
    let ty = planned.columns[0].ty;
    Ok((planned.visible_plan(), ty))
}

fn correlated(e: Error) -> Error {
    match e {
        Error::Plan(m) if m.contains("does not exist") || m.contains("missing FROM-clause") => {
            Error::Unsupported(format!(
                "{m} (subqueries that refer to the outer query are not supported yet)"
            ))
        }
        other => other,
    }
}

fn reference(name: &str) -> Expr {
    Expr::CompoundIdentifier(vec![Ident::new(TABLE), Ident::new(name)])
}

fn split_and(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            split_and(*left, out);
            split_and(*right, out);
        }
        Expr::Nested(inner)
            if matches!(
                *inner,
                Expr::BinaryOp {
                    op: ast::BinaryOperator::And,
                    ..
                }
            ) =>
        {
            split_and(*inner, out)
        }
        other => out.push(other),
    }
}

fn has_subquery(e: &Expr) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(e, |x| {
        if matches!(
            x,
            Expr::Subquery(_)
                | Expr::Exists { .. }
                | Expr::In {
                    target: ast::InTarget::Subquery(_),
                    ..
                }
        ) {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}
