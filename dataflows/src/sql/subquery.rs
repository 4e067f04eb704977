//! Subqueries inside expressions, decorrelated into joins where that is possible.
//!
//! - A scalar subquery `(SELECT x …)` becomes a one-row relation (its value, NULL when it has no
//!   rows, an evaluation error when it has several) cross-joined to the FROM clause.
//! - `EXISTS (…)` becomes a one-row relation holding `count(*) > 0`, joined the same way.
//! - `x IN (SELECT c …)` as a top-level conjunct of WHERE becomes a join with the distinct
//!   values of `c` on `x = c`, which lowering turns into an arrangement-keyed semi-join.
//! - `x [NOT] IN (SELECT c …)` anywhere else is a value with SQL's NULLs, from two relations
//!   left-joined: the subquery's row and non-NULL counts, and its distinct non-NULL values
//!   (`Rewriter::membership`).
//!
//! Each becomes a hidden column named `__subquery.sN` that the rewritten expression refers to.
//!
//! A correlated subquery (one that mentions columns of the outer query) is decorrelated when
//! the outer columns appear only in equalities `inner = outer` among the conjuncts of its
//! WHERE ([`decorrelate`]). The equalities leave the subquery, which instead returns their
//! inner sides as leading key columns, so that it runs once for all outer rows:
//!
//! - `EXISTS` becomes the distinct keys, left-joined on the equalities; the subquery holds
//!   for an outer row when a key matched (`__subquery.sN_k0 IS NOT NULL`).
//! - A scalar subquery becomes its value per key (`GROUP BY` the keys when it aggregates;
//!   an error when a key has several rows), left-joined the same way: no match is NULL.
//!   `count` over no rows is 0, not NULL, so a bare `count(…)` is wrapped in `coalesce(…, 0)`;
//!   other expressions over an aggregate of no rows are refused, as is `HAVING` there.
//! - `x IN (…)` as a top-level conjunct of WHERE becomes a join with the distinct
//!   `(keys, value)` on the equalities and `x = value`.
//!
//! Outer columns the subquery reads any other way (by `<`, under OR, in its select list) come
//! from the outer query's *domain*: the distinct values of those columns (and of the
//! equalities' outer sides) over the outer FROM, bound as a relation the rewritten subquery
//! joins (on the equalities). Those columns become keys too, matched back to the outer row
//! NULL to NULL ([`key_equalities`]): PostgreSQL runs the subquery for a NULL outer value
//! like any other, and `IS NOT DISTINCT FROM` in it may match.
//!
//! In an aggregating SELECT, the select list and HAVING are read after the Reduce: their
//! scalar and EXISTS subqueries become relations joined to its output
//! ([`rewrite_after_aggregation`]), on group keys when correlated; IN there is refused.

use std::ops::ControlFlow;

use sqlparser::ast::{self, Expr, Ident, VisitMut, VisitorMut};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::expr::{contains_aggregate, function_name, is_aggregate_name, ExprBinder};
use super::query::{QueryPlan, QueryPlanner};
use super::scope::{Scope, ScopeColumn};
use super::types::{coerce, common_type};
use crate::error::{Error, Result};
use crate::expr::{BinaryFunc, ColumnType, ScalarExpr, UnaryFunc};
use crate::plan::join::JoinPlan;
use crate::plan::reduce::{AggFunc, AggregateExpr, ReducePlan};
use crate::plan::{JoinKind, Plan};
use crate::value::{DataType, Value};

const TABLE: &str = "__subquery";

/// The table of the hidden columns of subqueries read after aggregation (in HAVING and the
/// select list of an aggregating SELECT): one-row relations cross-joined to the Reduce's
/// output. The binder reads them as [`AFTER_AGGREGATION_COLUMNS`] plus their scope position.
pub const AFTER_AGGREGATION: &str = "__aggregated_subquery";

