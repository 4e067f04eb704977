//! What UPDATE and DELETE change, and what `RETURNING` returns.
//!
//! A statement whose conditions and new values read only the target table's row is evaluated
//! here, over the table's rows read at the latest timestamp. One that reads more (a subquery,
//! UPDATE's `FROM`, DELETE's `USING`) is planned as a query, `SELECT DISTINCT target.*,
//! new values FROM target, from … WHERE …`, and read like any ad-hoc SELECT, so it gets every
//! join and (correlated) subquery the planner has. That query gives each matching row once
//! (a row joined to several `FROM` rows is updated once, as in PostgreSQL, which takes one of
//! them; freshet takes the least new values), so each is changed as many times as the table
//! holds it.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast;

use super::{expand, Coord, Engine};
use crate::command::Target;
use crate::error::{Error, Result};
use crate::expr::ScalarExpr;
use crate::plan::mfp::Mfp;
use crate::row::Row;
use crate::schema::{Column, Schema};
use crate::sql::expr::ExprBinder;
use crate::sql::scope::Scope;
use crate::sql::{QueryPlanner, WriteTarget};
use crate::value::Value;

/// One row an UPDATE or DELETE changes: the table's row, and (for UPDATE) what replaces it.
pub(super) struct Change {
    pub old: Row,
    pub new: Option<Row>,
}

