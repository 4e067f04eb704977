//! Executing statements: DDL, writes, reads, EXPLAIN and SHOW.

use std::sync::atomic::Ordering;

use super::{expand, Coord, Engine};
use crate::catalog::CatalogItem;
use crate::command::{Command, Target};
use crate::error::{Error, Result};
use crate::plan::{Diff, Plan};
use crate::render::Time;
use crate::row::Row;
use crate::schema::{Column, Schema};
use crate::sql::expr::ExprBinder;
use crate::sql::scope::Scope;
use crate::sql::{self, ItemKind, QueryPlanner, Statement};
use crate::value::{DataType, Value};

/// The outcome of one statement.
#[derive(Clone, Debug, Default)]
pub struct StatementResult {
    /// `CREATE TABLE`, `INSERT 3`, `SELECT 2`, …
    pub tag: String,
    /// The timestamp a write was applied at or a read is exact at.
    pub timestamp: Option<Time>,
    pub columns: Option<Vec<Column>>,
    pub rows: Option<Vec<Row>>,
}

impl StatementResult {
    fn tag(tag: impl Into<String>) -> Self {
        StatementResult {
            tag: tag.into(),
            ..Default::default()
        }
    }

    fn written(tag: String, ts: Time) -> Self {
        StatementResult {
            tag,
            timestamp: Some(ts),
            ..Default::default()
        }
    }

    /// With the columns and rows of a `RETURNING` clause, if any.
    fn returning(mut self, returned: Option<(Vec<Column>, Vec<Row>)>) -> Self {
        if let Some((columns, rows)) = returned {
            self.columns = Some(columns);
            self.rows = Some(rows);
        }
        self
    }
}

/// The first failing statement of a request.
#[derive(Debug, thiserror::Error)]
#[error("statement {statement_index}: {error}")]
pub struct ExecuteError {
    pub statement_index: usize,
    pub error: Error,
    /// Results of the statements before the failing one (they stay applied).
    pub completed: Vec<StatementResult>,
}

pub fn execute(
    engine: &Engine,
    sql: &str,
) -> std::result::Result<Vec<StatementResult>, ExecuteError> {
    let mut results = Vec::new();
    for (i, stmt) in sql::split_statements(sql).iter().enumerate() {
        let r = sql::parse_statement(sql, stmt).and_then(|parsed| run(engine, parsed, stmt.text));
        match r {
            Ok(res) => results.push(res),
            Err(error) => {
                engine.inner.metrics.errors.fetch_add(1, Ordering::Relaxed);
                return Err(ExecuteError {
                    statement_index: i,
                    error,
                    completed: results,
                });
            }
        }
    }
    Ok(results)
}

