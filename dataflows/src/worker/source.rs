//! A source's share on one worker: the reader's batches turned into timed updates.
//!
//! Rows arrive already decoded from the reader's thread. Here they get their logical times:
//!
//! - **Ingestion time** (no `event_time`): rows go in at the worker's current input time, like
//!   table writes. The worker then asks the coordinator's clock to advance time, so the rows
//!   are sealed (and visible) within a millisecond or so rather than at the next tick.
//! - **Event time**: a row's time is its event-time column. This worker's frontier trails the
//!   largest event time it has seen by `lateness`; a row older than the frontier is counted
//!   late and placed at the frontier. A worker that has seen nothing for `idle_timeout` lets
//!   its frontier follow the clock (less `lateness`), so a quiet partition or a worker with no
//!   partitions does not hold every view back. The source's frontier is the least of its
//!   workers' frontiers, which timely computes for us.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use differential_dataflow::input::InputSession;

use crate::connector::{ReaderGuard, SourceBatch, SourceSpec, SourceStats};
use crate::error::EvalError;
use crate::plan::Diff;
use crate::render::Time;
use crate::row::Row;

/// Batches taken from one source per worker iteration, so one busy source cannot starve
/// commands, reads and other sources.
const BATCHES_PER_STEP: usize = 16;

pub(super) struct SourceInput {
    pub spec: SourceSpec,
    pub oks: InputSession<Time, Row, Diff>,
    pub errs: InputSession<Time, EvalError, Diff>,
    pub batches: crossbeam_channel::Receiver<SourceBatch>,
    pub stats: Arc<SourceStats>,
    /// Stops the reader when the source is dropped.
    pub _reader: Option<ReaderGuard>,
    /// Event time: the time before which this worker will send nothing more.
    pub frontier: Time,
    pub max_seen: Time,
    /// The clock's time when this worker last received a row (event time idleness).
    pub last_data: Time,
}

impl SourceInput {
    pub fn event_time(&self) -> bool {
        self.spec.event_time.is_some()
    }

    /// Inserts what the reader has sent; returns (rows inserted, whether batches remain).
    pub fn drain(&mut self, clock: Time) -> (usize, bool) {
        let mut inserted = 0;
        for _ in 0..BATCHES_PER_STEP {
            let Ok(batch) = self.batches.try_recv() else {
                return (inserted, false);
            };
            inserted += self.insert(batch, clock);
        }
        (inserted, !self.batches.is_empty())
    }

    fn insert(&mut self, batch: SourceBatch, clock: Time) -> usize {
        let n = batch.rows.len();
        if !batch.errors.is_empty() {
            self.stats.record_errors(&batch.errors);
            if self.spec.errors_to_stream {
                let at = self.errs.time().to_owned();
                let at = if self.event_time() {
                    self.frontier.max(at)
                } else {
                    at
                };
                for message in batch.errors {
                    let e = EvalError::Source(format!("source \"{}\": {message}", self.spec.name));
                    self.errs.update_at(e, at, 1);
                }
            }
        }
        if self.event_time() {
            // Lateness is judged record by record, against the frontier as it stands after
            // the records before (so it does not depend on how records were batched).
            let mut late = 0u64;
            let mut frontier = self.frontier;
            for (row, diff) in batch.rows {
                let t = match self.spec.event_time_of(&row) {
                    Some(t) if t >= frontier => {
                        self.max_seen = self.max_seen.max(t);
                        frontier = frontier.max(self.max_seen.saturating_sub(self.spec.lateness));
                        t
                    }
                    _ => {
                        late += 1;
                        frontier
                    }
                };
                self.oks.update_at(row, t, diff);
            }
            if late > 0 {
                self.stats.late.fetch_add(late, Ordering::Relaxed);
            }
            if n > 0 {
                self.last_data = clock;
            }
            self.advance_event_time(frontier);
        } else {
            for (row, diff) in batch.rows {
                self.oks.update(row, diff);
            }
        }
        self.stats.rows.fetch_add(n as u64, Ordering::Relaxed);
        self.stats.bytes.fetch_add(batch.bytes, Ordering::Relaxed);
        if batch.caught_up {
            let at = if self.event_time() {
                self.max_seen
            } else {
                *self.oks.time()
            };
            self.stats.caught_up_time.fetch_max(at, Ordering::AcqRel);
            self.stats.caught_up.fetch_add(1, Ordering::AcqRel);
            let mut at = self.stats.caught_up_at.lock().expect("lock");
            if self.stats.is_caught_up() && at.is_none() {
                *at = Some(std::time::Instant::now());
                tracing::info!(
                    source = self.spec.name,
                    rows = self.stats.rows.load(Ordering::Relaxed),
                    "source caught up"
                );
            }
        }
        n
    }

    /// Event time: moves this worker's frontier forward to `target` (never back).
    fn advance_event_time(&mut self, target: Time) {
        if target > self.frontier {
            self.frontier = target;
            self.oks.advance_to(target);
            self.errs.advance_to(target);
        }
        self.oks.flush();
        self.errs.flush();
    }

    /// Time passes on the clock: ingestion-time inputs follow it; event-time inputs follow it
    /// (less lateness) only once idle.
    pub fn clock(&mut self, upper: Time) {
        if self.event_time() {
            if upper.saturating_sub(self.last_data) >= self.spec.idle_timeout {
                self.advance_event_time(upper.saturating_sub(self.spec.lateness));
            }
        } else {
            self.oks.advance_to(upper);
            self.errs.advance_to(upper);
            self.oks.flush();
            self.errs.flush();
        }
    }

    /// Ingestion time: sends what was inserted so far (it is sealed by the next advance).
    pub fn flush(&mut self) {
        self.oks.flush();
        self.errs.flush();
    }
}
