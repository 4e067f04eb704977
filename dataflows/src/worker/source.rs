//! A source's share on one worker: the reader's batches turned into timed updates.
//!
//! Rows arrive already decoded from the reader's thread. Here they get their logical times:
//!
//! - **Ingestion time** (no `event_time`): rows go in at the worker's current input time, like
//!   table writes. The worker then asks the coordinator's clock to advance time, so the rows
//!   are sealed (and visible) within a millisecond or so rather than at the next tick.
//!   With several workers, each takes its reader's batches at most once per input time
//!   (up to the reader's queue, `BATCHES_PER_STEP` batches): readers of one source make their
//!   shares of one order (a generator's strides, a topic's partitions by time), and a worker
//!   that took batches again and again while another had not yet moved to the next time put
//!   neighbouring rows of that order at different times. Every group over them (a count
//!   per auction and window) then changed at twice the timestamps, and views that redo work
//!   per change paid for each (Nexmark q5 with two workers: 1.42M updates of its counts
//!   against 0.63M with one; 0.94M with this rule). With one worker there is nothing to keep
//!   level, and the rule only costs throughput, so it is off.
//! - **Event time**: a row's time is its event-time column. This worker's frontier trails the
//!   largest event time it has seen by `lateness`; a row older than the frontier is counted
//!   late and placed at the frontier. A worker that has seen nothing for `idle_timeout` lets
//!   its frontier follow the clock (less `lateness`), so a quiet partition or a worker with no
//!   partitions does not hold every view back. The source's frontier is the least of its
//!   workers' frontiers, which timely computes for us.
//!
//! With a data directory, every batch is logged with the times its rows got and the reader's
//! positions after it, and the worker holds the source's frontier at the earliest time of a
//! batch not yet durable. No read, view or subscriber therefore sees a source row that a
//! crash could lose; after a restart the logged rows come back at their times (through a
//! replay input that closes when recovery is done) and the reader resumes after them.
//! Workers of other processes in a cluster log the same way through worker 0 (`LogTo`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use differential_dataflow::input::InputSession;

use crate::connector::{ReaderGuard, SourceBatch, SourceSpec, SourceStats};
use crate::engine::durable::Durability;
use crate::error::EvalError;
use crate::plan::{Diff, GlobalId};
use crate::render::Time;
use crate::row::Row;
use crate::storage::LogRecord;

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
    /// The frontier the inputs would be at if nothing waited to be durable.
    pub target: Time,
    /// Where batches are logged, with a data directory.
    pub log: Option<SourceLog>,
    /// Inputs for the rows logged before a restart, open until recovery is done; the reader's
    /// batches wait meanwhile (they must come after every recovered time).
    pub replay: Option<ReplayInputs>,
    /// Ingestion time with several workers: take batches at most once per input time (see
    /// the module docs).
    pub once_per_time: bool,
    /// The input time this worker last took rows at.
    pub drained_at: Option<Time>,
}

/// A source's inputs for rows logged before a restart (rows, errors).
pub(super) type ReplayInputs = (
    InputSession<Time, Row, Diff>,
    InputSession<Time, EvalError, Diff>,
);

/// How a worker starts its share of a source (from [`crate::command::Command::CreateSource`]).
pub(super) struct Start {
    /// Rows logged before a restart come first.
    pub replay: bool,
    /// Batches are logged (the engine has a data directory).
    pub log: bool,
    /// Where the readers stood before a restart.
    pub resume: Option<crate::storage::SourcePositions>,
}

/// Where a worker's source batches are logged.
pub(super) enum LogTo {
    /// Process 0's workers append to storage and learn of durability from its callback.
    Storage(Arc<Durability>),
    /// Workers of other processes send each batch to worker 0 (batch number, record), which
    /// logs it and acknowledges it with [`crate::command::Command::SourceDurable`]. The
    /// worker loop drains this outbox into the Gather dataflow.
    Coordinator(Vec<(u64, LogRecord)>),
}

/// One worker's log of one source's batches.
pub(super) struct SourceLog {
    pub to: LogTo,
    pub id: GlobalId,
    pub worker: u32,
    pub peers: u32,
    /// Batches logged by this worker so far, and the number known durable.
    pub logged: u64,
    pub durable: Arc<AtomicU64>,
    pub failed: Arc<AtomicBool>,
    /// (batch number, earliest time) of batches not yet known durable.
    pub pending: VecDeque<(u64, Time)>,
    /// Wakes this worker when storage has a batch.
    waker: crate::wake::Waker,
}

