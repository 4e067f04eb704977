//! `GROUP BY GROUPING SETS (…)`, `ROLLUP (…)` and `CUBE (…)`.
//!
//! A SELECT grouped by several sets is the union of one ordinary `GROUP BY` per set: each
//! branch groups by its set's expressions, and the grouping expressions outside its set read
//! as NULL (of their type) in its select list and HAVING, while aggregate arguments still see
//! the rows' values. `grouping(e, …)` is a constant per branch: a bit per argument, 1 where
//! the argument is not grouped (the first argument the highest bit). The branches are joined
//! by `UNION ALL` (`UNION` for `SELECT DISTINCT`), so each is an ordinary aggregation kept
//! incrementally, and the union's ORDER BY and LIMIT apply to the whole result.

use sqlparser::ast::{self, Expr, VisitMut, VisitorMut};
use std::ops::ControlFlow;

use super::expr::{function_name, is_aggregate_name};
use crate::error::{Error, Result};
use crate::value::DataType;

/// More sets than this (a CUBE of seven or more) are refused: each is an aggregation of its own.
const MAX_SETS: usize = 64;

/// Whether `s` groups by grouping sets, or calls `grouping(…)` (0 under a plain GROUP BY,
/// which is one set).
pub fn applies(s: &ast::Select) -> bool {
    match &s.group_by {
        ast::GroupByExpr::Expressions(es, _) => {
            es.iter().any(|e| {
                matches!(
                    e,
                    Expr::GroupingSets(_) | Expr::Rollup(_) | Expr::Cube(_) | Expr::Tuple(_)
                )
            }) || (!es.is_empty() && calls_grouping(s))
        }
        ast::GroupByExpr::All(_) => false,
    }
}

/// Whether the select list or HAVING of `s` calls `grouping(…)`.
fn calls_grouping(s: &ast::Select) -> bool {
    let items = s.projection.iter().filter_map(super::item_expr);
    items.chain(s.having.as_ref()).any(|e| {
        ast::visit_expressions(e, |x| match x {
            Expr::Function(f) if f.over.is_none() && function_name(&f.name) == "grouping" => {
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        })
        .is_break()
    })
}

/// `e` without the parentheses around it: `(a * b)` groups what `a * b` does.
fn bare(mut e: &Expr) -> &Expr {
    while let Expr::Nested(inner) = e {
        e = inner;
    }
    e
}

/// The grouping sets of `s`'s GROUP BY: each element's sets, crossed.
pub fn sets(s: &ast::Select) -> Result<Vec<Vec<Expr>>> {
    let ast::GroupByExpr::Expressions(es, mods) = &s.group_by else {
        return Err(Error::unsupported("GROUP BY ALL"));
    };
    if !mods.is_empty() {
        return Err(Error::unsupported("GROUP BY modifiers (WITH ROLLUP)"));
    }
    let mut sets: Vec<Vec<Expr>> = vec![vec![]];
    for e in es {
        let element: Vec<Vec<Expr>> = match e {
            Expr::GroupingSets(list) => list.clone(),
            Expr::Rollup(list) => (0..=list.len()).rev().map(|n| list[..n].concat()).collect(),
            Expr::Cube(list) => {
                if list.len() > 6 {
                    return Err(Error::unsupported(format!(
                        "CUBE of more than 6 elements ({} grouping sets)",
                        1u64 << list.len().min(63)
                    )));
                }
                (0..1usize << list.len())
                    .rev()
                    .map(|mask| {
                        (0..list.len())
                            .filter(|i| mask >> (list.len() - 1 - i) & 1 == 1)
                            .flat_map(|i| list[i].clone())
                            .collect()
                    })
                    .collect()
            }
            Expr::Tuple(list) => vec![list.clone()],
            plain => vec![vec![plain.clone()]],
        };
        sets = sets
            .iter()
            .flat_map(|set| {
                element.iter().map(move |more| {
                    let mut s = set.clone();
                    s.extend(more.iter().cloned());
                    s
                })
            })
            .collect();
        if sets.len() > MAX_SETS {
            return Err(Error::unsupported(format!(
                "more than {MAX_SETS} grouping sets"
            )));
        }
    }
    for set in &mut sets {
        for e in set.iter_mut() {
            *e = bare(e).clone();
        }
        let mut seen: Vec<Expr> = Vec::new();
        set.retain(|e| {
            let new = !seen.contains(e);
            seen.push(e.clone());
            new
        });
    }
    Ok(sets)
}

/// The union of one SELECT per grouping set. `type_of` gives a grouping expression's type,
/// for the NULL that stands for it where it is not grouped.
pub fn expand(
    s: &ast::Select,
    type_of: &mut dyn FnMut(&Expr) -> Result<DataType>,
) -> Result<ast::SetExpr> {
    if !s.named_window.is_empty()
        || !super::ranking::calls(s.projection.iter().filter_map(super::item_expr)).is_empty()
    {
        return Err(Error::unsupported(
            "window functions with GROUPING SETS, ROLLUP or CUBE",
        ));
    }
    let sets = sets(s)?;
    let mut all: Vec<Expr> = Vec::new();
    for e in sets.iter().flatten() {
        if !all.contains(e) {
            all.push(e.clone());
        }
    }
    // A typed NULL per grouping expression.
    let nulls: Vec<Expr> = all
        .iter()
        .map(|e| {
            let ty = type_of(e)?;
            let sql = match ty {
                DataType::Null => "NULL".to_string(),
                ty => format!("CAST(NULL AS {})", ty.name()),
            };
            super::subquery::parse_expr(&sql)
        })
        .collect::<Result<_>>()?;
    let distinct = matches!(s.distinct, Some(ast::Distinct::Distinct));
    if matches!(s.distinct, Some(ast::Distinct::On(_))) {
        return Err(Error::unsupported(
            "DISTINCT ON with GROUPING SETS, ROLLUP or CUBE",
        ));
    }
    let mut union: Option<ast::SetExpr> = None;
    for set in &sets {
        let absent: Vec<(Expr, Expr)> = all
            .iter()
            .zip(&nulls)
            .filter(|(e, _)| !set.contains(e))
            .map(|(e, n)| (e.clone(), n.clone()))
            .collect();
        let mut branch = s.clone();
        if sets.len() > 1 {
            branch.distinct = None;
        }
        branch.group_by = ast::GroupByExpr::Expressions(set.clone(), vec![]);
        let mut substitute = Substitute {
            absent: &absent,
            set,
            stash: Vec::new(),
            failed: None,
        };
        for item in &mut branch.projection {
            if let ast::SelectItem::UnnamedExpr(e) = item {
                // Keep the item's name, which the substitution may change.
                let name = super::query::default_name(e);
                let mut e = e.clone();
                substitute.run(&mut e)?;
                *item = ast::SelectItem::ExprWithAlias {
                    expr: e,
                    alias: ast::Ident::with_quote('"', name),
                };
            } else if let ast::SelectItem::ExprWithAlias { expr, .. } = item {
                substitute.run(expr)?;
            } else {
                return Err(Error::unsupported(
                    "* in a SELECT with GROUPING SETS, ROLLUP or CUBE",
                ));
            }
        }
        if let Some(h) = branch.having.as_mut() {
            substitute.run(h)?;
        }
        // The empty set is one group over all rows, even with no aggregate in the list.
        let aggregates = branch
            .projection
            .iter()
            .filter_map(super::item_expr)
            .any(super::expr::contains_aggregate);
        if set.is_empty() && branch.having.is_none() && !aggregates {
            branch.having = Some(super::subquery::parse_expr("true")?);
        }
        let branch = ast::SetExpr::Select(Box::new(branch));
        union = Some(match union {
            None => branch,
            Some(left) => ast::SetExpr::SetOperation {
                op: ast::SetOperator::Union,
                set_quantifier: match distinct {
                    true => ast::SetQuantifier::Distinct,
                    false => ast::SetQuantifier::All,
                },
                left: Box::new(left),
                right: Box::new(branch),
            },
        });
    }
    union.ok_or_else(|| Error::plan("GROUP BY with no grouping sets"))
}

/// One branch's substitution: absent grouping expressions become their NULLs and
/// `grouping(…)` its constant, except inside aggregate calls and subqueries, which are set
/// aside while the rest is rewritten and put back after.
struct Substitute<'a> {
    absent: &'a [(Expr, Expr)],
    set: &'a [Expr],
    stash: Vec<Expr>,
    failed: Option<Error>,
}

