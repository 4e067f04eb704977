//! The seam between the engine and the outside world's sources and sinks.
//!
//! The engine knows what a source *is* (a relation whose updates come from a reader, at
//! ingestion time or at event time) but not how files or Kafka topics are read: that lives in
//! the `freshet-inputs` crate, which implements [`SourceFactory`] and [`SinkFactory`] and is
//! handed to the engine at start ([`Connectors`]). This keeps the dependency pointing one way
//! (inputs → dataflows) while every worker can still start its own share of a source.
//!
//! A source runs as one reader per worker. Readers run on their own threads (reading and
//! decoding never stall a worker's dataflows) and hand batches of decoded rows to their worker
//! through a bounded channel, so a slow dataflow slows the reader instead of filling memory.
//! The worker stamps the rows with times: the current ingestion time, or the rows' event time
//! (see `worker::source`). Batches carry the reader's positions (file offsets, Kafka offsets)
//! so durability can store where to resume.

pub mod align;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::plan::{Diff, GlobalId};
use crate::render::Time;
use crate::row::Row;
use crate::schema::Schema;
use crate::value::Value;

/// How a source or sink moves bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transport {
    /// A file or a directory of files.
    File { path: String },
    /// A Kafka topic.
    Kafka { brokers: String, topic: String },
    /// Rows made up by a generator (`COUNTER`, `NEXMARK`).
    Generator { kind: String },
}

impl Transport {
    pub fn name(&self) -> &'static str {
        match self {
            Transport::File { .. } => "file",
            Transport::Kafka { .. } => "kafka",
            Transport::Generator { .. } => "generator",
        }
    }
}

/// How records are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    Csv,
    Json,
}

/// A source as declared by `CREATE SOURCE`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceSpec {
    pub name: String,
    /// Declared columns; a generator fills them in when none are declared.
    pub schema: Schema,
    pub transport: Transport,
    pub format: Option<Format>,
    /// `WITH (…)` options other than the ones the engine interprets, keys in lower case.
    pub options: BTreeMap<String, String>,
    /// The column holding each record's event time (timestamp, or bigint milliseconds).
    pub event_time: Option<usize>,
    /// How far the frontier trails the largest event time seen (milliseconds).
    pub lateness: Time,
    /// How long a worker's share may stay silent before its event-time frontier follows the
    /// clock (milliseconds).
    pub idle_timeout: Time,
    /// Records that do not decode: into the error stream (`true`), or only counted.
    pub errors_to_stream: bool,
}

impl SourceSpec {
    /// The event time of `row` in milliseconds, if the source has event time and the row a
    /// usable value in that column.
    pub fn event_time_of(&self, row: &Row) -> Option<Time> {
        let col = self.event_time?;
        match row.get(col) {
            Value::Timestamp(us) => Some(us.max(0) as Time / 1000),
            Value::Int(ms) => Some(ms.max(0) as Time),
            _ => None,
        }
    }

    /// An option's value, if given.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }
}

/// A sink as declared by `CREATE SINK`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SinkSpec {
    pub name: String,
    /// The relation whose changes are written.
    pub from: String,
    pub schema: Schema,
    pub transport: Transport,
    pub format: Format,
    pub options: BTreeMap<String, String>,
}

/// Where a reader resumes: per part (file, partition), the offset to read from next.
pub type Positions = BTreeMap<u64, u64>;

/// Where a reader resumes after a restart: the positions stored with the last batches logged
/// before it. Rows read up to them are already back (replayed from the data directory), so a
/// reader must start exactly there, neither before (rows counted twice) nor after (lost).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// This worker's own positions, when the source was read by as many workers as now (parts
    /// that depend on the division of work, such as byte ranges of one file); `None` when the
    /// number of workers changed.
    pub own: Option<Positions>,
    /// Every worker's positions merged: for parts that mean the same whoever reads them
    /// (Kafka partitions, the files of a directory).
    pub all: Positions,
}

/// Decoded records from one reader, in the order read.
#[derive(Debug, Default)]
pub struct SourceBatch {
    /// Rows with +1 (insert) or -1 (delete, for formats that can say so).
    pub rows: Vec<(Row, Diff)>,
    /// Records that did not decode, with where they were (for the error stream and samples).
    pub errors: Vec<String>,
    /// Bytes read for this batch.
    pub bytes: u64,
    /// The reader's positions after this batch (only the parts that moved).
    pub positions: Positions,
    /// Set on the batch that completes the history that existed when the reader started.
    pub caught_up: bool,
}