/// Whether `e` reads a column of [`AFTER_AGGREGATION`], i.e. holds a rewritten subquery.
pub fn reads_after_aggregation(e: &Expr) -> bool {
    ast::visit_expressions(e, |x| match x {
        Expr::CompoundIdentifier(parts)
            if parts.first().is_some_and(|p| p.value == AFTER_AGGREGATION) =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Where the binder puts references to [`AFTER_AGGREGATION`] columns until the Reduce's
/// width is known (`QueryPlanner::plan_select` moves them after its columns).
pub const AFTER_AGGREGATION_COLUMNS: usize = 1 << 40;

/// Rewrites the subqueries of an aggregating SELECT's select list and HAVING into references
/// to relations joined to the Reduce's output: one row each when uncorrelated, one per key,
/// left-joined on group keys, when correlated. For `x IN (subquery)` the distinct values are
/// left-joined on `x` too, which is bound over the Reduce's output (an aggregate, say).
pub fn rewrite_after_aggregation(
    planner: &mut QueryPlanner<'_>,
    select: &mut ast::Select,
    scope: &Scope,
) -> Result<Vec<AfterAggregation>> {
    let mut extras = Vec::new();
    let mut counter = 0usize;
    let mut visitor = Rewriter {
        planner,
        outer: Outer { scope, plan: None },
        extras: &mut extras,
        counter: &mut counter,
        depth: 0,
        error: None,
        table: AFTER_AGGREGATION,
    };
    for item in select.projection.iter_mut() {
        if let ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } =
            item
        {
            let _ = e.visit(&mut visitor);
        }
    }
    if let Some(h) = select.having.as_mut() {
        let _ = h.visit(&mut visitor);
    }
    if let Some(e) = visitor.error.take() {
        return Err(e);
    }
    Ok(extras
        .into_iter()
        .map(|x| AfterAggregation {
            plan: x.plan,
            columns: hidden_columns(AFTER_AGGREGATION, x.columns),
            outer: x.outer,
            null_safe: x.null_safe,
        })
        .collect())
}

/// A subquery's relation to join to a Reduce's output ([`rewrite_after_aggregation`]).
pub struct AfterAggregation {
    pub plan: Plan,
    /// Its hidden columns, to append to the scope the items are bound in.
    pub columns: Vec<ScopeColumn>,
    /// For a correlated subquery, the outer sides of its equalities, which must be group keys
    /// (bound after aggregation), matched with its leading columns by a left join.
    pub outer: Vec<Expr>,
    /// Per `outer`: matched NULL to NULL too (see [`key_equalities`]).
    pub null_safe: Vec<bool>,
}

/// A relation produced from a subquery, to be joined to the FROM clause.
struct Extra {
    plan: Plan,
    /// The hidden columns it adds (names under `__subquery`, types), in order.
    columns: Vec<(String, DataType)>,
    /// For a decorrelated scalar or EXISTS subquery: the outer sides of its equalities, each
    /// matched with the column at the same position by a left join. Empty: a cross join.
    outer: Vec<Expr>,
    /// Per `outer`: matched NULL to NULL too (see [`key_equalities`]).
    null_safe: Vec<bool>,
}

impl Extra {
    fn single(plan: Plan, name: String, ty: DataType) -> Extra {
        Extra {
            plan,
            columns: vec![(name, ty)],
            outer: vec![],
            null_safe: vec![],
        }
    }
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
    let from = Outer {
        scope: &scope,
        plan: Some(&plan),
    };

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
                    let name = format!("s{counter}");
                    counter += 1;
                    match planner.plan_query(&q) {
                        Err(e) if refers_outside(&e) => {
                            // Correlated: join with the distinct (keys, value), on the
                            // equalities and on `expr = value`, all as conditions of WHERE.
                            let d = decorrelated(planner, &q, from, Use::In, e)?;
                            let mut columns = key_columns(&name, &d.types[..d.outer.len()]);
                            columns.push((name.clone(), d.types[d.outer.len()]));
                            semi_join(d, columns, &mut kept, &mut extras)?;
                        }
                        planned => {
                            let (sub, ty) = one_column(planned.map_err(correlated)?)?;
                            extras.push(Extra::single(sub.distinct(), name.clone(), ty));
                        }
                    }
                    kept.push(equals(*expr, reference(&name)));
                }
                // A correlated EXISTS here needs no left join: an inner join with the
                // distinct keys keeps exactly the outer rows that match.
                Expr::Exists {
                    subquery,
                    negated: false,
                } if matches!(planner.plan_query(&subquery), Err(e) if refers_outside(&e)) => {
                    let name = format!("s{counter}");
                    counter += 1;
                    let d = decorrelate(planner, &subquery, from, Use::Exists)?;
                    let columns = key_columns(&name, &d.types);
                    semi_join(d, columns, &mut kept, &mut extras)?;
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
        outer: from,
        extras: &mut extras,
        counter: &mut counter,
        depth: 0,
        error: None,
        table: TABLE,
    };
    if let Some(w) = select.selection.as_mut() {
        let _ = w.visit(&mut visitor);
    }
    if let Some(e) = visitor.error.take() {
        return Err(e);
    }
    // An aggregating SELECT's items (and HAVING) are read after the Reduce: their subqueries
    // are `rewrite_after_aggregation`'s.
    if !aggregating {
        for item in select.projection.iter_mut() {
            if let ast::SelectItem::UnnamedExpr(e)
            | ast::SelectItem::ExprWithAlias { expr: e, .. } = item
            {
                let _ = e.visit(&mut visitor);
            }
        }
    }
    if let Some(e) = visitor.error.take() {
        return Err(e);
    }

    let mut plan = plan;
    let mut scope = scope;
    for extra in extras {
        let outer = extra
            .outer
            .iter()
            .map(|o| ExprBinder::new(&scope).bind(o))
            .collect::<Result<Vec<_>>>()?;
        let types: Vec<DataType> = extra.columns.iter().map(|(_, ty)| *ty).collect();
        plan = join_subquery(plan, extra.plan, outer, &types, &extra.null_safe)?;
        scope.columns.extend(hidden_columns(TABLE, extra.columns));
    }
    Ok((plan, scope))
}

struct Rewriter<'p, 'a> {
    planner: &'p mut QueryPlanner<'a>,
    /// The FROM clause, which correlated subqueries refer to.
    outer: Outer<'p>,
    extras: &'p mut Vec<Extra>,
    counter: &'p mut usize,
    /// How many queries deep the traversal is: only depth 0 belongs to this SELECT.
    depth: usize,
    error: Option<Error>,
    /// The table the hidden columns are named under: [`TABLE`], or [`AFTER_AGGREGATION`],
    /// where only scalar and EXISTS subqueries are taken.
    table: &'static str,
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
            Expr::Exists { subquery, negated } => self.exists(subquery).map(|r| {
                if *negated {
                    Expr::UnaryOp {
                        op: ast::UnaryOperator::Not,
                        expr: Box::new(r),
                    }
                } else {
                    r
                }
            }),
            Expr::In {
                expr,
                target: ast::InTarget::Subquery(q),
                negated,
                ..
            } => self.membership(expr, q, *negated),
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
        let name = self.next_name();
        let (sub, ty) = match self.planner.plan_query(q) {
            Err(e) if refers_outside(&e) => {
                return self.correlated_scalar(q, name, e);
            }
            planned => one_column(planned.map_err(correlated)?)?,
        };
        let single = Plan::Reduce(ReducePlan {
            input: Box::new(sub),
            key: vec![],
            aggregates: vec![single(0, ty)],
            global: true,
        });
        self.extras.push(Extra::single(single, name.clone(), ty));
        Ok(reference_in(self.table, &name))
    }

    /// The value per key, left-joined on the equalities (see the module docs).
    fn correlated_scalar(&mut self, q: &ast::Query, name: String, e: Error) -> Result<Expr> {
        let d = decorrelated(self.planner, q, self.outer, Use::Scalar, e)?;
        let n = d.outer.len();
        let ty = d.types[n];
        let per_key = if d.one_per_key {
            d.plan
        } else {
            Plan::Reduce(ReducePlan {
                input: Box::new(d.plan),
                key: (0..n).map(ScalarExpr::Column).collect(),
                aggregates: vec![single(n, ty)],
                global: false,
            })
        };
        let mut columns = key_columns(&name, &d.types[..n]);
        columns.push((name.clone(), ty));
        self.extras.push(Extra {
            plan: per_key,
            columns,
            outer: d.outer,
            null_safe: d.null_safe,
        });
        let value = reference_in(self.table, &name);
        if d.count {
            // `count` of no rows is 0: no match after the left join must read as 0.
            return parse_expr(&format!("coalesce({value}, 0)"));
        }
        Ok(value)
    }

    fn exists(&mut self, q: &ast::Query) -> Result<Expr> {
        let name = self.next_name();
        let planned = match self.planner.plan_query(q) {
            Err(e) if refers_outside(&e) => {
                let d = decorrelated(self.planner, q, self.outer, Use::Exists, e)?;
                let mut columns = key_columns(&name, &d.types);
                let mut plan = d.plan.distinct();
                if d.null_safe[0] {
                    // A domain column may match as NULL: a marker column tells a match.
                    plan = plan.map(vec![ScalarExpr::Literal(Value::Bool(true))]);
                    columns.push((name.clone(), DataType::Bool));
                }
                let matched = Expr::IsNotNull(Box::new(reference_in(
                    self.table,
                    &columns[columns.len() - 1].0,
                )));
                self.extras.push(Extra {
                    plan,
                    columns,
                    outer: d.outer,
                    null_safe: d.null_safe,
                });
                return Ok(Expr::Nested(Box::new(matched)));
            }
            planned => planned.map_err(correlated)?,
        };
        let count = Plan::Reduce(ReducePlan {
            input: Box::new(planned.visible_plan()),
            key: vec![],
            aggregates: vec![AggregateExpr::new(
                AggFunc::CountStar,
                ScalarExpr::Literal(Value::Null),
                false,
                DataType::Null,
            )],
            global: true,
        });
        let test = count
            .map(vec![ScalarExpr::Column(0).call_binary(
                BinaryFunc::Gt,
                ScalarExpr::Literal(Value::Int(0)),
            )])
            .project(vec![1]);
        self.extras
            .push(Extra::single(test, name.clone(), DataType::Bool));
        Ok(reference_in(self.table, &name))
    }
}

