//! Randomized oracle tests: views maintained by freshet, checked against SQLite.
//!
//! Each case creates the same tables in freshet and in an in-memory SQLite database, defines
//! its query as a freshet view, and applies a seeded random stream of small batches to both:
//! row-level inserts, deletes and updates written with `Engine::write`, and SQL `INSERT`,
//! `DELETE` and `UPDATE` statements run by both systems. Value domains are tiny and include
//! NULLs, so joins match, groups collide, rows repeat, and deletes remove a join's last match
//! or a group's current extreme. The stream first grows the tables and then mostly shrinks
//! them, down to empty at times.
//!
//! After every batch the view must equal SQLite's evaluation of the same query, compared as
//! sorted multisets of rows. At the end, earlier timestamps are read back with `AS OF` and
//! compared with what the oracle said then. The subscription tests follow a view (and the same
//! query as an ad-hoc subscription) from before the stream starts, and at every progress
//! message compare the accumulated changes with the oracle as of the last write before it.
//!
//! Every query runs with 1, 2 and 3 workers. Set `FRESHET_ORACLE_SEED=<n>` to vary the seeds.
//!
//! Fairness: SQLite has no booleans, so freshet's `Bool` is compared as 0/1; floats are
//! compared after rounding to 1e-9; queries avoid the places where SQLite and PostgreSQL
//! disagree (NULL ordering is always explicit, `ORDER BY … LIMIT` orders are total, there is no
//! division by zero, no float-to-int cast and no `%` on floats). SQLite lacks `EXCEPT ALL` and
//! `INTERSECT ALL`, so their oracle numbers duplicates with `row_number()` instead.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use freshet_dataflows::engine::{
    Engine, EngineConfig, SubscribeOptions, SubscribeTarget, Subscription,
};
use freshet_dataflows::subscribe::SubscribeEvent;
use freshet_dataflows::{Row, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// Random batches applied per case and worker count.
const BATCHES: usize = 40;
/// Rows each table starts with, before the view exists.
const INITIAL_ROWS: usize = 6;
/// Worker counts every case runs with.
const WORKERS: [usize; 3] = [1, 2, 3];

/// The type of a column, with the domain random values come from.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `bigint` in `0..n`.
    Int(i64),
    /// `text`, one of a few short lowercase strings.
    Text,
    /// `double precision`, a multiple of 0.5 in -2.0..=3.5 (so sums are exact).
    Float,
}

impl Kind {
    fn freshet_type(self) -> &'static str {
        match self {
            Kind::Int(_) => "bigint",
            Kind::Text => "text",
            Kind::Float => "double precision",
        }
    }

    fn sqlite_type(self) -> &'static str {
        match self {
            Kind::Int(_) => "INTEGER",
            Kind::Text => "TEXT",
            Kind::Float => "REAL",
        }
    }
}

struct TableDef {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
}

const T1: TableDef = TableDef {
    name: "t1",
    columns: &[
        ("a", Kind::Int(5)),
        ("b", Kind::Int(5)),
        ("c", Kind::Text),
        ("x", Kind::Float),
    ],
};
const T2: TableDef = TableDef {
    name: "t2",
    columns: &[("a", Kind::Int(5)), ("d", Kind::Int(5)), ("c", Kind::Text)],
};
const EDGES: TableDef = TableDef {
    name: "edges",
    columns: &[("src", Kind::Int(6)), ("dst", Kind::Int(6))],
};
const ALL_TABLES: [&TableDef; 3] = [&T1, &T2, &EDGES];

/// A query checked against the oracle.
struct Case {
    name: &'static str,
    /// The view's SELECT (PostgreSQL dialect, as freshet takes it).
    query: &'static str,
    /// SQLite's spelling of the same query, when it must differ.
    sqlite: Option<&'static str>,
    /// The tables the random stream writes to.
    tables: &'static [&'static TableDef],
    /// `CREATE VIEW` statements run by both systems before the view under test is created.
    views: &'static [&'static str],
}

impl Case {
    const fn new(
        name: &'static str,
        query: &'static str,
        tables: &'static [&'static TableDef],
    ) -> Case {
        Case {
            name,
            query,
            sqlite: None,
            tables,
            views: &[],
        }
    }

    const fn sqlite(self, sqlite: &'static str) -> Case {
        Case {
            sqlite: Some(sqlite),
            ..self
        }
    }

    const fn views(self, views: &'static [&'static str]) -> Case {
        Case { views, ..self }
    }

    fn oracle_query(&self) -> &'static str {
        self.sqlite.unwrap_or(self.query)
    }
}

type Rows = Vec<Vec<Value>>;

/// Rows as they are compared: booleans as 0/1 (SQLite has no booleans), floats rounded.
fn normalize(v: Value) -> Value {
    match v {
        Value::Bool(b) => Value::Int(b as i64),
        Value::Float(f) => round_float(f.0),
        other => other,
    }
}

fn round_float(f: f64) -> Value {
    // `+ 0.0` turns -0.0 into 0.0.
    Value::float((f * 1e9).round() / 1e9 + 0.0)
}

fn normalize_rows(rows: impl IntoIterator<Item = Row>) -> Rows {
    let mut out: Rows = rows
        .into_iter()
        .map(|r| r.into_values().into_iter().map(normalize).collect())
        .collect();
    out.sort();
    out
}

/// A value as a SQL literal both systems read the same way.
fn literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{:?}", f.0),
        Value::Text(s) => format!("'{}'", s.replace('\'', "''")),
        other => panic!("no literal for {other:?}"),
    }
}

fn row_literal(values: &[Value]) -> String {
    let parts: Vec<String> = values.iter().map(literal).collect();
    format!("({})", parts.join(", "))
}

fn to_sqlite(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Null => rusqlite::types::Value::Null,
        Value::Int(i) => rusqlite::types::Value::Integer(*i),
        Value::Float(f) => rusqlite::types::Value::Real(f.0),
        Value::Text(s) => rusqlite::types::Value::Text(s.to_string()),
        other => panic!("no SQLite value for {other:?}"),
    }
}

fn from_sqlite(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => round_float(f),
        ValueRef::Text(t) => Value::text(std::str::from_utf8(t).expect("utf-8 text")),
        ValueRef::Blob(_) => panic!("unexpected blob from SQLite"),
    }
}

/// The rows of `a` not in `b`, as multisets.
fn multiset_minus(a: &[Vec<Value>], b: &[Vec<Value>]) -> Rows {
    let mut counts: BTreeMap<&Vec<Value>, isize> = BTreeMap::new();
    for r in b {
        *counts.entry(r).or_default() += 1;
    }
    let mut out = Vec::new();
    for r in a {
        match counts.get_mut(r) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.push(r.clone()),
        }
    }
    out
}

