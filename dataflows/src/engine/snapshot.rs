//! Snapshots: table contents at the compaction frontier, so the log before it can go.
//!
//! Taken on the clock's tick when the log has grown past [`LOG_BYTES`] or [`INTERVAL`] has
//! passed since the last one. The snapshot is exact at the compaction frontier (`since`), the
//! earliest time anyone can still read, so the history inside the retention window stays in
//! the log and survives a restart unchanged.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::Inner;
use crate::command::Target;
use crate::sql::ItemKind;
use crate::storage::Snapshot;

/// Log size that triggers a snapshot.
const LOG_BYTES: u64 = 256 << 20;
/// Longest time between snapshots while something was written.
const INTERVAL: Duration = Duration::from_secs(600);

/// Takes a snapshot on a thread of its own if one is due.
pub(super) fn maybe_snapshot(inner: &Arc<Inner>) {
    let Some(d) = inner.durability.clone() else {
        return;
    };
    let now = super::now_ms();
    let last = d.last_snapshot.load(Ordering::Relaxed);
    let bytes = d.storage.log_bytes();
    let due = bytes >= LOG_BYTES
        || (bytes > 0 && now.saturating_sub(last) >= INTERVAL.as_millis() as u64);
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
    let (ts, seq, ddl, pending) = {
        let coord = inner.lock()?;
        let ts = coord.since;
        let (seq, ddl) = d.cut_at(ts);
        let mut pending = Vec::new();
        for item in coord.catalog.items().filter(|i| i.kind == ItemKind::Table) {
            pending.push((item.id, inner.start_peek(Target::Item(item.id), ts)?));
        }
        (ts, seq, ddl, pending)
    };
    let mut tables = Vec::with_capacity(pending.len());
    for (id, p) in pending {
        tables.push((id, inner.finish_peek(p)?));
    }
    d.storage
        .snapshot(Snapshot {
            ts,
            seq,
            ddl,
            tables,
        })
        .map_err(crate::error::Error::Storage)?;
    Ok(Some(ts))
}