impl Rewriter<'_, '_> {
    /// `x [NOT] IN (subquery)` as a value, with SQL's NULLs: over no rows it is false (true
    /// for NOT IN); otherwise NULL when `x` is NULL; true (false) when a row equals `x`; NULL
    /// when none does but one is NULL; else false (true). Two relations give what that needs:
    /// the subquery's row and non-NULL counts, and its distinct non-NULL values, both
    /// left-joined (per key, when the subquery is correlated).
    fn membership(&mut self, x: &Expr, q: &ast::Query, negated: bool) -> Result<Expr> {
        let (sub, ty, outer, null_safe) = match self.planner.plan_query(q) {
            Err(e) if refers_outside(&e) => {
                let d = decorrelated(self.planner, q, self.outer, Use::In, e)?;
                (d.plan, d.types, d.outer, d.null_safe)
            }
            planned => {
                let (sub, ty) = one_column(planned.map_err(correlated)?)?;
                (sub, vec![ty], vec![], vec![])
            }
        };
        let n = outer.len();
        let value_ty = ty[n];
        let key_types = &ty[..n];

        let counts_name = self.next_name();
        let counts = Plan::Reduce(ReducePlan {
            input: Box::new(sub.clone()),
            key: (0..n).map(ScalarExpr::Column).collect(),
            aggregates: vec![
                AggregateExpr::new(
                    AggFunc::CountStar,
                    ScalarExpr::Literal(Value::Null),
                    false,
                    DataType::Null,
                ),
                AggregateExpr::new(AggFunc::Count, ScalarExpr::Column(n), false, value_ty),
            ],
            global: n == 0,
        });
        let mut columns = key_columns(&counts_name, key_types);
        let (rows, non_null) = (format!("{counts_name}_n"), format!("{counts_name}_nn"));
        columns.push((rows.clone(), DataType::Int));
        columns.push((non_null.clone(), DataType::Int));
        self.extras.push(Extra {
            plan: counts,
            columns,
            outer: outer.clone(),
            null_safe: null_safe.clone(),
        });

        let values_name = self.next_name();
        let values = sub
            .filter(vec![ScalarExpr::Column(n).call_unary(UnaryFunc::IsNotNull)])
            .distinct();
        let mut columns = key_columns(&values_name, key_types);
        columns.push((values_name.clone(), value_ty));
        let mut on = outer;
        on.push(x.clone());
        let mut null_safe = null_safe;
        null_safe.push(false);
        self.extras.push(Extra {
            plan: values,
            columns,
            outer: on,
            null_safe,
        });

        let (empty, hit, miss) = if negated {
            ("TRUE", "FALSE", "TRUE")
        } else {
            ("FALSE", "TRUE", "FALSE")
        };
        let t = self.table;
        let sql = format!(
            "CASE WHEN coalesce({t}.{rows}, 0) = 0 THEN {empty} \
             WHEN ({x}) IS NULL THEN NULL \
             WHEN {t}.{values_name} IS NOT NULL THEN {hit} \
             WHEN {t}.{rows} > {t}.{non_null} THEN NULL \
             ELSE {miss} END"
        );
        parse_expr(&sql)
    }
}

