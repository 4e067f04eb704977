//! Ranking window functions: `ROW_NUMBER()`, `RANK()`, `DENSE_RANK()`, `LAG` and `LEAD`
//! `OVER (PARTITION BY … ORDER BY …)` in the select list of a non-aggregating SELECT.
//!
//! Each distinct call becomes a ranking stage (`Plan::TopK` with a `rank`) over the rows of
//! the FROM and WHERE clauses: it groups them by the partition expressions, orders each group
//! and appends the rank as a column, which the select list then reads. The usual use is "top
//! k per group" — `SELECT … FROM (SELECT …, ROW_NUMBER() OVER (…) AS rn FROM t) WHERE
//! rn <= k` — and lowering turns that outer filter into the stage's limit, so each group keeps
//! only its k rows (`plan::lower`). Each group is re-ranked when it changes, which is cheap for
//! the small groups such queries have.
//!
//! `LAG(value [, offset [, default]])` and `LEAD(…)` are the same stage: each row of a group
//! gets the value of the row `offset` places before (after) it in the group's order, and
//! `FIRST_VALUE(value)` the value of the group's first row. Other window functions
//! (aggregates over frames, `last_value`, whose default frame ends at the current row's
//! ties) are refused by name.

use sqlparser::ast::{self, Expr};

use super::expr::{function_name, visit_functions, ExprBinder};
use super::scope::{Scope, ScopeColumn};
use super::types::{coerce, common_type};
use crate::error::{Error, Result};
use crate::expr::ScalarExpr;
use crate::plan::top_k::{RankKind, TopKPlan};
use crate::plan::Plan;
use crate::value::{DataType, Value};

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
        let args: Vec<&Expr> = match &f.args {
            ast::FunctionArguments::None => vec![],
            ast::FunctionArguments::List(l) => l
                .args
                .iter()
                .map(|a| match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
                    _ => Err(Error::plan(format!("{name}() takes plain arguments"))),
                })
                .collect::<Result<_>>()?,
            ast::FunctionArguments::Subquery(_) => {
                return Err(Error::plan(format!("{name}() takes no subquery")))
            }
        };
        let ranking = match name.as_str() {
            "row_number" => Some(RankKind::RowNumber),
            "rank" => Some(RankKind::Rank),
            "dense_rank" => Some(RankKind::DenseRank),
            "lag" | "lead" | "first_value" => None,
            _ => {
                return Err(Error::Unsupported(format!(
                    "window function {name}(…) OVER is not supported (row_number, rank, \
                     dense_rank, lag, lead and first_value are)"
                )))
            }
        };
        if ranking.is_some() && !args.is_empty() {
            return Err(Error::plan(format!("{name}() takes no arguments")));
        }
        if name == "first_value" && args.len() != 1 {
            return Err(Error::plan("first_value(value) takes one argument"));
        }
        if ranking.is_none() && !(1..=3).contains(&args.len()) {
            return Err(Error::plan(format!(
                "{name}(value [, offset [, default]]) takes one to three arguments"
            )));
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
        if spec.order_by.is_empty() && ranking != Some(RankKind::RowNumber) {
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
        // lag/lead/first_value: the value and the default, appended too; the offset a
        // constant.
        let (kind, ty) = match ranking {
            Some(kind) => (kind, DataType::Int),
            None => {
                let (value, vt) = ExprBinder::new(scope).bind(args[0])?;
                let offset = match args.get(1) {
                    None => 1,
                    Some(e) => match ExprBinder::new(scope).bind(e)? {
                        (ScalarExpr::Literal(Value::Int(n)), _) if n >= 0 => n as usize,
                        _ => {
                            return Err(Error::unsupported(format!(
                                "{name}() with an offset other than a non-negative integer constant"
                            )))
                        }
                    },
                };
                let mut ty = vt.ty;
                let default = match args.get(2) {
                    None => None,
                    Some(e) => {
                        let (d, dt) = ExprBinder::new(scope).bind(e)?;
                        ty = common_type(vt.ty, dt.ty).ok_or_else(|| {
                            Error::plan(format!(
                                "{name}() value and default types {} and {} cannot be matched",
                                vt.ty, dt.ty
                            ))
                        })?;
                        Some(coerce(d, dt.ty, ty))
                    }
                };
                let value_col = base + exprs.len();
                exprs.push(coerce(value, vt.ty, ty));
                let default = default.map(|d| {
                    exprs.push(d);
                    base + exprs.len() - 1
                });
                let kind = match name.as_str() {
                    "lag" => RankKind::Lag {
                        value: value_col,
                        offset,
                        default,
                    },
                    "lead" => RankKind::Lead {
                        value: value_col,
                        offset,
                        default,
                    },
                    _ => RankKind::FirstValue { value: value_col },
                };
                (kind, ty)
            }
        };
        let appended = exprs.len();
        plan = plan.map(exprs);
        for i in 0..appended {
            scope
                .columns
                .push(hidden(format!("?window{}", base + i), DataType::Null, true));
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
            .push(hidden(format!("?{name}"), ty, !kind.is_rank()));
        columns.push((f, column));
    }
    Ok((plan, columns))
}

fn hidden(name: String, ty: DataType, nullable: bool) -> ScopeColumn {
    ScopeColumn {
        table: None,
        name,
        ty,
        nullable,
        hidden: true,
    }
}
