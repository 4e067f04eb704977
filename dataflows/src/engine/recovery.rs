//! Replaying the data directory after a restart.
//!
//! The workers start with their inputs at the earliest time to replay. The snapshot's catalog
//! statements run again, its table contents go in at the snapshot's time, and then every
//! logged statement and write follows in log order, writes at their original timestamps. The
//! retained history is therefore the same as before the restart. Time then continues after
//! the last recovered timestamp (or the clock, if later).
//!
//! Replay runs on its own thread while the service is already listening: requests get
//! `recovering` (503) until it is done, and `/readyz` reports its progress.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use super::{now_ms, Engine};
use crate::command::Command;
use crate::render::Time;
use crate::storage::{LogRecord, Recovered};

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
    let first_write = recovered.records.iter().find_map(|(_, r)| match r {
        LogRecord::Write { ts, .. } => Some(*ts),
        LogRecord::Ddl { .. } => None,
    });
    match (snap, first_write) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
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
        if let LogRecord::Write { rows, .. } = r {
            total_rows += rows_in(rows);
        }
    }
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
                write(engine, ts, table, rows);
                last_ts = last_ts.max(ts);
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