/// Joins a subquery's relation to `plan`: when correlated, a left join on `outer[i]` (bound
/// over `plan`, with its type) equal to the relation's column `i` (of type `types[i]`), so
/// every row of `plan` stays; else a cross join (the relation has one row).
pub(super) fn join_subquery(
    plan: Plan,
    sub: Plan,
    outer: Vec<(ScalarExpr, ColumnType)>,
    types: &[DataType],
    null_safe: &[bool],
) -> Result<Plan> {
    let residual = key_equalities(outer, types, plan.arity(), null_safe)?;
    Ok(Plan::Join(JoinPlan {
        left: Box::new(plan),
        right: Box::new(sub),
        kind: if residual.is_empty() {
            JoinKind::Inner
        } else {
            JoinKind::Left
        },
        left_key: vec![],
        right_key: vec![],
        residual,
    }))
}

/// The conditions joining a decorrelated subquery's keys: `outer[i]` (bound over the left
/// side, with its type) equal to the right side's column `i` (of type `types[i]`), the right
/// side's columns starting at `left_arity`. Where `null_safe[i]` (a domain column), NULL
/// matches NULL: equal NULL tests, and equal values with NULL read as a fixed value, two
/// equalities that lowering keys the join on like any other.
pub(super) fn key_equalities(
    outer: Vec<(ScalarExpr, ColumnType)>,
    types: &[DataType],
    left_arity: usize,
    null_safe: &[bool],
) -> Result<Vec<ScalarExpr>> {
    let mut equalities = Vec::new();
    for (i, (o, ot)) in outer.into_iter().enumerate() {
        let it = types[i];
        let ty = common_type(ot.ty, it).ok_or_else(|| {
            Error::plan(format!(
                "a correlated subquery compares {} with {it}",
                ot.ty
            ))
        })?;
        let (o, c) = (
            coerce(o, ot.ty, ty),
            coerce(ScalarExpr::Column(left_arity + i), it, ty),
        );
        if null_safe.get(i).copied().unwrap_or(false) {
            equalities.push(
                o.clone()
                    .call_unary(UnaryFunc::IsNull)
                    .call_binary(BinaryFunc::Eq, c.clone().call_unary(UnaryFunc::IsNull)),
            );
            if let Some((v, _)) = stand_in(ty) {
                let or = |x: ScalarExpr| {
                    ScalarExpr::Variadic(
                        crate::expr::VariadicFunc::Coalesce,
                        vec![x, ScalarExpr::Literal(v.clone())],
                    )
                };
                equalities.push(or(o).call_binary(BinaryFunc::Eq, or(c)));
            }
        } else {
            equalities.push(o.call_binary(BinaryFunc::Eq, c));
        }
    }
    Ok(equalities)
}

/// A decorrelated subquery joined as a semi-join: its distinct rows, with the equalities to
/// the outer query kept as conditions of WHERE (`columns` names its columns).
fn semi_join(
    d: Decorrelated,
    columns: Vec<(String, DataType)>,
    kept: &mut Vec<Expr>,
    extras: &mut Vec<Extra>,
) -> Result<()> {
    for ((o, (name, ty)), safe) in d.outer.iter().zip(&columns).zip(&d.null_safe) {
        if !*safe {
            kept.push(equals(o.clone(), reference(name)));
            continue;
        }
        // NULL matches NULL (see `key_equalities`).
        let is_null = |e: Expr| Expr::Nested(Box::new(Expr::IsNull(Box::new(e))));
        kept.push(equals(is_null(o.clone()), is_null(reference(name))));
        if let Some((_, literal)) = stand_in(*ty) {
            let or = |e: Expr| parse_expr(&format!("coalesce({e}, {literal})"));
            kept.push(equals(or(o.clone())?, or(reference(name))?));
        }
    }
    extras.push(Extra {
        plan: d.plan.distinct(),
        columns,
        outer: vec![],
        null_safe: vec![],
    });
    Ok(())
}

