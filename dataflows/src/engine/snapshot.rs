//! Snapshots: table and source contents at the compaction frontier, so the log before it can
//! go.
//!
//! Taken on the clock's tick when the log has grown past [`LOG_BYTES`] or the configured
//! interval (`EngineConfig::snapshot_interval`, ten minutes by default) has passed since the
//! last one. The snapshot is exact at the compaction frontier (`since`), the
//! earliest time anyone can still read, so the history inside the retention window stays in
//! the log and survives a restart unchanged. A snapshot waits until every source's frontier
//! has passed that time (a source's rows there must all be logged and in): while one lags,
//! the snapshot is put off.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Inner;
use crate::command::Target;
use crate::error::EvalError;
use crate::sql::ItemKind;
use crate::storage::{Snapshot, SourceSnapshot};

/// Log size that triggers a snapshot.
const LOG_BYTES: u64 = 256 << 20;

/// Takes a snapshot on a thread of its own if one is due.
pub(super) fn maybe_snapshot(inner: &Arc<Inner>) {
    let Some(d) = inner.durability.clone() else {
        return;
    };
    let now = super::now_ms();
    let last = d.last_snapshot.load(Ordering::Relaxed);
    let bytes = d.storage.log_bytes();
    let due = bytes >= LOG_BYTES
        || (bytes > 0
            && now.saturating_sub(last) >= inner.config.snapshot_interval.as_millis() as u64);
    if !due || d.snapshotting.swap(true, Ordering::AcqRel) {
        return;
    }
    let inner = Arc::clone(inner);
    let spawned = std::thread::Builder::new()
        .name("freshet-snapshot".into())
        .spawn(move || {
            match take(&inner) {
                Ok(Some(ts)) => tracing::info!(ts, "snapshot taken"),
                Ok(None) => {}
                Err(e) => tracing::warn!("snapshot failed (the log is kept): {e}"),
            }
            if let Some(d) = &inner.durability {
                d.last_snapshot.store(super::now_ms(), Ordering::Relaxed);
                d.snapshotting.store(false, Ordering::Release);
            }
        });
    if spawned.is_err() {
        d.snapshotting.store(false, Ordering::Release);
    }
}

/// Reads every table at the compaction frontier and stores the result.
pub(super) fn take(inner: &Arc<Inner>) -> crate::error::Result<Option<u64>> {
    let Some(d) = inner.durability.clone() else {
        return Ok(None);
    };
    let (ts, seq, ddl, positions, pending, pending_sources) = {
        let coord = inner.lock()?;
        let ts = coord.since;
        let sources: Vec<_> = coord
            .catalog
            .items()
            .filter(|i| i.kind == ItemKind::Source)
            .map(|i| i.id)
            .collect();
        {
            let stats = inner.shared.stats.lock().expect("lock");
            let lagging = sources.iter().any(|id| {
                stats
                    .get(id)
                    .is_none_or(|s| s.frontier.load(Ordering::Relaxed) <= ts)
            });
            if lagging {
                return Ok(None);
            }
        }
        let (seq, ddl, positions) = d.cut_at(ts);
        let mut pending = Vec::new();
        for item in coord.catalog.items().filter(|i| i.kind == ItemKind::Table) {
            pending.push((item.id, inner.start_peek(Target::Item(item.id), ts)?));
        }
        let mut pending_sources = Vec::new();
        for id in sources {
            let oks = inner.start_peek(Target::Item(id), ts)?;
            let errs = inner.start_peek(Target::Errors(id), ts)?;
            pending_sources.push((id, oks, errs));
        }
        (ts, seq, ddl, positions, pending, pending_sources)
    };
    let mut tables = Vec::with_capacity(pending.len());
    for (id, p) in pending {
        tables.push((id, inner.finish_peek(p)?));
    }
    let mut positions: std::collections::BTreeMap<_, _> = positions.into_iter().collect();
    let mut sources = Vec::with_capacity(pending_sources.len());
    for (id, oks, errs) in pending_sources {
        let rows = inner.finish_peek(oks)?;
        let errors = inner
            .finish_peek(errs)?
            .into_iter()
            .map(|(row, d)| {
                let message = row.get(0).to_string();
                (EvalError::Source(message), d)
            })
            .collect();
        sources.push(SourceSnapshot {
            source: id,
            rows,
            errors,
            positions: positions.remove(&id).unwrap_or_default(),
        });
    }
    d.storage
        .snapshot(Snapshot {
            ts,
            seq,
            ddl,
            tables,
            sources,
        })
        .map_err(crate::error::Error::Storage)?;
    Ok(Some(ts))
}