impl SourceLog {
    pub fn new(
        to: LogTo,
        id: GlobalId,
        worker: u32,
        peers: u32,
        waker: crate::wake::Waker,
    ) -> SourceLog {
        SourceLog {
            to,
            id,
            worker,
            peers,
            waker,
            logged: 0,
            durable: Default::default(),
            failed: Default::default(),
            pending: Default::default(),
        }
    }

    /// The earliest time of a batch that is not yet durable.
    fn hold(&mut self) -> Option<Time> {
        let durable = self.durable.load(Ordering::Acquire);
        while self.pending.front().is_some_and(|(n, _)| *n <= durable) {
            self.pending.pop_front();
        }
        self.pending.iter().map(|(_, t)| *t).min()
    }
}

impl SourceInput {
    pub fn event_time(&self) -> bool {
        self.spec.event_time.is_some()
    }

    /// Inserts what the reader has sent; returns (rows inserted, whether batches remain).
    pub fn drain(&mut self, clock: Time) -> (usize, bool) {
        if self.replaying() {
            return (0, false);
        }
        if self.once_per_time && self.drained_at == Some(*self.oks.time()) {
            // The rest waits for the next time, which the clock was asked for.
            return (0, false);
        }
        let mut inserted = 0;
        for _ in 0..BATCHES_PER_STEP {
            let Ok(batch) = self.batches.try_recv() else {
                return (inserted, false);
            };
            let n = self.insert(batch, clock);
            if n > 0 && self.once_per_time {
                // Rows went in, so the worker asks the clock for a later time.
                self.drained_at = Some(*self.oks.time());
            }
            inserted += n;
        }
        (inserted, !self.batches.is_empty())
    }

    fn insert(&mut self, batch: SourceBatch, clock: Time) -> usize {
        let n = batch.rows.len();
        let mut errors = Vec::new();
        if !batch.errors.is_empty() {
            self.stats.record_errors(&batch.errors);
            if self.spec.errors_to_stream {
                let at = self.errs.time().to_owned();
                let at = if self.event_time() {
                    self.frontier.max(at)
                } else {
                    at
                };
                for message in &batch.errors {
                    let e = EvalError::Source(format!("source \"{}\": {message}", self.spec.name));
                    errors.push((e, at, 1));
                }
            }
        }
        let (rows, frontier) = self.stamp(batch.rows);
        if let Some(log) = self.log.as_mut() {
            if !rows.is_empty() || !errors.is_empty() || !batch.positions.is_empty() {
                log_batch(log, &rows, &errors, batch.positions);
            }
        }
        for (e, t, d) in errors {
            self.errs.update_at(e, t, d);
        }
        for (row, t, diff) in rows {
            self.oks.update_at(row, t, diff);
        }
        if let Some(frontier) = frontier {
            if n > 0 {
                self.last_data = clock;
            }
            self.advance_event_time(frontier);
        }
        self.stats.rows.fetch_add(n as u64, Ordering::Relaxed);
        self.stats.bytes.fetch_add(batch.bytes, Ordering::Relaxed);
        if batch.caught_up {
            self.caught_up();
        }
        n
    }

    /// Gives rows their times; with event time, also the frontier after them.
    #[allow(clippy::type_complexity)]
    fn stamp(&mut self, rows: Vec<(Row, Diff)>) -> (Vec<(Row, Time, Diff)>, Option<Time>) {
        if self.event_time() {
            // Lateness is judged record by record, against the frontier as it stands after
            // the records before (so it does not depend on how records were batched).
            let mut late = 0u64;
            let mut frontier = self.frontier;
            let mut out = Vec::with_capacity(rows.len());
            for (row, diff) in rows {
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
                out.push((row, t, diff));
            }
            if late > 0 {
                self.stats.late.fetch_add(late, Ordering::Relaxed);
            }
            (out, Some(frontier))
        } else {
            let t = *self.oks.time();
            (rows.into_iter().map(|(r, d)| (r, t, d)).collect(), None)
        }
    }