impl Substitute<'_> {
    fn run(&mut self, e: &mut Expr) -> Result<()> {
        self.stash.clear();
        let _ = e.visit(self);
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        let stash = std::mem::take(&mut self.stash);
        let _ = ast::visit_expressions_mut(e, |x| {
            if let Expr::Identifier(id) = x {
                if let Some(i) = id
                    .value
                    .strip_prefix("?stashed")
                    .and_then(|i| i.parse().ok())
                {
                    let i: usize = i;
                    *x = stash[i].clone();
                }
            }
            ControlFlow::<()>::Continue(())
        });
        Ok(())
    }

    fn set_aside(&mut self, e: &mut Expr) {
        let placeholder = Expr::Identifier(ast::Ident::with_quote(
            '"',
            format!("?stashed{}", self.stash.len()),
        ));
        self.stash.push(std::mem::replace(e, placeholder));
    }
}

impl VisitorMut for Substitute<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        // The NULL (which may be written like the expression it stands for, `CAST(NULL AS
        // bigint)`) and a grouped expression are final: set aside, not searched again. A
        // grouped `a + 1` keeps its `a` even where `a` alone is not grouped.
        if let Some((_, null)) = self.absent.iter().find(|(g, _)| bare(g) == bare(e)) {
            *e = null.clone();
            self.set_aside(e);
            return ControlFlow::Continue(());
        }
        if self.set.iter().any(|g| bare(g) == bare(e)) {
            self.set_aside(e);
            return ControlFlow::Continue(());
        }
        match e {
            Expr::Function(f) if f.over.is_none() && function_name(&f.name) == "grouping" => {
                let ast::FunctionArguments::List(list) = &f.args else {
                    self.failed = Some(Error::plan("grouping() needs arguments"));
                    return ControlFlow::Break(());
                };
                let mut bits: i64 = 0;
                for a in &list.args {
                    let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(a)) = a else {
                        self.failed = Some(Error::plan("grouping() takes expressions"));
                        return ControlFlow::Break(());
                    };
                    let grouped = self.set.iter().any(|g| bare(g) == bare(a));
                    if !grouped && !self.absent.iter().any(|(g, _)| bare(g) == bare(a)) {
                        self.failed = Some(Error::plan(
                            "arguments to GROUPING must be grouping expressions of the associated query level",
                        ));
                        return ControlFlow::Break(());
                    }
                    bits = bits << 1 | i64::from(!grouped);
                }
                *e = Expr::value(ast::Value::Number(bits.to_string(), false));
            }
            Expr::Function(f) if f.over.is_none() && is_aggregate_name(&function_name(&f.name)) => {
                self.set_aside(e)
            }
            Expr::Subquery(_)
            | Expr::Exists { .. }
            | Expr::In {
                target: ast::InTarget::Subquery(_),
                ..
            } => self.set_aside(e),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