fn run(engine: &Engine, stmt: Statement, text: &str) -> Result<StatementResult> {
    let inner = &engine.inner;
    match stmt {
        Statement::CreateTable {
            name,
            schema,
            primary_key,
            if_not_exists,
        } => {
            let mut coord = inner.lock()?;
            if coord.catalog.by_exact_name(&name).is_some() && if_not_exists {
                return Ok(StatementResult::tag("CREATE TABLE"));
            }
            let id = add_item(
                &mut coord,
                &name,
                ItemKind::Table,
                schema,
                text,
                None,
                primary_key,
            )?;
            inner.send(Command::CreateTable { id, name })?;
            inner.log_ddl(text)?;
            Ok(StatementResult::tag("CREATE TABLE"))
        }
        Statement::CreateView {
            name,
            query,
            columns,
            if_not_exists,
            or_replace,
        } => {
            let mut coord = inner.lock()?;
            if let Some(existing) = coord.catalog.by_exact_name(&name) {
                if if_not_exists {
                    return Ok(StatementResult::tag("CREATE VIEW"));
                }
                if !or_replace || existing.kind != ItemKind::View {
                    return Err(Error::AlreadyExists {
                        kind: existing.kind.name(),
                        name,
                    });
                }
            }
            let planned = QueryPlanner::new(&coord.catalog).plan_query(&query)?;
            let mut cols = planned.columns.clone();
            if columns.len() > cols.len() {
                return Err(Error::plan(format!(
                    "CREATE VIEW specifies {} column names, but the query has {} columns",
                    columns.len(),
                    cols.len()
                )));
            }
            for (c, n) in cols.iter_mut().zip(&columns) {
                c.name = n.clone();
            }
            check_unique_names(&cols)?;
            let plan = planned.visible_plan();
            check_plan(&plan)?;
            if or_replace {
                if let Some(existing) = coord.catalog.by_exact_name(&name).map(|i| i.id) {
                    let order = coord.catalog.drop_order(existing);
                    if order.len() > 1 {
                        return replace_view_with_dependents(
                            engine, &mut coord, existing, &order, plan, cols, text,
                        );
                    }
                    coord.catalog.remove(existing);
                    inner.send(Command::Drop {
                        ids: vec![existing],
                    })?;
                }
            }
            let uses = index_deps(&coord, &plan);
            let id = add_item(
                &mut coord,
                &name,
                ItemKind::View,
                Schema::new(cols),
                text,
                Some(plan.clone()),
                vec![],
            )?;
            let item = coord
                .catalog
                .get_mut(id)
                .ok_or_else(|| Error::Internal("view vanished".into()))?;
            for ix in uses {
                if !item.dependencies.contains(&ix) {
                    item.dependencies.push(ix);
                }
            }
            let deps = item.dependencies.clone();
            inner.send(Command::CreateView {
                id,
                name,
                plan,
                deps,
                index: None,
            })?;
            inner.log_ddl(text)?;
            Ok(StatementResult::tag("CREATE VIEW"))
        }
        Statement::Drop {
            kind,
            names,
            if_exists,
            cascade,
        } => {
            let mut coord = inner.lock()?;
            let mut ids = Vec::new();
            for name in &names {
                match coord.catalog.by_exact_name(name) {
                    None if if_exists => continue,
                    None => {
                        return Err(Error::UnknownItem {
                            kind: kind.name(),
                            name: name.clone(),
                        })
                    }
                    Some(item) if item.kind != kind => {
                        return Err(Error::plan(format!(
                            "\"{}\" is not {} {}",
                            item.name,
                            if kind == ItemKind::Index { "an" } else { "a" },
                            kind.name()
                        )))
                    }
                    Some(item) => {
                        let order = coord.catalog.drop_order(item.id);
                        // Its indexes go with it (as in PostgreSQL); anything else that reads
                        // it (views, sinks, or views that read those indexes) needs CASCADE.
                        let deps: Vec<String> = order[..order.len() - 1]
                            .iter()
                            .filter_map(|d| coord.catalog.get(*d))
                            .filter(|d| d.kind != ItemKind::Index)
                            .map(|d| d.name.clone())
                            .collect();
                        if !deps.is_empty() && !cascade {
                            return Err(Error::DependentObjects(format!(
                                "cannot drop {} \"{}\" because other objects depend on it ({}); use DROP … CASCADE",
                                kind.name(),
                                item.name,
                                deps.join(", ")
                            )));
                        }
                        for id in order {
                            if !ids.contains(&id) {
                                ids.push(id);
                            }
                        }
                    }
                }
            }
            for id in &ids {
                coord.catalog.remove(*id);
                coord.keys.remove(id);
                // Its stream ends by itself (the dataflow reports `closed`); forget it here.
                inner.hubs.lock().expect("lock").remove(id);
            }
            if !ids.is_empty() {
                inner.send(Command::Drop { ids })?;
                inner.log_ddl(text)?;
            }
            Ok(StatementResult::tag(format!(
                "DROP {}",
                kind.name().to_ascii_uppercase()
            )))
        }
        Statement::Insert {
            table,
            columns,
            source,
            on_conflict,
            returning,
        } => {
            let mut coord = inner.lock()?;
            let item = table_item(&coord, &table)?;
            let schema = item.schema.clone();
            let targets: Vec<usize> = if columns.is_empty() {
                (0..schema.len()).collect()
            } else {
                columns
                    .iter()
                    .map(|c| {
                        schema.index_of(c).ok_or_else(|| {
                            Error::plan(format!(
                                "column \"{c}\" of relation \"{table}\" does not exist"
                            ))
                        })
                    })
                    .collect::<Result<_>>()?
            };
            let planned = QueryPlanner::new(&coord.catalog).plan_query(&source)?;
            if planned.columns.len() != targets.len() {
                return Err(Error::plan(format!(
                    "INSERT has {} target columns but {} expressions",
                    targets.len(),
                    planned.columns.len()
                )));
            }
            let plan = crate::plan::lower::lower(planned.visible_plan());
            let source_rows = match plan {
                Plan::Constant { rows, .. } => rows,
                plan => {
                    check_plan(&plan)?;
                    let ts = coord.read_ts();
                    let mut deps = Vec::new();
                    plan.dependencies(&mut deps);
                    let pending = inner.start_peek(Target::Plan { plan, deps }, ts)?;
                    inner.finish_peek(pending)?
                }
            };
            let mut updates = Vec::with_capacity(source_rows.len());
            for (row, diff) in source_rows {
                let mut values = vec![Value::Null; schema.len()];
                for (v, t) in row.into_values().into_iter().zip(&targets) {
                    values[*t] = v;
                }
                updates.push((Row::new(values), diff));
            }
            if let Some(on) = &on_conflict {
                updates = resolve_conflicts(engine, &coord, &table, on, updates)?;
            }
            // Inserted and updated rows, as PostgreSQL counts them.
            let n: Diff = updates
                .iter()
                .filter(|(_, d)| *d > 0)
                .map(|(_, d)| *d)
                .sum();
            // RETURNING is evaluated before the write: an error in it applies nothing.
            let returned = match &returning {
                Some(items) => {
                    let written: Vec<Row> = updates
                        .iter()
                        .filter(|(_, d)| *d > 0)
                        .flat_map(|(r, d)| std::iter::repeat_n(r.clone(), *d as usize))
                        .collect();
                    Some(super::dml::returning(
                        items, &table, false, &schema, &written,
                    )?)
                }
                None => None,
            };
            let (ts, pending) = write_rows(engine, &mut coord, &table, updates)?;
            drop(coord);
            pending.wait()?;
            Ok(StatementResult::written(format!("INSERT {n}"), ts).returning(returned))
        }
        Statement::Delete { target, returning } => {
            let mut coord = inner.lock()?;
            let (changes, schema) = super::dml::changes(engine, &coord, &target, &[], false)?;
            let n = changes.len();
            let deleted: Vec<Row> = changes.into_iter().map(|c| c.old).collect();
            let returned =
                super::dml::returning_of(returning.as_deref(), &target, &schema, &deleted)?;
            let updates = deleted.into_iter().map(|r| (r, -1)).collect();
            let (ts, pending) = write_rows(engine, &mut coord, &target.table, updates)?;
            drop(coord);
            pending.wait()?;
            Ok(StatementResult::written(format!("DELETE {n}"), ts).returning(returned))
        }
        Statement::Update {
            target,
            assignments,
            returning,
        } => {
            let mut coord = inner.lock()?;
            let (changes, schema) =
                super::dml::changes(engine, &coord, &target, &assignments, true)?;
            let n = changes.len();
            let mut updates = Vec::with_capacity(2 * n);
            let mut new_rows = Vec::with_capacity(n);
            for c in changes {
                let new = c.new.unwrap_or_else(|| c.old.clone());
                updates.push((c.old, -1));
                new_rows.push(new);
            }
            let returned =
                super::dml::returning_of(returning.as_deref(), &target, &schema, &new_rows)?;
            updates.extend(new_rows.into_iter().map(|r| (r, 1)));
            let (ts, pending) = write_rows(engine, &mut coord, &target.table, updates)?;
            drop(coord);
            pending.wait()?;
            Ok(StatementResult::written(format!("UPDATE {n}"), ts).returning(returned))
        }
        Statement::Select { query, as_of } => {
            let (pending, planned, ts) = {
                let coord = inner.lock()?;
                let planned = QueryPlanner::new(&coord.catalog).plan_query(&query)?;
                check_plan(&planned.plan)?;
                let mut deps = Vec::new();
                planned.plan.dependencies(&mut deps);
                let ts = as_of.unwrap_or_else(|| inner.read_ts_for(&coord, &deps));
                coord.check_readable(ts)?;
                let target = match &planned.plan {
                    Plan::Get { id, .. } if planned.plan.arity() == planned.columns.len() => {
                        Target::Item(*id)
                    }
                    plan => fast_target(&coord, plan).unwrap_or_else(|| {
                        let mut deps = Vec::new();
                        plan.dependencies(&mut deps);
                        deps.extend(index_deps(&coord, plan));
                        Target::Plan {
                            plan: plan.clone(),
                            deps,
                        }
                    }),
                };
                (inner.start_peek(target, ts)?, planned, ts)
            };
            let mut rows = expand(inner.finish_peek(pending)?)?;
            inner.metrics.reads.fetch_add(1, Ordering::Relaxed);
            let order = &planned.finishing.order;
            if !order.is_empty() {
                crate::plan::top_k::sort_rows(&mut rows, order);
            }
            let visible = planned.finishing.visible;
            if rows.first().is_some_and(|r| r.len() > visible) {
                let cols: Vec<usize> = (0..visible).collect();
                rows = rows.into_iter().map(|r| r.project(&cols)).collect();
            }
            Ok(StatementResult {
                tag: format!("SELECT {}", rows.len()),
                timestamp: Some(ts),
                columns: Some(planned.columns),
                rows: Some(rows),
            })
        }
        Statement::Explain { query } => {
            let coord = inner.lock()?;
            let planned = QueryPlanner::new(&coord.catalog).plan_query(&query)?;
            let lowered = crate::plan::lower::lower(planned.plan);
            let names = |id: u64| {
                coord
                    .catalog
                    .get(id)
                    .map(|i| i.name.clone())
                    .unwrap_or_else(|| format!("#{id}"))
            };
            let mut text = lowered.explain(&names);
            let indexes = crate::plan::index::used_by(&lowered, &coord.catalog.indexes());
            if !indexes.is_empty() {
                let used: Vec<String> = indexes.into_iter().map(names).collect();
                text.push_str(&format!("Joins read indexes: {}\n", used.join(", ")));
            }
            Ok(StatementResult {
                tag: "EXPLAIN".into(),
                timestamp: None,
                columns: Some(vec![Column::new("plan", DataType::Text, false)]),
                rows: Some(vec![Row::new(vec![Value::text(text.trim_end())])]),
            })
        }
        Statement::CreateSource {
            spec,
            if_not_exists,
        } => {
            let mut coord = inner.lock()?;
            if coord.catalog.by_exact_name(&spec.name).is_some() && if_not_exists {
                return Ok(StatementResult::tag("CREATE SOURCE"));
            }
            let connectors = inner.config.connectors.as_ref().ok_or_else(|| {
                Error::unsupported("CREATE SOURCE in an engine started without connectors")
            })?;
            let mut spec = *spec;
            connectors.sources.prepare(&mut spec)?;
            sql::connector::resolve_event_time(&mut spec)?;
            check_unique_names(&spec.schema.columns)?;
            let id = add_item(
                &mut coord,
                &spec.name,
                ItemKind::Source,
                spec.schema.clone(),
                text,
                None,
                vec![],
            )?;
            if let Some(item) = coord.catalog.get_mut(id) {
                item.source = Some(spec.clone());
            }
            inner
                .shared
                .connector_state
                .sources
                .lock()
                .expect("lock")
                .insert(id, Default::default());
            // Logged before the workers start reading: their batches are logged after it, so
            // replay meets the source before its rows.
            if let Err(e) = inner.log_ddl(text) {
                coord.catalog.remove(id);
                return Err(e);
            }
            // While the data directory is replayed, the source takes its logged rows first
            // and reads on only once replay is done (`worker::source`).
            let replay = coord.recovering.is_some();
            // Where the readers stood travels with the command: workers of other processes
            // have no data directory to learn it from.
            let resume = replay
                .then(|| inner.shared.resume.lock().expect("lock").get(&id).cloned())
                .flatten();
            inner.send(Command::CreateSource {
                id,
                spec,
                replay,
                log: inner.durability.is_some(),
                resume,
            })?;
            Ok(StatementResult::tag("CREATE SOURCE"))
        }
        Statement::CreateSink {
            spec,
            if_not_exists,
        } => {
            let mut coord = inner.lock()?;
            if coord.catalog.by_exact_name(&spec.name).is_some() && if_not_exists {
                return Ok(StatementResult::tag("CREATE SINK"));
            }
            let connectors = inner.config.connectors.as_ref().ok_or_else(|| {
                Error::unsupported("CREATE SINK in an engine started without connectors")
            })?;
            let mut spec = *spec;
            let from = coord
                .catalog
                .by_exact_name(&spec.from)
                .filter(|i| i.kind != ItemKind::Sink)
                .ok_or_else(|| Error::UnknownItem {
                    kind: "relation",
                    name: spec.from.clone(),
                })?;
            let from_id = from.id;
            spec.schema = from.schema.clone();
            connectors.sinks.prepare(&spec)?;
            let as_of = inner.read_ts_for(&coord, &[from_id]);
            let id = add_item(
                &mut coord,
                &spec.name,
                ItemKind::Sink,
                spec.schema.clone(),
                text,
                None,
                vec![],
            )?;
            if let Some(item) = coord.catalog.get_mut(id) {
                item.sink = Some(spec.clone());
                item.dependencies = vec![from_id];
            }
            inner
                .shared
                .connector_state
                .sinks
                .lock()
                .expect("lock")
                .insert(id, Default::default());
            let sources = coord.catalog.sources_under(&[from_id], false);
            inner.send(Command::CreateSink {
                id,
                spec,
                from: from_id,
                as_of,
                sources,
            })?;
            inner.log_ddl(text)?;
            Ok(StatementResult::tag("CREATE SINK"))
        }
        Statement::CreateIndex {
            name,
            on,
            columns,
            if_not_exists,
        } => {
            let mut coord = inner.lock()?;
            let item = coord
                .catalog
                .by_exact_name(&on)
                .filter(|i| matches!(i.kind, ItemKind::Table | ItemKind::View | ItemKind::Source))
                .ok_or_else(|| Error::UnknownItem {
                    kind: "relation",
                    name: on.clone(),
                })?;
            let mut positions = Vec::new();
            for c in &columns {
                let i = item.schema.index_of(c).ok_or_else(|| {
                    Error::plan(format!(
                        "column \"{c}\" of relation \"{on}\" does not exist"
                    ))
                })?;
                positions.push(i);
            }
            let name = name.unwrap_or_else(|| format!("{on}_{}_idx", columns.join("_")));
            if coord.catalog.by_exact_name(&name).is_some() && if_not_exists {
                return Ok(StatementResult::tag("CREATE INDEX"));
            }
            let index = crate::plan::index::IndexOn {
                on: item.id,
                columns: positions,
            };
            let arity = item.schema.len();
            let mut schema: Vec<Column> = index
                .columns
                .iter()
                .map(|c| item.schema.columns[*c].clone())
                .collect();
            schema.extend(item.schema.columns.iter().cloned());
            let plan = index.plan(arity);
            let id = add_item(
                &mut coord,
                &name,
                ItemKind::Index,
                Schema::new(schema),
                text,
                Some(plan.clone()),
                vec![],
            )?;
            if let Some(item) = coord.catalog.get_mut(id) {
                item.index = Some(index.clone());
            }
            inner.send(Command::CreateView {
                id,
                name,
                plan,
                deps: vec![index.on],
                index: Some(index),
            })?;
            inner.log_ddl(text)?;
            Ok(StatementResult::tag("CREATE INDEX"))
        }
        Statement::Show(kind) => {
            let coord = inner.lock()?;
            let mut names: Vec<String> = coord
                .catalog
                .items()
                .filter(|i| i.kind == kind)
                .map(|i| i.name.clone())
                .collect();
            names.sort();
            let rows: Vec<Row> = names
                .into_iter()
                .map(|n| Row::new(vec![Value::text(&n)]))
                .collect();
            Ok(StatementResult {
                tag: format!("SHOW {}", rows.len()),
                timestamp: None,
                columns: Some(vec![Column::new("name", DataType::Text, false)]),
                rows: Some(rows),
            })
        }
    }
}