/// The changes of a DELETE (`sets` empty) or UPDATE of `target`, one per copy of each row the
/// table holds, and the table's schema.
pub(super) fn changes(
    engine: &Engine,
    coord: &Coord,
    target: &WriteTarget,
    sets: &[(String, ast::Expr)],
    update: bool,
) -> Result<(Vec<Change>, Schema)> {
    let item = super::execute::table_item(coord, &target.table)?;
    let schema = item.schema.clone();
    let scope = table_scope(target.binding(), &schema);
    let columns = sets
        .iter()
        .map(|(c, _)| {
            schema.index_of(c).ok_or_else(|| {
                Error::plan(format!(
                    "column \"{c}\" of relation \"{}\" does not exist",
                    target.table
                ))
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    let reads_more = !target.from.is_empty()
        || target.selection.as_ref().is_some_and(has_subquery)
        || sets.iter().any(|(_, e)| has_subquery(e));
    let new_of = |old: &Row, values: &[Value]| {
        let mut row = old.unpack();
        for (i, v) in columns.iter().zip(values) {
            row[*i] = v.clone();
        }
        Row::new(row)
    };
    let mut out = Vec::new();
    if !reads_more {
        let predicate = match &target.selection {
            Some(e) => Some(ExprBinder::new(&scope).bind_predicate(e, "WHERE")?),
            None => None,
        };
        let sets = bind_sets(sets, &columns, &scope, &schema)?;
        for old in read_matching(engine, coord, item.id, &schema, predicate)? {
            let values = old.unpack();
            let new = if update {
                let vals = sets
                    .iter()
                    .map(|x| x.eval(&values))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Some(new_of(&old, &vals))
            } else {
                None
            };
            out.push(Change { old, new });
        }
        return Ok((out, schema));
    }

    // Planned: the distinct matching rows with their new values, changed as many times as
    // the table holds them.
    let rows = read_table(engine, coord, item.id)?;
    let matched = read_planned(engine, coord, target, sets, &columns, &schema)?;
    let arity = schema.len();
    let mut chosen: HashMap<Row, Option<Row>> = HashMap::new();
    for r in matched {
        let values = r.unpack();
        let old = Row::new(values[..arity].to_vec());
        // Rows come sorted, so the first new values of a row are its least.
        chosen
            .entry(old.clone())
            .or_insert_with(|| update.then(|| new_of(&old, &values[arity..])));
    }
    for old in rows {
        if let Some(new) = chosen.get(&old) {
            out.push(Change {
                new: new.clone(),
                old,
            });
        }
    }
    Ok((out, schema))
}

/// The table's rows (one per copy) at the latest timestamp, or those `predicate` holds for,
/// filtered by the workers (which seek to the values it pins the leading columns, or an
/// index's, to).
fn read_matching(
    engine: &Engine,
    coord: &Coord,
    id: u64,
    schema: &Schema,
    predicate: Option<ScalarExpr>,
) -> Result<Vec<Row>> {
    let arity = schema.len();
    let mut mfp = Mfp::identity(arity);
    if let Some(p) = predicate {
        mfp.then_filter(&[p]);
    }
    let types: Vec<_> = schema.columns.iter().map(|c| c.ty).collect();
    let target = super::execute::seek_target(coord, id, arity, &types, mfp);
    let pending = engine.inner.start_peek(target, coord.read_ts())?;
    expand(engine.inner.finish_peek(pending)?)
}

/// The table's rows (one per copy) at the latest timestamp.
fn read_table(engine: &Engine, coord: &Coord, id: u64) -> Result<Vec<Row>> {
    let pending = engine.inner.start_peek(Target::Item(id), coord.read_ts())?;
    expand(engine.inner.finish_peek(pending)?)
}

/// Runs `SELECT DISTINCT target.*, new values FROM target, from … WHERE …` and returns its
/// rows sorted, the new values cast to their columns' types.
fn read_planned(
    engine: &Engine,
    coord: &Coord,
    target: &WriteTarget,
    sets: &[(String, ast::Expr)],
    columns: &[usize],
    schema: &Schema,
) -> Result<Vec<Row>> {
    let quoted = |name: &str| ast::Ident::with_quote('"', name).to_string();
    let binding = quoted(target.binding());
    let mut sql = format!("SELECT DISTINCT {binding}.*");
    for (_, e) in sets {
        sql.push_str(&format!(", ({e})"));
    }
    sql.push_str(&format!(" FROM {} AS {binding}", quoted(&target.table)));
    for f in &target.from {
        sql.push_str(&format!(", {f}"));
    }
    if let Some(w) = &target.selection {
        sql.push_str(&format!(" WHERE {w}"));
    }
    let query = parse_query(&sql)?;
    let planned = QueryPlanner::new(&coord.catalog).plan_query(&query)?;
    let arity = schema.len();
    if planned.columns.len() != arity + sets.len() {
        return Err(Error::plan(
            "rewriting UPDATE or DELETE: unexpected columns",
        ));
    }
    let casts = columns
        .iter()
        .enumerate()
        .map(|(j, i)| {
            crate::sql::types::coerce(
                ScalarExpr::Column(arity + j),
                planned.columns[arity + j].ty,
                schema.columns[*i].ty,
            )
        })
        .collect();
    let width = arity + sets.len();
    let keep = (0..arity).chain(width..width + sets.len()).collect();
    let plan = crate::plan::lower::lower(planned.visible_plan().map(casts).project(keep));
    super::execute::check_plan(&plan)?;
    let mut deps = Vec::new();
    plan.dependencies(&mut deps);
    let pending = engine
        .inner
        .start_peek(Target::Plan { plan, deps }, coord.read_ts())?;
    let mut rows = expand(engine.inner.finish_peek(pending)?)?;
    rows.sort();
    Ok(rows)
}

fn parse_query(sql: &str) -> Result<ast::Query> {
    let statements =
        sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql)
            .map_err(|e| Error::plan(format!("rewriting UPDATE or DELETE: {e}")))?;
    match statements.into_iter().next() {
        Some(ast::Statement::Query(q)) => Ok(*q),
        _ => Err(Error::plan("rewriting UPDATE or DELETE: not a query")),
    }
}

fn bind_sets(
    sets: &[(String, ast::Expr)],
    columns: &[usize],
    scope: &Scope,
    schema: &Schema,
) -> Result<Vec<ScalarExpr>> {
    sets.iter()
        .zip(columns)
        .map(|((_, e), i)| {
            let (x, t) = ExprBinder::new(scope).bind(e)?;
            Ok(crate::sql::types::coerce(x, t.ty, schema.columns[*i].ty))
        })
        .collect()
}

/// The columns of a table under the name a statement gives it.
pub(super) fn table_scope(binding: &str, schema: &Schema) -> Scope {
    Scope::new(
        Some(binding),
        schema
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty, c.nullable)),
    )
}

fn has_subquery(e: &ast::Expr) -> bool {
    ast::visit_expressions(e, |x| match x {
        ast::Expr::Subquery(_)
        | ast::Expr::Exists { .. }
        | ast::Expr::In {
            target: ast::InTarget::Subquery(_),
            ..
        } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// [`returning`] of an UPDATE or DELETE of `target`, if it has the clause.
pub(super) fn returning_of(
    items: Option<&[ast::SelectItem]>,
    target: &WriteTarget,
    schema: &Schema,
    rows: &[Row],
) -> Result<Option<(Vec<Column>, Vec<Row>)>> {
    items
        .map(|items| {
            let from = !target.from.is_empty();
            returning(items, target.binding(), from, schema, rows)
        })
        .transpose()
}

/// `RETURNING items`, evaluated over `rows` of a table (named `binding` in the statement):
/// the columns and rows a write statement returns. Only the table's columns can be returned;
/// with `from` items (UPDATE's FROM, DELETE's USING), PostgreSQL's `*` would include theirs,
/// so it is refused there.
pub(super) fn returning(
    items: &[ast::SelectItem],
    binding: &str,
    from: bool,
    schema: &Schema,
    rows: &[Row],
) -> Result<(Vec<Column>, Vec<Row>)> {
    let scope = table_scope(binding, schema);
    let mut exprs = Vec::new();
    let mut columns = Vec::new();
    let all = |exprs: &mut Vec<ScalarExpr>, columns: &mut Vec<Column>| {
        for (i, c) in schema.columns.iter().enumerate() {
            exprs.push(ScalarExpr::Column(i));
            columns.push(c.clone());
        }
    };
    for item in items {
        match item {
            ast::SelectItem::Wildcard(_) if from => {
                return Err(Error::unsupported(format!(
                    "RETURNING * beside FROM or USING items (return {binding}.* or columns)"
                )))
            }
            ast::SelectItem::Wildcard(_) => all(&mut exprs, &mut columns),
            ast::SelectItem::QualifiedWildcard(
                ast::SelectItemQualifiedWildcardKind::ObjectName(n),
                _,
            ) if crate::sql::object_name(n) == binding => all(&mut exprs, &mut columns),
            ast::SelectItem::QualifiedWildcard(kind, _) => {
                return Err(Error::plan(format!(
                    "missing FROM-clause entry for table in RETURNING {kind}"
                )))
            }
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                if has_subquery(e) {
                    return Err(Error::unsupported("subqueries in RETURNING"));
                }
                let (x, t) = ExprBinder::new(&scope).bind(e)?;
                let name = match item {
                    ast::SelectItem::ExprWithAlias { alias, .. } => crate::sql::ident(alias),
                    _ => output_name(e),
                };
                exprs.push(x);
                columns.push(Column::new(name, t.ty, t.nullable));
            }
            other => {
                return Err(Error::unsupported(format!("RETURNING {other}")));
            }
        }
    }
    let out = rows
        .iter()
        .map(|r| {
            let values = r.unpack();
            exprs
                .iter()
                .map(|x| x.eval(&values))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(Row::new)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((columns, out))
}

/// PostgreSQL's name for an unnamed output column: a column's name, a function's, or
/// `?column?`.
fn output_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(i) => crate::sql::ident(i),
        ast::Expr::CompoundIdentifier(parts) => parts
            .last()
            .map(crate::sql::ident)
            .unwrap_or_else(|| "?column?".into()),
        ast::Expr::Function(f) => crate::sql::object_name(&f.name),
        ast::Expr::Cast { expr, .. } | ast::Expr::Nested(expr) => output_name(expr),
        _ => "?column?".into(),
    }
}
