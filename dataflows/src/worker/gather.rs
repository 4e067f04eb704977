//! The "Gather" dataflow: what workers in other processes owe the coordinator, sent to
//! worker 0.
//!
//! The coordinator lives in process 0 and shares memory (`Shared`) with that process's workers
//! only. A worker in another process cannot hand a read's answer to a channel or bump a
//! statistic the coordinator can see, so it sends a [`Report`] instead: every worker builds
//! the same small dataflow at start (right after "Commands"), whose input is exchanged to
//! worker 0; worker 0 applies what arrives to its own `Shared` as if the sender were local.
//!
//! - **Read answers** of remote workers (`Report::Peek`); process 0's workers still answer
//!   directly.
//! - **Statistics**: the first worker of each remote process sends its process's item
//!   counters (updates, arranged records) and source counters (rows, bytes, errors, readers
//!   caught up, …) as differences since its last report, which worker 0 adds to process 0's
//!   counters. Readiness, the catalog, `/metrics` and sinks waiting for a source's history
//!   then see the whole cluster without knowing it is one.
//! - **Time wanted**: a remote worker that inserted source rows at ingestion time asks the
//!   coordinator's clock to advance, as process 0's workers do directly.
//! - **Source batches to log**: with a data directory (which only process 0 keeps), a remote
//!   worker sends each batch it read, with the rows' times and its reader's positions. Worker
//!   0 logs it and, once it is durable, sends `Command::SourceDurable` back; the reading
//!   worker holds its source's frontier until then.
//!
//! Sending advances the input's time, which both flushes the data and keeps the sending worker
//! from parking before timely has handed the bytes to its network thread.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Input;
use timely::dataflow::InputHandle;
use timely::worker::Worker;

use super::{PeekPart, Shared};
use crate::command::SourceAck;
use crate::connector::{SinkStats, SourceStats};
use crate::plan::GlobalId;
use crate::render::Time;
use crate::storage::LogRecord;

/// What a worker in another process sends to worker 0.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Report {
    /// One worker's answer to read `id`.
    Peek { id: u64, part: PeekPart },
    /// Per item: updates produced, arranged records and batches, since the last report.
    Items(Vec<(GlobalId, u64, i64, i64)>),
    /// Per source: counters since the last report.
    Sources(Vec<SourceDelta>),
    /// Per sink: this process's writers' counters since the last report.
    Sinks(Vec<SinkDelta>),
    /// Source rows went in at ingestion time: time should advance soon.
    AdvanceWanted,
    /// A source batch to log (process 0 keeps the data directory), numbered by the worker
    /// that read it; worker 0 acknowledges it once it is durable.
    SourceBatch { number: u64, record: LogRecord },
}

/// A remote process's source counters since its last report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDelta {
    pub id: GlobalId,
    pub rows: u64,
    pub bytes: u64,
    pub total_bytes: u64,
    pub errors: u64,
    pub late: u64,
    /// Readers that caught up.
    pub caught_up: u64,
    /// The latest time a reader's history went in at (a maximum, not a difference).
    pub caught_up_time: Time,
    /// Set when the process's readers started or stopped being stalled.
    pub stalled: Option<bool>,
    /// A new latest problem.
    pub last_error: Option<String>,
}

/// A remote process's sink writers' counters since its last report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkDelta {
    pub id: GlobalId,
    pub messages: u64,
    /// Writers whose progress moved, with their new progress.
    pub uppers: Vec<(usize, Time)>,
    pub stalled: Option<bool>,
    pub last_error: Option<String>,
}

/// What a remote process last reported about one sink.
#[derive(Clone, Default, PartialEq, Eq)]
struct SinkSeen {
    messages: u64,
    uppers: BTreeMap<usize, Time>,
    stalled: bool,
    last_error: Option<String>,
}

impl SinkSeen {
    fn of(s: &SinkStats) -> SinkSeen {
        SinkSeen {
            messages: s.messages.load(Ordering::Relaxed),
            uppers: s.uppers.lock().expect("lock").clone(),
            stalled: s.stalled.load(Ordering::Relaxed),
            last_error: s.last_error.lock().expect("lock").clone(),
        }
    }