/// `CREATE OR REPLACE VIEW` of a view others read: the new query must produce the same
/// columns; the view keeps its id, and it and its dependents are rebuilt (dependents from their
/// stored plans, which refer to it by id), parents before children.
fn replace_view_with_dependents(
    engine: &Engine,
    coord: &mut Coord,
    id: crate::plan::GlobalId,
    order: &[crate::plan::GlobalId],
    plan: Plan,
    cols: Vec<Column>,
    text: &str,
) -> Result<StatementResult> {
    let mut old = coord
        .catalog
        .get(id)
        .cloned()
        .ok_or_else(|| Error::Internal("view vanished".into()))?;
    let same = old.schema.columns.len() == cols.len()
        && old
            .schema
            .columns
            .iter()
            .zip(&cols)
            .all(|(a, b)| a.name == b.name && a.ty == b.ty);
    if !same {
        return Err(Error::DependentObjects(format!(
            "cannot change the columns of view \"{}\" because other objects depend on it",
            old.name
        )));
    }
    let mut deps = Vec::new();
    plan.dependencies(&mut deps);
    for ix in index_deps(coord, &plan) {
        if !deps.contains(&ix) {
            deps.push(ix);
        }
    }
    if deps.iter().any(|d| order.contains(d)) {
        return Err(Error::plan(format!(
            "view \"{}\" cannot read a view that depends on it",
            old.name
        )));
    }
    engine.inner.send(Command::Drop {
        ids: order.to_vec(),
    })?;
    coord.catalog.remove(id);
    old.schema = Schema::new(cols);
    old.plan = Some(plan);
    old.dependencies = deps;
    old.definition = Some(text.to_string());
    coord.catalog.insert(old)?;
    for rebuilt in order.iter().rev() {
        let item = coord
            .catalog
            .get(*rebuilt)
            .ok_or_else(|| Error::Internal("dependent vanished".into()))?;
        engine.inner.send(Command::CreateView {
            id: item.id,
            name: item.name.clone(),
            plan: item
                .plan
                .clone()
                .ok_or_else(|| Error::Internal("view without a plan".into()))?,
            deps: item.dependencies.clone(),
            index: item.index.clone(),
        })?;
    }
    engine.inner.log_ddl(text)?;
    Ok(StatementResult::tag("CREATE VIEW"))
}

