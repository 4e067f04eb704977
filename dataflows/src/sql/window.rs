//! Planning window functions in `GROUP BY`: `tumble`, `hop` and their `_end` companions.
//!
//! `tumble(ts, size)` is an ordinary scalar function (each row is in one window), bound in
//! `sql/expr.rs`. `hop(ts, size, slide)` puts a row in `size / slide` windows at once, so it
//! cannot be a scalar: each `hop(…)` call in a `GROUP BY` expression is replaced by a reference
//! to a hidden column `__window.hN`, appended by a `FlatMap` (`plan/flat_map.rs`) that copies
//! each row once per window. The group key keeps the call's text, so a select item that repeats
//! it (`SELECT hop(ts, …), count(*) … GROUP BY hop(ts, …)`) is that key, as for any grouping
//! expression; `hop_end(…)` / `tumble_end(…)` with the same arguments are the key plus the size.

use std::ops::ControlFlow;

use sqlparser::ast::{self, Expr, Ident, VisitMut, VisitorMut};

use super::expr::{function_name, ExprBinder};
use super::scope::{Scope, ScopeColumn};
use super::types::coerce;
use crate::error::{Error, Result};
use crate::expr::ScalarExpr;
use crate::plan::{FlatMapPlan, Plan, TableFunc};
use crate::value::{DataType, Value};

/// The table name qualifying the hidden window columns.
const TABLE: &str = "__window";

/// The start function a window-end function belongs to (`hop_end` → `hop`).
pub fn start_function(end: &str) -> Option<&'static str> {
    match end {
        "hop_end" => Some("hop"),
        "tumble_end" => Some("tumble"),
        _ => None,
    }
}

/// The error for a hop outside a `GROUP BY`.
pub fn hop_outside_group_by(name: &str) -> Error {
    Error::Unsupported(format!(
        "{name}(…) outside GROUP BY is not supported: hop(ts, size, slide) puts each row in \
         several windows, so it can only be a GROUP BY key (and be selected as that key)"
    ))
}

/// The `hop(…)` calls of one SELECT's `GROUP BY`, each expanded once.
#[derive(Default)]
pub struct Hops {
    expanded: Vec<(Expr, String)>,
}

impl Hops {
    /// Replaces each `hop(…)` call in `e` by its window column, expanding `plan` (and `scope`)
    /// with a `FlatMap` the first time a call is seen.
    pub fn rewrite(&mut self, e: &Expr, plan: &mut Plan, scope: &mut Scope) -> Result<Expr> {
        let mut out = e.clone();
        let mut visitor = Rewriter {
            hops: self,
            plan,
            scope,
            depth: 0,
            error: None,
        };
        let _ = out.visit(&mut visitor);
        match visitor.error {
            Some(err) => Err(err),
            None => Ok(out),
        }
    }

    fn column_for(&mut self, call: &Expr, plan: &mut Plan, scope: &mut Scope) -> Result<String> {
        if let Some((_, name)) = self.expanded.iter().find(|(c, _)| c == call) {
            return Ok(name.clone());
        }
        let Expr::Function(f) = call else {
            return Err(Error::Internal("hop rewrite on a non-call".into()));
        };
        let args = arguments(f)?;
        let [ts, size, slide] = args.as_slice() else {
            return Err(Error::plan(format!(
                "function hop takes 3 arguments (timestamp, size, slide), not {}",
                args.len()
            )));
        };
        let (ts, ts_type) = ExprBinder::new(scope).bind(ts)?;
        let ts = match ts_type.ty {
            DataType::Timestamp | DataType::Null => ts,
            DataType::Date => coerce(ts, DataType::Date, DataType::Timestamp),
            other => {
                return Err(Error::plan(format!(
                    "the first argument of hop must be a timestamp, not {other}"
                )))
            }
        };
        let size = constant_interval(scope, size, "size")?;
        let slide = constant_interval(scope, slide, "slide")?;
        let func = TableFunc::hop(ts, size, slide).map_err(Error::Plan)?;
        let input = std::mem::replace(
            plan,
            Plan::Constant {
                rows: vec![],
                arity: 0,
            },
        );
        *plan = Plan::FlatMap(FlatMapPlan {
            input: Box::new(input),
            func,
        });
        let name = format!("h{}", self.expanded.len());
        scope.columns.push(ScopeColumn {
            table: Some(TABLE.into()),
            name: name.clone(),
            ty: DataType::Timestamp,
            nullable: false,
            hidden: true,
        });
        self.expanded.push((call.clone(), name.clone()));
        Ok(name)
    }
}

/// The plain arguments of a call.
fn arguments(f: &ast::Function) -> Result<Vec<Expr>> {
    match &f.args {
        ast::FunctionArguments::None => Ok(vec![]),
        ast::FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                other => Err(Error::unsupported(format!("function argument {other}"))),
            })
            .collect(),
        ast::FunctionArguments::Subquery(_) => {
            Err(Error::unsupported("subquery as function argument"))
        }
    }
}

/// The second argument (the window size) of a window call, bound as a constant interval.
pub fn window_size(scope: &Scope, f: &ast::Function) -> Result<ScalarExpr> {
    let args = arguments(f)?;
    let size = args
        .get(1)
        .ok_or_else(|| Error::plan("a window function needs a size"))?;
    let us = constant_interval(scope, size, "size")?;
    Ok(ScalarExpr::Literal(Value::Interval(us)))
}

fn constant_interval(scope: &Scope, e: &Expr, what: &str) -> Result<i64> {
    match ExprBinder::new(scope).bind(e)? {
        (ScalarExpr::Literal(Value::Interval(us)), _) => Ok(us),
        _ => Err(Error::plan(format!(
            "the {what} of a window must be a constant interval, not {e}"
        ))),
    }
}

struct Rewriter<'a> {
    hops: &'a mut Hops,
    plan: &'a mut Plan,
    scope: &'a mut Scope,
    /// Queries nested inside the expression are planned on their own.
    depth: usize,
    error: Option<Error>,
}

impl VisitorMut for Rewriter<'_> {
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
        if !matches!(e, Expr::Function(f) if function_name(&f.name) == "hop") {
            return ControlFlow::Continue(());
        }
        match self.hops.column_for(e, self.plan, self.scope) {
            Ok(name) => *e = Expr::CompoundIdentifier(vec![Ident::new(TABLE), Ident::new(name)]),
            Err(err) => self.error = Some(err),
        }
        ControlFlow::Continue(())
    }
}
