//! Planning queries: FROM, joins, WHERE, GROUP BY, HAVING, projection, DISTINCT, set
//! operations, WITH [RECURSIVE], ORDER BY and LIMIT.

use sqlparser::ast::{self, Expr, SetExpr, SetOperator, SetQuantifier, TableFactor};

use super::expr::{contains_aggregate, AggContext, ExprBinder};
use super::scope::Scope;
use super::types::{coerce, common_type};
use super::{ranking, table_func, temporal, window};
use crate::error::{Error, Result};
use crate::expr::{ColumnType, ScalarExpr};
use crate::plan::join::JoinPlan;
use crate::plan::reduce::ReducePlan;
use crate::plan::top_k::TopKPlan;
use crate::plan::{GlobalId, JoinKind, LocalId, OrderKey, Plan};
use crate::row::Row;
use crate::schema::{Column, Schema};
use crate::value::DataType;

/// What the planner needs from the catalog.
pub trait Resolver {
    /// The id and columns of a table, view or source called `name`.
    fn resolve(&self, name: &str) -> Option<(GlobalId, Schema)>;

    /// Why `name`, which `resolve` does not find, cannot be read (it names an index, say).
    fn unreadable(&self, _name: &str) -> Option<String> {
        None
    }
}

/// How an ad-hoc result is presented: sorted by `order` (over the plan's columns) and cut to
/// the first `visible` columns.
#[derive(Clone, Debug, Default)]
pub struct Finishing {
    pub order: Vec<OrderKey>,
    pub visible: usize,
}

/// A planned query: its plan (possibly with hidden ORDER BY columns after the visible ones),
/// its visible columns and its finishing.
#[derive(Clone, Debug)]
pub struct QueryPlan {
    pub plan: Plan,
    pub columns: Vec<Column>,
    pub finishing: Finishing,
}

impl QueryPlan {
    /// The plan without hidden columns (what a view maintains).
    pub fn visible_plan(&self) -> Plan {
        self.plan.clone().project((0..self.columns.len()).collect())
    }
}

#[derive(Clone)]
enum CteBinding {
    Inline(Plan, Vec<Column>),
    Recursive(LocalId, Vec<Column>),
}

/// Plans queries against a catalog.
pub struct QueryPlanner<'a> {
    resolver: &'a dyn Resolver,
    ctes: Vec<(String, CteBinding)>,
    next_local: LocalId,
    depth: usize,
}

const MAX_QUERY_DEPTH: usize = 32;

pub(super) fn scope_of(table: Option<&str>, cols: &[Column]) -> Scope {
    Scope::new(
        table,
        cols.iter().map(|c| (c.name.clone(), c.ty, c.nullable)),
    )
}

fn literal_usize(e: &Expr, what: &str) -> Result<usize> {
    match e {
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n
                .parse()
                .map_err(|_| Error::plan(format!("{what} must be a non-negative integer"))),
            _ => Err(Error::plan(format!(
                "{what} must be a non-negative integer"
            ))),
        },
        _ => Err(Error::unsupported(format!("a non-literal {what}"))),
    }
}

impl<'a> QueryPlanner<'a> {
    pub fn new(resolver: &'a dyn Resolver) -> Self {
        QueryPlanner {
            resolver,
            ctes: Vec::new(),
            next_local: 0,
            depth: 0,
        }
    }

    /// Makes `plan` readable in FROM as `name` (a relation built by the planner itself, such
    /// as a correlated subquery's domain) until [`QueryPlanner::unbind_relation`].
    pub(super) fn bind_relation(&mut self, name: String, plan: Plan, columns: Vec<Column>) {
        self.ctes.push((name, CteBinding::Inline(plan, columns)));
    }

    /// Forgets the relation bound last by [`QueryPlanner::bind_relation`].
    pub(super) fn unbind_relation(&mut self) {
        self.ctes.pop();
    }

    /// How many relations are bound by name (CTEs and the planner's own): a suffix that keeps
    /// the names of the planner's own relations apart.
    pub(super) fn bound_relations(&self) -> usize {
        self.ctes.len()
    }

    pub fn plan_query(&mut self, q: &ast::Query) -> Result<QueryPlan> {
        self.depth += 1;
        if self.depth > MAX_QUERY_DEPTH {
            return Err(Error::plan(format!(
                "query nested more than {MAX_QUERY_DEPTH} levels deep"
            )));
        }
        let saved = self.ctes.len();
        let r = self.plan_query_inner(q);
        self.ctes.truncate(saved);
        self.depth -= 1;
        r
    }