/// Adds a table or view to the catalog under a fresh id; its dependencies come from `plan`.
fn add_item(
    coord: &mut Coord,
    name: &str,
    kind: ItemKind,
    schema: Schema,
    text: &str,
    plan: Option<Plan>,
    primary_key: Vec<usize>,
) -> Result<crate::plan::GlobalId> {
    let mut dependencies = Vec::new();
    if let Some(p) = &plan {
        p.dependencies(&mut dependencies);
    }
    let id = coord.catalog.allocate_id();
    let created_at = coord.read_ts();
    coord.catalog.insert(CatalogItem {
        id,
        name: name.to_string(),
        kind,
        schema,
        definition: Some(text.to_string()),
        plan,
        dependencies,
        primary_key,
        created_at,
        index: None,
        source: None,
        sink: None,
    })?;
    Ok(id)
}

/// The indexes the joins of `plan` (a view's, a read's) would read (see `plan::index`).
pub(super) fn index_deps(coord: &Coord, plan: &Plan) -> Vec<crate::plan::GlobalId> {
    let indexes = coord.catalog.indexes();
    if indexes.is_empty() {
        return Vec::new();
    }
    let lowered = crate::plan::lower::lower(plan.clone());
    crate::plan::index::used_by(&lowered, &indexes)
}

