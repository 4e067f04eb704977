//! Replaying the data directory after a restart.
//!
//! The workers start with their inputs at the earliest time to replay. The snapshot's catalog
//! statements run again, its table and source contents go in at the snapshot's time, and then
//! every logged statement, write and source batch follows in log order, at its original
//! timestamps. The retained history is therefore the same as before the restart. Time then
//! continues after the last recovered timestamp (or the clock, if later), and sources read on
//! from the positions stored with their last logged batches.
//!
//! Sources log from the workers, so a record after the snapshot's cut may hold rows at or
//! before the snapshot's time; the snapshot already has those, and replay skips them.
//!
//! Replay runs on its own thread while the service is already listening: requests get
//! `recovering` (503) until it is done, and `/readyz` reports its progress.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use std::collections::BTreeMap;

use super::{now_ms, Engine};
use crate::command::Command;
use crate::plan::GlobalId;
use crate::render::Time;
use crate::storage::{LogRecord, Recovered, SourcePositions};

thread_local! {
    static REPLAYING: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is the one replaying (it may use the engine while others wait).
pub(crate) fn on_recovery_thread() -> bool {
    REPLAYING.with(|r| r.get())
}

/// How far replay has come.
#[derive(Debug, Default)]
pub struct Progress {
    pub rows_total: AtomicU64,
    pub rows_done: AtomicU64,
    pub records_total: AtomicU64,
    pub records_done: AtomicU64,
    pub finished: AtomicBool,
    pub millis: AtomicU64,
}

/// The earliest time replay will write at, if there is anything to replay.
pub(crate) fn earliest(recovered: &Recovered) -> Option<Time> {
    let snap = recovered.snapshot.as_ref().map(|s| s.ts);
    let first_write = recovered
        .records
        .iter()
        .filter_map(|(_, r)| r.min_time())
        .min();
    match (snap, first_write) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Where each source's readers stood at the end of the log.
pub(crate) fn source_positions(recovered: &Recovered) -> BTreeMap<GlobalId, SourcePositions> {
    let mut out: BTreeMap<GlobalId, SourcePositions> = BTreeMap::new();
    if let Some(snap) = &recovered.snapshot {
        for s in &snap.sources {
            out.insert(s.source, s.positions.clone());
        }
    }
    for (_, r) in &recovered.records {
        if let LogRecord::Source {
            source,
            worker,
            peers,
            positions,
            ..
        } = r
        {
            out.entry(*source)
                .or_default()
                .merge(*worker, *peers, positions);
        }
    }
    out
}

/// Replays everything; call on a thread of its own.
pub(crate) fn replay(engine: &Engine, recovered: Recovered) {
    REPLAYING.with(|r| r.set(true));
    let started = Instant::now();
    let inner = &engine.inner;
    let progress = &inner.recovery;
    let rows_in = |rows: &[(crate::row::Row, crate::plan::Diff)]| rows.len() as u64;
    let mut total_rows = 0;
    if let Some(s) = &recovered.snapshot {
        total_rows += s.tables.iter().map(|(_, r)| rows_in(r)).sum::<u64>();
    }
    for (_, r) in &recovered.records {
        match r {
            LogRecord::Write { rows, .. } => total_rows += rows_in(rows),
            LogRecord::Source { rows, .. } => total_rows += rows.len() as u64,
            LogRecord::Ddl { .. } => {}
        }
    }
    // Rows at or before the snapshot's time are in the snapshot.
    let covered = recovered.snapshot.as_ref().map(|s| s.ts);
    let after = |t: Time| covered.is_none_or(|c| t > c);
    // The latest time each source had rows at: event-time sources resume with their frontier
    // no earlier than it less their lateness, so no new row lands at a time already complete.
    let mut source_max: BTreeMap<GlobalId, Time> = BTreeMap::new();
    progress.rows_total.store(total_rows, Ordering::Relaxed);
    progress
        .records_total
        .store(recovered.records.len() as u64, Ordering::Relaxed);
    let durability = inner.durability.clone();
    let mut last_ts: Time = 0;
    if let Some(snap) = recovered.snapshot {
        for sql in &snap.ddl {
            if let Some(d) = &durability {
                d.note_recovered(0, &LogRecord::Ddl { sql: sql.clone() });
            }
            run_ddl(engine, sql);
        }
        for (table, rows) in snap.tables {
            let n = rows_in(&rows);
            write(engine, snap.ts, table, rows);
            progress.rows_done.fetch_add(n, Ordering::Relaxed);
        }
        for s in snap.sources {
            if let Some(d) = &durability {
                d.note_snapshot_positions(s.source, s.positions.clone());
            }
            let n = rows_in(&s.rows);
            if !s.rows.is_empty() {
                source_max.insert(s.source, snap.ts);
            }
            let rows = s.rows.into_iter().map(|(r, d)| (r, snap.ts, d)).collect();
            let errors = s.errors.into_iter().map(|(e, d)| (e, snap.ts, d)).collect();
            replay_source(engine, s.source, rows, errors);
            progress.rows_done.fetch_add(n, Ordering::Relaxed);
        }
        last_ts = snap.ts;
    }
    for (seq, record) in recovered.records {
        if let Some(d) = &durability {
            d.note_recovered(seq, &record);
        }
        match record {
            LogRecord::Ddl { sql } => run_ddl(engine, &sql),
            LogRecord::Write { ts, table, rows } => {
                let n = rows_in(&rows);
                if after(ts) {
                    write(engine, ts, table, rows);
                    last_ts = last_ts.max(ts);
                }
                progress.rows_done.fetch_add(n, Ordering::Relaxed);
            }
            LogRecord::Source {
                source,
                rows,
                errors,
                ..
            } => {
                let n = rows.len() as u64;
                if let Some(t) = rows.iter().map(|(_, t, _)| *t).max() {
                    let m = source_max.entry(source).or_default();
                    *m = (*m).max(t);
                }
                let rows: Vec<_> = rows.into_iter().filter(|(_, t, _)| after(*t)).collect();
                let errors: Vec<_> = errors.into_iter().filter(|(_, t, _)| after(*t)).collect();
                let latest = rows
                    .iter()
                    .map(|(_, t, _)| *t)
                    .chain(errors.iter().map(|(_, t, _)| *t))
                    .max();
                if let Some(t) = latest {
                    last_ts = last_ts.max(t);
                    replay_source(engine, source, rows, errors);
                }
                progress.rows_done.fetch_add(n, Ordering::Relaxed);
            }
        }
        progress.records_done.fetch_add(1, Ordering::Relaxed);
    }
    // Time continues after the last recovered timestamp.
    if let Ok(mut coord) = inner.lock_any() {
        let upper = coord.upper.max(last_ts + 1).max(now_ms());
        coord.upper = upper;
        let _ = inner.send(Command::Advance { upper });
        // Sources close their replay inputs and read on from their positions.
        let _ = inner.send(Command::Recovered {
            latest: source_max.into_iter().collect(),
        });
        coord.recovering = None;
    }
    REPLAYING.with(|r| r.set(false));
    progress
        .millis
        .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
    progress.finished.store(true, Ordering::Release);
    tracing::info!(
        rows = total_rows,
        millis = started.elapsed().as_millis() as u64,
        "recovery finished"
    );
}

fn run_ddl(engine: &Engine, sql: &str) {
    if let Err(e) = engine.execute(sql) {
        // It failed the same way when it first ran after something it depends on changed;
        // statements are logged only when they succeed, so this is worth a warning.
        tracing::warn!(error = %e.error, sql, "a logged statement failed on replay");
    }
}

fn write(
    engine: &Engine,
    ts: Time,
    table: crate::plan::GlobalId,
    rows: Vec<(crate::row::Row, crate::plan::Diff)>,
) {
    let inner = &engine.inner;
    let Ok(mut coord) = inner.lock() else { return };
    let Some(item) = coord.catalog.get(table).cloned() else {
        tracing::warn!(
            table,
            "a logged write names a table that no longer exists; skipped"
        );
        return;
    };
    if !item.primary_key.is_empty() {
        let _ =
            super::execute::check_keys(&mut coord, table, &item.primary_key, &item.schema, &rows);
    }
    coord.upper = coord.upper.max(ts + 1);
    let _ = inner.write(ts, table, rows);
}

/// Hands a source's logged rows back to its workers, at their original times.
fn replay_source(
    engine: &Engine,
    source: GlobalId,
    rows: Vec<(crate::row::Row, Time, crate::plan::Diff)>,
    errors: Vec<(crate::error::EvalError, Time, crate::plan::Diff)>,
) {
    let inner = &engine.inner;
    let Ok(coord) = inner.lock() else { return };
    if coord.catalog.get(source).is_none() {
        tracing::warn!(
            source,
            "logged rows name a source that no longer exists; skipped"
        );
        return;
    }
    let _ = inner.send(Command::ReplaySource {
        id: source,
        rows,
        errors,
    });
}