    fn plan_query_inner(&mut self, q: &ast::Query) -> Result<QueryPlan> {
        if q.fetch.is_some() || !q.locks.is_empty() || !q.pipe_operators.is_empty() {
            return Err(Error::unsupported("FETCH, FOR UPDATE and pipe operators"));
        }
        let mut recursive = Vec::new();
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let name = super::ident(&cte.alias.name);
                if with.recursive && references(&cte.query, &name) {
                    let (id, base, step, distinct, cols) = self.plan_recursive_cte(&name, cte)?;
                    self.ctes.push((name, CteBinding::Recursive(id, cols)));
                    recursive.push((id, base, step, distinct));
                } else {
                    let planned = self.plan_query(&cte.query)?;
                    let mut cols = planned.columns.clone();
                    rename(&mut cols, &cte.alias.columns)?;
                    self.ctes
                        .push((name, CteBinding::Inline(planned.visible_plan(), cols)));
                }
            }
        }

        let order_by: Vec<ast::OrderByExpr> = match &q.order_by {
            None => vec![],
            Some(ob) => match &ob.kind {
                ast::OrderByKind::Expressions(es) => es.clone(),
                ast::OrderByKind::All(_) => return Err(Error::unsupported("ORDER BY ALL")),
            },
        };
        let (limit, offset) = match &q.limit_clause {
            None => (None, 0),
            Some(ast::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                if !limit_by.is_empty() {
                    return Err(Error::unsupported("LIMIT BY"));
                }
                let limit = match limit {
                    Some(Expr::Value(v)) if matches!(v.value, ast::Value::Null) => None,
                    Some(l) => Some(literal_usize(l, "LIMIT")?),
                    None => None,
                };
                let offset = match offset {
                    Some(o) => literal_usize(&o.value, "OFFSET")?,
                    None => 0,
                };
                (limit, offset)
            }
            Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => (
                Some(literal_usize(limit, "LIMIT")?),
                literal_usize(offset, "OFFSET")?,
            ),
        };

        let (plan, columns, order) = match q.body.as_ref() {
            SetExpr::Select(select) => self.plan_select_or_sets(select, &order_by)?,
            other => {
                let (plan, columns) = self.plan_set_expr(other)?;
                let order = self.order_by_output(&order_by, &columns)?;
                (plan, columns, order)
            }
        };

        let mut plan = plan;
        if limit.is_some() || offset > 0 {
            plan = Plan::TopK(TopKPlan {
                input: Box::new(plan),
                group_key: vec![],
                order: order.clone(),
                limit,
                offset,
                rank: None,
            });
        }
        for (id, base, step, distinct) in recursive.into_iter().rev() {
            plan = Plan::LetRec {
                id,
                base: Box::new(base),
                step: Box::new(step),
                distinct,
                body: Box::new(plan),
            };
        }
        let visible = columns.len();
        Ok(QueryPlan {
            plan,
            columns,
            finishing: Finishing { order, visible },
        })
    }

    fn plan_recursive_cte(
        &mut self,
        name: &str,
        cte: &ast::Cte,
    ) -> Result<(LocalId, Plan, Plan, bool, Vec<Column>)> {
        let q = &cte.query;
        if q.order_by.is_some() || q.limit_clause.is_some() || q.with.is_some() {
            return Err(Error::unsupported(
                "ORDER BY, LIMIT or WITH inside a recursive CTE",
            ));
        }
        let SetExpr::SetOperation {
            left,
            op: SetOperator::Union,
            set_quantifier,
            right,
        } = q.body.as_ref()
        else {
            return Err(Error::plan(format!(
                "recursive query \"{name}\" must have the form base UNION [ALL] recursive-term"
            )));
        };
        if references_set(left, name) {
            return Err(Error::plan(format!("recursive reference to query \"{name}\" must not appear within its non-recursive term")));
        }
        let distinct = !matches!(set_quantifier, SetQuantifier::All);
        let (base, mut cols) = self.plan_set_expr(left)?;
        rename(&mut cols, &cte.alias.columns)?;
        for c in &mut cols {
            c.nullable = true;
        }
        let id = self.next_local;
        self.next_local += 1;
        self.ctes
            .push((name.to_string(), CteBinding::Recursive(id, cols.clone())));
        let step = self.plan_set_expr(right);
        self.ctes.pop();
        let (step, step_cols) = step?;
        let mut temporal_step = false;
        step.visit(&mut |p| temporal_step |= matches!(p, Plan::TemporalFilter(_)));
        if temporal_step {
            return Err(temporal::unsupported_now(
                "in the recursive term of WITH RECURSIVE",
            ));
        }
        if step_cols.len() != cols.len() {
            return Err(Error::plan(format!("recursive query \"{name}\": each side of UNION must have the same number of columns")));
        }
        let step = cast_columns(step, &step_cols, &cols)?;
        Ok((id, base, step, distinct, cols))
    }

    fn plan_set_expr(&mut self, e: &SetExpr) -> Result<(Plan, Vec<Column>)> {
        match e {
            SetExpr::Select(s) => {
                let (plan, cols, _) = self.plan_select_or_sets(s, &[])?;
                Ok((plan, cols))
            }
            SetExpr::Query(q) => {
                let planned = self.plan_query(q)?;
                Ok((planned.visible_plan(), planned.columns))
            }
            SetExpr::Values(values) => self.plan_values(values),
            SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let (l, lcols) = self.plan_set_expr(left)?;
                let (r, rcols) = self.plan_set_expr(right)?;
                if lcols.len() != rcols.len() {
                    return Err(Error::plan(format!(
                        "each {op} query must have the same number of columns"
                    )));
                }
                let mut cols = Vec::new();
                for (a, b) in lcols.iter().zip(&rcols) {
                    // Text meets only text (or NULL): PostgreSQL resolves no implicit cast.
                    let text_mismatch = (a.ty == DataType::Text) != (b.ty == DataType::Text)
                        && a.ty != DataType::Null
                        && b.ty != DataType::Null;
                    if text_mismatch {
                        return Err(Error::plan(format!(
                            "{op} types {} and {} cannot be matched",
                            a.ty, b.ty
                        )));
                    }
                    let ty = common_type(a.ty, b.ty).ok_or_else(|| {
                        Error::plan(format!(
                            "{op} types {} and {} cannot be matched",
                            a.ty, b.ty
                        ))
                    })?;
                    cols.push(Column::new(a.name.clone(), ty, a.nullable || b.nullable));
                }
                let l = cast_columns(l, &lcols, &cols)?;
                let r = cast_columns(r, &rcols, &cols)?;
                let all = match set_quantifier {
                    SetQuantifier::All => true,
                    SetQuantifier::Distinct | SetQuantifier::None => false,
                    other => return Err(Error::unsupported(format!("{op} {other}"))),
                };
                let plan = match (op, all) {
                    (SetOperator::Union, true) => l.union(r),
                    (SetOperator::Union, false) => l.union(r).distinct(),
                    (SetOperator::Except | SetOperator::Minus, true) => {
                        l.union(r.negate()).threshold()
                    }
                    (SetOperator::Except | SetOperator::Minus, false) => {
                        l.distinct().union(r.distinct().negate()).threshold()
                    }
                    (SetOperator::Intersect, true) => {
                        // min(l, r) = l - (l - r)+
                        let except = l.clone().union(r.negate()).threshold();
                        l.union(except.negate())
                    }
                    (SetOperator::Intersect, false) => {
                        let (l, r) = (l.distinct(), r.distinct());
                        let except = l.clone().union(r.negate()).threshold();
                        l.union(except.negate())
                    }
                };
                Ok((plan, cols))
            }
            other => Err(Error::unsupported(format!("query body {other}"))),
        }
    }

    fn plan_values(&mut self, values: &ast::Values) -> Result<(Plan, Vec<Column>)> {
        let empty = Scope::default();
        let mut rows = Vec::new();
        let mut types: Vec<ColumnType> = Vec::new();
        let mut bound_rows = Vec::new();
        for row in &values.rows {
            let mut bound = Vec::new();
            for e in &row.content {
                // No column defaults exist yet, so DEFAULT is NULL.
                if matches!(e, Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
                {
                    bound.push((
                        ScalarExpr::Literal(crate::value::Value::Null),
                        ColumnType {
                            ty: DataType::Null,
                            nullable: true,
                        },
                    ));
                    continue;
                }
                bound.push(ExprBinder::new(&empty).bind(e)?);
            }
            if types.is_empty() {
                types = bound.iter().map(|(_, t)| *t).collect();
            } else if bound.len() != types.len() {
                return Err(Error::plan("VALUES lists must all be the same length"));
            } else {
                for (t, (_, b)) in types.iter_mut().zip(&bound) {
                    t.ty = common_type(t.ty, b.ty).ok_or_else(|| {
                        Error::plan(format!(
                            "VALUES types {} and {} cannot be matched",
                            t.ty, b.ty
                        ))
                    })?;
                    t.nullable |= b.nullable;
                }
            }
            bound_rows.push(bound);
        }
        for bound in bound_rows {
            let mut vals = Vec::new();
            for ((e, t), want) in bound.into_iter().zip(&types) {
                let e = coerce(e, t.ty, want.ty);
                vals.push(e.eval(&[]).map_err(Error::Eval)?);
            }
            rows.push((Row::new(vals), 1));
        }
        let cols = types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Column::new(
                    format!("column{}", i + 1),
                    if t.ty == DataType::Null {
                        DataType::Text
                    } else {
                        t.ty
                    },
                    t.nullable,
                )
            })
            .collect::<Vec<_>>();
        Ok((
            Plan::Constant {
                rows,
                arity: cols.len(),
            },
            cols,
        ))
    }

    /// ORDER BY over a set operation's output: names or positions of output columns.
    fn order_by_output(
        &mut self,
        order_by: &[ast::OrderByExpr],
        cols: &[Column],
    ) -> Result<Vec<OrderKey>> {
        let scope = scope_of(None, cols);
        order_by
            .iter()
            .map(|o| {
                let column = match &o.expr {
                    Expr::Value(_) => literal_usize(&o.expr, "ORDER BY position")?
                        .checked_sub(1)
                        .filter(|p| *p < cols.len())
                        .ok_or_else(|| Error::plan("ORDER BY position is not in select list"))?,
                    Expr::Identifier(id) => scope.resolve(None, &super::ident(id))?,
                    other => {
                        return Err(Error::unsupported(format!(
                            "ORDER BY expression {other} on a set operation"
                        )))
                    }
                };
                Ok(order_key(column, o))
            })
            .collect()
    }

    /// Plans a SELECT, or with GROUPING SETS, ROLLUP or CUBE the union of one aggregation per
    /// grouping set (the grouping expressions' types, for their NULLs, from the FROM clause).
    fn plan_select_or_sets(
        &mut self,
        s: &ast::Select,
        order_by: &[ast::OrderByExpr],
    ) -> Result<(Plan, Vec<Column>, Vec<OrderKey>)> {
        if !super::grouping_sets::applies(s) {
            return self.plan_select(s, order_by);
        }
        // Window functions over the groups of all sets: the union becomes a derived table
        // under them, as for a plain GROUP BY.
        let item_exprs = s.projection.iter().filter_map(super::item_expr);
        if !s.named_window.is_empty()
            || !ranking::calls(item_exprs.chain(order_by.iter().map(|o| &o.expr))).is_empty()
        {
            let (outer, order) = super::grouped_windows::rewrite(s, order_by)?;
            return self.plan_select(&outer, &order);
        }
        let (_, scope) = self.plan_from(&s.from)?;
        let mut type_of = |e: &Expr| ExprBinder::new(&scope).bind(e).map(|(_, t)| t.ty);
        let union = super::grouping_sets::expand(s, &mut type_of)?;
        let (plan, columns) = self.plan_set_expr(&union)?;
        match self.order_by_output(order_by, &columns) {
            Ok(order) => Ok((plan, columns, order)),
            // ORDER BY an expression (`sum(x) DESC`): the union as a derived table, which
            // computes it as a column.
            Err(_) => {
                let (outer, order) = super::grouped_windows::rewrite(s, order_by)?;
                self.plan_select(&outer, &order)
            }
        }
    }

    /// Plans a SELECT. Returns the plan (visible columns first, then hidden ORDER BY columns),
    /// the visible columns, and the order keys.
    fn plan_select(
        &mut self,
        s: &ast::Select,
        order_by: &[ast::OrderByExpr],
    ) -> Result<(Plan, Vec<Column>, Vec<OrderKey>)> {
        if s.top.is_some()
            || s.into.is_some()
            || !s.lateral_views.is_empty()
            || s.prewhere.is_some()
            || !s.cluster_by.is_empty()
            || !s.distribute_by.is_empty()
            || !s.sort_by.is_empty()
            || s.qualify.is_some()
            || !s.connect_by.is_empty()
        {
            return Err(Error::unsupported("this SELECT clause"));
        }
        let group_exprs: Vec<Expr> = match &s.group_by {
            ast::GroupByExpr::Expressions(es, mods) => {
                if !mods.is_empty() {
                    return Err(Error::unsupported("GROUP BY modifiers (WITH ROLLUP)"));
                }
                es.clone()
            }
            ast::GroupByExpr::All(_) => return Err(Error::unsupported("GROUP BY ALL")),
        };
        let aggregating = !group_exprs.is_empty()
            || s.having.is_some()
            || s.projection.iter().any(|i| match i {
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => contains_aggregate(e),
                _ => false,
            })
            || order_by.iter().any(|o| contains_aggregate(&o.expr));
        // Window functions over groups: the aggregation becomes a derived table.
        let item_exprs = s.projection.iter().filter_map(super::item_expr);
        if aggregating
            && !ranking::calls(item_exprs.chain(order_by.iter().map(|o| &o.expr))).is_empty()
        {
            let (outer, order) = super::grouped_windows::rewrite(s, order_by)?;
            return self.plan_select(&outer, &order);
        }
        let (plan, scope) = self.plan_from(&s.from)?;

        // Subqueries in expressions become joins; `s` is the rewritten SELECT from here on.
        let mut rewritten = s.clone();
        ranking::inline_named_windows(&mut rewritten)?;
        let (plan, scope) =
            super::subquery::rewrite(self, &mut rewritten, plan, scope, aggregating)?;
        let after_aggregation = if aggregating {
            super::subquery::rewrite_after_aggregation(self, &mut rewritten, &scope)?
        } else {
            Vec::new()
        };
        let mut plan = plan;
        let s = &rewritten;

        // WHERE: ordinary conditions, then the temporal filter (conditions on now()) above them.
        if let Some(w) = &s.selection {
            if contains_aggregate(w) {
                return Err(Error::plan("aggregate functions are not allowed in WHERE"));
            }
            let split = temporal::split_where(w)?;
            if let Some(rest) = &split.rest {
                let pred = ExprBinder::new(&scope).bind_predicate(rest, "WHERE")?;
                plan = plan.filter(vec![pred]);
            }
            plan = temporal::plan_filter(plan, &scope, split.bounds)?;
        }
        for item in &s.projection {
            if let ast::SelectItem::UnnamedExpr(e)
            | ast::SelectItem::ExprWithAlias { expr: e, .. } = item
            {
                temporal::reject_now(e, "in the select list")?;
            }
        }
        for g in &group_exprs {
            temporal::reject_now(g, "in GROUP BY")?;
        }
        if let Some(h) = &s.having {
            temporal::reject_now(h, "in HAVING")?;
        }
        for o in order_by {
            temporal::reject_now(&o.expr, "in ORDER BY")?;
        }

        // Select items as (expression AST, output name); wildcards expand to columns.
        let mut items: Vec<(Option<Expr>, usize, String)> = Vec::new(); // (ast, scope col if wildcard, name)
        for item in &s.projection {
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    items.push((Some(e.clone()), 0, default_name(e)))
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    items.push((Some(expr.clone()), 0, super::ident(alias)))
                }
                ast::SelectItem::Wildcard(_) => {
                    for (i, c) in scope.columns.iter().enumerate() {
                        if !c.hidden {
                            items.push((None, i, c.name.clone()));
                        }
                    }
                }
                ast::SelectItem::QualifiedWildcard(kind, _) => {
                    let t = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(n) => {
                            super::object_name(n)
                        }
                        other => other.to_string().trim_end_matches(".*").to_string(),
                    };
                    let t = t.as_str();
                    if !scope.has_table(t) {
                        return Err(Error::plan(format!(
                            "missing FROM-clause entry for table \"{t}\""
                        )));
                    }
                    for (i, c) in scope.columns.iter().enumerate() {
                        if c.table.as_deref() == Some(t) {
                            items.push((None, i, c.name.clone()));
                        }
                    }
                }
                other => return Err(Error::unsupported(format!("select item {other}"))),
            }
        }

        // Aggregation: Reduce, then bind items over its output. Hopping windows in GROUP BY
        // expand the rows first (appending hidden columns after those the items see).
        let mut agg_ctx = AggContext::default();
        let mut out_scope_for_items = scope.clone();
        let first_after_aggregation = out_scope_for_items.len();
        for a in &after_aggregation {
            out_scope_for_items
                .columns
                .extend(a.columns.iter().cloned());
        }
        // Per subquery read after aggregation, its outer sides bound over the Reduce's output.
        let mut correlations: Vec<Vec<(ScalarExpr, ColumnType)>> = Vec::new();
        let mut scope = scope;
        let mut hops = window::Hops::default();
        // Ranking window functions: a ranking stage per call, whose rank column the items read.
        let window_calls = ranking::calls(
            items
                .iter()
                .filter_map(|(e, _, _)| e.as_ref())
                .chain(order_by.iter().map(|o| &o.expr)),
        );
        let mut windows = Vec::new();
        if !window_calls.is_empty() {
            if aggregating {
                return Err(Error::unsupported(
                    "window functions in a SELECT with GROUP BY or aggregates (aggregate in a subquery and rank over it)",
                ));
            }
            (plan, windows) = ranking::plan(plan, &mut scope, window_calls)?;
        }
        if aggregating {
            for g in &group_exprs {
                // GROUP BY position or output alias.
                let resolved = match g {
                    Expr::Value(_) => {
                        let p = literal_usize(g, "GROUP BY position")?;
                        let item =
                            p.checked_sub(1).and_then(|p| items.get(p)).ok_or_else(|| {
                                Error::plan(format!("GROUP BY position {p} is not in select list"))
                            })?;
                        item.0
                            .clone()
                            .ok_or_else(|| Error::plan("GROUP BY position refers to *"))?
                    }
                    Expr::Identifier(id) if scope.resolve(None, &super::ident(id)).is_err() => {
                        match items
                            .iter()
                            .find(|(e, _, n)| e.is_some() && *n == super::ident(id))
                        {
                            Some((Some(e), _, _)) => e.clone(),
                            _ => g.clone(),
                        }
                    }
                    _ => g.clone(),
                };
                if contains_aggregate(&resolved) {
                    return Err(Error::plan(
                        "aggregate functions are not allowed in GROUP BY",
                    ));
                }
                // A position or alias naming a select item that is a subquery (already
                // rewritten into a column read after aggregation): refused as `GROUP BY (…)` is.
                if super::subquery::reads_after_aggregation(&resolved) {
                    return Err(Error::unsupported("a subquery in GROUP BY"));
                }
                let windowed = hops.rewrite(&resolved, &mut plan, &mut scope)?;
                let (x, t) = ExprBinder::new(&scope).bind(&windowed)?;
                agg_ctx.group_asts.push(resolved);
                agg_ctx.group_exprs.push(x);
                agg_ctx.group_types.push(t);
            }
        }

        let mut exprs: Vec<(ScalarExpr, ColumnType)> = Vec::new();
        let mut having = None;
        let mut hidden: Vec<(ScalarExpr, ColumnType)> = Vec::new();
        let mut order_refs: Vec<(usize, &ast::OrderByExpr)> = Vec::new();
        let mut distinct_on: Vec<usize> = Vec::new();
        {
            let bind_item = |agg: &mut AggContext, e: &Expr| -> Result<(ScalarExpr, ColumnType)> {
                if aggregating {
                    ExprBinder::with_aggregates(&out_scope_for_items, agg).bind(e)
                } else {
                    ExprBinder::new(&out_scope_for_items)
                        .with_windows(&windows)
                        .bind(e)
                }
            };
            for (e, col, _) in &items {
                match e {
                    Some(e) => exprs.push(bind_item(&mut agg_ctx, e)?),
                    None if aggregating => {
                        // `*` over grouped columns: each must be a group key.
                        let k = agg_ctx.group_exprs.iter().position(|g| *g == ScalarExpr::Column(*col)).ok_or_else(|| {
                            Error::plan(format!(
                                "column \"{}\" must appear in the GROUP BY clause or be used in an aggregate function",
                                scope.columns[*col].name
                            ))
                        })?;
                        exprs.push((ScalarExpr::Column(k), agg_ctx.group_types[k]));
                    }
                    None => exprs.push((ScalarExpr::Column(*col), scope.column_type(*col))),
                }
            }
            for a in &after_aggregation {
                let bound = a
                    .outer
                    .iter()
                    .map(|o| bind_item(&mut agg_ctx, o))
                    .collect::<Result<_>>()?;
                correlations.push(bound);
            }
            if let Some(h) = &s.having {
                let (x, t) = bind_item(&mut agg_ctx, h)?;
                if !matches!(t.ty, DataType::Bool | DataType::Null) {
                    return Err(Error::plan(format!(
                        "argument of HAVING must be type boolean, not type {}",
                        t.ty
                    )));
                }
                having = Some(x);
            }
            // ORDER BY: output position, output name, an item's expression, or a hidden column.
            for o in order_by {
                match item_position(&o.expr, &items, "ORDER BY")? {
                    Some(p) => order_refs.push((p, o)),
                    None => {
                        hidden.push(bind_item(&mut agg_ctx, &o.expr)?);
                        order_refs.push((items.len() + hidden.len() - 1, o));
                    }
                }
            }
            // DISTINCT ON: the same kinds of references as ORDER BY.
            if let Some(ast::Distinct::On(on)) = &s.distinct {
                for e in on {
                    let pos = item_position(e, &items, "DISTINCT ON")?
                        // The same expression in ORDER BY, computed once.
                        .or_else(|| {
                            order_refs
                                .iter()
                                .find(|(_, o)| o.expr == *e)
                                .map(|(p, _)| *p)
                        });
                    match pos {
                        Some(p) => distinct_on.push(p),
                        None => {
                            hidden.push(bind_item(&mut agg_ctx, e)?);
                            distinct_on.push(items.len() + hidden.len() - 1);
                        }
                    }
                }
            }
        }

        if aggregating {
            let global = group_exprs.is_empty();
            plan = Plan::Reduce(ReducePlan {
                input: Box::new(plan),
                key: agg_ctx.group_exprs.clone(),
                aggregates: agg_ctx.aggregates.clone(),
                global,
            });
            // Subqueries of the items and HAVING: one row each beside every group, or (when
            // correlated) the row of the group's keys.
            let width = plan.arity();
            let place = |e: &ScalarExpr| {
                e.substitute(&|c| {
                    ScalarExpr::Column(
                        match c.checked_sub(super::subquery::AFTER_AGGREGATION_COLUMNS) {
                            Some(i) => width + i - first_after_aggregation,
                            None => c,
                        },
                    )
                })
            };
            for (a, outer) in after_aggregation.into_iter().zip(correlations) {
                let outer = outer.into_iter().map(|(o, t)| (place(&o), t)).collect();
                let types: Vec<DataType> = a.columns.iter().map(|c| c.ty).collect();
                plan = super::subquery::join_subquery(plan, a.plan, outer, &types, &a.null_safe)?;
            }
            for (x, _) in exprs.iter_mut().chain(hidden.iter_mut()) {
                *x = place(x);
            }
            having = having.map(|h| place(&h));
            if let Some(h) = having {
                plan = plan.filter(vec![h]);
            }
        }

        let distinct = match &s.distinct {
            None | Some(ast::Distinct::All) => false,
            Some(ast::Distinct::Distinct) => true,
            Some(ast::Distinct::On(_)) => false,
        };
        if distinct && !hidden.is_empty() {
            return Err(Error::plan(
                "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
            ));
        }

        // Projection: map the item expressions, then keep exactly them (and hidden ones).
        let input_arity = plan.arity();
        let all: Vec<(ScalarExpr, ColumnType)> = exprs
            .iter()
            .cloned()
            .chain(hidden.iter().cloned())
            .collect();
        let mut maps = Vec::new();
        let mut project = Vec::new();
        for (x, _) in &all {
            match x {
                ScalarExpr::Column(c) => project.push(*c),
                other => {
                    project.push(input_arity + maps.len());
                    maps.push(other.clone());
                }
            }
        }
        plan = plan.map(maps).project(project);
        if distinct {
            plan = plan.distinct();
        }
        if !distinct_on.is_empty() {
            plan = distinct_on_plan(plan, distinct_on, &order_refs)?;
        }
        let columns: Vec<Column> = items
            .iter()
            .zip(&exprs)
            .map(|((_, _, name), (_, t))| {
                Column::new(
                    name.clone(),
                    if t.ty == DataType::Null {
                        DataType::Text
                    } else {
                        t.ty
                    },
                    t.nullable,
                )
            })
            .collect();
        let order = order_refs
            .into_iter()
            .map(|(c, o)| order_key(c, o))
            .collect();
        Ok((plan, columns, order))
    }

    /// The FROM clause: its relations joined, and the columns they make visible.
    pub(super) fn plan_from(&mut self, from: &[ast::TableWithJoins]) -> Result<(Plan, Scope)> {
        Ok(if from.is_empty() {
            (
                Plan::Constant {
                    rows: vec![(Row::empty(), 1)],
                    arity: 0,
                },
                Scope::default(),
            )
        } else {
            let mut acc: Option<(Plan, Scope)> = None;
            for twj in from {
                if let (Some(_), Some(call)) = (&acc, table_func::call(&twj.relation)) {
                    // `FROM t, generate_series(1, t.n)`: a function in FROM reads the items
                    // before it, as if LATERAL.
                    let left = acc.take();
                    let (p, sc) = table_func::plan(&call, left)?;
                    acc = Some(self.apply_joins(p, sc, &twj.joins)?);
                    continue;
                }
                if let (Some((lp, ls)), Some((q, alias))) =
                    (&acc, self.correlated_lateral(&twj.relation)?)
                {
                    // `FROM t, LATERAL (…) s …`: an inner join with everything before it.
                    let (p, sc) =
                        self.join_lateral(lp.clone(), ls.clone(), q, alias, JoinKind::Inner, None)?;
                    acc = Some(self.apply_joins(p, sc, &twj.joins)?);
                    continue;
                }
                let (p, sc) = self.plan_table_with_joins(twj)?;
                if let Some((_, existing)) = &acc {
                    for t in sc.columns.iter().filter_map(|c| c.table.as_deref()) {
                        if existing.has_table(t) {
                            return Err(Error::plan(format!(
                                "table name \"{t}\" specified more than once"
                            )));
                        }
                    }
                }
                acc = Some(match acc {
                    None => (p, sc),
                    Some((lp, ls)) => (inner_join(lp, p, vec![]), ls.join(&sc)),
                });
            }
            acc.expect("non-empty FROM")
        })
    }

    fn plan_table_with_joins(&mut self, twj: &ast::TableWithJoins) -> Result<(Plan, Scope)> {
        let (plan, scope) = self.plan_table_factor(&twj.relation)?;
        self.apply_joins(plan, scope, &twj.joins)
    }

    /// `joins` applied in turn to the relation `plan` (whose columns `scope` names).
    fn apply_joins(
        &mut self,
        mut plan: Plan,
        mut scope: Scope,
        joins: &[ast::Join],
    ) -> Result<(Plan, Scope)> {
        for join in joins {
            use ast::JoinOperator as J;
            if let Some(call) = table_func::call(&join.relation) {
                let on = match &join.join_operator {
                    J::Join(c) | J::Inner(c) => match c {
                        ast::JoinConstraint::On(e) => Some(e),
                        ast::JoinConstraint::None => None,
                        _ => {
                            return Err(Error::unsupported(
                                "USING or NATURAL with a function in FROM",
                            ))
                        }
                    },
                    J::CrossJoin(_) => None,
                    _ => {
                        return Err(Error::unsupported(
                            "a function in FROM joined other than by CROSS or INNER JOIN",
                        ))
                    }
                };
                let (p, sc) = table_func::plan(&call, Some((plan, scope)))?;
                (plan, scope) = (p, sc);
                if let Some(e) = on {
                    plan = plan.filter(vec![join_condition(e, &scope)?]);
                }
                continue;
            }
            if let Some((q, alias)) = self.correlated_lateral(&join.relation)? {
                let (kind, on) =
                    match &join.join_operator {
                        J::Join(c) | J::Inner(c) => (JoinKind::Inner, Some(c)),
                        J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, Some(c)),
                        J::CrossJoin(_) => (JoinKind::Inner, None),
                        _ => return Err(Error::plan(
                            "the combining JOIN type must be INNER or LEFT for a LATERAL reference",
                        )),
                    };
                let on = match on {
                    None | Some(ast::JoinConstraint::None) => None,
                    Some(ast::JoinConstraint::On(e)) => Some(e),
                    Some(_) => {
                        return Err(Error::unsupported(
                            "USING or NATURAL with a correlated LATERAL subquery",
                        ))
                    }
                };
                (plan, scope) = self.join_lateral(plan, scope, q, alias, kind, on)?;
                continue;
            }
            let (rplan, rscope) = self.plan_table_factor(&join.relation)?;
            for t in rscope.columns.iter().filter_map(|c| c.table.as_deref()) {
                if scope.has_table(t) {
                    return Err(Error::plan(format!(
                        "table name \"{t}\" specified more than once"
                    )));
                }
            }
            let (kind, constraint) = match &join.join_operator {
                J::Join(c) | J::Inner(c) => (JoinKind::Inner, Some(c)),
                J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, Some(c)),
                J::Right(c) | J::RightOuter(c) => (JoinKind::Right, Some(c)),
                J::FullOuter(c) => (JoinKind::Full, Some(c)),
                J::CrossJoin(_) => (JoinKind::Inner, None),
                other => {
                    return Err(Error::unsupported(
                        format!("join {other:?}")
                            .split('(')
                            .next()
                            .unwrap_or("join")
                            .to_string(),
                    ))
                }
            };
            let joined_scope = match kind {
                JoinKind::Inner => scope.join(&rscope),
                JoinKind::Left => scope.join(&rscope.clone().nullable()),
                JoinKind::Right => scope.clone().nullable().join(&rscope),
                JoinKind::Full => scope.clone().nullable().join(&rscope.clone().nullable()),
            };
            let left_arity = scope.len();
            let mut residual = Vec::new();
            let mut using: Vec<(usize, usize)> = Vec::new();
            match constraint {
                None | Some(ast::JoinConstraint::None) => {
                    if kind != JoinKind::Inner {
                        return Err(Error::plan("outer joins need an ON or USING condition"));
                    }
                }
                Some(ast::JoinConstraint::On(e)) => {
                    residual.push(join_condition(e, &scope.join(&rscope))?);
                }
                Some(ast::JoinConstraint::Using(names)) => {
                    for n in names {
                        let n = super::object_name(n);
                        let l = scope.resolve(None, &n)?;
                        let r = rscope.resolve(None, &n)?;
                        residual.push(equality(&scope, l, &rscope, r, left_arity)?);
                        using.push((l, r));
                    }
                }
                Some(ast::JoinConstraint::Natural) => {
                    for (r, rc) in rscope.columns.iter().enumerate() {
                        if rc.hidden {
                            continue;
                        }
                        if let Ok(l) = scope.resolve(None, &rc.name) {
                            residual.push(equality(&scope, l, &rscope, r, left_arity)?);
                            using.push((l, r));
                        }
                    }
                }
                Some(other) => {
                    return Err(Error::unsupported(format!("join constraint {other:?}")))
                }
            }
            plan = Plan::Join(JoinPlan {
                left: Box::new(plan),
                right: Box::new(rplan),
                kind,
                left_key: vec![],
                right_key: vec![],
                residual,
            });
            scope = joined_scope;
            if !using.is_empty() {
                (plan, scope) = merge_using_columns(plan, scope, kind, left_arity, &using)?;
            }
        }
        Ok((plan, scope))
    }

    /// The subquery and alias of `tf` if it is a `LATERAL` subquery that refers to the FROM
    /// items before it (one that plans on its own is an ordinary derived table).
    fn correlated_lateral<'t>(
        &mut self,
        tf: &'t TableFactor,
    ) -> Result<Option<(&'t ast::Query, Option<&'t ast::TableAlias>)>> {
        let TableFactor::Derived {
            lateral: true,
            subquery,
            alias,
            ..
        } = tf
        else {
            return Ok(None);
        };
        match self.plan_query(subquery) {
            Ok(_) => Ok(None),
            Err(e) if super::subquery::refers_outside(&e) => Ok(Some((subquery, alias.as_ref()))),
            Err(e) => Err(e),
        }
    }

    /// `left` joined with a `LATERAL` subquery that refers to it by equalities `inner =
    /// outer` in its WHERE: the subquery's rows per key (`subquery::lateral`), joined on those
    /// equalities (and `on`). The keys are hidden columns; a subquery of bare aggregate calls
    /// is left-joined, its counts 0 where no inner row matched.
    fn join_lateral(
        &mut self,
        left: Plan,
        scope: Scope,
        q: &ast::Query,
        alias: Option<&ast::TableAlias>,
        kind: JoinKind,
        on: Option<&Expr>,
    ) -> Result<(Plan, Scope)> {
        if let Some(items) = row_map(q) {
            return self.lateral_map(left, scope, items, alias, kind, on);
        }
        let from = super::subquery::Outer {
            scope: &scope,
            plan: Some(&left),
        };
        let lateral = super::subquery::lateral(self, q, from)?;
        let mut cols = lateral.columns.clone();
        if let Some(a) = alias {
            rename(&mut cols, &a.columns)?;
        }
        let name = alias.map(|a| super::ident(&a.name));
        if let Some(n) = &name {
            if scope.has_table(n) {
                return Err(Error::plan(format!(
                    "table name \"{n}\" specified more than once"
                )));
            }
        }
        let keys = lateral.key_types.len();
        let hidden = format!("__lateral{}", scope.len());
        let mut rscope = Scope {
            columns: lateral
                .key_types
                .iter()
                .enumerate()
                .map(|(i, ty)| super::scope::ScopeColumn {
                    table: Some(hidden.clone()),
                    name: format!("k{i}"),
                    ty: *ty,
                    nullable: true,
                    hidden: true,
                })
                .collect(),
        };
        rscope = rscope.join(&scope_of(name.as_deref(), &cols));
        // A subquery of bare aggregates has one row per outer row, matched or not: a left
        // join (with counts made 0). An inner join's ON then only filters the joined rows.
        // A left join's ON then decides whether the outer row keeps that row or NULLs.
        let (kind, on, filter, nullify) = match (&lateral.padded_counts, kind) {
            (None, kind) => (kind, on, None, None),
            (Some(_), JoinKind::Inner) => (JoinKind::Left, None, on, None),
            (Some(_), JoinKind::Left) => (JoinKind::Left, None, None, on),
            (Some(_), kind) => (kind, on, None, None),
        };
        let left_arity = scope.len();
        let outer = lateral
            .outer
            .iter()
            .map(|o| ExprBinder::new(&scope).bind(o))
            .collect::<Result<Vec<_>>>()?;
        let mut residual = super::subquery::key_equalities(
            outer,
            &lateral.key_types,
            left_arity,
            &lateral.null_safe,
        )?;
        if let Some(e) = on {
            residual.push(join_condition(e, &scope.join(&rscope))?);
        }
        let joined_scope = match kind {
            JoinKind::Left => scope.join(&rscope.nullable()),
            _ => scope.join(&rscope),
        };
        let mut plan = Plan::Join(JoinPlan {
            left: Box::new(left),
            right: Box::new(lateral.plan),
            kind,
            left_key: vec![],
            right_key: vec![],
            residual,
        });
        if let Some(counts) = lateral.padded_counts.filter(|c| !c.is_empty()) {
            // Count columns: 0 where the left join found no inner row.
            let arity = joined_scope.len();
            let at = |c: usize| left_arity + keys + c;
            let maps = counts
                .iter()
                .map(|c| {
                    ScalarExpr::Variadic(
                        crate::expr::VariadicFunc::Coalesce,
                        vec![
                            ScalarExpr::Column(at(*c)),
                            ScalarExpr::Literal(crate::value::Value::Int(0)),
                        ],
                    )
                })
                .collect();
            let order = (0..arity)
                .map(|i| {
                    counts
                        .iter()
                        .position(|c| at(*c) == i)
                        .map_or(i, |n| arity + n)
                })
                .collect();
            plan = plan.map(maps).project(order);
        }
        if let Some(e) = filter {
            plan = plan.filter(vec![join_condition(e, &joined_scope)?]);
        }
        if let Some(e) = nullify {
            let on = join_condition(e, &joined_scope)?;
            plan = null_unless(plan, on, left_arity, joined_scope.len());
        }
        Ok((plan, joined_scope))
    }

    /// `left` with the columns of a `LATERAL (SELECT expressions)` without FROM: values
    /// computed from each row of `left`, under the subquery's alias.
    fn lateral_map(
        &mut self,
        left: Plan,
        scope: Scope,
        items: &[ast::SelectItem],
        alias: Option<&ast::TableAlias>,
        kind: JoinKind,
        on: Option<&Expr>,
    ) -> Result<(Plan, Scope)> {
        let on =
            on.filter(|e| !matches!(e, Expr::Value(v) if v.value == ast::Value::Boolean(true)));
        let (mut exprs, mut cols) = (Vec::new(), Vec::new());
        for item in items {
            let (e, name) = match item {
                ast::SelectItem::UnnamedExpr(e) => (e, default_name(e)),
                ast::SelectItem::ExprWithAlias { expr, alias } => (expr, super::ident(alias)),
                other => return Err(Error::unsupported(format!("{other} in a LATERAL subquery"))),
            };
            let (x, t) = ExprBinder::new(&scope).bind(e)?;
            exprs.push(x);
            cols.push(Column::new(name, t.ty, t.nullable));
        }
        if let Some(a) = alias {
            rename(&mut cols, &a.columns)?;
        }
        let name = alias.map(|a| super::ident(&a.name));
        let joined = scope.join(&scope_of(name.as_deref(), &cols));
        let left_arity = scope.len();
        let mut plan = left.map(exprs);
        match (on, kind) {
            (None, _) => {}
            // The subquery has one row per left row: where the condition does not hold, the
            // left join pads it with NULLs instead.
            (Some(e), JoinKind::Left) => {
                let on = join_condition(e, &joined)?;
                plan = null_unless(plan, on, left_arity, joined.len());
            }
            (Some(e), _) => plan = plan.filter(vec![join_condition(e, &joined)?]),
        }
        Ok((plan, joined))
    }

    fn plan_table_factor(&mut self, tf: &TableFactor) -> Result<(Plan, Scope)> {
        if let Some(call) = table_func::call(tf) {
            return table_func::plan(&call, None);
        }
        match tf {
            TableFactor::Table { name, alias, .. } => {
                let name_s = super::object_name(name);
                let binding_name = alias
                    .as_ref()
                    .map(|a| super::ident(&a.name))
                    .unwrap_or_else(|| name_s.clone());
                let (plan, mut cols) =
                    if let Some((_, b)) = self.ctes.iter().rev().find(|(n, _)| *n == name_s) {
                        match b {
                            CteBinding::Inline(p, cols) => (p.clone(), cols.clone()),
                            CteBinding::Recursive(id, cols) => (
                                Plan::LocalGet {
                                    id: *id,
                                    arity: cols.len(),
                                },
                                cols.clone(),
                            ),
                        }
                    } else {
                        let (id, schema) =
                            self.resolver.resolve(&name_s).ok_or_else(|| {
                                match self.resolver.unreadable(&name_s) {
                                    Some(why) => Error::plan(why),
                                    None => Error::UnknownItem {
                                        kind: "relation",
                                        name: name_s.clone(),
                                    },
                                }
                            })?;
                        (
                            Plan::Get {
                                id,
                                arity: schema.len(),
                            },
                            schema.columns,
                        )
                    };
                if let Some(a) = alias {
                    rename(&mut cols, &a.columns)?;
                }
                Ok((plan, scope_of(Some(&binding_name), &cols)))
            }
            // A LATERAL subquery that refers to nothing before it is an ordinary one (those
            // that do are joined by `join_lateral`).
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                let planned = self.plan_query(subquery)?;
                let mut cols = planned.columns.clone();
                if let Some(a) = alias {
                    rename(&mut cols, &a.columns)?;
                }
                let name = alias.as_ref().map(|a| super::ident(&a.name));
                Ok((planned.visible_plan(), scope_of(name.as_deref(), &cols)))
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                let (plan, mut scope) = self.plan_table_with_joins(table_with_joins)?;
                if let Some(a) = alias {
                    for c in &mut scope.columns {
                        c.table = Some(super::ident(&a.name));
                    }
                }
                Ok((plan, scope))
            }
            other => Err(Error::unsupported(format!("FROM item {other}"))),
        }
    }
}