fn check_unique_names(cols: &[Column]) -> Result<()> {
    for (i, c) in cols.iter().enumerate() {
        if cols[..i].iter().any(|o| o.name == c.name) {
            return Err(Error::plan(format!(
                "column \"{}\" specified more than once",
                c.name
            )));
        }
    }
    Ok(())
}

/// Rejects plans the renderer cannot build (checked before any worker sees them).
/// A read of `plan` that needs no dataflow: an item's rows through a map-filter-project whose
/// filters pin its leading columns (or an index's), read by the workers from the arrangement
/// after a seek. A point lookup `WHERE id = 5` on a table whose first column is `id`, or that
/// has an index on `id`, reads one row.
fn fast_target(coord: &Coord, plan: &Plan) -> Option<Target> {
    let Plan::Mfp { input, mfp } = crate::plan::lower::lower(plan.clone()) else {
        return None;
    };
    let Plan::Get { id, arity } = *input else {
        return None;
    };
    let item = coord.catalog.get(id)?;
    let types: Vec<DataType> = item.schema.columns.iter().map(|c| c.ty).collect();
    // Without a prefix the workers would walk the whole arrangement through a cursor over all
    // its batches, which measured slower on large tables than the transient dataflow (which
    // reads each batch apart) and no faster on small ones (benchmarks.md, "Point reads").
    match seek_target(coord, id, arity, &types, mfp) {
        target @ Target::Fast {
            prefix: Some(_), ..
        } => Some(target),
        _ => None,
    }
}