/// A value of type `ty` that stands in for NULL when NULLs must match (and the same as SQL),
/// none for the type of a bare NULL, which is always NULL.
fn stand_in(ty: DataType) -> Option<(Value, &'static str)> {
    Some(match ty {
        DataType::Bool => (Value::Bool(false), "false"),
        DataType::Int => (Value::Int(0), "0"),
        DataType::Float => (Value::Float(0.0.into()), "CAST(0 AS double precision)"),
        DataType::Text => (Value::text(""), "''"),
        DataType::Timestamp => (Value::Timestamp(0), "TIMESTAMP '1970-01-01 00:00:00'"),
        DataType::Date => (Value::Date(0), "DATE '1970-01-01'"),
        DataType::Interval => (Value::Interval(0), "INTERVAL '0 seconds'"),
        DataType::Numeric => (
            Value::numeric(rust_decimal::Decimal::ZERO),
            "CAST(0 AS numeric)",
        ),
        DataType::Null => return None,
    })
}

fn equals(left: Expr, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(left),
        op: ast::BinaryOperator::Eq,
        right: Box::new(right),
    }
}

/// [`decorrelate`] after planning `q` failed with `e` on an outer name: its own "not
/// supported" errors stand, others report `e` as a correlation freshet cannot take.
fn decorrelated(
    planner: &mut QueryPlanner<'_>,
    q: &ast::Query,
    outer: Outer<'_>,
    usage: Use,
    e: Error,
) -> Result<Decorrelated> {
    decorrelate(planner, q, outer, usage).map_err(|d| match d {
        Error::Unsupported(_) => d,
        _ => correlated(e),
    })
}

/// `single(column)`: the one value of a group, an error when there are several.
fn single(column: usize, ty: DataType) -> AggregateExpr {
    AggregateExpr::new(AggFunc::Single, ScalarExpr::Column(column), false, ty)
}

/// Names of the hidden key columns of subquery `name`.
fn key_columns(name: &str, types: &[DataType]) -> Vec<(String, DataType)> {
    types
        .iter()
        .enumerate()
        .map(|(i, ty)| (format!("{name}_k{i}"), *ty))
        .collect()
}

/// How a correlated subquery is used, which decides what its rewritten form returns.
#[derive(Clone, Copy, PartialEq)]
enum Use {
    Exists,
    Scalar,
    In,
    /// A `LATERAL` subquery in FROM: all its columns, and its own ORDER BY … LIMIT per key.
    Lateral,
}

/// A correlated subquery made uncorrelated: `plan` returns the inner sides of the
/// correlating equalities first, then (unless for `EXISTS`) the subquery's one column.
struct Decorrelated {
    plan: Plan,
    types: Vec<DataType>,
    /// The planned columns (the keys', then the subquery's).
    columns: Vec<crate::schema::Column>,
    /// The outer sides of the equalities, as written (expressions over the outer FROM), then
    /// the outer columns read from the domain.
    outer: Vec<Expr>,
    /// Per `outer`: matched NULL to NULL (a domain column), not by `=`.
    null_safe: Vec<bool>,
    /// The value is a bare `count(…)`, which is 0 (not NULL) where no inner row matched.
    count: bool,
    /// Grouped by the keys alone: one row per key already.
    one_per_key: bool,
    /// For `LATERAL`: the subquery is bare aggregate calls without GROUP BY, one row for every
    /// outer row even where no inner row matched, so it must be left-joined; these of its
    /// columns are counts, 0 rather than NULL there.
    padded_counts: Option<Vec<usize>>,
}