/// Statistics and status of one source, shared by its readers, workers and the API.
#[derive(Debug)]
pub struct SourceStats {
    pub started: Instant,
    /// Rows inserted by the workers.
    pub rows: AtomicU64,
    /// Bytes read by the readers.
    pub bytes: AtomicU64,
    /// Bytes of history known to exist at start (0 when unknown, as for Kafka).
    pub total_bytes: AtomicU64,
    /// Records that did not decode.
    pub errors: AtomicU64,
    /// Records older than the event-time frontier, placed at the frontier.
    pub late: AtomicU64,
    /// Readers started, and readers that have read all history that existed at start.
    pub readers: AtomicU64,
    pub caught_up: AtomicU64,
    /// When the last reader caught up.
    pub caught_up_at: Mutex<Option<Instant>>,
    /// The latest logical time at which a reader's history went in: once a relation over
    /// this source is complete past it, it reflects all the history.
    pub caught_up_time: AtomicU64,
    /// The latest problem (a bad record, a broker that is down), for the catalog.
    pub last_error: Mutex<Option<String>>,
    /// Set while a reader cannot make progress (broker down, file missing); cleared on
    /// success.
    pub stalled: AtomicBool,
    /// Keeps this process's readers of the source level with each other.
    pub alignment: Arc<align::Alignment>,
}

impl Default for SourceStats {
    fn default() -> Self {
        SourceStats {
            started: Instant::now(),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            total_bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            late: AtomicU64::new(0),
            readers: AtomicU64::new(0),
            caught_up: AtomicU64::new(0),
            caught_up_at: Mutex::new(None),
            caught_up_time: AtomicU64::new(0),
            last_error: Mutex::new(None),
            stalled: AtomicBool::new(false),
            alignment: Arc::default(),
        }
    }
}

impl SourceStats {
    /// Whether every reader has read the history that existed when it started.
    pub fn is_caught_up(&self) -> bool {
        let readers = self.readers.load(Ordering::Acquire);
        readers > 0 && self.caught_up.load(Ordering::Acquire) >= readers
    }

    /// Records a problem a reader is retrying past (shown in the catalog, logged once).
    pub fn stall(&self, message: impl Into<String>) {
        let message = message.into();
        *self.last_error.lock().expect("lock") = Some(message.clone());
        if !self.stalled.swap(true, Ordering::AcqRel) {
            tracing::warn!("{message}");
        }
    }

    /// Clears a stall once the reader makes progress again.
    pub fn unstall(&self) {
        if self.stalled.swap(false, Ordering::AcqRel) {
            tracing::info!("source reader recovered");
        }
    }

    /// Records bad records (count and the latest sample).
    pub fn record_errors(&self, errors: &[String]) {
        if let Some(last) = errors.last() {
            self.errors
                .fetch_add(errors.len() as u64, Ordering::Relaxed);
            *self.last_error.lock().expect("lock") = Some(last.clone());
        }
    }
}

/// What a reader holds to hand batches to its worker.
pub struct SourceOutput {
    tx: crossbeam_channel::Sender<SourceBatch>,
    worker: crate::wake::Waker,
    pub stats: Arc<SourceStats>,
    stop: Arc<AtomicBool>,
}

/// The source is gone (dropped, or the engine stopped): the reader should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl SourceOutput {
    /// Sends a batch, waiting while the worker's queue is full.
    pub fn send(&self, batch: SourceBatch) -> std::result::Result<(), Closed> {
        if self.is_closed() {
            return Err(Closed);
        }
        let mut batch = batch;
        loop {
            match self
                .tx
                .send_timeout(batch, std::time::Duration::from_millis(100))
            {
                Ok(()) => break,
                Err(crossbeam_channel::SendTimeoutError::Timeout(b)) => {
                    if self.is_closed() {
                        return Err(Closed);
                    }
                    self.worker.wake();
                    batch = b;
                }
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return Err(Closed),
            }
        }
        self.worker.wake();
        Ok(())
    }

    /// Whether the reader should stop.
    pub fn is_closed(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// Stops a reader when the source is dropped on its worker.
pub struct ReaderGuard {
    stop: Arc<AtomicBool>,
    _resources: Box<dyn Send>,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// What one worker needs to read its share of a source.
pub struct ReaderContext {
    pub worker: usize,
    pub peers: usize,
    /// Where to resume, if the source was read before a restart.
    pub resume: Option<Resume>,
    pub output: SourceOutput,
}

impl ReaderContext {
    /// A context whose batches arrive on the returned receiver; `worker` is woken on each.
    pub fn new(
        worker: usize,
        peers: usize,
        waker: crate::wake::Waker,
        stats: Arc<SourceStats>,
        capacity: usize,
    ) -> (
        ReaderContext,
        crossbeam_channel::Receiver<SourceBatch>,
        Arc<AtomicBool>,
    ) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = ReaderContext {
            worker,
            peers,
            resume: None,
            output: SourceOutput {
                tx,
                worker: waker,
                stats,
                stop: Arc::clone(&stop),
            },
        };
        (ctx, rx, stop)
    }
}

impl ReaderGuard {
    pub fn new(stop: Arc<AtomicBool>, resources: Box<dyn Send>) -> ReaderGuard {
        ReaderGuard {
            stop,
            _resources: resources,
        }
    }
}

/// Starts readers for sources (implemented by `freshet-inputs`).
pub trait SourceFactory: Send + Sync {
    /// Checks a declaration when it is created (options, formats, paths) and fills in the
    /// columns of sources that define their own (generators).
    fn prepare(&self, spec: &mut SourceSpec) -> Result<()>;

    /// Starts this worker's reader on a thread of its own; the returned value is dropped to
    /// release the reader's resources once the source is dropped (the reader also stops
    /// when its output reports [`Closed`]).
    fn start(&self, spec: &SourceSpec, ctx: ReaderContext) -> Result<Box<dyn Send>>;
}

/// What a sink's writer receives, in order: the snapshot first, then each complete time's
/// updates and the frontier after them.
#[derive(Debug)]
pub enum SinkEvent {
    /// The relation's contents at `time`, where the sink starts.
    Snapshot { time: Time, rows: Vec<(Row, Diff)> },
    /// Changes at `time` (all of them: the time is complete).
    Updates {
        time: Time,
        updates: Vec<(Row, Diff)>,
    },
    /// Every time before `upper` has been written.
    Progress { upper: Time },
}

/// Which of a sink's writers this is. A sink whose destination takes many writers (Kafka) has
/// one per worker, each writing the rows [`SinkWriterId::owns`] gives it; a file has one writer
/// (`count` 1) on worker 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkWriterId {
    pub index: usize,
    pub count: usize,
}