/// A read of item `id`'s rows (of `types`) through `mfp` by the workers, seeking where its
/// filters pin leading values: of the item's own arrangement, else of an index on it (whose
/// rows hold the indexed columns first, so the mfp is shifted past them); without either, a
/// read of every row (`prefix: None`).
pub(super) fn seek_target(
    coord: &Coord,
    id: crate::plan::GlobalId,
    arity: usize,
    types: &[DataType],
    mfp: crate::plan::mfp::Mfp,
) -> Target {
    let pinned = crate::plan::mfp::pinned_columns(mfp.predicates(), types);
    let prefix_of = |cols: &mut dyn Iterator<Item = usize>| {
        let values: Vec<Value> = cols.map_while(|c| pinned[c].clone()).collect();
        (!values.is_empty()).then(|| Row::new(values))
    };
    if let Some(prefix) = prefix_of(&mut (0..arity)) {
        return Target::Fast {
            id,
            arity,
            mfp,
            prefix: Some(prefix),
        };
    }
    // An index whose first column is pinned.
    for (ix, on) in coord.catalog.indexes() {
        if on.on != id {
            continue;
        }
        if let Some(prefix) = prefix_of(&mut on.columns.iter().copied()) {
            return Target::Fast {
                id: ix,
                arity: on.columns.len() + arity,
                mfp: mfp.shifted(on.columns.len()),
                prefix: Some(prefix),
            };
        }
    }
    Target::Fast {
        id,
        arity,
        mfp,
        prefix: None,
    }
}

pub(super) fn check_plan(plan: &Plan) -> Result<()> {
    let mut nested = false;
    plan.visit(&mut |p| {
        if let Plan::LetRec { base, step, .. } = p {
            let mut inner = false;
            for part in [base, step] {
                part.visit(&mut |q| inner |= matches!(q, Plan::LetRec { .. }));
            }
            nested |= inner;
        }
    });
    if nested {
        return Err(Error::unsupported(
            "WITH RECURSIVE inside a recursive query",
        ));
    }
    Ok(())
}

pub(super) fn table_item<'c>(coord: &'c Coord, name: &str) -> Result<&'c CatalogItem> {
    match coord.catalog.by_name(name) {
        Some(i) if i.kind == ItemKind::Table => Ok(i),
        Some(i) => Err(Error::plan(format!(
            "cannot change \"{}\": it is a {}, not a table",
            i.name,
            i.kind.name()
        ))),
        None => Err(Error::UnknownItem {
            kind: "table",
            name: name.to_string(),
        }),
    }
}