/// Moves the correlating equalities `inner = outer` out of `q`'s WHERE (see the module docs).
fn decorrelate(
    planner: &mut QueryPlanner<'_>,
    q: &ast::Query,
    outer: Outer<'_>,
    usage: Use,
) -> Result<Decorrelated> {
    let Outer {
        scope: outer,
        plan: outer_plan,
    } = outer;
    let unsupported = |what: &str| Error::unsupported(format!("a correlated subquery {what}"));
    let ast::SetExpr::Select(select) = &*q.body else {
        return Err(unsupported("that is not a plain SELECT"));
    };
    if q.with.is_some()
        || (usage != Use::Lateral
            && (q.limit_clause.is_some() || (q.order_by.is_some() && usage != Use::Exists)))
    {
        return Err(unsupported("with WITH, LIMIT or ORDER BY"));
    }
    if usage == Use::Lateral && matches!(select.distinct, Some(ast::Distinct::On(_))) {
        return Err(unsupported("with DISTINCT ON"));
    }
    let (_, inner) = planner.plan_from(&select.from)?;
    let mut conjuncts = Vec::new();
    if let Some(w) = select.selection.clone() {
        split_and(w, &mut conjuncts);
    }
    let binds = |scope: &Scope, e: &Expr| ExprBinder::new(scope).bind(e).is_ok();
    let is_outer = |e: &Expr| !binds(&inner, e) && binds(outer, e);
    let (mut keys, mut outer_sides, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for c in conjuncts {
        // `inner = outer`, either way round.
        let pair = match &c {
            Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::Eq,
                right,
            } => [(left, right), (right, left)]
                .into_iter()
                .find(|(i, o)| binds(&inner, i) && is_outer(o)),
            _ => None,
        };
        match pair {
            Some((i, o)) => {
                keys.push((**i).clone());
                outer_sides.push((**o).clone());
            }
            None => rest.push(c),
        }
    }
    let mut s = (**select).clone();
    s.selection = rest.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: ast::BinaryOperator::And,
        right: Box::new(b),
    });
    // A LATERAL subquery's ORDER BY … LIMIT picks rows per outer row: per key (below).
    let limited = usage == Use::Lateral && q.limit_clause.is_some();
    let mut order_by = if limited { q.order_by.clone() } else { None };

    // Outer columns the subquery still reads (by `<`, under OR, in its select list …) come
    // from the domain: the distinct values they take in the outer query.
    let domain_name = format!("__domain{}", planner.bound_relations());
    let refs = replace_outer_references(&mut s, order_by.as_mut(), &inner, outer, &domain_name)?;
    let mut null_safe = vec![false; keys.len()];
    let domain = if refs.is_empty() {
        if keys.is_empty() {
            return Err(unsupported(
                "that refers to the outer query other than by equalities in its WHERE",
            ));
        }
        None
    } else {
        let Some(outer_plan) = outer_plan else {
            return Err(unsupported(
                "that refers to the outer query other than by equalities in its WHERE \
                 (after aggregation)",
            ));
        };
        let (plan, columns) = domain(outer_plan, outer, &outer_sides, &refs)?;
        // The inner rows meet the domain on the equalities, and the domain's own columns
        // become keys too, matched to the outer query's NULLs as well as its values.
        let mut conjuncts: Vec<Expr> = s.selection.take().into_iter().collect();
        for (i, k) in keys.iter().enumerate() {
            conjuncts.push(equals(
                k.clone(),
                domain_column(&domain_name, &format!("e{i}")),
            ));
        }
        s.selection = conjuncts.into_iter().reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: ast::BinaryOperator::And,
            right: Box::new(b),
        });
        s.from.push(from_relation(&domain_name)?);
        for j in 0..refs.len() {
            keys.push(domain_column(&domain_name, &format!("c{j}")));
            null_safe.push(true);
        }
        outer_sides.extend(refs);
        Some((plan, columns))
    };
    let mut projection: Vec<ast::SelectItem> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| ast::SelectItem::ExprWithAlias {
            expr: k.clone(),
            alias: Ident::new(format!("__key{i}")),
        })
        .collect();
    let items = std::mem::take(&mut s.projection);
    let aggregating = s.having.is_some()
        || items.iter().any(|i| match i {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                contains_aggregate(e)
            }
            _ => false,
        });
    let (mut count, mut one_per_key, mut padded_counts) = (false, false, None);
    match &mut s.group_by {
        ast::GroupByExpr::Expressions(groups, _) if !groups.is_empty() => {
            groups.extend(keys.iter().cloned());
        }
        ast::GroupByExpr::Expressions(groups, _) if aggregating => {
            // An aggregate of no rows is still a row (count 0, sum NULL); grouped by the
            // keys, an outer row with no inner rows finds none. Only a bare aggregate call
            // comes out the same after the left join (with count's 0 put back).
            let bare = match items.as_slice() {
                [ast::SelectItem::UnnamedExpr(Expr::Function(f))
                | ast::SelectItem::ExprWithAlias {
                    expr: Expr::Function(f),
                    ..
                }] if is_aggregate_name(&function_name(&f.name)) && f.over.is_none() => {
                    Some(function_name(&f.name))
                }
                _ => None,
            };
            match (usage, bare) {
                (Use::Scalar, Some(func)) if s.having.is_none() => {
                    count = func == "count";
                    one_per_key = true;
                }
                (Use::Lateral, _) if s.having.is_none() => {
                    let mut counts = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        match item {
                            ast::SelectItem::UnnamedExpr(Expr::Function(f))
                            | ast::SelectItem::ExprWithAlias {
                                expr: Expr::Function(f),
                                ..
                            } if is_aggregate_name(&function_name(&f.name)) && f.over.is_none() => {
                                if function_name(&f.name) == "count" {
                                    counts.push(i);
                                }
                            }
                            _ => {
                                return Err(unsupported(
                                    "that aggregates without GROUP BY, other than aggregate \
                                     calls as its columns",
                                ))
                            }
                        }
                    }
                    padded_counts = Some(counts);
                }
                _ => {
                    return Err(unsupported(
                        "that aggregates without GROUP BY, other than a single aggregate's value",
                    ))
                }
            }
            groups.extend(keys.iter().cloned());
        }
        _ => {}
    }
    match usage {
        // EXISTS: whether a row exists, whatever it holds.
        Use::Exists => {
            s.distinct = None;
        }
        Use::Lateral => projection.extend(items),
        Use::Scalar | Use::In => {
            if items.len() != 1
                || !matches!(
                    items[0],
                    ast::SelectItem::UnnamedExpr(_) | ast::SelectItem::ExprWithAlias { .. }
                )
            {
                return Err(Error::plan("subquery must return only one column"));
            }
            projection.extend(items);
        }
    }
    s.projection = projection;
    // The keys lead the select list: ORDER BY positions count past them.
    if let Some(ast::OrderBy {
        kind: ast::OrderByKind::Expressions(es),
        ..
    }) = order_by.as_mut()
    {
        for o in es.iter_mut() {
            if let Expr::Value(v) = &mut o.expr {
                if let ast::Value::Number(n, _) = &mut v.value {
                    if let Ok(i) = n.parse::<usize>() {
                        *n = (i + keys.len()).to_string();
                    }
                }
            }
        }
    }
    let query = ast::Query {
        body: Box::new(ast::SetExpr::Select(Box::new(s))),
        order_by,
        ..q.clone()
    };
    let bound = domain.is_some();
    if let Some((plan, columns)) = domain {
        planner.bind_relation(domain_name, plan, columns);
    }
    let planned = planner.plan_query(&query);
    if bound {
        planner.unbind_relation();
    }
    let mut planned = planned.map_err(|e| {
        if refers_outside(&e) {
            unsupported("that refers to the outer query other than in its own expressions")
        } else {
            e
        }
    })?;
    if limited {
        match &mut planned.plan {
            // The keys lead the select list, so they lead the top-k's input too.
            Plan::TopK(t) if t.group_key.is_empty() => t.group_key = (0..keys.len()).collect(),
            _ => return Err(unsupported("whose LIMIT could not be kept per outer row")),
        }
    }
    Ok(Decorrelated {
        types: planned.columns.iter().map(|c| c.ty).collect(),
        columns: planned.columns.clone(),
        plan: planned.visible_plan(),
        outer: outer_sides,
        null_safe,
        count,
        one_per_key,
        padded_counts,
    })
}