    fn delta(&self, before: &SinkSeen, id: GlobalId) -> SinkDelta {
        SinkDelta {
            id,
            messages: self.messages.saturating_sub(before.messages),
            uppers: self
                .uppers
                .iter()
                .filter(|(w, u)| before.uppers.get(w) != Some(u))
                .map(|(w, u)| (*w, *u))
                .collect(),
            stalled: (self.stalled != before.stalled).then_some(self.stalled),
            last_error: if self.last_error != before.last_error {
                self.last_error.clone()
            } else {
                None
            },
        }
    }
}

/// What a remote process last reported about one source.
#[derive(Clone, Default, PartialEq, Eq)]
struct SourceSeen {
    rows: u64,
    bytes: u64,
    total_bytes: u64,
    errors: u64,
    late: u64,
    caught_up: u64,
    caught_up_time: Time,
    stalled: bool,
    last_error: Option<String>,
}

impl SourceSeen {
    fn of(s: &SourceStats) -> SourceSeen {
        SourceSeen {
            rows: s.rows.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            total_bytes: s.total_bytes.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            late: s.late.load(Ordering::Relaxed),
            caught_up: s.caught_up.load(Ordering::Acquire),
            caught_up_time: s.caught_up_time.load(Ordering::Acquire),
            stalled: s.stalled.load(Ordering::Relaxed),
            last_error: s.last_error.lock().expect("lock").clone(),
        }
    }

    fn delta(&self, before: &SourceSeen, id: GlobalId) -> SourceDelta {
        SourceDelta {
            id,
            rows: self.rows.saturating_sub(before.rows),
            bytes: self.bytes.saturating_sub(before.bytes),
            total_bytes: self.total_bytes.saturating_sub(before.total_bytes),
            errors: self.errors.saturating_sub(before.errors),
            late: self.late.saturating_sub(before.late),
            caught_up: self.caught_up.saturating_sub(before.caught_up),
            caught_up_time: self.caught_up_time,
            stalled: (self.stalled != before.stalled).then_some(self.stalled),
            last_error: if self.last_error != before.last_error {
                self.last_error.clone()
            } else {
                None
            },
        }
    }
}

/// How often a remote process's source counters may be reported (readiness waits on them).
const SOURCE_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// One worker's end of the Gather dataflow.
pub(super) struct Gather {
    input: Option<InputHandle<u64, CapacityContainerBuilder<Vec<Report>>>>,
    time: u64,
    pending: bool,
    /// Reports that reached worker 0, to apply after the step.
    received: Rc<RefCell<Vec<Report>>>,
    /// Whether this worker sends its process's statistics (the first worker of a remote
    /// process).
    reporter: bool,
    /// Whether this worker is in a process without the coordinator.
    remote: bool,
    items_seen: BTreeMap<GlobalId, (u64, i64, i64)>,
    sources_seen: BTreeMap<GlobalId, SourceSeen>,
    sinks_seen: BTreeMap<GlobalId, SinkSeen>,
    last_source_report: std::time::Instant,
}

impl Gather {
    /// Builds the dataflow; every worker calls this at the same point.
    pub fn build(worker: &mut Worker, shared: &Shared) -> Gather {
        let received: Rc<RefCell<Vec<Report>>> = Rc::new(RefCell::new(Vec::new()));
        let recv = Rc::clone(&received);
        let input = worker.dataflow_named::<u64, _, _>("Gather", |scope| {
            let (input, stream) = scope.new_input::<Report>();
            stream.sink(
                Exchange::new(|_: &Report| 0u64),
                "GatherSink",
                move |(input, _frontier)| {
                    input.for_each(|_cap, data| recv.borrow_mut().append(data));
                },
            );
            input
        });
        let remote = shared.cluster.worker_only;
        Gather {
            input: Some(input),
            time: 0,
            pending: false,
            received,
            reporter: remote && worker.index() == shared.cluster.first_worker,
            remote,
            items_seen: BTreeMap::new(),
            sources_seen: BTreeMap::new(),
            sinks_seen: BTreeMap::new(),
            last_source_report: std::time::Instant::now(),
        }
    }