/// Validates and applies updates to a table at a fresh timestamp. Nothing is applied if any
/// row is invalid or a delete does not match an existing row.
pub(crate) fn write_rows(
    engine: &Engine,
    coord: &mut Coord,
    table: &str,
    updates: Vec<(Row, Diff)>,
) -> Result<(Time, super::durable::Pending)> {
    let item = table_item(coord, table)?.clone();
    let id = item.id;
    let schema = item.schema.clone();
    // Checked in place: a write's rows are not copied on their way to the workers.
    let mut checked = updates;
    for (i, (row, _)) in checked.iter_mut().enumerate() {
        let given = std::mem::take(row);
        *row = conform(&schema, given)
            .map_err(|e| Error::InvalidData(format!("row {}: {e}", i + 1)))?;
    }
    if checked.iter().any(|(_, d)| *d < 0) {
        // Deletes must match rows that exist (with enough multiplicity): the workers seek to
        // each row a write takes away on net.
        let mut net: std::collections::HashMap<&Row, Diff> = std::collections::HashMap::new();
        for (r, d) in &checked {
            *net.entry(r).or_default() += d;
        }
        let mut rows: Vec<Row> = net
            .iter()
            .filter(|(_, d)| **d < 0)
            .map(|(r, _)| (*r).clone())
            .collect();
        rows.sort();
        let pending = engine
            .inner
            .start_peek(Target::Rows { id, rows }, coord.read_ts())?;
        let mut current: std::collections::HashMap<Row, Diff> = std::collections::HashMap::new();
        for (r, d) in engine.inner.finish_peek(pending)? {
            *current.entry(r).or_default() += d;
        }
        for (r, d) in net {
            if current.get(r).copied().unwrap_or(0) + d < 0 {
                return Err(Error::InvalidData(format!(
                    "cannot delete a row that does not exist: {}",
                    r.to_json()
                )));
            }
        }
    }
    if !item.primary_key.is_empty() {
        let pk = item.primary_key.clone();
        check_keys(coord, id, &pk, &schema, &checked)?;
    }
    if let Some(d) = &engine.inner.durability {
        d.check_writable()?;
    }
    let ts = coord.write_ts();
    let n = checked.len() as u64;
    let pending = engine.inner.write(ts, id, checked)?;
    engine
        .inner
        .metrics
        .rows_written
        .fetch_add(n, Ordering::Relaxed);
    engine.inner.metrics.writes.fetch_add(1, Ordering::Relaxed);
    Ok((ts, pending))
}

/// `SET col = expr, …` bound over `scope`: each target column's position and its value,
/// cast to the column's type.
fn bind_assignments(
    sets: &[(String, sqlparser::ast::Expr)],
    scope: &Scope,
    schema: &Schema,
    table: &str,
) -> Result<Vec<(usize, crate::expr::ScalarExpr)>> {
    sets.iter()
        .map(|(col, e)| {
            let i = schema.index_of(col).ok_or_else(|| {
                Error::plan(format!(
                    "column \"{col}\" of relation \"{table}\" does not exist"
                ))
            })?;
            let (x, t) = ExprBinder::new(scope).bind(e)?;
            Ok((i, crate::sql::types::coerce(x, t.ty, schema.columns[i].ty)))
        })
        .collect()
}

/// `INSERT … ON CONFLICT`: the inserts of `updates` whose primary key is free (neither in
/// the table nor taken by an earlier row of the statement), and for the others nothing
/// (`DO NOTHING`) or the table's row replaced by its update (`DO UPDATE`), as PostgreSQL
/// does. Without a primary key nothing conflicts; a target must name the primary key's
/// columns. The table's rows are read only when some key is taken and `DO UPDATE` needs them.
fn resolve_conflicts(
    engine: &Engine,
    coord: &Coord,
    table: &str,
    on: &crate::sql::OnConflict,
    updates: Vec<(Row, Diff)>,
) -> Result<Vec<(Row, Diff)>> {
    let item = table_item(coord, table)?;
    let (pk, schema) = (&item.primary_key, &item.schema);
    let mut named = Vec::new();
    for c in &on.target {
        named.push(schema.index_of(c).ok_or_else(|| {
            Error::plan(format!(
                "column \"{c}\" of relation \"{table}\" does not exist"
            ))
        })?);
    }
    named.sort_unstable();
    let mut key_cols = pk.clone();
    key_cols.sort_unstable();
    if (!on.target.is_empty() || on.update.is_some()) && named != key_cols {
        return Err(Error::plan(
            "there is no unique or exclusion constraint matching the ON CONFLICT specification",
        ));
    }
    if pk.is_empty() {
        return Ok(updates);
    }
    let mut rows = Vec::with_capacity(updates.len());
    for (i, (row, diff)) in updates.into_iter().enumerate() {
        // Conformed first, so that keys compare as the table stores them.
        let row =
            conform(schema, row).map_err(|e| Error::InvalidData(format!("row {}: {e}", i + 1)))?;
        rows.extend(std::iter::repeat_n(row, diff.max(0) as usize));
    }
    let taken = |key: &Row| {
        coord
            .keys
            .get(&item.id)
            .is_some_and(|t| t.get(key).copied().unwrap_or(0) > 0)
    };
    // DO UPDATE: the assignments and condition over (table row, excluded row), and the table's
    // rows of the taken keys.
    let mut update = None;
    if let Some(crate::sql::ConflictUpdate {
        sets,
        condition: selection,
    }) = &on.update
    {
        let columns = || {
            schema
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.ty, c.nullable))
        };
        let scope =
            Scope::new(Some(table), columns()).join(&Scope::new(Some("excluded"), columns()));
        let bound = bind_assignments(sets, &scope, schema, table)?;
        let condition = match selection {
            Some(e) => Some(ExprBinder::new(&scope).bind_predicate(e, "WHERE")?),
            None => None,
        };
        let mut existing = std::collections::HashMap::new();
        if rows.iter().any(|r| taken(&r.project(pk))) {
            let pending = engine
                .inner
                .start_peek(Target::Item(item.id), coord.read_ts())?;
            for r in expand(engine.inner.finish_peek(pending)?)? {
                existing.insert(r.project(pk), r);
            }
        }
        update = Some((bound, condition, existing));
    }
    let mut touched = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let key = row.project(pk);
        let in_table = taken(&key);
        let first = touched.insert(key.clone());
        match &update {
            _ if !in_table && first => out.push((row, 1)),
            None => {}
            Some(_) if !first => {
                return Err(Error::InvalidData(
                    "ON CONFLICT DO UPDATE command cannot affect row a second time".into(),
                ))
            }
            Some((sets, condition, existing)) => {
                let Some(old) = existing.get(&key) else {
                    continue;
                };
                let mut both = old.unpack();
                both.extend(row.iter());
                if let Some(c) = condition {
                    if !c.eval(&both)?.is_true() {
                        continue;
                    }
                }
                let mut values = old.unpack();
                for (i, x) in sets {
                    values[*i] = x.eval(&both)?;
                }
                out.push((old.clone(), -1));
                out.push((Row::new(values), 1));
            }
        }
    }
    Ok(out)
}