/// A join's `ON` condition, bound over the joined columns.
fn join_condition(e: &Expr, joined: &Scope) -> Result<ScalarExpr> {
    temporal::reject_now(e, "in a JOIN condition")?;
    if contains_aggregate(e) {
        return Err(Error::plan(
            "aggregate functions are not allowed in JOIN conditions",
        ));
    }
    ExprBinder::new(joined).bind_predicate(e, "JOIN/ON")
}

/// The select list of `q` if it is a plain `SELECT expressions` without FROM (nor anything
/// else): over the FROM items before a LATERAL, a function of their row.
fn row_map(q: &ast::Query) -> Option<&[ast::SelectItem]> {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    let plain = s.from.is_empty()
        && s.selection.is_none()
        && s.having.is_none()
        && s.distinct.is_none()
        && matches!(&s.group_by, ast::GroupByExpr::Expressions(g, _) if g.is_empty())
        && q.with.is_none()
        && q.order_by.is_none()
        && q.limit_clause.is_none()
        && s.projection.iter().all(|i| match i {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                let mut windowed = false;
                super::expr::visit_functions(e, &mut |f| windowed |= f.over.is_some());
                !contains_aggregate(e) && !windowed
            }
            _ => false,
        });
    plain.then_some(s.projection.as_slice())
}

