//! Counters the server exports at `/metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64};

#[derive(Default, Debug)]
pub struct Metrics {
    /// Rows inserted or deleted through writes.
    pub rows_written: AtomicU64,
    /// Write statements and ingest requests applied.
    pub writes: AtomicU64,
    /// Reads answered (SELECT and view reads).
    pub reads: AtomicU64,
    /// Statements that failed.
    pub errors: AtomicU64,
    /// Open subscriptions.
    pub subscriptions: AtomicI64,
}