    fn caught_up(&mut self) {
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

    /// Event time: moves this worker's frontier forward to `target` (never back).
    fn advance_event_time(&mut self, target: Time) {
        if target > self.frontier {
            self.frontier = target;
        }
        self.advance_inputs(target);
    }

    /// Moves the inputs towards `target`, but not past a batch that is not yet durable.
    fn advance_inputs(&mut self, target: Time) {
        self.target = self.target.max(target);
        let mut to = self.target;
        if let Some(hold) = self.log.as_mut().and_then(|l| l.hold()) {
            to = to.min(hold);
        }
        if to > *self.oks.time() {
            self.oks.advance_to(to);
        }
        if to > *self.errs.time() {
            self.errs.advance_to(to);
        }
        self.oks.flush();
        self.errs.flush();
    }

    /// Lets the frontier on past batches that became durable; returns whether some still wait.
    pub fn settle(&mut self) -> bool {
        if self.log.as_ref().is_none_or(|l| l.pending.is_empty()) {
            return false;
        }
        self.advance_inputs(self.target);
        let log = self.log.as_mut().expect("checked");
        if log.failed.load(Ordering::Acquire) {
            self.stats.stall(format!(
                "source \"{}\": storage failed; rows read since are not applied until a restart",
                self.spec.name
            ));
        }
        !log.pending.is_empty()
    }

    /// Time passes on the clock: ingestion-time inputs follow it; event-time inputs follow it
    /// (less lateness) only once idle.
    pub fn clock(&mut self, upper: Time) {
        if self.event_time() {
            if upper.saturating_sub(self.last_data) >= self.spec.idle_timeout {
                self.advance_event_time(upper.saturating_sub(self.spec.lateness));
            }
        } else {
            self.advance_inputs(upper);
        }
    }

    /// Whether the reader's batches must wait (rows from before a restart are still coming).
    pub fn replaying(&self) -> bool {
        self.replay.is_some()
    }

    /// Rows (and errors) this source read before a restart, at their original times.
    pub fn replay(&mut self, rows: Vec<(Row, Time, Diff)>, errors: Vec<(EvalError, Time, Diff)>) {
        if let Some((oks, errs)) = self.replay.as_mut() {
            for (row, t, d) in rows {
                oks.update_at(row, t, d);
            }
            for (e, t, d) in errors {
                errs.update_at(e, t, d);
            }
            oks.flush();
            errs.flush();
        }
    }

    /// Recovery is done: the replay inputs close and the reader's batches flow. An
    /// event-time source takes up where its rows before the restart had brought it.
    pub fn end_replay(&mut self, latest: Option<Time>) {
        if let Some((oks, errs)) = self.replay.take() {
            oks.close();
            errs.close();
        }
        if let (true, Some(t)) = (self.event_time(), latest) {
            self.max_seen = self.max_seen.max(t);
            self.advance_event_time(t.saturating_sub(self.spec.lateness));
        }
    }

    /// Worker 0 says this worker's batches up to `upto` are durable (or that storage failed).
    pub fn acknowledged(&mut self, upto: u64, ok: bool) {
        if let Some(log) = self.log.as_ref() {
            if ok {
                log.durable.fetch_max(upto, Ordering::AcqRel);
            } else {
                log.failed.store(true, Ordering::Release);
            }
        }
    }

    /// Batches waiting to be sent to worker 0 for logging (workers of other processes).
    pub fn outbox(&mut self) -> Vec<(u64, LogRecord)> {
        match self.log.as_mut().map(|l| &mut l.to) {
            Some(LogTo::Coordinator(outbox)) => std::mem::take(outbox),
            _ => Vec::new(),
        }
    }

    /// Ingestion time: sends what was inserted so far (it is sealed by the next advance).
    pub fn flush(&mut self) {
        self.oks.flush();
        self.errs.flush();
    }
}

/// Logs one stamped batch; the worker is woken when it is durable (by storage's callback, or
/// by worker 0's acknowledgement).
fn log_batch(
    log: &mut SourceLog,
    rows: &[(Row, Time, Diff)],
    errors: &[(EvalError, Time, Diff)],
    positions: crate::connector::Positions,
) {
    let record = LogRecord::Source {
        source: log.id,
        worker: log.worker,
        peers: log.peers,
        rows: rows.to_vec(),
        errors: errors.to_vec(),
        positions,
    };
    log.logged += 1;
    let number = log.logged;
    if let Some(t) = record.min_time() {
        log.pending.push_back((number, t));
    }
    let durability = match &mut log.to {
        LogTo::Storage(d) => Arc::clone(d),
        LogTo::Coordinator(outbox) => {
            outbox.push((number, record));
            return;
        }
    };
    let durable = Arc::clone(&log.durable);
    let failed = Arc::clone(&log.failed);
    let worker = log.waker.clone();
    durability.log_source(
        &record,
        Box::new(move |result| {
            match result {
                Ok(()) => {
                    durable.fetch_max(number, Ordering::AcqRel);
                }
                Err(_) => failed.store(true, Ordering::Release),
            }
            worker.wake();
        }),
    );
}