impl SinkWriterId {
    /// The only writer of a sink.
    pub const SOLE: SinkWriterId = SinkWriterId { index: 0, count: 1 };

    /// The writer that writes `row`'s changes, out of `count`. Rows, not workers, are divided:
    /// a restarted sink with another number of writers still finds each row's earlier records
    /// with the one writer that now owns it. (Stable within one binary, which is all that is
    /// needed: every writer of one run uses the same function.)
    ///
    /// It is the hash that places a row of a table or view on a worker (its first column's,
    /// see `render::prefix`): with one writer per worker, each worker writes the rows it
    /// already holds, and the sink moves no data between workers.
    pub fn writer_of(row: &Row, count: usize) -> usize {
        if count <= 1 {
            return 0;
        }
        (row.placement_hash() % count as u64) as usize
    }

    /// Whether this writer writes `row`.
    pub fn owns(&self, row: &Row) -> bool {
        SinkWriterId::writer_of(row, self.count) == self.index
    }
}

/// Statistics and status of one sink, summed over its writers (on process 0, over every
/// process's writers).
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Update messages written (acknowledged by the destination).
    pub messages: AtomicU64,
    /// The last progress each writer wrote, by writer index.
    pub uppers: Mutex<BTreeMap<usize, Time>>,
    /// How many writers the sink has (0 until it starts).
    pub writers: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    pub stalled: AtomicBool,
}

impl SinkStats {
    pub fn stall(&self, message: impl Into<String>) {
        let message = message.into();
        if !self.stalled.swap(true, Ordering::AcqRel) {
            tracing::warn!("{message}");
        }
        *self.last_error.lock().expect("lock") = Some(message);
    }

    pub fn unstall(&self) {
        self.stalled.store(false, Ordering::Release);
    }

    /// Writer `writer` made `messages` more messages and progress `upper` durable.
    pub fn wrote(&self, writer: usize, messages: u64, upper: Time) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.uppers.lock().expect("lock").insert(writer, upper);
    }

    /// Every time before this has been written by every writer (0 until each has written
    /// progress).
    pub fn upper(&self) -> Time {
        let uppers = self.uppers.lock().expect("lock");
        let writers = self.writers.load(Ordering::Relaxed) as usize;
        if uppers.len() < writers.max(1) {
            return 0;
        }
        uppers.values().copied().min().unwrap_or(0)
    }
}

/// A running sink writer: events go in, in order.
pub trait SinkWriter: Send {
    /// Hands an event to the writer; `false` once the writer has stopped for good.
    fn send(&mut self, event: SinkEvent) -> bool;
}

/// Starts sink writers (implemented by `freshet-inputs`).
pub trait SinkFactory: Send + Sync {
    /// Checks a declaration when it is created.
    fn prepare(&self, spec: &SinkSpec) -> Result<()>;

    /// Whether the destination takes one writer per worker (each writing its share of the
    /// rows) rather than one writer for the whole sink.
    fn parallel(&self, spec: &SinkSpec) -> bool;

    /// Starts writer `writer`. It first reads back what an earlier run already wrote (of its
    /// rows), so that it can write only the difference between that and its snapshot (nothing
    /// lost, nothing twice across restarts).
    fn start(
        &self,
        spec: &SinkSpec,
        writer: SinkWriterId,
        stats: Arc<SinkStats>,
    ) -> Result<Box<dyn SinkWriter>>;
}

/// The sources and sinks an engine can create.
#[derive(Clone)]
pub struct Connectors {
    pub sources: Arc<dyn SourceFactory>,
    pub sinks: Arc<dyn SinkFactory>,
}

impl std::fmt::Debug for Connectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connectors")
    }
}

/// Per-source and per-sink state the coordinator and workers of a process share.
#[derive(Default)]
pub struct ConnectorState {
    pub sources: Mutex<BTreeMap<GlobalId, Arc<SourceStats>>>,
    pub sinks: Mutex<BTreeMap<GlobalId, Arc<SinkStats>>>,
}