    /// Whether this worker must send answers through the dataflow.
    pub fn remote(&self) -> bool {
        self.remote
    }

    pub fn send(&mut self, report: Report) {
        if let Some(input) = self.input.as_mut() {
            input.send(report);
            self.pending = true;
        }
    }

    /// Sends what was queued: advancing the time flushes it and activates the input, so the
    /// worker steps (and hands the bytes to the network) before it parks.
    pub fn flush(&mut self) {
        if self.pending {
            self.pending = false;
            self.time += 1;
            if let Some(input) = self.input.as_mut() {
                input.advance_to(self.time);
            }
        }
    }

    /// Closes the input so the dataflow can wind down.
    pub fn close(&mut self) {
        self.flush();
        self.input = None;
    }

    /// Worker 0: applies what remote workers sent.
    pub fn apply(&mut self, shared: &Arc<Shared>) {
        let reports = std::mem::take(&mut *self.received.borrow_mut());
        for report in reports {
            match report {
                Report::Peek { id, part } => super::answer_locally(shared, id, part),
                Report::Items(items) => {
                    let stats = shared.stats.lock().expect("lock");
                    for (id, updates, records, batches) in items {
                        if let Some(s) = stats.get(&id) {
                            s.updates.fetch_add(updates, Ordering::Relaxed);
                            s.records.fetch_add(records, Ordering::Relaxed);
                            s.batches.fetch_add(batches, Ordering::Relaxed);
                        }
                    }
                }
                Report::Sources(deltas) => {
                    let sources = shared.connector_state.sources.lock().expect("lock");
                    for d in deltas {
                        if let Some(s) = sources.get(&d.id) {
                            apply_source_delta(s, d);
                        }
                    }
                }
                Report::Sinks(deltas) => {
                    let sinks = shared.connector_state.sinks.lock().expect("lock");
                    for d in deltas {
                        if let Some(s) = sinks.get(&d.id) {
                            apply_sink_delta(s, d);
                        }
                    }
                }
                Report::AdvanceWanted => shared.want_advance(),
                Report::SourceBatch { number, record } => log_for_peer(shared, number, record),
            }
        }
    }

    /// A remote process's first worker: sends item statistics (when `items` is set) and
    /// source statistics that changed. Returns whether source changes wait to be sent.
    pub fn report_stats(&mut self, shared: &Shared, items: bool) -> bool {
        if !self.reporter {
            return false;
        }
        if items {
            let mut out = Vec::new();
            let stats = shared.stats.lock().expect("lock");
            self.items_seen.retain(|id, _| stats.contains_key(id));
            for (id, s) in stats.iter() {
                let now = (
                    s.updates.load(Ordering::Relaxed),
                    s.records.load(Ordering::Relaxed),
                    s.batches.load(Ordering::Relaxed),
                );
                let seen = self.items_seen.entry(*id).or_default();
                if now != *seen {
                    out.push((
                        *id,
                        now.0.saturating_sub(seen.0),
                        now.1 - seen.1,
                        now.2 - seen.2,
                    ));
                    *seen = now;
                }
            }
            drop(stats);
            if !out.is_empty() {
                self.send(Report::Items(out));
            }
        }
        let mut changed = Vec::new();
        {
            let sources = shared.connector_state.sources.lock().expect("lock");
            self.sources_seen.retain(|id, _| sources.contains_key(id));
            for (id, s) in sources.iter() {
                let now = SourceSeen::of(s);
                let before = self.sources_seen.get(id).cloned().unwrap_or_default();
                if now != before {
                    changed.push((*id, now, before));
                }
            }
        }
        let mut sinks_changed = Vec::new();
        {
            let sinks = shared.connector_state.sinks.lock().expect("lock");
            self.sinks_seen.retain(|id, _| sinks.contains_key(id));
            for (id, s) in sinks.iter() {
                let now = SinkSeen::of(s);
                let before = self.sinks_seen.get(id).cloned().unwrap_or_default();
                if now != before {
                    sinks_changed.push((*id, now, before));
                }
            }
        }
        if changed.is_empty() && sinks_changed.is_empty() {
            return false;
        }
        if self.last_source_report.elapsed() < SOURCE_REPORT_INTERVAL {
            return true;
        }
        self.last_source_report = std::time::Instant::now();
        if !sinks_changed.is_empty() {
            let deltas = sinks_changed
                .into_iter()
                .map(|(id, now, before)| {
                    let d = now.delta(&before, id);
                    self.sinks_seen.insert(id, now);
                    d
                })
                .collect();
            self.send(Report::Sinks(deltas));
        }
        if changed.is_empty() {
            return false;
        }
        let deltas = changed
            .into_iter()
            .map(|(id, now, before)| {
                let d = now.delta(&before, id);
                self.sources_seen.insert(id, now);
                d
            })
            .collect();
        self.send(Report::Sources(deltas));
        false
    }
}