/// `USING`/`NATURAL` joins show each joined column once, first, as PostgreSQL does: the left
/// value for inner and left joins, the right one for right joins, whichever is not NULL for
/// full joins. The original columns stay reachable by qualified name.
fn merge_using_columns(
    plan: Plan,
    scope: Scope,
    kind: JoinKind,
    left_arity: usize,
    using: &[(usize, usize)],
) -> Result<(Plan, Scope)> {
    let arity = plan.arity();
    let mut maps = Vec::new();
    let mut merged_cols = Vec::new();
    for (l, r) in using {
        let (lc, rc) = (&scope.columns[*l], &scope.columns[left_arity + r]);
        let ty = common_type(lc.ty, rc.ty).unwrap_or(lc.ty);
        let (le, re) = (
            coerce(ScalarExpr::Column(*l), lc.ty, ty),
            coerce(ScalarExpr::Column(left_arity + r), rc.ty, ty),
        );
        let (expr, nullable) = match kind {
            JoinKind::Inner | JoinKind::Left => (le, lc.nullable),
            JoinKind::Right => (re, rc.nullable),
            JoinKind::Full => (
                ScalarExpr::Variadic(crate::expr::VariadicFunc::Coalesce, vec![le, re]),
                lc.nullable && rc.nullable,
            ),
        };
        maps.push(expr);
        merged_cols.push(super::scope::ScopeColumn {
            table: None,
            name: lc.name.clone(),
            ty,
            nullable,
            hidden: false,
        });
    }
    let is_using_left = |i: usize| using.iter().any(|(l, _)| *l == i);
    let is_using_right = |i: usize| using.iter().any(|(_, r)| left_arity + r == i);
    let mut order: Vec<usize> = (arity..arity + using.len()).collect();
    order.extend((0..arity).filter(|i| !is_using_left(*i) && !is_using_right(*i)));
    order.extend((0..arity).filter(|i| is_using_left(*i) || is_using_right(*i)));
    let mut columns = Vec::with_capacity(order.len());
    for &i in &order {
        if i >= arity {
            columns.push(merged_cols[i - arity].clone());
        } else {
            let mut c = scope.columns[i].clone();
            c.hidden |= is_using_left(i) || is_using_right(i);
            columns.push(c);
        }
    }
    Ok((plan.map(maps).project(order), Scope { columns }))
}