/// The query a subquery is correlated with: its FROM clause's columns and, where the
/// subquery may read them from a domain, its plan.
#[derive(Clone, Copy)]
pub(super) struct Outer<'a> {
    pub scope: &'a Scope,
    pub plan: Option<&'a Plan>,
}

/// Replaces the outer columns that `s` (and `order_by`) still refer to with the columns of
/// the domain relation `domain` (`c0`, `c1`, … in order of first use), and returns them as
/// written. Only `s`'s own expressions are searched, not subqueries nested in them.
fn replace_outer_references(
    s: &mut ast::Select,
    order_by: Option<&mut ast::OrderBy>,
    inner: &Scope,
    outer: &Scope,
    domain: &str,
) -> Result<Vec<Expr>> {
    let mut visitor = OuterReferences {
        inner,
        outer,
        domain,
        found: Vec::new(),
        depth: 0,
        error: None,
    };
    for item in s.projection.iter_mut() {
        if let ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } =
            item
        {
            let _ = e.visit(&mut visitor);
        }
    }
    if let Some(w) = s.selection.as_mut() {
        let _ = w.visit(&mut visitor);
    }
    if let Some(h) = s.having.as_mut() {
        let _ = h.visit(&mut visitor);
    }
    if let ast::GroupByExpr::Expressions(groups, _) = &mut s.group_by {
        for g in groups.iter_mut() {
            let _ = g.visit(&mut visitor);
        }
    }
    if let Some(ast::OrderBy {
        kind: ast::OrderByKind::Expressions(es),
        ..
    }) = order_by
    {
        for o in es.iter_mut() {
            let _ = o.expr.visit(&mut visitor);
        }
    }
    match visitor.error {
        Some(e) => Err(e),
        None => Ok(visitor.found),
    }
}

struct OuterReferences<'s> {
    inner: &'s Scope,
    outer: &'s Scope,
    domain: &'s str,
    /// The outer columns found, as written, in order.
    found: Vec<Expr>,
    depth: usize,
    error: Option<Error>,
}

impl OuterReferences<'_> {
    fn is_outer(&self, e: &Expr) -> bool {
        matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
            && ExprBinder::new(self.inner).bind(e).is_err()
            && ExprBinder::new(self.outer).bind(e).is_ok()
    }
}

impl VisitorMut for OuterReferences<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, _q: &mut ast::Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &mut ast::Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        if let Expr::Function(f) = e {
            // PostgreSQL evaluates an aggregate of outer columns alone in the outer query.
            if is_aggregate_name(&function_name(&f.name)) && f.over.is_none() {
                let (mut outer, mut other) = (false, false);
                let _ = ast::visit_expressions(&*f, |x| {
                    if matches!(x, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                        if self.is_outer(x) {
                            outer = true;
                        } else {
                            other = true;
                        }
                    }
                    ControlFlow::<()>::Continue(())
                });
                if outer && !other {
                    self.error = Some(Error::unsupported(
                        "an aggregate of outer columns alone inside a subquery",
                    ));
                    return ControlFlow::Break(());
                }
            }
        }
        if self.is_outer(e) {
            let at = match self.found.iter().position(|f| f == e) {
                Some(i) => i,
                None => {
                    self.found.push(e.clone());
                    self.found.len() - 1
                }
            };
            *e = domain_column(self.domain, &format!("c{at}"));
        }
        ControlFlow::Continue(())
    }
}