fn seed_for(name: &str, workers: usize) -> u64 {
    let base: u64 = std::env::var("FRESHET_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // FNV-1a over the case name, so every case sees a different stream.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h ^ base.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ workers as u64
}

/// One freshet engine and one SQLite database, kept in step.
struct Harness {
    engine: Engine,
    sqlite: Connection,
    rng: StdRng,
    /// What was done so far, for failure messages.
    journal: Vec<String>,
    label: String,
}

impl Harness {
    fn new(case: &Case, workers: usize) -> Harness {
        let seed = seed_for(case.name, workers);
        let engine = Engine::start(EngineConfig {
            workers,
            ..Default::default()
        })
        .expect("engine starts");
        let sqlite = Connection::open_in_memory().expect("SQLite opens");
        for t in ALL_TABLES {
            let cols = |f: fn(Kind) -> &'static str| {
                t.columns
                    .iter()
                    .map(|(n, k)| format!("{n} {}", f(*k)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            engine
                .execute(&format!(
                    "CREATE TABLE {} ({})",
                    t.name,
                    cols(Kind::freshet_type)
                ))
                .expect("freshet creates the table");
            sqlite
                .execute(
                    &format!("CREATE TABLE {} ({})", t.name, cols(Kind::sqlite_type)),
                    [],
                )
                .expect("SQLite creates the table");
        }
        Harness {
            engine,
            sqlite,
            rng: StdRng::seed_from_u64(seed),
            journal: Vec::new(),
            label: format!("case {} with {workers} worker(s), seed {seed}", case.name),
        }
    }

    /// A harness with initial rows in the case's tables, its views, and `v` created.
    fn setup(case: &Case, workers: usize) -> Harness {
        let mut h = Harness::new(case, workers);
        for t in case.tables {
            h.insert_initial(t, INITIAL_ROWS);
        }
        for view in case.views {
            h.engine
                .execute(view)
                .unwrap_or_else(|e| panic!("{}: {view}: {e}", h.label));
            h.sqlite
                .execute(view, [])
                .unwrap_or_else(|e| panic!("SQLite: {view}: {e}"));
        }
        h.engine
            .execute(&format!("CREATE VIEW v AS {}", case.query))
            .unwrap_or_else(|e| panic!("{}: creating the view: {e}", h.label));
        h
    }

    fn random_value(&mut self, kind: Kind) -> Value {
        if self.rng.random_bool(0.12) {
            return Value::Null;
        }
        match kind {
            Kind::Int(n) => Value::Int(self.rng.random_range(0..n)),
            Kind::Text => Value::text(["a", "b", "c", "ab"][self.rng.random_range(0..4)]),
            Kind::Float => Value::float(self.rng.random_range(-4..8) as f64 * 0.5),
        }
    }

    fn random_row(&mut self, t: &TableDef) -> Vec<Value> {
        t.columns
            .iter()
            .map(|(_, k)| self.random_value(*k))
            .collect()
    }

    /// The current rows of a table in SQLite, with their rowids.
    fn sqlite_table(&self, t: &TableDef) -> Vec<(i64, Vec<Value>)> {
        let mut stmt = self
            .sqlite
            .prepare(&format!("SELECT rowid, * FROM {} ORDER BY rowid", t.name))
            .expect("prepare");
        let n = t.columns.len();
        stmt.query_map([], |r| {
            let rowid: i64 = r.get(0)?;
            let values = (1..=n)
                .map(|i| r.get_ref(i).map(from_sqlite))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rowid, values))
        })
        .expect("query")
        .collect::<rusqlite::Result<Vec<_>>>()
        .expect("rows")
    }

    fn sqlite_insert(&self, t: &TableDef, values: &[Value]) {
        let params: Vec<String> = (1..=values.len()).map(|i| format!("?{i}")).collect();
        let sql = format!("INSERT INTO {} VALUES ({})", t.name, params.join(", "));
        self.sqlite
            .execute(
                &sql,
                rusqlite::params_from_iter(values.iter().map(to_sqlite)),
            )
            .expect("SQLite insert");
    }

    /// Inserts `n` random rows into both systems.
    fn insert_initial(&mut self, t: &TableDef, n: usize) {
        let rows: Vec<Vec<Value>> = (0..n).map(|_| self.random_row(t)).collect();
        let updates = rows.iter().map(|r| (Row::new(r.clone()), 1)).collect();
        let ts = self.engine.write(t.name, updates).expect("initial write");
        for r in &rows {
            self.sqlite_insert(t, r);
        }
        let shown: Vec<String> = rows.iter().map(|r| row_literal(r)).collect();
        self.journal
            .push(format!("{} @{ts}: initial {}", t.name, shown.join(" ")));
    }

    /// Applies one random batch to table `t` in both systems; returns freshet's timestamp.
    fn random_batch(&mut self, t: &TableDef, shrinking: bool) -> u64 {
        if self.rng.random_bool(0.25) {
            self.sql_batch(t, shrinking)
        } else {
            self.row_batch(t, shrinking)
        }
    }

    /// A few inserts, deletes and updates of single rows, written atomically.
    fn row_batch(&mut self, t: &TableDef, shrinking: bool) -> u64 {
        let existing = self.sqlite_table(t);
        let mut available: Vec<usize> = (0..existing.len()).collect();
        let (p_insert, p_delete) = if shrinking { (0.15, 0.6) } else { (0.6, 0.2) };
        let mut updates: Vec<(Row, isize)> = Vec::new();
        let mut deleted_rowids = Vec::new();
        let mut inserted = Vec::new();
        let mut shown = Vec::new();
        for _ in 0..self.rng.random_range(1..=4) {
            let r: f64 = self.rng.random();
            if r < p_insert || available.is_empty() {
                let row = self.random_row(t);
                shown.push(format!("+{}", row_literal(&row)));
                inserted.push(row);
                continue;
            }
            let (rowid, old) =
                &existing[available.swap_remove(self.rng.random_range(0..available.len()))];
            deleted_rowids.push(*rowid);
            updates.push((Row::new(old.clone()), -1));
            if r < p_insert + p_delete {
                shown.push(format!("-{}", row_literal(old)));
            } else {
                let mut new = old.clone();
                let c = self.rng.random_range(0..t.columns.len());
                new[c] = self.random_value(t.columns[c].1);
                shown.push(format!("{}=>{}", row_literal(old), row_literal(&new)));
                inserted.push(new);
            }
        }
        updates.extend(inserted.iter().map(|r| (Row::new(r.clone()), 1)));
        if self.rng.random_bool(0.1) {
            // A row inserted and deleted in the same write: no net change.
            let row = self.random_row(t);
            shown.push(format!("+-{}", row_literal(&row)));
            updates.push((Row::new(row.clone()), 1));
            updates.push((Row::new(row), -1));
        }
        let ts = self
            .engine
            .write(t.name, updates)
            .unwrap_or_else(|e| panic!("{}: write failed: {e}", self.label));
        for rowid in deleted_rowids {
            self.sqlite
                .execute(&format!("DELETE FROM {} WHERE rowid = ?1", t.name), [rowid])
                .expect("SQLite delete");
        }
        for row in &inserted {
            self.sqlite_insert(t, row);
        }
        self.journal
            .push(format!("{} @{ts}: {}", t.name, shown.join(" ")));
        ts
    }

    /// One SQL statement that changes `t`, run by both systems.
    fn sql_batch(&mut self, t: &TableDef, shrinking: bool) -> u64 {
        let sql = self.random_dml(t, shrinking);
        let results = self
            .engine
            .execute(&sql)
            .unwrap_or_else(|e| panic!("{}: {sql}: {e}", self.label));
        let ts = results[0].timestamp.expect("a write has a timestamp");
        self.sqlite
            .execute(&sql, [])
            .unwrap_or_else(|e| panic!("SQLite: {sql}: {e}"));
        self.journal.push(format!("{} @{ts}: {sql}", t.name));
        ts
    }

    fn random_dml(&mut self, t: &TableDef, shrinking: bool) -> String {
        let name = t.name;
        let n = t.columns.len();
        let (c1, k1) = t.columns[self.rng.random_range(0..n)];
        let (c2, k2) = t.columns[self.rng.random_range(0..n)];
        let choice = if shrinking {
            self.rng.random_range(0..7)
        } else {
            self.rng.random_range(0..6)
        };
        match choice {
            0 | 1 => {
                let rows: Vec<String> = (0..self.rng.random_range(1..=3))
                    .map(|_| row_literal(&self.random_row(t)))
                    .collect();
                format!("INSERT INTO {name} VALUES {}", rows.join(", "))
            }
            2 => {
                let v = self.non_null_value(k1);
                format!("DELETE FROM {name} WHERE {c1} = {}", literal(&v))
            }
            3 => format!("DELETE FROM {name} WHERE {c1} IS NULL"),
            4 => {
                let set = self.random_value(k1);
                let v = self.non_null_value(k2);
                format!(
                    "UPDATE {name} SET {c1} = {} WHERE {c2} = {}",
                    literal(&set),
                    literal(&v)
                )
            }
            5 => {
                // Arithmetic over the old value, staying in the column's domain.
                let (col, m) = t
                    .columns
                    .iter()
                    .find_map(|(c, k)| match k {
                        Kind::Int(m) => Some((*c, *m)),
                        _ => None,
                    })
                    .expect("every table has an integer column");
                let v = self.non_null_value(k2);
                format!(
                    "UPDATE {name} SET {col} = ({col} + 1) % {m} WHERE {c2} = {} OR {col} IS NULL",
                    literal(&v)
                )
            }
            _ => format!("DELETE FROM {name}"),
        }
    }

    fn non_null_value(&mut self, kind: Kind) -> Value {
        loop {
            let v = self.random_value(kind);
            if !v.is_null() {
                return v;
            }
        }
    }

    /// SQLite's answer to `sql`, normalized and sorted.
    fn oracle(&self, sql: &str) -> Rows {
        let mut stmt = self
            .sqlite
            .prepare(sql)
            .unwrap_or_else(|e| panic!("SQLite cannot prepare {sql}: {e}"));
        let n = stmt.column_count();
        let mut rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get_ref(i).map(from_sqlite))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .expect("SQLite query")
            .collect::<rusqlite::Result<Rows>>()
            .unwrap_or_else(|e| panic!("SQLite cannot run {sql}: {e}"));
        rows.sort();
        rows
    }

    /// freshet's answer to a SELECT, normalized and sorted.
    fn freshet(&self, sql: &str) -> Rows {
        let results = self
            .engine
            .execute(sql)
            .unwrap_or_else(|e| panic!("{}: {sql}: {e}", self.label));
        normalize_rows(
            results
                .into_iter()
                .last()
                .and_then(|r| r.rows)
                .expect("a SELECT returns rows"),
        )
    }

    /// The view's contents via `Engine::read`.
    fn read_view(&self, as_of: Option<u64>) -> Rows {
        let read = self
            .engine
            .read("v", as_of)
            .unwrap_or_else(|e| panic!("{}: reading v: {e}", self.label));
        if let Some(ts) = as_of {
            assert_eq!(
                read.timestamp, ts,
                "{}: a read AS OF is exact at that time",
                self.label
            );
        }
        normalize_rows(read.rows)
    }

    fn check(&self, what: &str, query: &str, expected: &[Vec<Value>], actual: &[Vec<Value>]) {
        if expected == actual {
            return;
        }
        panic!(
            "{label}: {what}: freshet disagrees with SQLite\nquery: {query}\nmissing from freshet: {missing:?}\n\
             extra in freshet: {extra:?}\nexpected: {expected:?}\nactual: {actual:?}\nhistory:\n  {history}",
            label = self.label,
            missing = multiset_minus(expected, actual),
            extra = multiset_minus(actual, expected),
            history = self.journal.join("\n  "),
        );
    }

    /// Base tables must agree, or the harness itself is broken.
    fn check_tables(&self) {
        for t in ALL_TABLES {
            let sql = format!("SELECT * FROM {}", t.name);
            self.check(
                "table contents",
                &sql,
                &self.oracle(&sql),
                &self.freshet(&sql),
            );
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // An engine dropped without `shutdown` waits for its workers forever, which would turn
        // a failed assertion into a hung test.
        self.engine.shutdown();
    }
}

/// Runs `case` with every worker count: the random stream, a comparison after every batch,
/// and `AS OF` reads of earlier times at the end.
fn run_case(case: &Case) {
    for workers in WORKERS {
        let mut h = Harness::setup(case, workers);
        h.check(
            "after creating the view",
            case.query,
            &h.oracle(case.oracle_query()),
            &h.read_view(None),
        );

        let mut history: Vec<(u64, Rows)> = Vec::new();
        for step in 0..BATCHES {
            let t = case.tables[h.rng.random_range(0..case.tables.len())];
            let ts = h.random_batch(t, step >= BATCHES * 2 / 3);
            let expected = h.oracle(case.oracle_query());
            // Alternate between the two read paths.
            let actual = if step % 2 == 0 {
                h.read_view(None)
            } else {
                h.freshet("SELECT * FROM v")
            };
            h.check(
                &format!("after batch {step} (ts {ts})"),
                case.query,
                &expected,
                &actual,
            );
            history.push((ts, expected));
        }
        h.check_tables();

        for (i, (ts, expected)) in history.iter().enumerate() {
            if i % 4 != 1 {
                continue;
            }
            let actual = if i % 8 == 1 {
                h.freshet(&format!("SELECT * FROM v AS OF {ts}"))
            } else {
                h.read_view(Some(*ts))
            };
            h.check(
                &format!("AS OF {ts} (batch {i})"),
                case.query,
                expected,
                &actual,
            );
        }
        // The stream must have exercised the query, or the comparisons above prove little.
        let changes = history.windows(2).filter(|w| w[0].1 != w[1].1).count();
        let nonempty = history.iter().filter(|(_, rows)| !rows.is_empty()).count();
        assert!(
            changes >= 2 && nonempty > 0,
            "{}: the stream changed the result {changes} times and it was non-empty {nonempty} times",
            h.label
        );
    }
}

/// The state a subscription has accumulated, and where its progress is.
struct Follower {
    name: &'static str,
    sub: Subscription,
    state: BTreeMap<Vec<Value>, isize>,
    /// The last progress upper received.
    upper: u64,
    /// Progress messages compared with the oracle.
    checks: usize,
}

impl Follower {
    fn new(name: &'static str, sub: Subscription) -> Follower {
        Follower {
            name,
            sub,
            state: BTreeMap::new(),
            upper: 0,
            checks: 0,
        }
    }

    /// Handles one event; `history` holds (write timestamp, oracle rows) in time order, starting
    /// with the contents before the first write at time 0.
    fn handle(&mut self, h: &Harness, query: &str, event: SubscribeEvent, history: &[(u64, Rows)]) {
        let what = format!("{} subscription", self.name);
        match event {
            SubscribeEvent::Update { time, updates } => {
                assert!(
                    time >= self.upper,
                    "{}: {what}: update at {time} after progress to {}",
                    h.label,
                    self.upper
                );
                assert!(
                    time == self.sub.as_of || history.iter().any(|(t, _)| *t == time),
                    "{}: {what}: update at {time}, which is neither the snapshot time nor a write",
                    h.label
                );
                for (row, diff) in updates {
                    let row: Vec<Value> = row.into_values().into_iter().map(normalize).collect();
                    let n = self.state.entry(row).or_default();
                    *n += diff;
                }
                self.state.retain(|_, n| *n != 0);
            }
            SubscribeEvent::Progress { upper } => {
                assert!(
                    upper >= self.upper,
                    "{}: {what}: progress went back from {} to {upper}",
                    h.label,
                    self.upper
                );
                self.upper = upper;
                if upper <= self.sub.as_of {
                    return;
                }
                let (ts, expected) = history
                    .iter()
                    .rev()
                    .find(|(t, _)| *t < upper)
                    .expect("the initial state");
                let mut actual = Vec::new();
                for (row, n) in &self.state {
                    assert!(
                        *n > 0,
                        "{}: {what}: row {row:?} has multiplicity {n} at {upper}",
                        h.label
                    );
                    actual.extend(std::iter::repeat_n(row.clone(), *n as usize));
                }
                h.check(
                    &format!("{what} at progress {upper} (last write {ts})"),
                    query,
                    expected,
                    &actual,
                );
                self.checks += 1;
            }
            SubscribeEvent::Error { code, message, .. } => {
                panic!("{}: {what} failed: {code}: {message}", h.label)
            }
        }
    }

    /// Handles every event already waiting.
    fn drain(&mut self, h: &Harness, query: &str, history: &[(u64, Rows)]) {
        while let Ok(event) = self.sub.events.try_recv() {
            self.handle(h, query, event, history);
        }
    }

    /// Handles events until progress passes `ts`.
    fn wait_past(&mut self, h: &Harness, query: &str, history: &[(u64, Rows)], ts: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.upper <= ts {
            match self.sub.events.try_recv() {
                Ok(event) => self.handle(h, query, event, history),
                Err(async_channel::TryRecvError::Empty) => {
                    assert!(
                        Instant::now() < deadline,
                        "{}: {} subscription stuck at {}",
                        h.label,
                        self.name,
                        self.upper
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(async_channel::TryRecvError::Closed) => {
                    panic!(
                        "{}: {} subscription closed at {}",
                        h.label, self.name, self.upper
                    )
                }
            }
        }
    }
}

/// Runs `case` with every worker count, following the view and the same query as an ad-hoc
/// subscription through the random stream.
fn run_subscribe_case(case: &Case) {
    for workers in WORKERS {
        let mut h = Harness::setup(case, workers);
        let subscribe = |target| {
            h.engine
                .subscribe(target, SubscribeOptions::default())
                .expect("subscribe")
        };
        let mut followers = [
            Follower::new("view", subscribe(SubscribeTarget::Name("v".into()))),
            Follower::new("ad-hoc", subscribe(SubscribeTarget::Sql(case.query.into()))),
        ];
        let mut history: Vec<(u64, Rows)> = vec![(0, h.oracle(case.oracle_query()))];
        for step in 0..BATCHES {
            let t = case.tables[h.rng.random_range(0..case.tables.len())];
            let ts = h.random_batch(t, step >= BATCHES * 2 / 3);
            history.push((ts, h.oracle(case.oracle_query())));
            for f in &mut followers {
                f.drain(&h, case.query, &history);
            }
        }
        let last = history.last().expect("history").0;
        for f in &mut followers {
            f.wait_past(&h, case.query, &history, last);
            assert!(
                f.checks > 0,
                "{}: {} subscription made no progress",
                h.label,
                f.name
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Filters, maps, NULLs and three-valued logic.

const FILTER_MAP: Case = Case::new(
    "filter_map",
    "SELECT a, b, c, x, a + b AS s, a * b - 1 AS p, b / 2 AS q, a % 3 AS r, -a AS neg, \
     (a - 3) / 2 AS nq, (a - 3) % 2 AS nr, coalesce(a, b, -1) AS co, nullif(a, 2) AS ni, \
     coalesce(x, 0.0) * 2 + a AS xf, b * 1.5 AS bf, CAST(b AS double precision) / 4 AS quarter, \
     CASE WHEN a > b THEN 'gt' WHEN a = b THEN 'eq' ELSE 'other' END AS cmp, \
     CASE b WHEN 1 THEN 'one' WHEN 2 THEN 'two' END AS named, \
     abs(b - 3) AS ab, length(c) AS len, upper(c) AS up, substr(c, 2) AS tail, \
     replace(c, 'a', 'z') AS rep, c || '!' AS bang, a || '-' || c AS ac, coalesce(c, 'none') AS cn, \
     round(x + 0.25) AS rx, round(x, 1) AS rx1, abs(x) AS absx, -x AS negx \
     FROM t1 WHERE (a > 1 OR b IS NULL) AND NOT (c = 'b')",
    &[&T1],
);

const SELECT_LIST_LOGIC: Case = Case::new(
    "select_list_logic",
    "SELECT a, b, c, a < b AS lt, a < b OR b > 3 AS o, a < b AND c IS NOT NULL AS an, \
     NOT (a = b) AS ne, a BETWEEN 1 AND 3 AS btw, a NOT BETWEEN b AND 3 AS nbtw, \
     a IN (1, 3, NULL) AS inl, b NOT IN (2, 4) AS nin, a IS DISTINCT FROM b AS dis, \
     a IS NOT DISTINCT FROM b AS nd, (a > b) IS TRUE AS it, (a > b) IS NOT FALSE AS inf, \
     c LIKE 'a%' AS lk, c NOT LIKE '%b' AS nlk, c LIKE '_b' AS lk2, c < 'b' AS clt, \
     x > a AS xa, x IN (0.5, 1.0) AS xin \
     FROM t1",
    &[&T1],
);

const WHERE_LOGIC: Case = Case::new(
    "where_logic",
    "SELECT a, b, c FROM t1 \
     WHERE NOT (a = 1 OR b = 2) OR (c IN ('a', NULL) AND a IS NOT NULL) \
     OR (a BETWEEN b AND 3 AND NOT (x < 0.5)) OR coalesce(b, a, 0) >= 4",
    &[&T1],
);

#[test]
fn filter_and_map_with_nulls() {
    run_case(&FILTER_MAP);
}

#[test]
fn three_valued_logic_in_select_list() {
    run_case(&SELECT_LIST_LOGIC);
}

#[test]
fn three_valued_logic_in_where() {
    run_case(&WHERE_LOGIC);
}

// ---------------------------------------------------------------------------------------------
// Joins.

const INNER_JOIN: Case = Case::new(
    "inner_join",
    "SELECT t1.a, t1.b, t1.c, t2.d, t2.c AS c2 FROM t1 JOIN t2 ON t1.a = t2.a AND t1.b <= t2.d",
    &[&T1, &T2],
);

const THREE_WAY_JOIN: Case = Case::new(
    "three_way_join",
    "SELECT t1.a, t1.c, t2.d, e.dst FROM t1, t2, edges AS e \
     WHERE t1.a = t2.a AND t2.d = e.src AND t1.c <> 'c'",
    &[&T1, &T2, &EDGES],
);

// Both sides read in place on their first two columns; with several workers both lie where
// their first column places them.
const JOIN_ON_LEADING_COLUMNS: Case = Case::new(
    "join_on_leading_columns",
    "SELECT t1.a, t1.b, t1.c, t2.c AS c2 FROM t1 JOIN t2 ON t1.a = t2.a AND t1.b = t2.d",
    &[&T1, &T2],
);

// `t1` read in place on its first two columns, facing a side arranged anew (an aggregate's
// rows), which must then be spread by its key's first column.
const JOIN_LEADING_COLUMNS_WITH_AGGREGATE: Case = Case::new(
    "join_leading_columns_with_aggregate",
    "SELECT t1.a, t1.b, t1.c, s.n FROM t1 \
     JOIN (SELECT d, a, count(*) AS n FROM t2 GROUP BY d, a) s ON t1.a = s.a AND t1.b = s.d",
    &[&T1, &T2],
);

// Nexmark q8's shape: keys without aggregates led by `t1`'s first column, made distinct where
// `t1`'s rows lie, joined on two columns to keys grouped by another column (spread anew by
// their first field to meet them); the join's output lies by `p.a` too.
const DISTINCT_KEYS_JOINED_IN_PLACE: Case = Case::new(
    "distinct_keys_joined_in_place",
    "SELECT p.a, p.c, p.w FROM (SELECT a, c, b % 3 AS w FROM t1 GROUP BY a, c, b % 3) p \
     JOIN (SELECT d, a % 3 AS w FROM t2 GROUP BY d, a % 3) q ON p.a = q.d AND p.w = q.w",
    &[&T1, &T2],
);

// q8 as written: each side grouped by a window's start and its end (an expression of the
// start, computed after grouping), joined on both (the ends' equality implied by the starts').
const WINDOW_ENDS_JOINED: Case = Case::new(
    "window_ends_joined",
    "SELECT p.a, p.c, p.w FROM \
     (SELECT a, c, b / 3 * 3 AS w, b / 3 * 3 + 3 AS e FROM t1 GROUP BY a, c, b / 3 * 3, b / 3 * 3 + 3) p \
     JOIN (SELECT d, a / 3 * 3 AS w, a / 3 * 3 + 3 AS e FROM t2 GROUP BY d, a / 3 * 3, a / 3 * 3 + 3) q \
     ON p.a = q.d AND p.w = q.w AND p.e = q.e",
    &[&T1, &T2],
);

// The same with the ends read, and a key repeated: columns renumbered around those dropped.
const WINDOW_ENDS_READ: Case = Case::new(
    "window_ends_read",
    "SELECT p.e, p.a, q.e AS qe, p.a2, q.n FROM \
     (SELECT a, a AS a2, b / 3 * 3 AS w, b / 3 * 3 + 3 AS e FROM t1 GROUP BY a, a, b / 3 * 3, b / 3 * 3 + 3) p \
     JOIN (SELECT d, a / 3 * 3 AS w, a / 3 * 3 + 3 AS e, count(*) AS n FROM t2 GROUP BY d, a / 3 * 3, a / 3 * 3 + 3) q \
     ON p.a = q.d AND p.w = q.w AND p.e = q.e",
    &[&T1, &T2],
);

const SELF_JOIN: Case = Case::new(
    "self_join",
    "SELECT x.a, x.b, y.b AS b2 FROM t1 AS x JOIN t1 AS y ON x.a = y.b AND x.c = y.c",
    &[&T1],
);

const JOIN_ON_EXPRESSIONS: Case = Case::new(
    "join_on_expressions",
    "SELECT t1.a, t2.a AS a2, t1.c FROM t1 JOIN t2 \
     ON t1.a + 1 = t2.d AND coalesce(t1.c, 'a') = coalesce(t2.c, 'a')",
    &[&T1, &T2],
);

const NULL_SAFE_JOIN: Case = Case::new(
    "null_safe_join",
    "SELECT t1.a, t1.b, t2.d FROM t1 JOIN t2 ON t1.a IS NOT DISTINCT FROM t2.a",
    &[&T1, &T2],
);

const JOIN_USING: Case = Case::new(
    "join_using",
    "SELECT a, b, c, d FROM t1 JOIN t2 USING (a, c)",
    &[&T1, &T2],
);

const CROSS_JOIN: Case = Case::new(
    "cross_join",
    "SELECT t1.a, t2.d FROM t1 CROSS JOIN t2 WHERE t1.b < t2.d AND t1.c IS NOT NULL",
    &[&T1, &T2],
);

// PostgreSQL puts the joined columns first in `*`; SQLite keeps the left table's order.
const NATURAL_JOIN: Case = Case::new(
    "natural_join",
    "SELECT * FROM t1 NATURAL JOIN t2",
    &[&T1, &T2],
)
.sqlite("SELECT a, c, b, x, d FROM t1 NATURAL JOIN t2");

const LEFT_JOIN: Case = Case::new(
    "left_join",
    "SELECT t1.a, t1.b, t1.c, t2.a AS a2, t2.d FROM t1 LEFT JOIN t2 ON t1.a = t2.a AND t2.d > 1",
    &[&T1, &T2],
);

const LEFT_JOIN_WITHOUT_KEYS: Case = Case::new(
    "left_join_without_keys",
    "SELECT t1.a, t1.b, t2.a AS a2, t2.d FROM t1 LEFT JOIN t2 ON t1.a = t2.a OR t1.b = t2.d",
    &[&T1, &T2],
);

const LEFT_JOIN_ONE_SIDED_CONDITIONS: Case = Case::new(
    "left_join_one_sided_conditions",
    "SELECT t1.a, t1.c, t2.d FROM t1 LEFT JOIN t2 ON t2.d = 3 AND t1.c = 'a'",
    &[&T1, &T2],
);

const RIGHT_JOIN: Case = Case::new(
    "right_join",
    "SELECT t1.b, t1.c, t2.a, t2.d FROM t1 RIGHT JOIN t2 ON t1.a = t2.a AND t1.c = t2.c",
    &[&T1, &T2],
);

const FULL_JOIN: Case = Case::new(
    "full_join",
    "SELECT t1.a, t1.b, t2.a AS a2, t2.d FROM t1 FULL OUTER JOIN t2 ON t1.a = t2.a AND t1.b < t2.d",
    &[&T1, &T2],
);

// Both sides filtered by WHERE and joined on their tables' leading columns: each side is
// keyed from its table's arrangement batch by batch (one worker) or arranged anew (more).
const FILTERED_JOIN_SIDES: Case = Case::new(
    "filtered_join_sides",
    "SELECT t1.a, t1.b, t1.c, t2.d FROM t1 JOIN t2 ON t1.a = t2.a \
     WHERE t1.b > 1 AND (t2.c IS NULL OR t2.c <> 'a') AND t2.d <> 3",
    &[&T1, &T2],
);

const ANTI_JOIN: Case = Case::new(
    "anti_join",
    "SELECT t1.a, t1.c FROM t1 LEFT JOIN t2 ON t1.a = t2.a WHERE t2.a IS NULL",
    &[&T1, &T2],
);

const NESTED_OUTER_JOINS: Case = Case::new(
    "nested_outer_joins",
    "SELECT t1.a, t2.d, e.dst FROM t1 FULL JOIN t2 ON t1.a = t2.a LEFT JOIN edges AS e ON t2.d = e.src",
    &[&T1, &T2, &EDGES],
);

const INNER_THEN_OUTER_JOIN: Case = Case::new(
    "inner_then_outer_join",
    "SELECT t1.a, t1.b, t2.d, e.dst FROM t1 JOIN t2 ON t1.a = t2.a \
     LEFT JOIN edges AS e ON t2.d = e.src WHERE e.dst IS NULL OR e.dst > t1.b",
    &[&T1, &T2, &EDGES],
);

const LEFT_JOIN_AGGREGATE_SUBQUERY: Case = Case::new(
    "left_join_aggregate_subquery",
    "SELECT t1.a, t1.c, g.n FROM t1 LEFT JOIN (SELECT a, count(*) AS n FROM t2 GROUP BY a) AS g ON t1.a = g.a",
    &[&T1, &T2],
);

const OUTER_JOIN_AGGREGATE: Case = Case::new(
    "outer_join_aggregate",
    "SELECT t1.a, count(t2.d) AS matches, count(*) AS n, sum(t2.d) AS s \
     FROM t1 LEFT JOIN t2 ON t1.a = t2.a GROUP BY t1.a",
    &[&T1, &T2],
);

const GLOBAL_AGGREGATE_OVER_JOIN: Case = Case::new(
    "global_aggregate_over_join",
    "SELECT count(*) AS n, sum(t2.d) AS s, count(DISTINCT t1.c) AS dc FROM t1 JOIN t2 ON t1.a = t2.a",
    &[&T1, &T2],
);

// Inner joins under count/sum aggregates over plain columns: the aggregate is computed in the
// join's output (`accumulate::render_over_join`), from either side, through a reordered join's
// projection, and with no group key.
const JOIN_AGGREGATE: Case = Case::new(
    "join_aggregate",
    "SELECT t1.a, count(*) AS n, sum(t2.d) AS s FROM t1 JOIN t2 ON t1.a = t2.a GROUP BY t1.a",
    &[&T1, &T2],
);

const JOIN_AGGREGATE_BY_RIGHT_COLUMN: Case = Case::new(
    "join_aggregate_by_right_column",
    "SELECT t2.d, t2.c, count(t1.b) AS n, sum(t1.b) AS s FROM t1 JOIN t2 ON t1.a = t2.a \
     GROUP BY t2.d, t2.c",
    &[&T1, &T2],
);

const THREE_WAY_JOIN_AGGREGATE: Case = Case::new(
    "three_way_join_aggregate",
    "SELECT e.dst, count(*) AS n, sum(t1.b) AS s FROM t1, t2, edges AS e \
     WHERE t1.a = t2.a AND t2.d = e.src GROUP BY e.dst",
    &[&T1, &T2, &EDGES],
);

const GLOBAL_COUNT_OVER_JOIN: Case = Case::new(
    "global_count_over_join",
    "SELECT count(*) AS n, sum(t1.b) AS s FROM t1 JOIN t2 ON t1.a = t2.a",
    &[&T1, &T2],
);

#[test]
fn inner_join() {
    run_case(&INNER_JOIN);
}

#[test]
fn join_aggregate() {
    run_case(&JOIN_AGGREGATE);
}

#[test]
fn join_aggregate_by_right_column() {
    run_case(&JOIN_AGGREGATE_BY_RIGHT_COLUMN);
}

#[test]
fn three_way_join_aggregate() {
    run_case(&THREE_WAY_JOIN_AGGREGATE);
}

#[test]
fn global_count_over_join() {
    run_case(&GLOBAL_COUNT_OVER_JOIN);
}

#[test]
fn three_way_join() {
    run_case(&THREE_WAY_JOIN);
}

#[test]
fn join_on_leading_columns() {
    run_case(&JOIN_ON_LEADING_COLUMNS);
}

#[test]
fn join_leading_columns_with_aggregate() {
    run_case(&JOIN_LEADING_COLUMNS_WITH_AGGREGATE);
}

#[test]
fn distinct_keys_joined_in_place() {
    run_case(&DISTINCT_KEYS_JOINED_IN_PLACE);
}

#[test]
fn window_ends_joined() {
    run_case(&WINDOW_ENDS_JOINED);
}

#[test]
fn window_ends_read() {
    run_case(&WINDOW_ENDS_READ);
}

#[test]
fn self_join() {
    run_case(&SELF_JOIN);
}

#[test]
fn join_on_expressions() {
    run_case(&JOIN_ON_EXPRESSIONS);
}

#[test]
fn null_safe_join() {
    run_case(&NULL_SAFE_JOIN);
}

#[test]
fn join_using() {
    run_case(&JOIN_USING);
}

#[test]
fn cross_join() {
    run_case(&CROSS_JOIN);
}

#[test]
fn natural_join() {
    run_case(&NATURAL_JOIN);
}

#[test]
fn left_join() {
    run_case(&LEFT_JOIN);
}

#[test]
fn left_join_without_equality_keys() {
    run_case(&LEFT_JOIN_WITHOUT_KEYS);
}

#[test]
fn left_join_with_one_sided_conditions() {
    run_case(&LEFT_JOIN_ONE_SIDED_CONDITIONS);
}

#[test]
fn right_join() {
    run_case(&RIGHT_JOIN);
}

#[test]
fn full_outer_join() {
    run_case(&FULL_JOIN);
}

#[test]
fn filtered_join_sides() {
    run_case(&FILTERED_JOIN_SIDES);
}

#[test]
fn anti_join_through_left_join() {
    run_case(&ANTI_JOIN);
}

#[test]
fn nested_outer_joins() {
    run_case(&NESTED_OUTER_JOINS);
}

#[test]
fn inner_then_outer_join() {
    run_case(&INNER_THEN_OUTER_JOIN);
}

#[test]
fn left_join_to_aggregate_subquery() {
    run_case(&LEFT_JOIN_AGGREGATE_SUBQUERY);
}

#[test]
fn aggregate_over_left_join() {
    run_case(&OUTER_JOIN_AGGREGATE);
}

#[test]
fn global_aggregate_over_join() {
    run_case(&GLOBAL_AGGREGATE_OVER_JOIN);
}

// The merged column of a RIGHT or FULL join USING (a) is the right column or
// coalesce(t1.a, t2.a), never NULL for a row that exists only on the right. (Found by this
// file: freshet used to return t1.a.)

const RIGHT_JOIN_USING: Case = Case::new(
    "right_join_using",
    "SELECT a, t1.b, t2.d FROM t1 RIGHT JOIN t2 USING (a)",
    &[&T1, &T2],
);

const FULL_JOIN_USING: Case = Case::new(
    "full_join_using",
    "SELECT a, t1.b, t2.d FROM t1 FULL JOIN t2 USING (a)",
    &[&T1, &T2],
);

#[test]
fn right_join_using() {
    run_case(&RIGHT_JOIN_USING);
}

#[test]
fn full_join_using() {
    run_case(&FULL_JOIN_USING);
}

// ---------------------------------------------------------------------------------------------
// Aggregation, HAVING, DISTINCT.

const GROUP_BY_COUNTS: Case = Case::new(
    "group_by_counts",
    "SELECT a, count(*) AS n, count(b) AS nb, count(DISTINCT b) AS db, sum(b) AS s, \
     sum(DISTINCT b) AS sd, avg(b) AS av, count(DISTINCT c) AS dc \
     FROM t1 GROUP BY a",
    &[&T1],
);

// DISTINCT aggregates of expressions beside plain ones: the shape of Nexmark q15's counts.
const GROUP_BY_DISTINCT_EXPRESSIONS: Case = Case::new(
    "group_by_distinct_expressions",
    "SELECT c, count(DISTINCT CASE WHEN b < 3 THEN a END) AS dlow, count(DISTINCT a) AS da, \
     sum(DISTINCT a % 3) AS sm, avg(DISTINCT b) AS ab, count(*) AS n, sum(b) AS s \
     FROM t1 GROUP BY c",
    &[&T1],
);

// GROUP BY without aggregates (a threshold on the keys), with NULL keys and expressions.
const GROUP_BY_KEYS_ONLY: Case = Case::new(
    "group_by_keys_only",
    "SELECT c, b % 2 AS parity, a FROM t1 GROUP BY c, b % 2, a",
    &[&T1],
);

// DISTINCT running totals without GROUP BY: one row even over no rows.
const GLOBAL_DISTINCT_TOTALS: Case = Case::new(
    "global_distinct_totals",
    "SELECT count(DISTINCT a) AS da, count(DISTINCT c) AS dc, sum(DISTINCT b) AS sb, \
     avg(DISTINCT a) AS aa, count(*) AS n FROM t1",
    &[&T1],
);

// The same subquery twice (rendered once and shared): groups with the most rows, as q5.
const REPEATED_SUBQUERY: Case = Case::new(
    "repeated_subquery",
    "SELECT s1.a, s1.n FROM (SELECT a, count(*) AS n FROM t1 GROUP BY a) AS s1 \
     JOIN (SELECT max(s2.n) AS m FROM (SELECT a, count(*) AS n FROM t1 GROUP BY a) AS s2) AS s3 \
     ON s1.n = s3.m",
    &[&T1],
);

// `agg(…) FILTER (WHERE …)`, plain and DISTINCT, accumulable and not.
const FILTERED_AGGREGATES: Case = Case::new(
    "filtered_aggregates",
    "SELECT a, count(*) FILTER (WHERE b > 1) AS n, sum(b) FILTER (WHERE c = 'a') AS s, \
     count(DISTINCT c) FILTER (WHERE b IS NOT NULL) AS dc, max(x) FILTER (WHERE b < 3) AS mx, \
     count(*) AS total FROM t1 GROUP BY a",
    &[&T1],
);

const GROUP_BY_MIN_MAX: Case = Case::new(
    "group_by_min_max",
    "SELECT a, min(b) AS lo, max(b) AS hi, count(*) AS n FROM t1 GROUP BY a",
    &[&T1],
);

const GROUP_BY_MIN_MAX_TEXT: Case = Case::new(
    "group_by_min_max_text",
    "SELECT b, min(c) AS lo, max(c) AS hi FROM t1 GROUP BY b",
    &[&T1],
);

const GLOBAL_AGGREGATES: Case = Case::new(
    "global_aggregates",
    "SELECT count(*) AS n, count(c) AS nc, count(DISTINCT c) AS dc, sum(b) AS s, \
     avg(x) AS ax, sum(x) AS sx FROM t1",
    &[&T1],
);

const GLOBAL_MIN_MAX: Case = Case::new(
    "global_min_max",
    "SELECT min(x) AS lo, max(x) AS hi, count(x) AS n FROM t1",
    &[&T1],
);

/// Only `min` and `max`: reduced through levels of buckets (`render/reduce.rs`).
const GLOBAL_EXTREMES: Case = Case::new(
    "global_extremes",
    "SELECT min(x) AS lo, max(x) AS hi, max(c) AS hc, min(a) AS la FROM t1",
    &[&T1],
);

/// `min`/`max` beside counts and a float sum: partial counts and sums ride the levels.
const GLOBAL_EXTREMES_AND_TOTALS: Case = Case::new(
    "global_extremes_and_totals",
    "SELECT max(b) AS hi, count(*) AS n, count(c) AS nc, sum(b) AS sb, sum(x) AS sx, min(c) AS lc FROM t1",
    &[&T1],
);

const GROUP_BY_EXTREMES: Case = Case::new(
    "group_by_extremes",
    "SELECT a, min(x) AS lo, max(x) AS hi, max(c) AS hc FROM t1 GROUP BY a",
    &[&T1],
);

const GLOBAL_AGGREGATES_OF_FILTER: Case = Case::new(
    "global_aggregates_of_filter",
    "SELECT count(*) AS n, sum(b) AS s, avg(x) AS ax FROM t1 WHERE a = 3",
    &[&T1],
);

const GLOBAL_DISTINCT_AGGREGATES: Case = Case::new(
    "global_distinct_aggregates",
    "SELECT count(DISTINCT a) AS da, count(DISTINCT c) AS dc, min(DISTINCT b) AS lo, \
     max(DISTINCT b) AS hi, sum(DISTINCT x) AS sx FROM t1",
    &[&T1],
);

const GLOBAL_HAVING: Case = Case::new(
    "global_having",
    "SELECT count(*) AS n, sum(b) AS s FROM t1 HAVING count(*) > 8",
    &[&T1],
);

const GROUP_BY_EXPRESSION: Case = Case::new(
    "group_by_expression",
    "SELECT c, b % 2 AS parity, count(*) AS n, sum(x) AS sx, avg(x) AS ax, min(x) AS lo, max(x) AS hi \
     FROM t1 GROUP BY c, b % 2",
    &[&T1],
);

const HAVING: Case = Case::new(
    "having",
    "SELECT a, count(*) AS n, sum(b) AS s FROM t1 GROUP BY a \
     HAVING count(*) > 1 AND (sum(b) IS NULL OR sum(b) < 8) OR max(b) = 4 OR avg(b) < 0.5",
    &[&T1],
);

const AGGREGATE_OF_AGGREGATE: Case = Case::new(
    "aggregate_of_aggregate",
    "SELECT n, count(*) AS groups FROM (SELECT a, count(*) AS n FROM t1 GROUP BY a) AS s GROUP BY n",
    &[&T1],
);

const DISTINCT: Case = Case::new(
    "distinct",
    "SELECT DISTINCT a, c, b IS NULL AS bn FROM t1",
    &[&T1],
);

const AGGREGATE_OF_DISTINCT: Case = Case::new(
    "aggregate_of_distinct",
    "SELECT c, count(*) AS n FROM (SELECT DISTINCT a, c FROM t1) AS s GROUP BY c",
    &[&T1],
);

#[test]
fn group_by_counts_and_sums() {
    run_case(&GROUP_BY_COUNTS);
}

#[test]
fn filtered_aggregates() {
    run_case(&FILTERED_AGGREGATES);
}

#[test]
fn group_by_min_max() {
    run_case(&GROUP_BY_MIN_MAX);
}

#[test]
fn group_by_min_max_of_text() {
    run_case(&GROUP_BY_MIN_MAX_TEXT);
}

#[test]
fn group_by_distinct_expressions() {
    run_case(&GROUP_BY_DISTINCT_EXPRESSIONS);
}

#[test]
fn group_by_keys_only() {
    run_case(&GROUP_BY_KEYS_ONLY);
}

#[test]
fn global_distinct_totals() {
    run_case(&GLOBAL_DISTINCT_TOTALS);
}

#[test]
fn repeated_subquery() {
    run_case(&REPEATED_SUBQUERY);
}

#[test]
fn global_aggregates() {
    run_case(&GLOBAL_AGGREGATES);
}

#[test]
fn global_min_max() {
    run_case(&GLOBAL_MIN_MAX);
}

#[test]
fn global_extremes() {
    run_case(&GLOBAL_EXTREMES);
}

#[test]
fn global_extremes_and_totals() {
    run_case(&GLOBAL_EXTREMES_AND_TOTALS);
}

#[test]
fn group_by_extremes() {
    run_case(&GROUP_BY_EXTREMES);
}

#[test]
fn global_aggregates_of_filter() {
    run_case(&GLOBAL_AGGREGATES_OF_FILTER);
}

#[test]
fn global_distinct_aggregates() {
    run_case(&GLOBAL_DISTINCT_AGGREGATES);
}

#[test]
fn global_having() {
    run_case(&GLOBAL_HAVING);
}

#[test]
fn group_by_expression_with_floats() {
    run_case(&GROUP_BY_EXPRESSION);
}

#[test]
fn having() {
    run_case(&HAVING);
}

#[test]
fn aggregate_of_aggregate() {
    run_case(&AGGREGATE_OF_AGGREGATE);
}

#[test]
fn distinct() {
    run_case(&DISTINCT);
}

#[test]
fn aggregate_of_distinct() {
    run_case(&AGGREGATE_OF_DISTINCT);
}

// MIN and MAX next to aggregates over other arguments. (Found by this file: a group's rows of
// aggregate arguments are sorted by the whole row, and MIN and MAX used to take its first and
// last entry, which is only right for the aggregate whose argument comes first.)

const MIXED_MIN_MAX: Case = Case::new(
    "mixed_min_max",
    "SELECT a, count(*) AS n, count(b) AS nb, sum(b) AS s, min(b) AS lo, max(b) AS hi, \
     min(c) AS cmin, max(c) AS cmax FROM t1 GROUP BY a",
    &[&T1],
);

const GLOBAL_MIXED_MIN_MAX: Case = Case::new(
    "global_mixed_min_max",
    "SELECT count(c) AS nc, min(b) AS lo, max(b) AS hi, max(x) AS mx FROM t1",
    &[&T1],
);

const HAVING_MIXED_MIN_MAX: Case = Case::new(
    "having_mixed_min_max",
    "SELECT a, count(*) AS n, sum(b) AS s FROM t1 GROUP BY a \
     HAVING count(*) > 1 AND (sum(b) IS NULL OR sum(b) < 8) OR min(c) = 'c'",
    &[&T1],
);

// The extremes walked beside running totals, whose arguments are partly the first extreme's
// column (read from it) and partly other columns (carried beside it), in a mixed select order.
const TOTALS_BESIDE_EXTREMES: Case = Case::new(
    "totals_beside_extremes",
    "SELECT a, count(c) AS nc, max(b) AS hi, avg(b) AS ab, count(*) AS n, sum(a) AS sa, \
     min(c) AS lc, sum(b) AS sb FROM t1 GROUP BY a",
    &[&T1],
);

#[test]
fn totals_beside_extremes() {
    run_case(&TOTALS_BESIDE_EXTREMES);
}

#[test]
fn group_by_min_max_of_different_columns() {
    run_case(&MIXED_MIN_MAX);
}

#[test]
fn global_min_max_of_different_columns() {
    run_case(&GLOBAL_MIXED_MIN_MAX);
}

#[test]
fn having_with_min_of_another_column() {
    run_case(&HAVING_MIXED_MIN_MAX);
}

// ---------------------------------------------------------------------------------------------
// Set operations. SQLite has no EXCEPT ALL or INTERSECT ALL (its oracle numbers each row's
// copies instead), and gives every compound operator the same precedence (its oracle nests).

const UNION: Case = Case::new(
    "union",
    "SELECT a, c FROM t1 UNION SELECT d, c FROM t2",
    &[&T1, &T2],
);

const UNION_ALL: Case = Case::new(
    "union_all",
    "SELECT a, c FROM t1 WHERE b > 1 UNION ALL SELECT a, c FROM t2",
    &[&T1, &T2],
);

const EXCEPT: Case = Case::new(
    "except",
    "SELECT a, c FROM t1 EXCEPT SELECT a, c FROM t2",
    &[&T1, &T2],
);

const EXCEPT_ALL: Case = Case::new(
    "except_all",
    "SELECT a, c FROM t1 EXCEPT ALL SELECT a, c FROM t2",
    &[&T1, &T2],
)
.sqlite(
    "SELECT a, c FROM (SELECT a, c, row_number() OVER (PARTITION BY a, c) AS n FROM t1 \
     EXCEPT SELECT a, c, row_number() OVER (PARTITION BY a, c) AS n FROM t2)",
);

const INTERSECT: Case = Case::new(
    "intersect",
    "SELECT a, c FROM t1 INTERSECT SELECT a, c FROM t2",
    &[&T1, &T2],
);

const INTERSECT_ALL: Case = Case::new(
    "intersect_all",
    "SELECT a, c FROM t1 INTERSECT ALL SELECT a, c FROM t2",
    &[&T1, &T2],
)
.sqlite(
    "SELECT a, c FROM (SELECT a, c, row_number() OVER (PARTITION BY a, c) AS n FROM t1 \
     INTERSECT SELECT a, c, row_number() OVER (PARTITION BY a, c) AS n FROM t2)",
);

const SET_OPERATION_PRECEDENCE: Case = Case::new(
    "set_operation_precedence",
    "SELECT a FROM t1 UNION ALL SELECT a FROM t2 INTERSECT SELECT src FROM edges",
    &[&T1, &T2, &EDGES],
)
.sqlite(
    "SELECT a FROM t1 UNION ALL SELECT * FROM (SELECT a FROM t2 INTERSECT SELECT src FROM edges)",
);

const SET_OPERATION_CHAIN: Case = Case::new(
    "set_operation_chain",
    "SELECT a, c FROM t1 EXCEPT ALL SELECT a, c FROM t2 UNION SELECT a, c FROM t1 WHERE b = 0",
    &[&T1, &T2],
)
.sqlite(
    "SELECT a, c FROM (SELECT a, c, row_number() OVER (PARTITION BY a, c) AS n FROM t1 \
     EXCEPT SELECT a, c, row_number() OVER (PARTITION BY a, c) AS n FROM t2) \
     UNION SELECT a, c FROM t1 WHERE b = 0",
);

const AGGREGATE_OF_UNION: Case = Case::new(
    "aggregate_of_union",
    "SELECT a, count(*) AS n FROM (SELECT a FROM t1 UNION ALL SELECT a FROM t2) AS u GROUP BY a",
    &[&T1, &T2],
);

#[test]
fn union() {
    run_case(&UNION);
}

#[test]
fn union_all() {
    run_case(&UNION_ALL);
}

#[test]
fn except() {
    run_case(&EXCEPT);
}

#[test]
fn except_all() {
    run_case(&EXCEPT_ALL);
}

#[test]
fn intersect() {
    run_case(&INTERSECT);
}

#[test]
fn intersect_all() {
    run_case(&INTERSECT_ALL);
}

#[test]
fn set_operation_precedence() {
    run_case(&SET_OPERATION_PRECEDENCE);
}

#[test]
fn set_operation_chain() {
    run_case(&SET_OPERATION_CHAIN);
}

#[test]
fn aggregate_of_union() {
    run_case(&AGGREGATE_OF_UNION);
}

// ---------------------------------------------------------------------------------------------
// Subqueries, views on views, WITH and WITH RECURSIVE.

const SUBQUERY_IN_FROM: Case = Case::new(
    "subquery_in_from",
    "SELECT q.c, count(*) AS n, sum(q.total) AS s \
     FROM (SELECT t1.c, t1.b + t2.d AS total FROM t1 JOIN t2 ON t1.c = t2.c) AS q \
     WHERE q.total > 1 GROUP BY q.c",
    &[&T1, &T2],
);

const VIEW_ON_VIEWS: Case = Case::new(
    "view_on_views",
    "SELECT w.a, w.s, u.d FROM w LEFT JOIN u ON w.a = u.a",
    &[&T1, &T2],
)
.views(&[
    "CREATE VIEW w AS SELECT a, sum(b) AS s FROM t1 GROUP BY a",
    "CREATE VIEW u AS SELECT DISTINCT a, d FROM t2 WHERE c IS NOT NULL",
]);

const WITH: Case = Case::new(
    "with",
    "WITH s AS (SELECT a, sum(b) AS sb FROM t1 GROUP BY a), \
     u AS (SELECT a, count(*) AS n FROM t2 GROUP BY a) \
     SELECT s.a, s.sb, u.n FROM s JOIN u ON s.a = u.a",
    &[&T1, &T2],
);

const WITH_SELF_JOIN: Case = Case::new(
    "with_self_join",
    "WITH s AS (SELECT a, c FROM t1 WHERE b > 1) \
     SELECT x.a, x.c, y.c AS c2 FROM s AS x JOIN s AS y ON x.a = y.a AND x.c < y.c",
    &[&T1],
);

const REACHABILITY: Case = Case::new(
    "reachability",
    "WITH RECURSIVE reach(src, dst) AS (\
     SELECT src, dst FROM edges \
     UNION SELECT reach.src, edges.dst FROM reach JOIN edges ON reach.dst = edges.src) \
     SELECT src, dst FROM reach",
    &[&EDGES],
);

const BOUNDED_HOPS: Case = Case::new(
    "bounded_hops",
    "WITH RECURSIVE r(node, hops) AS (\
     SELECT src, 0 FROM edges WHERE src = 0 \
     UNION SELECT edges.dst, r.hops + 1 FROM r JOIN edges ON r.node = edges.src WHERE r.hops < 4) \
     SELECT node, min(hops) AS h, count(*) AS n FROM r GROUP BY node",
    &[&EDGES],
);

const PATH_COUNTS: Case = Case::new(
    "path_counts",
    "WITH RECURSIVE p(node, hops) AS (\
     SELECT src, 0 FROM edges WHERE src < 2 \
     UNION ALL SELECT edges.dst, p.hops + 1 FROM p JOIN edges ON p.node = edges.src WHERE p.hops < 3) \
     SELECT node, hops, count(*) AS paths FROM p GROUP BY node, hops",
    &[&EDGES],
);

const RECURSIVE_WITH_HELPER: Case = Case::new(
    "recursive_with_helper",
    "WITH RECURSIVE e2 AS (SELECT src, dst FROM edges WHERE src <> dst), \
     reach(src, dst) AS (SELECT src, dst FROM e2 \
     UNION SELECT reach.src, e2.dst FROM reach JOIN e2 ON reach.dst = e2.src) \
     SELECT src, count(*) AS n FROM reach GROUP BY src",
    &[&EDGES],
);

#[test]
fn subquery_in_from() {
    run_case(&SUBQUERY_IN_FROM);
}

#[test]
fn view_on_views() {
    run_case(&VIEW_ON_VIEWS);
}

#[test]
fn with() {
    run_case(&WITH);
}

#[test]
fn with_self_join() {
    run_case(&WITH_SELF_JOIN);
}

#[test]
fn with_recursive_reachability() {
    run_case(&REACHABILITY);
}

#[test]
fn with_recursive_bounded_hops() {
    run_case(&BOUNDED_HOPS);
}

#[test]
fn with_recursive_union_all_path_counts() {
    run_case(&PATH_COUNTS);
}

#[test]
fn with_recursive_and_a_helper_cte() {
    run_case(&RECURSIVE_WITH_HELPER);
}

// ---------------------------------------------------------------------------------------------
// ORDER BY … LIMIT as a view (top-k). Every order is total over the output, so the top-k
// multiset is unique; NULL placement is always explicit.

const TOP_K: Case = Case::new(
    "top_k",
    "SELECT a, b, c FROM t1 ORDER BY b DESC NULLS LAST, a NULLS FIRST, c NULLS LAST LIMIT 4",
    &[&T1],
);

const TOP_K_OFFSET_HIDDEN_KEY: Case = Case::new(
    "top_k_offset_hidden_key",
    "SELECT a, c FROM t1 ORDER BY b NULLS LAST, a DESC NULLS LAST, c NULLS FIRST LIMIT 3 OFFSET 2",
    &[&T1],
);

const OFFSET_WITHOUT_LIMIT: Case = Case::new(
    "offset_without_limit",
    "SELECT a, b, c FROM t1 ORDER BY a NULLS LAST, b DESC NULLS FIRST, c NULLS LAST OFFSET 3",
    &[&T1],
)
.sqlite("SELECT a, b, c FROM t1 ORDER BY a NULLS LAST, b DESC NULLS FIRST, c NULLS LAST LIMIT -1 OFFSET 3");

const DISTINCT_TOP_K: Case = Case::new(
    "distinct_top_k",
    "SELECT DISTINCT a, c FROM t1 ORDER BY a NULLS LAST, c NULLS LAST LIMIT 3",
    &[&T1],
);

const TOP_K_GROUPS: Case = Case::new(
    "top_k_groups",
    "SELECT c, count(*) AS n FROM t1 GROUP BY c ORDER BY n DESC, c NULLS LAST LIMIT 2",
    &[&T1],
);

const TOP_K_OF_UNION: Case = Case::new(
    "top_k_of_union",
    "SELECT a, c FROM t1 UNION SELECT a, c FROM t2 ORDER BY a DESC NULLS LAST, c NULLS FIRST LIMIT 3",
    &[&T1, &T2],
);

const TOP_K_IN_JOIN: Case = Case::new(
    "top_k_in_join",
    "SELECT t2.a, t2.d, k.b FROM t2 \
     JOIN (SELECT a, b FROM t1 ORDER BY b DESC NULLS LAST, a NULLS LAST LIMIT 3) AS k ON t2.a = k.a",
    &[&T1, &T2],
);

const TOP_K_IN_CTE: Case = Case::new(
    "top_k_in_cte",
    "WITH k AS (SELECT a, c FROM t1 ORDER BY a NULLS LAST, c NULLS LAST LIMIT 4) \
     SELECT a, c FROM t2 EXCEPT SELECT a, c FROM k",
    &[&T1, &T2],
);

#[test]
fn top_k() {
    run_case(&TOP_K);
}

#[test]
fn top_k_with_offset_and_hidden_key() {
    run_case(&TOP_K_OFFSET_HIDDEN_KEY);
}

#[test]
fn offset_without_limit() {
    run_case(&OFFSET_WITHOUT_LIMIT);
}

#[test]
fn distinct_top_k() {
    run_case(&DISTINCT_TOP_K);
}

#[test]
fn top_k_of_groups() {
    run_case(&TOP_K_GROUPS);
}

#[test]
fn top_k_of_union() {
    run_case(&TOP_K_OF_UNION);
}

#[test]
fn top_k_in_join() {
    run_case(&TOP_K_IN_JOIN);
}

#[test]
fn top_k_in_cte() {
    run_case(&TOP_K_IN_CTE);
}

// ---------------------------------------------------------------------------------------------
// Ranking window functions. ROW_NUMBER's orders cover every selected column, so rows that tie
// are identical and the numbered multiset is unique; RANK and DENSE_RANK are unique anyway.

const ROW_NUMBER_TOP_PER_GROUP: Case = Case::new(
    "row_number_top_per_group",
    "SELECT a, b, c FROM (SELECT a, b, c, row_number() OVER \
       (PARTITION BY c ORDER BY b DESC NULLS LAST, a NULLS FIRST) AS rn FROM t1) AS x \
     WHERE rn <= 2",
    &[&T1],
);

const ROW_NUMBER_ALL_ROWS: Case = Case::new(
    "row_number_all_rows",
    "SELECT a, b, c, row_number() OVER (ORDER BY a NULLS LAST, b NULLS LAST, c NULLS LAST) AS rn \
     FROM t1",
    &[&T1],
);

const RANK_WITH_TIES: Case = Case::new(
    "rank_with_ties",
    "SELECT a, c, rank() OVER (PARTITION BY a ORDER BY c NULLS FIRST) AS r FROM t1 WHERE b > 0",
    &[&T1],
);

const DENSE_RANK_TOP: Case = Case::new(
    "dense_rank_top",
    "SELECT * FROM (SELECT a, b, dense_rank() OVER (PARTITION BY a ORDER BY b DESC NULLS LAST) AS d \
       FROM t1) AS x WHERE d <= 2",
    &[&T1],
);

// Ranks cut to a limit are kept by walking each partition up to it (`render::walk`); the
// numbers themselves are selected, and RANK's ties may pass the limit's row count.
const ROW_NUMBER_NUMBERED_TOP: Case = Case::new(
    "row_number_numbered_top",
    "SELECT * FROM (SELECT a, b, c, row_number() OVER \
       (PARTITION BY a ORDER BY b NULLS FIRST, c DESC NULLS LAST) AS rn FROM t1) AS x \
     WHERE rn <= 3",
    &[&T1],
);

const RANK_TOP_WITH_TIES: Case = Case::new(
    "rank_top_with_ties",
    "SELECT * FROM (SELECT a, c, rank() OVER (PARTITION BY a ORDER BY c DESC NULLS FIRST) AS r \
       FROM t1) AS x WHERE r <= 2",
    &[&T1],
);

const ROW_NUMBER_OVER_JOIN: Case = Case::new(
    "row_number_over_join",
    "SELECT a, d, b FROM (SELECT t2.a, t2.d, t1.b, row_number() OVER \
       (PARTITION BY t2.a ORDER BY t1.b DESC NULLS LAST, t2.d NULLS LAST) AS rn \
       FROM t1 JOIN t2 ON t1.a = t2.a) AS w WHERE rn = 1",
    &[&T1, &T2],
);

#[test]
fn row_number_top_per_group() {
    run_case(&ROW_NUMBER_TOP_PER_GROUP);
}

#[test]
fn row_number_all_rows() {
    run_case(&ROW_NUMBER_ALL_ROWS);
}

#[test]
fn rank_with_ties() {
    run_case(&RANK_WITH_TIES);
}

#[test]
fn dense_rank_top() {
    run_case(&DENSE_RANK_TOP);
}

#[test]
fn row_number_numbered_top() {
    run_case(&ROW_NUMBER_NUMBERED_TOP);
}

#[test]
fn rank_top_with_ties() {
    run_case(&RANK_TOP_WITH_TIES);
}

#[test]
fn subscribe_rank_top_with_ties() {
    run_subscribe_case(&RANK_TOP_WITH_TIES);
}

#[test]
fn row_number_over_join() {
    run_case(&ROW_NUMBER_OVER_JOIN);
}

// ---------------------------------------------------------------------------------------------
// Subqueries in expressions: uncorrelated ones, and correlated ones decorrelated into joins on
// their equalities (SQLite runs them as written, once per outer row).

const UNCORRELATED_SUBQUERIES: Case = Case::new(
    "uncorrelated_subqueries",
    "SELECT a, b, (SELECT count(*) FROM t2 WHERE d > 2) AS n FROM t1 \
     WHERE a IN (SELECT a FROM t2 WHERE d > 1) AND b > (SELECT min(d) FROM t2) \
     AND EXISTS (SELECT 1 FROM t2 WHERE c = 'ab')",
    &[&T1, &T2],
);

// Subqueries read after aggregation: in HAVING and in an aggregating select list, grouped
// and global (one row over no rows).
const SUBQUERIES_AFTER_AGGREGATION: Case = Case::new(
    "subqueries_after_aggregation",
    "SELECT a, count(*) AS n, sum(b) AS s, (SELECT count(*) FROM t2) AS m FROM t1 GROUP BY a \
     HAVING count(*) >= (SELECT count(*) FROM t2 WHERE d > 2) - 1",
    &[&T1, &T2],
);

// Correlated on the group key, after aggregation.
const CORRELATED_AFTER_AGGREGATION: Case = Case::new(
    "correlated_after_aggregation",
    "SELECT a, count(*) AS n, (SELECT count(*) FROM t2 WHERE t2.a = t1.a) AS m, \
     EXISTS (SELECT 1 FROM edges WHERE edges.src = t1.a) AS e FROM t1 GROUP BY a \
     HAVING count(*) > (SELECT count(*) FROM t2 WHERE t2.a = t1.a) - 2",
    &[&T1, &T2, &EDGES],
);

const GLOBAL_WITH_SUBQUERY: Case = Case::new(
    "global_with_subquery",
    "SELECT count(*) AS n, (SELECT max(d) FROM t2) AS m, \
     EXISTS (SELECT 1 FROM t2 WHERE c = 'ab') AS e FROM t1 WHERE b > 3",
    &[&T1, &T2],
);

const CORRELATED_EXISTS: Case = Case::new(
    "correlated_exists",
    "SELECT a, b, c FROM t1 \
     WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.a = t1.a AND t2.c = t1.c AND t2.d > 1) \
     OR NOT EXISTS (SELECT 1 FROM t2 WHERE t2.a = t1.b)",
    &[&T1, &T2],
);

const CORRELATED_SCALARS: Case = Case::new(
    "correlated_scalars",
    "SELECT t1.a, t1.b, \
       (SELECT count(*) FROM t2 WHERE t2.a = t1.a) AS n, \
       (SELECT count(t2.c) FROM t2 WHERE t2.a = t1.a AND t2.d = t1.b) AS nc, \
       (SELECT sum(d) FROM t2 WHERE t2.a = t1.a) AS s, \
       (SELECT max(c) FROM t2 WHERE a = t1.b) AS m \
     FROM t1 WHERE t1.b > (SELECT avg(d) FROM t2 WHERE t2.a = t1.a) OR t1.b IS NULL",
    &[&T1, &T2],
);

const CORRELATED_IN: Case = Case::new(
    "correlated_in",
    "SELECT a, b, x FROM t1 WHERE b IN (SELECT d FROM t2 WHERE t2.a = t1.a AND t2.c <> 'b')",
    &[&T1, &T2],
);

// [NOT] IN (subquery) as values, with NULLs on both sides, uncorrelated and correlated.
const IN_SUBQUERY_VALUES: Case = Case::new(
    "in_subquery_values",
    "SELECT a, b, b NOT IN (SELECT d FROM t2) AS n, b IN (SELECT d FROM t2 WHERE t2.a = t1.a) AS i \
     FROM t1 WHERE c NOT IN (SELECT c FROM t2 WHERE d > 3) OR a IN (SELECT src FROM edges)",
    &[&T1, &T2, &EDGES],
);

// A FROM clause joined in WHERE under a correlated subquery's left join: the equality must
// still key the inner join (it moves below the left join).
const JOIN_UNDER_CORRELATED: Case = Case::new(
    "join_under_correlated",
    "SELECT t1.a, t2.d, (SELECT count(*) FROM edges WHERE edges.src = t2.d) AS out \
     FROM t1, t2 WHERE t1.a = t2.a AND t1.b > 1",
    &[&T1, &T2, &EDGES],
);

// Conditions on the preserved side of an outer join, moved below it, and on the other side,
// kept above.
const OUTER_JOINS_FILTERED: Case = Case::new(
    "outer_joins_filtered",
    "SELECT t1.a, t1.b, t2.d, e.dst FROM t1 LEFT JOIN t2 ON t1.a = t2.a \
     RIGHT JOIN edges AS e ON t2.d = e.src \
     WHERE e.dst > 1 AND (t1.b > 1 OR t1.b IS NULL) AND (t2.d IS NULL OR t2.d < 3)",
    &[&T1, &T2, &EDGES],
);

// DISTINCT ON as a top-1 per group; SQLite spells it with row_number. Rows tied on the
// ORDER BY are equal in every output column, so the answer is unique.
const DISTINCT_ON: Case = Case::new(
    "distinct_on",
    "SELECT DISTINCT ON (a) a, b, c FROM t1 ORDER BY a, b DESC NULLS LAST, c NULLS FIRST",
    &[&T1],
)
.sqlite(
    "SELECT a, b, c FROM (SELECT a, b, c, row_number() OVER \
     (PARTITION BY a ORDER BY b DESC NULLS LAST, c NULLS FIRST) AS rn FROM t1) WHERE rn = 1",
);

#[test]
fn distinct_on() {
    run_case(&DISTINCT_ON);
}

// LAG and LEAD with offsets and defaults, and FIRST_VALUE. Rows tied on the window's order are equal in every
// output column, so the answer is unique whichever of them comes first.
const LAG_LEAD: Case = Case::new(
    "lag_lead",
    "SELECT a, b, c, lag(b) OVER (PARTITION BY a ORDER BY b NULLS LAST, c NULLS LAST) AS pb, \
     lead(c, 2, 'none') OVER (PARTITION BY a ORDER BY b NULLS LAST, c NULLS LAST) AS nc, \
     first_value(c) OVER (PARTITION BY a ORDER BY b NULLS LAST, c NULLS LAST) AS fc \
     FROM t1",
    &[&T1],
);

#[test]
fn lag_lead() {
    run_case(&LAG_LEAD);
}

// Aggregates over their default frames: the whole partition without ORDER BY, the partition's
// start to the current row's last peer with it (so ties share a value and the answer does not
// depend on their order), a RANGE frame to the end, FILTER, and the whole table (`OVER ()`).
const WINDOW_AGGREGATES: Case = Case::new(
    "window_aggregates",
    "SELECT a, b, c, x, \
     sum(b) OVER (PARTITION BY a ORDER BY b NULLS LAST) AS rs, \
     count(*) OVER (PARTITION BY a) AS n, \
     count(c) OVER (PARTITION BY a ORDER BY b DESC NULLS FIRST) AS nc, \
     avg(x) OVER (PARTITION BY a) AS ax, \
     min(c) OVER (PARTITION BY a ORDER BY b NULLS LAST \
       RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS mc, \
     sum(b) FILTER (WHERE c = 'a') OVER (PARTITION BY a) AS sa, \
     max(x) OVER () AS mx \
     FROM t1",
    &[&T1],
);

#[test]
fn window_aggregates() {
    run_case(&WINDOW_AGGREGATES);
}

// ROWS and GROUPS frames with offsets on both sides, frames that end before or start after
// the current row (and so may be empty), and the value functions over frames. The ROWS
// frames order by every column but the partition's, so only identical rows tie, and the
// result is unique whichever copy comes first.
const WINDOW_FRAMES: Case = Case::new(
    "window_frames",
    "SELECT a, b, c, x, \
     sum(b) OVER (PARTITION BY a ORDER BY b NULLS LAST, c NULLS LAST, x NULLS LAST \
       ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS s3, \
     count(*) OVER (PARTITION BY a ORDER BY b NULLS LAST, c NULLS LAST, x NULLS LAST \
       ROWS BETWEEN 2 PRECEDING AND 1 PRECEDING) AS c2, \
     max(x) OVER (PARTITION BY a ORDER BY b NULLS LAST \
       GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS gx, \
     sum(x) OVER (PARTITION BY a ORDER BY b NULLS LAST, c NULLS LAST, x NULLS LAST \
       ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS tail, \
     last_value(c) OVER (PARTITION BY a ORDER BY b NULLS LAST, c NULLS LAST, x NULLS LAST \
       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 FOLLOWING) AS lc, \
     nth_value(b, 2) OVER (PARTITION BY a ORDER BY b NULLS LAST, c NULLS LAST, x NULLS LAST) AS n2, \
     first_value(x) OVER (PARTITION BY a ORDER BY b NULLS LAST, c NULLS LAST, x NULLS LAST \
       ROWS BETWEEN 1 FOLLOWING AND 2 FOLLOWING) AS fx, \
     avg(b) OVER (PARTITION BY a ORDER BY b NULLS LAST \
       GROUPS BETWEEN 2 PRECEDING AND 1 PRECEDING) AS ga \
     FROM t1",
    &[&T1],
);

#[test]
fn window_frames() {
    run_case(&WINDOW_FRAMES);
}

// RANGE frames whose offsets are distances in the ORDER BY value, ascending and descending,
// bigint and double, with NULLs first and last (a NULL row's frame is its NULL peers).
const WINDOW_RANGES: Case = Case::new(
    "window_ranges",
    "SELECT a, b, c, x, \
     sum(b) OVER (PARTITION BY a ORDER BY b NULLS LAST \
       RANGE BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS r1, \
     count(*) OVER (PARTITION BY a ORDER BY x DESC NULLS FIRST \
       RANGE BETWEEN 1.5 PRECEDING AND 0.5 PRECEDING) AS r2, \
     max(c) OVER (PARTITION BY a ORDER BY b NULLS FIRST \
       RANGE BETWEEN CURRENT ROW AND 2 FOLLOWING) AS r3, \
     min(x) OVER (ORDER BY b NULLS LAST \
       RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS r4, \
     avg(x) OVER (PARTITION BY a ORDER BY x NULLS LAST \
       RANGE BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS r5 \
     FROM t1",
    &[&T1],
);

#[test]
fn window_ranges() {
    run_case(&WINDOW_RANGES);
}

// percent_rank and cume_dist (ties share their value) and ntile over a total order.
const WINDOW_DISTRIBUTION: Case = Case::new(
    "window_distribution",
    "SELECT a, b, c, x, \
     percent_rank() OVER (PARTITION BY a ORDER BY b NULLS LAST) AS pr, \
     cume_dist() OVER (PARTITION BY a ORDER BY b DESC NULLS FIRST) AS cd, \
     ntile(3) OVER (PARTITION BY a ORDER BY b NULLS LAST, c NULLS LAST, x NULLS LAST) AS nt, \
     cume_dist() OVER () AS whole \
     FROM t1",
    &[&T1],
);

#[test]
fn window_distribution() {
    run_case(&WINDOW_DISTRIBUTION);
}

// Window functions over the groups of an aggregating SELECT: ranked by an aggregate, a
// running total of counts, the previous group's sum, after HAVING.
const WINDOWS_OVER_GROUPS: Case = Case::new(
    "windows_over_groups",
    "SELECT a, count(*) AS n, sum(b) AS sb, \
     rank() OVER (ORDER BY count(*) DESC, a NULLS LAST) AS r, \
     sum(count(*)) OVER (ORDER BY a NULLS LAST) AS running, \
     lag(sum(b)) OVER (ORDER BY a NULLS LAST) AS prev \
     FROM t1 GROUP BY a HAVING count(*) > 1",
    &[&T1],
);

#[test]
fn windows_over_groups() {
    run_case(&WINDOWS_OVER_GROUPS);
}

// string_agg with its own ORDER BY (SQLite's default NULL order is the other way round, so
// both spell it out) and with DISTINCT (SQLite's one-argument group_concat).
const STRING_AGG: Case = Case::new(
    "string_agg",
    "SELECT a, string_agg(c, ',' ORDER BY b DESC, x, c) AS s, \
     string_agg(DISTINCT c, ',' ORDER BY c) AS d, count(*) AS n FROM t1 GROUP BY a",
    &[&T1],
)
.sqlite(
    "SELECT a, string_agg(c, ',' ORDER BY b DESC NULLS FIRST, x NULLS LAST, c NULLS LAST), \
     group_concat(DISTINCT c ORDER BY c), count(*) FROM t1 GROUP BY a",
);

#[test]
fn string_agg() {
    run_case(&STRING_AGG);
}

// LATERAL: the top 2 of t1 per row of t2 (SQLite: row_number over a partition), and bare
// aggregates per row of t2, 0 and NULL where nothing matched (SQLite: scalar subqueries).
const LATERAL_TOP_K: Case = Case::new(
    "lateral_top_k",
    "SELECT t2.d, l.b, l.c, l.x FROM t2 LEFT JOIN LATERAL (SELECT b, c, x FROM t1 \
     WHERE t1.a = t2.a ORDER BY x DESC NULLS LAST, b NULLS LAST, c NULLS LAST LIMIT 2) l ON true",
    &[&T1, &T2],
)
.sqlite(
    "SELECT t2.d, l.b, l.c, l.x FROM t2 LEFT JOIN (SELECT a, b, c, x, row_number() OVER \
     (PARTITION BY a ORDER BY x DESC NULLS LAST, b NULLS LAST, c NULLS LAST) AS rn FROM t1) l \
     ON l.a = t2.a AND l.rn <= 2",
);

const LATERAL_AGGREGATES: Case = Case::new(
    "lateral_aggregates",
    "SELECT t2.d, l.n, l.s FROM t2, LATERAL (SELECT count(*) AS n, sum(b) AS s FROM t1 \
     WHERE t1.a = t2.a AND t1.c = t2.c) l",
    &[&T1, &T2],
)
.sqlite(
    "SELECT t2.d, (SELECT count(*) FROM t1 WHERE t1.a = t2.a AND t1.c = t2.c), \
     (SELECT sum(b) FROM t1 WHERE t1.a = t2.a AND t1.c = t2.c) FROM t2",
);

#[test]
fn lateral_top_k() {
    run_case(&LATERAL_TOP_K);
}

#[test]
fn lateral_aggregates() {
    run_case(&LATERAL_AGGREGATES);
}

// generate_series over the rows before it (SQLite: a recursive CTE of numbers, joined).
const GENERATE_SERIES: Case = Case::new(
    "generate_series",
    "SELECT t1.a, t1.c, g, count(*) AS n FROM t1, generate_series(t1.a, t1.b) AS g \
     GROUP BY t1.a, t1.c, g",
    &[&T1],
)
.sqlite(
    "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 10) \
     SELECT t1.a, t1.c, n, count(*) FROM t1, s WHERE n BETWEEN t1.a AND t1.b \
     GROUP BY t1.a, t1.c, n",
);

#[test]
fn generate_series() {
    run_case(&GENERATE_SERIES);
}

// [NOT] IN (subquery) after aggregation, in HAVING and the select list, with NULLs.
const IN_AFTER_AGGREGATION: Case = Case::new(
    "in_after_aggregation",
    "SELECT a, sum(b) AS s, count(*) IN (SELECT d FROM t2 WHERE t2.a = t1.a) AS hit \
     FROM t1 GROUP BY a HAVING sum(b) NOT IN (SELECT d FROM t2)",
    &[&T1, &T2],
);

#[test]
fn in_after_aggregation() {
    run_case(&IN_AFTER_AGGREGATION);
}

// string_agg over frames (tied rows agree on every output column, so any order among them
// gives the same rows).
const STRING_AGG_WINDOW: Case = Case::new(
    "string_agg_window",
    "SELECT a, b, c, string_agg(c, '-') OVER (PARTITION BY a ORDER BY b NULLS LAST, \
     c NULLS LAST ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s, \
     string_agg(c, '') OVER (PARTITION BY a ORDER BY c NULLS LAST \
       ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS whole FROM t1",
    &[&T1],
)
.sqlite(
    "SELECT a, b, c, string_agg(c, '-') OVER (PARTITION BY a ORDER BY b NULLS LAST, \
     c NULLS LAST ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), \
     string_agg(c, '') OVER (PARTITION BY a ORDER BY c NULLS LAST \
       ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM t1",
);

#[test]
fn string_agg_window() {
    run_case(&STRING_AGG_WINDOW);
}

// ROLLUP and CUBE (with HAVING), against SQLite's spelling: the union of one GROUP BY per
// grouping set.
const GROUPING_SETS: Case = Case::new(
    "grouping_sets",
    "SELECT c, a, count(*) AS n, sum(x) AS sx, grouping(c, a) AS g FROM t1 \
     GROUP BY ROLLUP (c, a) \
     UNION ALL \
     SELECT c, b, count(*), min(x), 9 FROM t1 GROUP BY CUBE (c, b) HAVING count(*) > 1",
    &[&T1],
)
.sqlite(
    "SELECT c, a, count(*), sum(x), 0 FROM t1 GROUP BY c, a \
     UNION ALL SELECT c, NULL, count(*), sum(x), 1 FROM t1 GROUP BY c \
     UNION ALL SELECT NULL, NULL, count(*), sum(x), 3 FROM t1 \
     UNION ALL SELECT c, b, count(*), min(x), 9 FROM t1 GROUP BY c, b HAVING count(*) > 1 \
     UNION ALL SELECT c, NULL, count(*), min(x), 9 FROM t1 GROUP BY c HAVING count(*) > 1 \
     UNION ALL SELECT NULL, b, count(*), min(x), 9 FROM t1 GROUP BY b HAVING count(*) > 1 \
     UNION ALL SELECT NULL, NULL, count(*), min(x), 9 FROM t1 HAVING count(*) > 1",
);

// Window functions over the groups of ROLLUP's sets (SQLite: the union, ranked).
const WINDOWS_OVER_GROUPING_SETS: Case = Case::new(
    "windows_over_grouping_sets",
    "SELECT c, a, sum(b) AS s, rank() OVER (PARTITION BY grouping(a) \
     ORDER BY sum(b) DESC NULLS LAST) AS r FROM t1 GROUP BY ROLLUP (c, a)",
    &[&T1],
)
.sqlite(
    "SELECT c, a, s, rank() OVER (PARTITION BY g ORDER BY s DESC NULLS LAST) FROM \
     (SELECT c, a, sum(b) AS s, 0 AS g FROM t1 GROUP BY c, a \
      UNION ALL SELECT c, NULL, sum(b), 1 FROM t1 GROUP BY c \
      UNION ALL SELECT NULL, NULL, sum(b), 1 FROM t1)",
);

#[test]
fn windows_over_grouping_sets() {
    run_case(&WINDOWS_OVER_GROUPING_SETS);
}

#[test]
fn grouping_sets() {
    run_case(&GROUPING_SETS);
}

#[test]
fn uncorrelated_subqueries() {
    run_case(&UNCORRELATED_SUBQUERIES);
}

#[test]
fn subqueries_after_aggregation() {
    run_case(&SUBQUERIES_AFTER_AGGREGATION);
}

#[test]
fn correlated_after_aggregation() {
    run_case(&CORRELATED_AFTER_AGGREGATION);
}

#[test]
fn global_with_subquery() {
    run_case(&GLOBAL_WITH_SUBQUERY);
}

#[test]
fn correlated_exists() {
    run_case(&CORRELATED_EXISTS);
}

#[test]
fn correlated_scalars() {
    run_case(&CORRELATED_SCALARS);
}

#[test]
fn correlated_in() {
    run_case(&CORRELATED_IN);
}

#[test]
fn in_subquery_values() {
    run_case(&IN_SUBQUERY_VALUES);
}

#[test]
fn join_under_correlated() {
    run_case(&JOIN_UNDER_CORRELATED);
}

#[test]
fn outer_joins_filtered() {
    run_case(&OUTER_JOINS_FILTERED);
}

// ---------------------------------------------------------------------------------------------
// Subscriptions, checked at every progress message.

#[test]
fn subscribe_group_by() {
    run_subscribe_case(&GROUP_BY_COUNTS);
}

#[test]
fn subscribe_min_max() {
    run_subscribe_case(&GROUP_BY_MIN_MAX);
}

#[test]
fn subscribe_full_outer_join() {
    run_subscribe_case(&FULL_JOIN);
}

#[test]
fn subscribe_except_all() {
    run_subscribe_case(&EXCEPT_ALL);
}

#[test]
fn subscribe_reachability() {
    run_subscribe_case(&REACHABILITY);
}

#[test]
fn subscribe_top_k() {
    run_subscribe_case(&TOP_K);
}

#[test]
fn subscribe_correlated_scalars() {
    run_subscribe_case(&CORRELATED_SCALARS);
}

// ---------------------------------------------------------------------------------------------
// Windows: `tumble` and `hop` grouping keys against windows SQLite computes with integer
// arithmetic. Event times are `(a - 2) * 7 + b` seconds after the epoch, so some are before it
// (window starts round down, not toward zero) and NULL when `a` or `b` is; a NULL time is its
// own tumbling window and belongs to no hopping window. Starts and ends are compared as epoch
// seconds.

const TUMBLE: Case = Case::new(
    "tumble",
    "SELECT CAST(extract(epoch FROM tumble(TIMESTAMP '1970-01-01' + ((a - 2) * 7 + b) * INTERVAL '1 second', INTERVAL '5 seconds')) AS bigint) AS w, \
     CAST(extract(epoch FROM tumble_end(TIMESTAMP '1970-01-01' + ((a - 2) * 7 + b) * INTERVAL '1 second', INTERVAL '5 seconds')) AS bigint) AS e, \
     count(*) AS n, sum(x) AS sx, max(c) AS hi \
     FROM t1 GROUP BY tumble(TIMESTAMP '1970-01-01' + ((a - 2) * 7 + b) * INTERVAL '1 second', INTERVAL '5 seconds')",
    &[&T1],
)
.sqlite(
    "SELECT w, w + 5 AS e, count(*) AS n, sum(x) AS sx, max(c) AS hi \
     FROM (SELECT x, c, (CASE WHEN t >= 0 THEN t / 5 ELSE -((4 - t) / 5) END) * 5 AS w \
           FROM (SELECT x, c, (a - 2) * 7 + b AS t FROM t1)) \
     GROUP BY w",
);

const HOP: Case = Case::new(
    "hop",
    "SELECT c, CAST(extract(epoch FROM hop(TIMESTAMP '1970-01-01' + ((a - 2) * 7 + b) * INTERVAL '1 second', INTERVAL '6 seconds', INTERVAL '2 seconds')) AS bigint) AS w, \
     CAST(extract(epoch FROM hop_end(TIMESTAMP '1970-01-01' + ((a - 2) * 7 + b) * INTERVAL '1 second', INTERVAL '6 seconds', INTERVAL '2 seconds')) AS bigint) AS e, \
     count(*) AS n, sum(x) AS sx, max(b) AS hi \
     FROM t1 GROUP BY c, hop(TIMESTAMP '1970-01-01' + ((a - 2) * 7 + b) * INTERVAL '1 second', INTERVAL '6 seconds', INTERVAL '2 seconds')",
    &[&T1],
)
.sqlite(
    "SELECT c, w, w + 6 AS e, count(*) AS n, sum(x) AS sx, max(b) AS hi \
     FROM (SELECT c, x, b, ((CASE WHEN t >= 0 THEN t / 2 ELSE -((1 - t) / 2) END) - k.i) * 2 AS w \
           FROM (SELECT c, x, b, (a - 2) * 7 + b AS t FROM t1 WHERE a IS NOT NULL AND b IS NOT NULL), \
                (SELECT 0 AS i UNION ALL SELECT 1 UNION ALL SELECT 2) AS k) \
     GROUP BY c, w",
);

/// Two hopping windows over different times: every pair of windows a row belongs to.
const TWO_HOPS: Case = Case::new(
    "two_hops",
    "SELECT CAST(extract(epoch FROM hop(TIMESTAMP '1970-01-01' + a * INTERVAL '1 second', INTERVAL '4 seconds', INTERVAL '2 seconds')) AS bigint) AS wa, \
     CAST(extract(epoch FROM hop(TIMESTAMP '1970-01-01' + b * INTERVAL '1 second', INTERVAL '3 seconds', INTERVAL '3 seconds')) AS bigint) AS wb, \
     count(*) AS n \
     FROM t1 WHERE c <> 'ab' GROUP BY 1, 2",
    &[&T1],
)
.sqlite(
    "SELECT (a / 2 - k.i) * 2 AS wa, (b / 3) * 3 AS wb, count(*) AS n \
     FROM t1, (SELECT 0 AS i UNION ALL SELECT 1) AS k \
     WHERE c <> 'ab' AND a IS NOT NULL AND b IS NOT NULL GROUP BY wa, wb",
);

#[test]
fn tumbling_windows() {
    run_case(&TUMBLE);
}

#[test]
fn hopping_windows() {
    run_case(&HOP);
    run_case(&TWO_HOPS);
}

#[test]
fn subscribe_hopping_windows() {
    run_subscribe_case(&HOP);
}

// Subqueries correlated other than by equalities: by comparisons, under OR, in the select
// list, beside equalities, with NULLs on both sides (read from the outer query's domain).
const CORRELATED_COMPARISONS: Case = Case::new(
    "correlated_comparisons",
    "SELECT t2.a, t2.d, (SELECT count(*) FROM t1 WHERE t1.b < t2.d) AS n, \
     EXISTS (SELECT 1 FROM t1 WHERE t1.a = t2.a AND t1.b <> t2.d) AS e, \
     (SELECT max(t1.b + t2.d) FROM t1 WHERE t1.c = t2.c) AS m, \
     t2.a NOT IN (SELECT t1.b FROM t1 WHERE t1.a >= t2.d) AS ni, \
     (SELECT count(*) FROM t1 WHERE t1.b IS NOT DISTINCT FROM t2.d) AS same FROM t2",
    &[&T1, &T2],
)
.sqlite(
    "SELECT t2.a, t2.d, (SELECT count(*) FROM t1 WHERE t1.b < t2.d), \
     EXISTS (SELECT 1 FROM t1 WHERE t1.a = t2.a AND t1.b <> t2.d), \
     (SELECT max(t1.b + t2.d) FROM t1 WHERE t1.c = t2.c), \
     t2.a NOT IN (SELECT t1.b FROM t1 WHERE t1.a >= t2.d), \
     (SELECT count(*) FROM t1 WHERE t1.b IS t2.d) FROM t2",
);

#[test]
fn correlated_comparisons() {
    run_case(&CORRELATED_COMPARISONS);
}

// The same in WHERE: semi-joins and anti-joins through the domain.
const CORRELATED_IN_WHERE: Case = Case::new(
    "correlated_in_where",
    "SELECT t2.a, t2.d FROM t2 WHERE t2.a IN (SELECT t1.a FROM t1 WHERE t1.b > t2.d) \
     AND NOT EXISTS (SELECT 1 FROM t1 WHERE t1.c = t2.c AND (t1.b = t2.d OR t1.a > t2.d + 2)) \
     AND EXISTS (SELECT 1 FROM t1 WHERE t1.a = t2.a AND coalesce(t1.b, 0) <= coalesce(t2.d, 0))",
    &[&T1, &T2],
);

#[test]
fn correlated_in_where() {
    run_case(&CORRELATED_IN_WHERE);
}

// A LATERAL subquery correlated by a comparison: the two smallest larger values per row.
const LATERAL_COMPARISON: Case = Case::new(
    "lateral_comparison",
    "SELECT t2.d, l.b, l.n FROM t2, LATERAL (SELECT b, t2.a + 1 AS n FROM t1 \
     WHERE t1.b > t2.d ORDER BY b LIMIT 2) l",
    &[&T1, &T2],
)
.sqlite(
    "SELECT d, b, n FROM (SELECT t2.d, t1.b, t2.a + 1 AS n, row_number() OVER \
     (PARTITION BY t2.rowid ORDER BY t1.b) AS rn FROM t2 JOIN t1 ON t1.b > t2.d) WHERE rn <= 2",
);

#[test]
fn lateral_comparison() {
    run_case(&LATERAL_COMPARISON);
}