fn inner_join(l: Plan, r: Plan, residual: Vec<ScalarExpr>) -> Plan {
    Plan::Join(JoinPlan {
        left: Box::new(l),
        right: Box::new(r),
        kind: JoinKind::Inner,
        left_key: vec![],
        right_key: vec![],
        residual,
    })
}

fn equality(ls: &Scope, l: usize, rs: &Scope, r: usize, left_arity: usize) -> Result<ScalarExpr> {
    let (lt, rt) = (ls.columns[l].ty, rs.columns[r].ty);
    let ty = common_type(lt, rt)
        .ok_or_else(|| Error::plan(format!("JOIN/USING types {lt} and {rt} cannot be matched")))?;
    Ok(coerce(ScalarExpr::Column(l), lt, ty).call_binary(
        crate::expr::BinaryFunc::Eq,
        coerce(ScalarExpr::Column(left_arity + r), rt, ty),
    ))
}

pub(super) fn order_key(column: usize, o: &ast::OrderByExpr) -> OrderKey {
    let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
    // PostgreSQL: NULLs are larger than every value (last ascending, first descending).
    let nulls_first = o.options.nulls_first.unwrap_or(desc);
    OrderKey {
        column,
        desc,
        nulls_first,
    }
}

/// Which select item `e` names, as ORDER BY and DISTINCT ON refer to them: an output position
/// (from 1), an output name, or an item's own expression; `None` for anything else.
fn item_position(
    e: &Expr,
    items: &[(Option<Expr>, usize, String)],
    clause: &str,
) -> Result<Option<usize>> {
    let pos = match e {
        Expr::Value(_) => Some(
            literal_usize(e, &format!("{clause} position"))?
                .checked_sub(1)
                .filter(|p| *p < items.len())
                .ok_or_else(|| Error::plan(format!("{clause} position is not in select list")))?,
        ),
        Expr::Identifier(id) => items.iter().position(|(_, _, n)| *n == super::ident(id)),
        _ => None,
    };
    Ok(pos.or_else(|| items.iter().position(|(x, _, _)| x.as_ref() == Some(e))))
}

