//! Window functions in an aggregating SELECT (`SELECT k, sum(v), rank() OVER (ORDER BY
//! sum(v) DESC) FROM t GROUP BY k`).
//!
//! SQL computes window functions after `GROUP BY` and `HAVING`, over the groups. The SELECT is
//! rewritten into exactly that: the aggregation becomes a derived table, and the window
//! functions a SELECT over it. Every largest part of the select list (and of ORDER BY) that
//! holds no window function — a group key, an aggregate, `tumble_end(…)`, `k + count(*)`, a
//! subquery — becomes a column of the derived table, where the aggregating planner binds it
//! with all of its rules and errors; the outer SELECT keeps the window calls and reads those
//! columns in their place.

use sqlparser::ast::{self, Expr, VisitMut, VisitorMut};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

use crate::error::{Error, Result};

/// The outer SELECT and its ORDER BY for `s` (aggregating, with window functions).
pub fn rewrite(
    s: &ast::Select,
    order_by: &[ast::OrderByExpr],
) -> Result<(ast::Select, Vec<ast::OrderByExpr>)> {
    if matches!(s.distinct, Some(ast::Distinct::On(_))) {
        return Err(Error::unsupported(
            "DISTINCT ON with window functions in an aggregating SELECT",
        ));
    }
    let mut s = s.clone();
    super::ranking::inline_named_windows(&mut s)?;
    let mut pushed = Pushed::default();

    // The select list, each item named as it would have been.
    let mut projection = Vec::new();
    let mut names = Vec::new();
    for item in &s.projection {
        let (expr, name) = match item {
            ast::SelectItem::UnnamedExpr(e) => (e, super::query::default_name(e)),
            ast::SelectItem::ExprWithAlias { expr, alias } => (expr, super::ident(alias)),
            _ => {
                return Err(Error::unsupported(
                    "* in an aggregating SELECT with window functions",
                ))
            }
        };
        names.push((name.clone(), expr.clone()));
        projection.push(ast::SelectItem::ExprWithAlias {
            expr: pushed.outer(expr)?,
            alias: quoted(&name),
        });
    }
    // ORDER BY: an output name or position stays; anything else is read like an item.
    let mut order = Vec::new();
    for o in order_by {
        let mut o = o.clone();
        let output_name = match &o.expr {
            Expr::Value(_) => true,
            Expr::Identifier(id) => names.iter().any(|(n, _)| *n == super::ident(id)),
            _ => false,
        };
        if !output_name {
            o.expr = pushed.outer(&o.expr)?;
        }
        order.push(o);
    }

    // The derived table: the aggregation, its columns the pushed expressions. GROUP BY
    // positions and output names refer to the original select list, so they are resolved
    // here.
    let mut inner = s.clone();
    if let ast::GroupByExpr::Expressions(exprs, _) = &mut inner.group_by {
        for g in exprs.iter_mut() {
            let item = match &*g {
                Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => n
                        .parse::<usize>()
                        .ok()
                        .and_then(|p| p.checked_sub(1))
                        .and_then(|p| names.get(p))
                        .map(|(_, e)| e.clone()),
                    _ => None,
                },
                Expr::Identifier(id) => names
                    .iter()
                    .find(|(n, _)| *n == super::ident(id))
                    .map(|(_, e)| e.clone()),
                _ => None,
            };
            if let Some(item) = item {
                if !super::ranking::calls([&item]).is_empty() {
                    return Err(Error::plan("window functions are not allowed in GROUP BY"));
                }
                // A column of the same name wins over an output name, as in the planner:
                // leave identifiers to it unless they name an item with another expression.
                if !matches!(&*g, Expr::Identifier(_)) || item != *g {
                    // A constant item (`SELECT 1 … GROUP BY 1`) stays a constant: bare, the
                    // derived table's planner would read it as a position in its own list.
                    *g = match item {
                        Expr::Value(_) => Expr::Nested(Box::new(item)),
                        item => item,
                    };
                }
            }
        }
    }
    inner.distinct = None;
    inner.named_window = Vec::new();
    inner.projection = match pushed.exprs.is_empty() {
        // One row per group is all the windows need.
        true => vec![ast::SelectItem::ExprWithAlias {
            expr: super::subquery::parse_expr("0")?,
            alias: quoted("?x0"),
        }],
        false => pushed
            .exprs
            .iter()
            .enumerate()
            .map(|(i, e)| ast::SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: quoted(&format!("?x{i}")),
            })
            .collect(),
    };

    let mut outer = template("SELECT 1 FROM (SELECT 1) AS \"?grouped\"")?;
    if let Some(ast::TableFactor::Derived { subquery, .. }) =
        outer.from.first_mut().map(|t| &mut t.relation)
    {
        *subquery.body = ast::SetExpr::Select(Box::new(inner));
    }
    outer.projection = projection;
    outer.distinct = s.distinct.clone();
    Ok((outer, order))
}

/// The expressions the derived table computes, each once.
#[derive(Default)]
struct Pushed {
    exprs: Vec<Expr>,
}

impl Pushed {
    /// `e` for the outer SELECT: window calls kept, everything else read from the derived
    /// table.
    fn outer(&mut self, e: &Expr) -> Result<Expr> {
        let mut e = e.clone();
        let mut failed = None;
        let _ = e.visit(&mut Replacer {
            pushed: self,
            failed: &mut failed,
        });
        match failed {
            Some(err) => Err(err),
            None => Ok(e),
        }
    }

    fn column(&mut self, e: &Expr) -> Expr {
        let i = match self.exprs.iter().position(|x| x == e) {
            Some(i) => i,
            None => {
                self.exprs.push(e.clone());
                self.exprs.len() - 1
            }
        };
        Expr::Identifier(quoted(&format!("?x{i}")))
    }
}

/// Replaces each largest window-free expression with its derived table column, before
/// looking inside it.
struct Replacer<'a> {
    pushed: &'a mut Pushed,
    failed: &'a mut Option<Error>,
}

impl VisitorMut for Replacer<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if super::ranking::calls([&*e]).is_empty() && !is_constant(e) {
            *e = self.pushed.column(e);
            return ControlFlow::Continue(());
        }
        if let Expr::Function(f) = e {
            if f.over.is_some() && matches!(f.args, ast::FunctionArguments::Subquery(_)) {
                *self.failed = Some(Error::plan("window functions take no subquery"));
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

/// Literals stay in the outer SELECT, where window functions need them as constants
/// (`ntile(4)`, `lag(x, 2)`, frame offsets).
fn is_constant(e: &Expr) -> bool {
    match e {
        Expr::Value(_) | Expr::Interval(_) | Expr::TypedString { .. } => true,
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => is_constant(expr),
        Expr::Cast { expr, .. } => is_constant(expr),
        _ => false,
    }
}

fn quoted(name: &str) -> ast::Ident {
    ast::Ident::with_quote('"', name)
}

/// The SELECT of `sql`, a fixed query the rewrite starts from.
fn template(sql: &str) -> Result<ast::Select> {
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| Error::plan(format!("rewriting window functions: {e}")))?;
    match statements.into_iter().next() {
        Some(ast::Statement::Query(q)) => match *q.body {
            ast::SetExpr::Select(s) => Ok(*s),
            _ => Err(Error::plan("rewriting window functions: not a SELECT")),
        },
        _ => Err(Error::plan("rewriting window functions: not a query")),
    }
}
