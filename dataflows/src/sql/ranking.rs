//! Ranking window functions: `ROW_NUMBER()`, `RANK()` and `DENSE_RANK()`
//! `OVER (PARTITION BY … ORDER BY …)` in the select list of a non-aggregating SELECT.
//!
//! Each distinct call becomes a ranking stage (`Plan::TopK` with a `rank`) over the rows of
//! the FROM and WHERE clauses: it groups them by the partition expressions, orders each group
//! and appends the rank as a column, which the select list then reads. The usual use is "top
//! k per group" — `SELECT … FROM (SELECT …, ROW_NUMBER() OVER (…) AS rn FROM t) WHERE
//! rn <= k` — and lowering turns that outer filter into the stage's limit, so each group keeps
//! only its k rows (`plan::lower`). Each group is re-ranked when it changes, which is cheap for
//! the small groups such queries have; other window functions (aggregates over frames, `lag`,
//! `lead`) are not supported and are refused by name.

use sqlparser::ast::{self, Expr};

use super::expr::{function_name, visit_functions, ExprBinder};
use super::scope::{Scope, ScopeColumn};
use crate::error::{Error, Result};
use crate::plan::top_k::{RankKind, TopKPlan};
use crate::plan::Plan;
use crate::value::DataType;

/// Every window function call in `exprs` (not looking into subqueries), each once.
pub fn calls<'e>(exprs: impl IntoIterator<Item = &'e Expr>) -> Vec<ast::Function> {
    let mut found: Vec<ast::Function> = Vec::new();
    for e in exprs {
        visit_functions(e, &mut |f| {
            if f.over.is_some() && !found.contains(f) {
                found.push(f.clone());
            }
        });
    }
    found
}

/// Adds a ranking stage for each call over `plan`; returns the plan and, per call, the column
/// that holds its rank. `scope` grows by the (hidden) columns the stages append.
pub fn plan(
    mut plan: Plan,
    scope: &mut Scope,
    calls: Vec<ast::Function>,
) -> Result<(Plan, Vec<(ast::Function, usize)>)> {
    let mut columns = Vec::with_capacity(calls.len());
    for f in calls {
        let name = function_name(&f.name);
        let kind = match name.as_str() {
            "row_number" => RankKind::RowNumber,
            "rank" => RankKind::Rank,
            "dense_rank" => RankKind::DenseRank,
            _ => {
                return Err(Error::Unsupported(format!(
                    "window function {name}(…) OVER is not supported (row_number, rank and dense_rank are)"
                )))
            }
        };
        let no_args = match &f.args {
            ast::FunctionArguments::None => true,
            ast::FunctionArguments::List(l) => l.args.is_empty(),
            ast::FunctionArguments::Subquery(_) => false,
        };
        if !no_args {
            return Err(Error::plan(format!("{name}() takes no arguments")));
        }
        if f.filter.is_some() || !f.within_group.is_empty() {
            return Err(Error::unsupported(format!(
                "FILTER or WITHIN GROUP on {name}()"
            )));
        }
        let spec = match &f.over {
            Some(ast::WindowType::WindowSpec(spec)) => spec,
            Some(ast::WindowType::NamedWindow(w)) => {
                return Err(Error::unsupported(format!("named window {w}")))
            }
            None => unreachable!("only calls with OVER are collected"),
        };
        if spec.window_name.is_some() || spec.window_frame.is_some() {
            return Err(Error::unsupported(format!(
                "a window frame or base window in {name}() OVER (…)"
            )));
        }
        if spec.order_by.is_empty() && kind != RankKind::RowNumber {
            return Err(Error::plan(format!("{name}() OVER (…) needs ORDER BY")));
        }
        // Partition and order expressions, appended as columns the stage can read.
        let mut exprs = Vec::new();
        let base = plan.arity();
        let mut group_key = Vec::new();
        for e in &spec.partition_by {
            let (x, _) = ExprBinder::new(scope).bind(e)?;
            group_key.push(base + exprs.len());
            exprs.push(x);
        }
        let mut order = Vec::new();
        for o in &spec.order_by {
            let (x, _) = ExprBinder::new(scope).bind(&o.expr)?;
            order.push(super::query::order_key(base + exprs.len(), o));
            exprs.push(x);
        }
        let appended = exprs.len();
        plan = plan.map(exprs);
        for i in 0..appended {
            scope
                .columns
                .push(hidden(format!("?window{}", base + i), DataType::Null));
        }
        plan = Plan::TopK(TopKPlan {
            input: Box::new(plan),
            group_key,
            order,
            limit: None,
            offset: 0,
            rank: Some(kind),
        });
        let column = scope.columns.len();
        scope
            .columns
            .push(hidden(format!("?{name}"), DataType::Int));
        columns.push((f, column));
    }
    Ok((plan, columns))
}

fn hidden(name: String, ty: DataType) -> ScopeColumn {
    ScopeColumn {
        table: None,
        name,
        ty,
        nullable: false,
        hidden: true,
    }
}