/// The domain of a correlated subquery: the distinct values of the outer expressions
/// `equalities` (named `e0`, …) and `references` (`c0`, …) over the outer query's FROM.
fn domain(
    plan: &Plan,
    scope: &Scope,
    equalities: &[Expr],
    references: &[Expr],
) -> Result<(Plan, Vec<crate::schema::Column>)> {
    let arity = plan.arity();
    let (mut exprs, mut columns) = (Vec::new(), Vec::new());
    let named = equalities
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("e{i}"), e))
        .chain(
            references
                .iter()
                .enumerate()
                .map(|(j, e)| (format!("c{j}"), e)),
        );
    for (name, e) in named {
        let (x, ty) = ExprBinder::new(scope).bind(e)?;
        exprs.push(x);
        columns.push(crate::schema::Column::new(name, ty.ty, ty.nullable));
    }
    let width = exprs.len();
    let plan = plan
        .clone()
        .map(exprs)
        .project((arity..arity + width).collect())
        .distinct();
    Ok((plan, columns))
}

fn domain_column(domain: &str, column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![Ident::new(domain), Ident::new(column)])
}

/// `FROM name` as a FROM item.
fn from_relation(name: &str) -> Result<ast::TableWithJoins> {
    let sql = format!("SELECT 1 FROM {name}");
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
        .map_err(|e| Error::plan(format!("rewriting a subquery: {e}")))?;
    match statements.into_iter().next() {
        Some(ast::Statement::Query(q)) => match *q.body {
            ast::SetExpr::Select(s) => s.from.into_iter().next(),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| Error::plan("rewriting a subquery: no FROM item"))
}

/// A `LATERAL` subquery made uncorrelated (see [`lateral`]).
pub struct Lateral {
    /// Its rows per key: the keys first, then its own columns.
    pub plan: Plan,
    /// The keys' types, and the subquery's own columns.
    pub key_types: Vec<DataType>,
    pub columns: Vec<crate::schema::Column>,
    /// Per key, the outer expression it must equal (over the FROM items before it).
    pub outer: Vec<Expr>,
    /// Per key: matched NULL to NULL too (see [`key_equalities`]).
    pub null_safe: Vec<bool>,
    /// See [`Decorrelated::padded_counts`].
    pub padded_counts: Option<Vec<usize>>,
}

/// A `LATERAL` subquery that refers to the FROM items before it (`outer`) by equalities in
/// its WHERE, made into a relation of its rows per key, to be joined on those equalities:
/// `FROM t, LATERAL (SELECT … FROM u WHERE u.k = t.k ORDER BY … LIMIT 3)` is the top 3 of
/// `u` per `k`, joined with `t` on `k`.
pub(super) fn lateral(
    planner: &mut QueryPlanner<'_>,
    q: &ast::Query,
    outer: Outer<'_>,
) -> Result<Lateral> {
    let d = decorrelate(planner, q, outer, Use::Lateral).map_err(correlated)?;
    let keys = d.outer.len();
    Ok(Lateral {
        plan: d.plan,
        key_types: d.types[..keys].to_vec(),
        columns: d.columns[keys..].to_vec(),
        outer: d.outer,
        null_safe: d.null_safe,
        padded_counts: d.padded_counts,
    })
}

/// An expression written as SQL (over hidden columns and expressions already parsed, which
/// print as SQL), parenthesised so that it stands where the subquery stood.
pub(super) fn parse_expr(sql: &str) -> Result<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map(|e| Expr::Nested(Box::new(e)))
        .map_err(|e| Error::plan(format!("rewriting a subquery: {e}")))
}

/// A subquery relation's columns in a scope: under `table`, hidden from unqualified names,
/// nullable (left joins pad them).
fn hidden_columns(table: &str, columns: Vec<(String, DataType)>) -> Vec<ScopeColumn> {
    columns
        .into_iter()
        .map(|(name, ty)| ScopeColumn {
            table: Some(table.into()),
            name,
            ty,
            nullable: true,
            hidden: true,
        })
        .collect()
}

/// A planned subquery that must produce one column.
fn one_column(planned: QueryPlan) -> Result<(Plan, DataType)> {
    if planned.columns.len() != 1 {
        return Err(Error::plan(format!(
            "subquery must return only one column, not {}",
            planned.columns.len()
        )));
    }
    let ty = planned.columns[0].ty;
    Ok((planned.visible_plan(), ty))
}

/// Whether planning failed on a name the subquery does not define: perhaps the outer query's.
pub(super) fn refers_outside(e: &Error) -> bool {
    matches!(e, Error::Plan(m) if m.contains("does not exist") || m.contains("missing FROM-clause"))
}

fn correlated(e: Error) -> Error {
    match e {
        Error::Plan(m) if refers_outside(&Error::Plan(m.clone())) => Error::Unsupported(format!(
            "{m} (a subquery may refer to the columns of the outer query's FROM clause; read \
             after aggregation, only by equalities `inner = outer` with group keys)"
        )),
        other => other,
    }
}

fn reference(name: &str) -> Expr {
    reference_in(TABLE, name)
}

fn reference_in(table: &str, name: &str) -> Expr {
    Expr::CompoundIdentifier(vec![Ident::new(table), Ident::new(name)])
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