/// Enforces a primary key: after the write, no key may be present more than once. The key
/// index lives with the coordinator, which sees every write; it is updated only if the write
/// goes ahead.
pub(crate) fn check_keys(
    coord: &mut Coord,
    id: crate::plan::GlobalId,
    pk: &[usize],
    schema: &Schema,
    updates: &[(Row, Diff)],
) -> Result<()> {
    let index = coord.keys.entry(id).or_default();
    let mut delta: std::collections::HashMap<Row, Diff> = std::collections::HashMap::new();
    for (row, diff) in updates {
        *delta.entry(row.project(pk)).or_default() += diff;
    }
    for (key, d) in &delta {
        if index.get(key).copied().unwrap_or(0) + d > 1 {
            let names: Vec<&str> = pk
                .iter()
                .map(|i| schema.columns[*i].name.as_str())
                .collect();
            let values: Vec<String> = key.iter().map(|v| v.to_string()).collect();
            return Err(Error::UniqueViolation(format!(
                "duplicate key value violates the primary key: ({})=({}) already exists",
                names.join(", "),
                values.join(", ")
            )));
        }
    }
    for (key, d) in delta {
        let n = index.entry(key.clone()).or_default();
        *n += d;
        if *n == 0 {
            index.remove(&key);
        }
    }
    Ok(())
}

/// Converts a row to the table's column types and checks NOT NULL. Rows that already conform
/// (the usual case: decoders produce typed values) are passed through without copying.
fn conform(schema: &Schema, row: Row) -> std::result::Result<Row, String> {
    // One pass over the tags: the column count is reported before a NULL in a NOT NULL column.
    let mut needs_cast = false;
    let mut bounded = false;
    let mut null_in = None;
    let mut columns = schema.columns.iter();
    let mut found = 0;
    for ty in row.data_types() {
        found += 1;
        let Some(c) = columns.next() else {
            continue;
        };
        if ty == DataType::Null {
            if !c.nullable && null_in.is_none() {
                null_in = Some(&c.name);
            }
        } else if ty != c.ty {
            needs_cast = true;
        } else if c.numeric.is_some() {
            bounded = true;
        }
    }
    if found != schema.len() {
        return Err(format!("expected {} columns, found {found}", schema.len()));
    }
    if let Some(name) = null_in {
        return Err(format!(
            "null value in column \"{name}\" violates not-null constraint"
        ));
    }
    // Bounded numerics the decoders already fitted (the usual case) are only checked.
    if bounded && !needs_cast {
        needs_cast = (schema.columns.iter().enumerate())
            .any(|(i, c)| c.numeric.is_some() && !c.fits(&row.get(i)));
    }
    if !needs_cast {
        return Ok(row);
    }
    let mut out = Vec::with_capacity(row.len());
    for (v, c) in row.into_values().into_iter().zip(&schema.columns) {
        let v = if v.data_type() == c.ty || v.is_null() {
            v
        } else {
            v.cast(c.ty)
                .map_err(|e| format!("column \"{}\": {e}", c.name))?
        };
        out.push(c.fit(v)?);
    }
    Ok(Row::new(out))
}

/// Plans a SELECT given as text (for ad-hoc subscriptions).
pub(crate) fn plan_select_text(coord: &Coord, sql_text: &str) -> Result<(Plan, Vec<Column>)> {
    let stmts = sql::split_statements(sql_text);
    let [stmt] = stmts.as_slice() else {
        return Err(Error::plan("a subscription takes exactly one SELECT"));
    };
    match sql::parse_statement(sql_text, stmt)? {
        Statement::Select { query, as_of: None } => {
            let planned = QueryPlanner::new(&coord.catalog).plan_query(&query)?;
            let plan = planned.visible_plan();
            check_plan(&plan)?;
            Ok((plan, planned.columns))
        }
        _ => Err(Error::plan(
            "a subscription takes exactly one SELECT (without AS OF)",
        )),
    }
}