/// `SELECT DISTINCT ON (keys) …`: per distinct `keys`, the first row by the rest of ORDER BY
/// (whose leftmost expressions must be the keys, as in PostgreSQL), kept as a top-1 per group.
/// Without ORDER BY the row kept is the least by its values.
fn distinct_on_plan(
    plan: Plan,
    mut keys: Vec<usize>,
    order_refs: &[(usize, &ast::OrderByExpr)],
) -> Result<Plan> {
    keys.sort_unstable();
    keys.dedup();
    let mut rest = order_refs.iter();
    if !order_refs.is_empty() {
        let mut lead: Vec<usize> = Vec::new();
        while lead.len() < keys.len() {
            match rest.next() {
                Some((c, _)) if keys.contains(c) => {
                    if !lead.contains(c) {
                        lead.push(*c);
                    }
                }
                _ => {
                    return Err(Error::plan(
                        "SELECT DISTINCT ON expressions must match initial ORDER BY expressions",
                    ))
                }
            }
        }
    }
    Ok(Plan::TopK(TopKPlan {
        input: Box::new(plan),
        group_key: keys,
        order: rest.map(|(c, o)| order_key(*c, o)).collect(),
        limit: Some(1),
        offset: 0,
        rank: None,
    }))
}

pub(super) fn rename(cols: &mut [Column], names: &[ast::TableAliasColumnDef]) -> Result<()> {
    if names.len() > cols.len() {
        return Err(Error::plan(format!(
            "{} column names given for {} columns",
            names.len(),
            cols.len()
        )));
    }
    for (c, n) in cols.iter_mut().zip(names) {
        c.name = super::ident(&n.name);
    }
    Ok(())
}