/// Worker 0: logs a batch another process's worker read. Once it is durable (or storage
/// failed) the acknowledgement waits in `Shared::source_acks` for worker 0, woken here, to
/// send it back as a command.
fn log_for_peer(shared: &Arc<Shared>, number: u64, record: LogRecord) {
    let LogRecord::Source { source, worker, .. } = &record else {
        return;
    };
    let (source, worker) = (*source, *worker);
    let ack = move |shared: &Shared, ok: bool| {
        shared.source_acks.lock().expect("lock").push(SourceAck {
            source,
            worker,
            upto: number,
            ok,
        });
    };
    let Some(durability) = shared.durability.as_ref() else {
        // Nothing to log to (the command said to log, so this is not expected): let the
        // batch go rather than hold the source forever.
        ack(shared, true);
        return;
    };
    let weak = Arc::downgrade(shared);
    durability.log_source(
        &record,
        Box::new(move |result| {
            if let Some(shared) = weak.upgrade() {
                ack(&shared, result.is_ok());
                if let Some(w) = shared.worker0.lock().expect("lock").as_ref() {
                    w.wake();
                }
            }
        }),
    );
}

/// Adds a remote process's sink counters to process 0's.
fn apply_sink_delta(s: &SinkStats, d: SinkDelta) {
    s.messages.fetch_add(d.messages, Ordering::Relaxed);
    s.uppers.lock().expect("lock").extend(d.uppers);
    if let Some(e) = d.last_error {
        *s.last_error.lock().expect("lock") = Some(e);
    }
    if let Some(stalled) = d.stalled {
        s.stalled.store(stalled, Ordering::Release);
    }
}

/// Adds a remote process's source counters to process 0's.
fn apply_source_delta(s: &SourceStats, d: SourceDelta) {
    s.rows.fetch_add(d.rows, Ordering::Relaxed);
    s.bytes.fetch_add(d.bytes, Ordering::Relaxed);
    s.total_bytes.fetch_add(d.total_bytes, Ordering::Relaxed);
    s.errors.fetch_add(d.errors, Ordering::Relaxed);
    s.late.fetch_add(d.late, Ordering::Relaxed);
    if let Some(e) = d.last_error {
        *s.last_error.lock().expect("lock") = Some(e);
    }
    match d.stalled {
        Some(true) => s.stalled.store(true, Ordering::Release),
        Some(false) => s.stalled.store(false, Ordering::Release),
        None => {}
    }
    if d.caught_up > 0 {
        s.caught_up_time
            .fetch_max(d.caught_up_time, Ordering::AcqRel);
        s.caught_up.fetch_add(d.caught_up, Ordering::AcqRel);
        let mut at = s.caught_up_at.lock().expect("lock");
        if s.is_caught_up() && at.is_none() {
            *at = Some(std::time::Instant::now());
            tracing::info!(
                rows = s.rows.load(Ordering::Relaxed),
                "source caught up on every process"
            );
        }
    }
}