/// Casts a plan's columns from `from` types to `to` types.
fn cast_columns(plan: Plan, from: &[Column], to: &[Column]) -> Result<Plan> {
    if from
        .iter()
        .zip(to)
        .all(|(a, b)| a.ty == b.ty || a.ty == DataType::Null)
    {
        return Ok(plan);
    }
    let arity = plan.arity();
    let exprs: Vec<ScalarExpr> = from
        .iter()
        .zip(to)
        .enumerate()
        .map(|(i, (a, b))| coerce(ScalarExpr::Column(i), a.ty, b.ty))
        .collect();
    Ok(plan
        .map(exprs)
        .project((arity..arity + from.len()).collect()))
}

pub(super) fn default_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(id) => super::ident(id),
        Expr::CompoundIdentifier(ids) => ids.last().map(super::ident).unwrap_or_default(),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .map(|p| p.to_string().to_ascii_lowercase())
            .unwrap_or_default(),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => default_name(expr),
        Expr::Case { .. } => "case".into(),
        _ => "?column?".into(),
    }
}

/// Whether query `q` mentions a table called `name`.
fn references(q: &ast::Query, name: &str) -> bool {
    let mut found = false;
    let _ = ast::visit_relations(q, |r| {
        if super::object_name(r) == name {
            found = true;
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    found
}

fn references_set(s: &SetExpr, name: &str) -> bool {
    let mut found = false;
    let _ = ast::visit_relations(s, |r| {
        if super::object_name(r) == name {
            found = true;
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    found
}

/// `plan` (rows of `arity` columns) with the columns from `left_arity` on NULL in rows where
/// `on` does not hold: a left join's padding, for a right side that has one row per left row.
fn null_unless(plan: Plan, on: ScalarExpr, left_arity: usize, arity: usize) -> Plan {
    let maps = (left_arity..arity)
        .map(|c| ScalarExpr::If {
            cond: Box::new(on.clone()),
            then: Box::new(ScalarExpr::Column(c)),
            els: Box::new(ScalarExpr::Literal(crate::value::Value::Null)),
        })
        .collect();
    let order = (0..left_arity)
        .chain(arity..2 * arity - left_arity)
        .collect();
    plan.map(maps).project(order)
}
