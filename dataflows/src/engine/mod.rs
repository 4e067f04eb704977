//! The embeddable engine: start N workers, execute SQL, write rows, read, subscribe, stop.
//!
//! ```
//! use freshet_dataflows::engine::{Engine, EngineConfig};
//!
//! let engine = Engine::start(EngineConfig::default()).unwrap();
//! engine.execute("CREATE TABLE t (x bigint); INSERT INTO t VALUES (1), (2)").unwrap();
//! let result = engine.execute("SELECT sum(x) FROM t").unwrap();
//! assert_eq!(result[0].rows.as_ref().unwrap()[0].get(0), freshet_dataflows::Value::Int(3));
//! engine.shutdown();
//! ```
//!
//! The coordinator here owns the catalog and the timeline. Every change gets a timestamp (in
//! milliseconds since the epoch) strictly greater than any before; reads default to the latest
//! timestamp whose writes have all been handed to the workers, which gives read-your-writes.
//! DDL and writes are serialized by one lock, so "read the table, then write" statements
//! (DELETE, UPDATE, INSERT … SELECT) are atomic. Reads and subscriptions only hold it while
//! their command is sequenced.

mod dml;
pub(crate) mod durable;
mod execute;
mod metrics;
mod recovery;
mod snapshot;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::catalog::{Catalog, ItemDescription};
use crate::command::{Command, Target};
use crate::error::{Error, Result};
use crate::plan::Diff;
use crate::plan::GlobalId;
use crate::render::Time;
use crate::row::Row;
use crate::schema::{Column, Schema};
use crate::subscribe::{Member, SubscribeEvent, SubscriptionFeed, SubscriptionState};
use crate::worker::{PeekPart, Shared};

pub use durable::PendingWrite;
pub use execute::{ExecuteError, StatementResult};
pub use metrics::Metrics;

/// How to run the engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Timely worker threads.
    pub workers: usize,
    /// How far back `AS OF` reads and subscription resumption can reach.
    pub retention: Duration,
    /// Events buffered per subscriber before it is cut off as lagging.
    pub subscriber_buffer: usize,
    /// How often time advances (and progress is reported) when nothing is written.
    pub tick: Duration,
    /// Sources and sinks (`freshet-inputs`); without them `CREATE SOURCE` is refused.
    pub connectors: Option<crate::connector::Connectors>,
    /// Join other processes into one timely cluster (this must be process 0; the others run
    /// `cluster::WorkerProcess`). `workers` is then the number of threads per process.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// Durable storage for the catalog, table writes and source batches; `None` keeps
    /// everything in memory.
    pub storage: Option<StorageHandle>,
    /// Longest time between snapshots while something was logged (one is also taken when the
    /// log passes 256 MiB).
    pub snapshot_interval: Duration,
    /// How long an idle worker polls before it parks (see [`crate::wake`]).
    pub idle_spin: Duration,
    /// How long [`Subscription::recv_blocking`] polls before it parks the consumer's thread.
    /// `None` decides: `idle_spin` where this process's workers leave a core free for the
    /// consumer, else zero (a polling consumer would take a polling worker's core).
    pub subscriber_poll: Option<Duration>,
}

/// Durable storage, as the engine's configuration holds it.
#[derive(Clone)]
pub struct StorageHandle(pub Arc<dyn crate::storage::Storage>);

impl std::fmt::Debug for StorageHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Storage")
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 1,
            retention: Duration::from_secs(300),
            subscriber_buffer: 1024,
            tick: Duration::from_millis(1000),
            connectors: None,
            cluster: None,
            storage: None,
            snapshot_interval: Duration::from_secs(600),
            idle_spin: crate::wake::IDLE_SPIN,
            subscriber_poll: None,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> Time {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Time)
        .unwrap_or(0)
}

/// What a subscription follows.
#[derive(Clone, Debug)]
pub enum SubscribeTarget {
    /// A table or view by name.
    Name(String),
    /// An ad-hoc SELECT, maintained by its own dataflow.
    Sql(String),
}

/// Where a subscription starts.
#[derive(Clone, Debug)]
pub struct SubscribeOptions {
    /// Snapshot time; default the latest complete timestamp.
    pub as_of: Option<Time>,
    /// Whether to send the snapshot.
    pub snapshot: bool,
    /// Resume with the changes at times ≥ this (no snapshot); overrides `as_of`.
    pub resume_from: Option<Time>,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            as_of: None,
            snapshot: true,
            resume_from: None,
        }
    }
}

/// A live subscription. Dropping it stops the dataflow behind it.
pub struct Subscription {
    pub columns: Vec<Column>,
    pub as_of: Time,
    pub events: async_channel::Receiver<SubscribeEvent>,
    pub state: Arc<SubscriptionState>,
    /// How long [`Subscription::recv_blocking`] polls before it parks the thread.
    poll: Duration,
    _guard: SubscriptionGuard,
}

impl Subscription {
    /// The next event, for a consumer on a thread of its own: polls the stream for a while
    /// ([`EngineConfig::subscriber_poll`]) before it parks the thread. On a
    /// virtual machine a parked thread takes tens of microseconds to run again after the worker
    /// wakes it, and the wake itself is a system call on the worker's path, so a consumer that
    /// comes back for the next event while the worker is still producing gets it sooner and
    /// costs the worker nothing. `Err` once the stream has ended. Async consumers read
    /// `events` directly.
    pub fn recv_blocking(&self) -> std::result::Result<SubscribeEvent, async_channel::RecvError> {
        if self.poll.is_zero() {
            return self.events.recv_blocking();
        }
        let start = std::time::Instant::now();
        let mut polls = 0u32;
        loop {
            match self.events.try_recv() {
                Ok(event) => return Ok(event),
                Err(async_channel::TryRecvError::Closed) => return Err(async_channel::RecvError),
                Err(async_channel::TryRecvError::Empty) => {}
            }
            polls = polls.wrapping_add(1);
            // Read the clock only now and then: it is not free.
            if polls.is_multiple_of(16) && start.elapsed() >= self.poll {
                return self.events.recv_blocking();
            }
            std::hint::spin_loop();
        }
    }
}

struct SubscriptionGuard {
    /// The dataflow to stop when this consumer leaves; `None` for a member of a shared
    /// stream, which stops by itself when its last consumer has gone.
    dedicated: Option<u64>,
    engine: Weak<Inner>,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.engine.upgrade() {
            inner.metrics.subscriptions.fetch_sub(1, Ordering::Relaxed);
            if let Some(id) = self.dedicated {
                inner.shared.feeds.lock().expect("lock").remove(&id);
                let _ = inner.send(Command::Unsubscribe { id });
            }
        }
    }
}

/// Statistics of one table or view.
#[derive(Clone, Debug)]
pub struct ItemStatsSnapshot {
    pub name: String,
    pub kind: &'static str,
    /// Updates its dataflow has produced (summed over workers).
    pub updates: u64,
    /// Updates held in its arrangement.
    pub records: u64,
    /// Batches in its arrangement, empty ones included (summed over workers): a few dozen per
    /// worker at most, however many writes or advances of time the retention window holds.
    pub batches: u64,
    /// Every time before this is complete (0 until first reported).
    pub frontier: Time,
}

/// Rows of a read, with the timestamp they are exact at.
#[derive(Clone, Debug)]
pub struct ReadResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    pub timestamp: Time,
}

pub(crate) struct Coord {
    pub catalog: Catalog,
    /// Every input has been advanced to `upper`: all times before it are sealed.
    pub upper: Time,
    /// Arrangements may have forgotten distinctions before `since`.
    pub since: Time,
    pub shutdown: bool,
    /// Set while the data directory is replayed: requests are refused with `recovering`.
    pub recovering: Option<String>,
    /// Keys present in each table with a primary key (the key columns of every row).
    pub keys: std::collections::HashMap<GlobalId, std::collections::HashMap<Row, Diff>>,
}

impl Coord {
    /// The latest timestamp whose writes have all been sequenced.
    pub fn read_ts(&self) -> Time {
        self.upper.saturating_sub(1)
    }

    /// A fresh timestamp for a write, strictly after every earlier one.
    pub fn write_ts(&mut self) -> Time {
        let ts = now_ms().max(self.upper);
        self.upper = ts + 1;
        ts
    }

    /// Checks that `ts` can be read.
    pub fn check_readable(&self, ts: Time) -> Result<()> {
        if ts < self.since {
            return Err(Error::Compacted {
                requested: ts,
                since: self.since,
            });
        }
        if ts > self.read_ts() {
            return Err(Error::Future {
                requested: ts,
                latest: self.read_ts(),
            });
        }
        Ok(())
    }
}

pub(crate) struct Inner {
    config: EngineConfig,
    /// [`EngineConfig::subscriber_poll`], decided.
    subscriber_poll: Duration,
    coord: Mutex<Coord>,
    shared: Arc<Shared>,
    peers: usize,
    next_request: AtomicU64,
    guards: Mutex<Option<timely::communication::WorkerGuards<()>>>,
    ticker: Mutex<Option<(crossbeam_channel::Sender<()>, std::thread::JoinHandle<()>)>>,
    /// Running shared streams of views, joined by new subscribers at the latest time.
    hubs: Mutex<std::collections::HashMap<GlobalId, SubscriptionFeed>>,
    pub(crate) metrics: Metrics,
    /// Commands in log order, held back until the writes before them are durable.
    pipeline: Arc<durable::Pipeline>,
    /// Hands a command to worker 0 now (used by the pipeline, also from the storage thread).
    send_now: Arc<dyn Fn(Command) -> Result<()> + Send + Sync>,
    pub(crate) durability: Option<Arc<durable::Durability>>,
    /// Progress of the replay of the data directory.
    pub(crate) recovery: recovery::Progress,
}

/// A handle on a running engine; clones share it.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// A read sent to the workers, to be collected without holding the coordinator lock.
pub(crate) struct PendingPeek {
    id: u64,
    rx: crossbeam_channel::Receiver<PeekPart>,
    parts: usize,
}

impl Inner {
    /// Sends a command to the workers, after any writes still waiting to be durable.
    fn send(&self, cmd: Command) -> Result<()> {
        self.pipeline.send(cmd, &*self.send_now)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Coord>> {
        let coord = self.lock_any()?;
        if let Some(progress) = &coord.recovering {
            if !recovery::on_recovery_thread() {
                return Err(Error::Recovering(progress.clone()));
            }
        }
        Ok(coord)
    }

    /// The coordinator, even while recovering (reads of the catalog and frontiers).
    fn lock_any(&self) -> Result<MutexGuard<'_, Coord>> {
        let coord = self
            .coord
            .lock()
            .map_err(|_| Error::Internal("coordinator lock poisoned".into()))?;
        if coord.shutdown {
            return Err(Error::Shutdown);
        }
        self.check_alive()?;
        Ok(coord)
    }

    /// Logs a catalog change (under the coordinator lock) and waits until it is durable.
    pub(crate) fn log_ddl(&self, sql: &str) -> Result<()> {
        match &self.durability {
            Some(d) if !recovery::on_recovery_thread() => {
                d.check_writable()?;
                d.log_ddl(sql)
            }
            _ => Ok(()),
        }
    }

    /// Logs a write and queues its command; without storage the command goes at once.
    pub(crate) fn write(
        &self,
        ts: Time,
        table: GlobalId,
        rows: Vec<(Row, Diff)>,
    ) -> Result<durable::Pending> {
        match &self.durability {
            Some(d) if !recovery::on_recovery_thread() => {
                d.check_writable()?;
                // Rows are reference-counted: the record and the command share them.
                let record = crate::storage::LogRecord::Write {
                    ts,
                    table,
                    rows: rows.clone(),
                };
                let cmd = Command::Write {
                    ts,
                    writes: vec![(table, rows)],
                };
                Ok(d.log_write(&record, cmd, &self.pipeline, Arc::clone(&self.send_now)))
            }
            _ => {
                self.send(Command::Write {
                    ts,
                    writes: vec![(table, rows)],
                })?;
                Ok(durable::Pending::none())
            }
        }
    }

    fn check_alive(&self) -> Result<()> {
        if self.shared.failed.load(Ordering::SeqCst) {
            return Err(crate::cluster::ClusterError::Failed(
                self.shared.cluster.failure().unwrap_or_else(|| {
                    "a worker failed; the engine must be restarted (see the log)".into()
                }),
            )
            .into());
        }
        if self.shared.stopped.load(Ordering::SeqCst) {
            return Err(Error::Shutdown);
        }
        Ok(())
    }

    /// The latest time at which every input of `deps` is complete: the latest sequenced time,
    /// or earlier where an event-time source's frontier trails the clock (never before the
    /// compaction frontier: a read there waits for the source to reach it).
    pub(crate) fn read_ts_for(&self, coord: &Coord, deps: &[GlobalId]) -> Time {
        let mut ts = coord.read_ts();
        let sources = coord.catalog.event_time_sources(deps);
        if !sources.is_empty() {
            let stats = self.shared.stats.lock().expect("lock");
            for s in sources {
                let f = stats
                    .get(&s)
                    .map(|st| st.frontier.load(Ordering::Relaxed))
                    .unwrap_or(0);
                ts = ts.min(f.saturating_sub(1));
            }
        }
        ts.max(coord.since)
    }

    /// Sends a read; call while holding the coordinator lock so it is ordered with compaction.
    fn start_peek(&self, target: Target, ts: Time) -> Result<PendingPeek> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = crossbeam_channel::bounded(self.peers);
        self.shared.peeks.lock().expect("lock").insert(id, tx);
        self.send(Command::Peek { id, target, ts })?;
        Ok(PendingPeek {
            id,
            rx,
            parts: self.peers,
        })
    }

    /// Collects every worker's answer: consolidated (row, multiplicity) pairs.
    fn finish_peek(&self, p: PendingPeek) -> Result<Vec<(Row, Diff)>> {
        let mut rows: Vec<(Row, Diff)> = Vec::new();
        let mut error = None;
        let mut received = 0;
        while received < p.parts {
            match p.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(part)) => rows.extend(part),
                Ok(Err(e)) => error = Some(e),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if let Err(e) = self.check_alive() {
                        self.shared.peeks.lock().expect("lock").remove(&p.id);
                        return Err(e);
                    }
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    self.shared.peeks.lock().expect("lock").remove(&p.id);
                    return Err(Error::Internal("workers did not answer the read".into()));
                }
            }
            received += 1;
        }
        self.shared.peeks.lock().expect("lock").remove(&p.id);
        if let Some(e) = error {
            return Err(Error::Eval(e));
        }
        rows.sort();
        let mut out: Vec<(Row, Diff)> = Vec::with_capacity(rows.len());
        for (r, d) in rows {
            match out.last_mut() {
                Some((lr, ld)) if *lr == r => *ld += d,
                _ => out.push((r, d)),
            }
        }
        out.retain(|(_, d)| *d != 0);
        Ok(out)
    }
}

/// Sinks have no contents of their own to read.
fn check_relation(item: &crate::catalog::CatalogItem) -> Result<()> {
    if item.kind == crate::sql::ItemKind::Sink {
        return Err(Error::plan(format!(
            "\"{}\" is a sink; read the relation it writes from instead",
            item.name
        )));
    }
    if item.kind == crate::sql::ItemKind::Index {
        return Err(Error::plan(format!(
            "\"{}\" is an index; read the relation it indexes instead",
            item.name
        )));
    }
    Ok(())
}

/// Expands (row, multiplicity) pairs into rows.
pub(crate) fn expand(rows: Vec<(Row, Diff)>) -> Result<Vec<Row>> {
    let mut out = Vec::with_capacity(rows.len());
    for (r, d) in rows {
        if d < 0 {
            return Err(Error::Internal(format!(
                "negative multiplicity {d} for a result row"
            )));
        }
        for _ in 1..d {
            out.push(r.clone());
        }
        if d > 0 {
            out.push(r);
        }
    }
    Ok(out)
}

impl Engine {
    /// Starts the workers and the clock.
    pub fn start(config: EngineConfig) -> Result<Engine> {
        let workers = config.workers.max(1);
        let processes = config.cluster.as_ref().map_or(1, |c| c.processes);
        if let Some(c) = config.cluster.as_ref().filter(|c| c.process != 0) {
            return Err(crate::cluster::ClusterError::Config(format!(
                "process {} runs workers only (cluster::WorkerProcess); the engine runs in process 0",
                c.process
            ))
            .into());
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        // What the data directory holds decides where time starts: at the earliest time to
        // replay, so replayed writes keep their original timestamps.
        let recovered = match &config.storage {
            Some(h) => Some(h.0.recover().map_err(Error::Storage)?),
            None => None,
        };
        let replay_from = recovered.as_ref().and_then(recovery::earliest);
        let has_history = recovered
            .as_ref()
            .is_some_and(|r| r.snapshot.is_some() || !r.records.is_empty());
        let last_seq = recovered
            .as_ref()
            .map(|r| {
                r.records
                    .last()
                    .map(|(s, _)| *s)
                    .or(r.snapshot.as_ref().map(|s| s.seq))
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        let start = replay_from.unwrap_or_else(now_ms);
        let snapshot_ts = recovered
            .as_ref()
            .and_then(|r| r.snapshot.as_ref().map(|s| s.ts))
            .unwrap_or(0);
        let durability = config
            .storage
            .as_ref()
            .map(|h| Arc::new(durable::Durability::new(Arc::clone(&h.0), last_seq)));
        let resume = recovered
            .as_ref()
            .map(recovery::source_positions)
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            commands: rx,
            peeks: Mutex::new(Default::default()),
            feeds: Mutex::new(Default::default()),
            worker0: Mutex::new(None),
            stats: Mutex::new(Default::default()),
            failed: Default::default(),
            stopped: Default::default(),
            connectors: config.connectors.clone(),
            connector_state: Default::default(),
            clock: Mutex::new(None),
            advance_wanted: Default::default(),
            cluster: crate::cluster::ClusterState::coordinator(workers, processes),
            durability: durability.clone(),
            resume: Mutex::new(resume),
            source_acks: Default::default(),
        });
        if config.cluster.is_some() {
            crate::cluster::watch_peers(&shared);
        }
        let worker_shared = Arc::clone(&shared);
        let guards = crate::cluster::start_workers(
            workers,
            config.cluster.as_ref(),
            config.idle_spin,
            move |worker| {
                crate::worker::run(worker, Arc::clone(&worker_shared), start);
            },
        )?;
        // Wait for worker 0 to say where it lives, so commands can wake it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while shared.worker0.lock().expect("lock").is_none() {
            if std::time::Instant::now() > deadline {
                return Err(Error::Internal("workers did not start".into()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let send_now: Arc<dyn Fn(Command) -> Result<()> + Send + Sync> = {
            let tx = tx.clone();
            let shared = Arc::clone(&shared);
            let peers = workers * processes;
            Arc::new(move |cmd: Command| {
                // Split here, on the sending thread, not on worker 0 (see `Shared::commands`).
                tx.send(cmd.into_shares(peers))
                    .map_err(|_| Error::Shutdown)?;
                if let Some(w) = shared.worker0.lock().expect("lock").as_ref() {
                    w.wake();
                }
                Ok(())
            })
        };
        let subscriber_poll = config.subscriber_poll.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            if workers < cores {
                config.idle_spin
            } else {
                Duration::ZERO
            }
        });
        let inner = Arc::new(Inner {
            config: config.clone(),
            subscriber_poll,
            coord: Mutex::new(Coord {
                catalog: Catalog::default(),
                upper: start,
                since: snapshot_ts,
                shutdown: false,
                recovering: has_history.then(|| "replaying the data directory".to_string()),
                keys: Default::default(),
            }),
            shared,
            peers: workers * processes,
            next_request: AtomicU64::new(1),
            guards: Mutex::new(Some(guards)),
            ticker: Mutex::new(None),
            hubs: Mutex::new(Default::default()),
            metrics: Metrics::default(),
            pipeline: Default::default(),
            send_now,
            durability,
            recovery: Default::default(),
        });
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let weak = Arc::downgrade(&inner);
        let tick = config.tick;
        let handle = std::thread::Builder::new()
            .name("freshet-clock".into())
            .spawn(move || clock(weak, stop_rx, tick))
            .map_err(|e| Error::Internal(e.to_string()))?;
        *inner.shared.clock.lock().expect("lock") = Some(handle.thread().clone());
        *inner.ticker.lock().expect("lock") = Some((stop_tx, handle));
        // Workers of other processes started their clocks elsewhere: the first command tells
        // every worker where time starts.
        inner.send(Command::Advance { upper: start })?;
        tracing::info!(workers, processes, "engine started");
        let engine = Engine { inner };
        match recovered {
            Some(r) if has_history => {
                tracing::info!(
                    records = r.records.len(),
                    snapshot = r.snapshot.is_some(),
                    "recovering from the data directory"
                );
                let replayer = engine.clone();
                std::thread::Builder::new()
                    .name("freshet-recovery".into())
                    .stack_size(32 << 20)
                    .spawn(move || recovery::replay(&replayer, r))
                    .map_err(|e| Error::Internal(e.to_string()))?;
            }
            _ => engine
                .inner
                .recovery
                .finished
                .store(true, Ordering::Release),
        }
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Replay of the data directory: `None` once done (or nothing to replay), else
    /// (rows replayed, rows in all, records replayed, records in all).
    pub fn recovery_progress(&self) -> Option<(u64, u64, u64, u64)> {
        let p = &self.inner.recovery;
        if p.finished.load(Ordering::Acquire) {
            return None;
        }
        Some((
            p.rows_done.load(Ordering::Relaxed),
            p.rows_total.load(Ordering::Relaxed),
            p.records_done.load(Ordering::Relaxed),
            p.records_total.load(Ordering::Relaxed),
        ))
    }

    /// Whether writes are refused because storage failed earlier.
    pub fn storage_failed(&self) -> bool {
        self.inner
            .durability
            .as_ref()
            .is_some_and(|d| d.failed.load(Ordering::Acquire))
    }

    /// Whether the workers are running (false after a worker failed or a peer was lost).
    pub fn healthy(&self) -> bool {
        !self.inner.shared.failed.load(Ordering::SeqCst)
    }

    /// Why the engine failed, once it has (a lost cluster peer, a worker panic).
    pub fn failure(&self) -> Option<String> {
        if self.healthy() {
            return None;
        }
        Some(
            self.inner
                .shared
                .cluster
                .failure()
                .unwrap_or_else(|| "a worker failed; restart the service".into()),
        )
    }

    /// Processes in the cluster (1 without one) and worker threads per process.
    pub fn topology(&self) -> (usize, usize) {
        let c = &self.inner.shared.cluster;
        (c.processes, c.local_workers)
    }

    /// Latest complete timestamp and earliest retained one.
    pub fn frontiers(&self) -> (Time, Time) {
        let c = self.inner.coord.lock().expect("lock");
        (c.read_ts(), c.since)
    }

    /// Runs `;`-separated statements in order; stops at the first error, keeping what ran.
    pub fn execute(&self, sql: &str) -> std::result::Result<Vec<StatementResult>, ExecuteError> {
        execute::execute(self, sql)
    }

    /// The columns of a table (for ingest).
    pub fn table_schema(&self, name: &str) -> Result<Schema> {
        let coord = self.inner.lock()?;
        match coord.catalog.by_name(name) {
            Some(i) if i.kind == crate::sql::ItemKind::Table => Ok(i.schema.clone()),
            Some(i) => Err(Error::plan(format!(
                "\"{}\" is a {}, not a table",
                i.name,
                i.kind.name()
            ))),
            None => Err(Error::UnknownItem {
                kind: "table",
                name: name.to_string(),
            }),
        }
    }

    /// Applies inserts (+1) and deletes (-1) to a table atomically at one new timestamp.
    /// Rows are checked against the table's columns; deletes must match existing rows.
    pub fn write(&self, table: &str, updates: Vec<(Row, Diff)>) -> Result<Time> {
        let (ts, pending) = self.start_write(table, updates)?;
        pending.wait()?;
        Ok(ts)
    }

    /// Checks and queues a write and gives it its timestamp, without waiting for it to be
    /// durable: the caller waits on the returned [`PendingWrite`] (blocking or async) before
    /// acknowledging it. Inserts take the coordinator lock only briefly; a write with deletes
    /// first reads the table to check them, which waits for the workers.
    pub fn start_write(
        &self,
        table: &str,
        updates: Vec<(Row, Diff)>,
    ) -> Result<(Time, PendingWrite)> {
        let mut coord = self.inner.lock()?;
        execute::write_rows(self, &mut coord, table, updates)
    }

    /// Takes a snapshot now (normally the clock does this when the log has grown); returns the
    /// time it is exact at, or `None` without storage.
    pub fn snapshot(&self) -> Result<Option<Time>> {
        snapshot::take(&self.inner)
    }

    /// Reads a table or view as of `as_of` (default: the latest complete timestamp).
    pub fn read(&self, name: &str, as_of: Option<Time>) -> Result<ReadResult> {
        let (pending, columns, ts) = {
            let coord = self.inner.lock()?;
            let item = coord
                .catalog
                .by_name(name)
                .ok_or_else(|| Error::UnknownItem {
                    kind: "relation",
                    name: name.to_string(),
                })?;
            check_relation(item)?;
            let ts = as_of.unwrap_or_else(|| self.inner.read_ts_for(&coord, &[item.id]));
            coord.check_readable(ts)?;
            (
                self.inner.start_peek(Target::Item(item.id), ts)?,
                item.schema.columns.clone(),
                ts,
            )
        };
        let rows = expand(self.inner.finish_peek(pending)?)?;
        Ok(ReadResult {
            columns,
            rows,
            timestamp: ts,
        })
    }

    /// Starts a subscription.
    pub fn subscribe(
        &self,
        target: SubscribeTarget,
        options: SubscribeOptions,
    ) -> Result<Subscription> {
        let coord = self.inner.lock()?;
        let (target, columns) = match target {
            SubscribeTarget::Name(name) => {
                let item = coord
                    .catalog
                    .by_name(&name)
                    .ok_or_else(|| Error::UnknownItem {
                        kind: "relation",
                        name: name.clone(),
                    })?;
                check_relation(item)?;
                (Target::Item(item.id), item.schema.columns.clone())
            }
            SubscribeTarget::Sql(sql) => {
                let (plan, columns) = execute::plan_select_text(&coord, &sql)?;
                let mut deps = Vec::new();
                plan.dependencies(&mut deps);
                deps.extend(execute::index_deps(&coord, &plan));
                (Target::Plan { plan, deps }, columns)
            }
        };
        let (tx, rx) = async_channel::unbounded();
        let capacity = self.inner.config.subscriber_buffer.max(2);
        let state = Arc::new(SubscriptionState::default());
        let member = Member {
            sender: tx,
            state: Arc::clone(&state),
            capacity,
        };
        let guard = |dedicated| SubscriptionGuard {
            dedicated,
            engine: Arc::downgrade(&self.inner),
        };
        let subscription = |as_of, guard| Subscription {
            columns: columns.clone(),
            as_of,
            events: rx.clone(),
            state: Arc::clone(&state),
            poll: self.inner.subscriber_poll,
            _guard: guard,
        };

        // Subscribers of a view at its latest time share one stream (and one dataflow).
        let deps = target.deps();
        let latest = self.inner.read_ts_for(&coord, &deps);
        let shared = options.as_of.is_none() && options.resume_from.is_none() && options.snapshot;
        if let (true, Target::Item(gid)) = (shared, &target) {
            let mut hubs = self.inner.hubs.lock().expect("lock");
            if let Some(hub) = hubs.get(gid) {
                let joining = Member {
                    sender: member.sender.clone(),
                    state: Arc::clone(&state),
                    capacity,
                };
                if let Some(as_of) = hub.join(joining, latest) {
                    self.inner
                        .metrics
                        .subscriptions
                        .fetch_add(1, Ordering::Relaxed);
                    return Ok(subscription(as_of, guard(None)));
                }
            }
            let as_of = latest;
            let id = self.inner.next_request.fetch_add(1, Ordering::Relaxed);
            let feed = SubscriptionFeed::shared(member, as_of);
            hubs.insert(*gid, feed.clone());
            self.inner
                .shared
                .feeds
                .lock()
                .expect("lock")
                .insert(id, feed);
            self.inner.send(Command::Subscribe {
                id,
                target,
                as_of,
                snapshot: true,
            })?;
            self.inner
                .metrics
                .subscriptions
                .fetch_add(1, Ordering::Relaxed);
            return Ok(subscription(as_of, guard(None)));
        }

        let (as_of, snapshot) = match options.resume_from {
            Some(t) => (t.saturating_sub(1), false),
            None => (options.as_of.unwrap_or(latest), options.snapshot),
        };
        coord.check_readable(as_of)?;
        if !snapshot {
            // Without a snapshot, a consumer cut off before the first progress can resume
            // where it started.
            state.last_progress.store(as_of + 1, Ordering::Release);
        }
        let id = self.inner.next_request.fetch_add(1, Ordering::Relaxed);
        self.inner
            .shared
            .feeds
            .lock()
            .expect("lock")
            .insert(id, SubscriptionFeed::single(member, as_of));
        self.inner.send(Command::Subscribe {
            id,
            target,
            as_of,
            snapshot,
        })?;
        self.inner
            .metrics
            .subscriptions
            .fetch_add(1, Ordering::Relaxed);
        Ok(subscription(as_of, guard(Some(id))))
    }

    /// Per table and view: updates produced, arranged records, and frontier.
    pub fn item_stats(&self) -> Vec<ItemStatsSnapshot> {
        let coord = self.inner.coord.lock().expect("lock");
        let stats = self.inner.shared.stats.lock().expect("lock");
        coord
            .catalog
            .items()
            .filter_map(|i| {
                let s = stats.get(&i.id)?;
                Some(ItemStatsSnapshot {
                    name: i.name.clone(),
                    kind: i.kind.name(),
                    updates: s.updates.load(Ordering::Relaxed),
                    records: s.records.load(Ordering::Relaxed).max(0) as u64,
                    batches: s.batches.load(Ordering::Relaxed).max(0) as u64,
                    frontier: s.frontier.load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    /// Tables, views, sources and sinks with their columns, definitions and (sources and
    /// sinks) status.
    pub fn catalog(&self) -> Vec<ItemDescription> {
        let coord = self.inner.coord.lock().expect("lock");
        coord
            .catalog
            .items()
            .map(|i| {
                let mut d = coord.catalog.describe(i);
                d.status = self.connector_status(i);
                d
            })
            .collect()
    }

    /// Statistics of every source, by name.
    pub fn source_stats(&self) -> Vec<(String, Arc<crate::connector::SourceStats>)> {
        self.named(&self.inner.shared.connector_state.sources)
    }

    /// Statistics of every sink, by name.
    pub fn sink_stats(&self) -> Vec<(String, Arc<crate::connector::SinkStats>)> {
        self.named(&self.inner.shared.connector_state.sinks)
    }

    /// The entries of a per-item map, under the items' names, in catalog order.
    fn named<S>(
        &self,
        map: &Mutex<std::collections::BTreeMap<GlobalId, Arc<S>>>,
    ) -> Vec<(String, Arc<S>)> {
        let coord = self.inner.coord.lock().expect("lock");
        let map = map.lock().expect("lock");
        coord
            .catalog
            .items()
            .filter_map(|i| Some((i.name.clone(), Arc::clone(map.get(&i.id)?))))
            .collect()
    }

    /// Sources still reading the history that existed when they started (empty when every
    /// source has caught up).
    pub fn sources_backfilling(&self) -> Vec<String> {
        let coord = self.inner.coord.lock().expect("lock");
        let sources = self
            .inner
            .shared
            .connector_state
            .sources
            .lock()
            .expect("lock");
        let stats = self.inner.shared.stats.lock().expect("lock");
        coord
            .catalog
            .items()
            .filter(|i| {
                let Some(s) = sources.get(&i.id) else {
                    return false;
                };
                // Caught up, and the history is sealed: reads now see all of it.
                let frontier = stats
                    .get(&i.id)
                    .map(|st| st.frontier.load(Ordering::Acquire))
                    .unwrap_or(0);
                !(s.is_caught_up() && frontier > s.caught_up_time.load(Ordering::Acquire))
            })
            .map(|i| i.name.clone())
            .collect()
    }

    fn connector_status(&self, item: &crate::catalog::CatalogItem) -> Option<serde_json::Value> {
        use serde_json::json;
        let state = &self.inner.shared.connector_state;
        if item.source.is_some() {
            let s = Arc::clone(state.sources.lock().expect("lock").get(&item.id)?);
            let rows = s.rows.load(Ordering::Relaxed);
            let bytes = s.bytes.load(Ordering::Relaxed);
            let total = s.total_bytes.load(Ordering::Relaxed);
            let caught_up_at = *s.caught_up_at.lock().expect("lock");
            let elapsed = caught_up_at
                .map(|t| t.duration_since(s.started))
                .unwrap_or_else(|| s.started.elapsed())
                .as_secs_f64()
                .max(1e-3);
            let phase = if s.stalled.load(Ordering::Relaxed) {
                "stalled"
            } else if s.is_caught_up() {
                "running"
            } else {
                "backfilling"
            };
            let mut v = json!({
                "state": phase,
                "rows": rows,
                "bytes": bytes,
                "errors": s.errors.load(Ordering::Relaxed),
                "late": s.late.load(Ordering::Relaxed),
                "rows_per_second": (rows as f64 / elapsed).round(),
            });
            if total > 0 {
                let done = bytes.min(total);
                v["total_bytes"] = total.into();
                v["percent"] = ((done as f64 * 1000.0 / total as f64).round() / 10.0).into();
                if caught_up_at.is_none() && done > 0 {
                    let rate = done as f64 / elapsed;
                    v["eta_seconds"] =
                        (((total - done) as f64 / rate * 10.0).round() / 10.0).into();
                }
            }
            if let Some(e) = s.last_error.lock().expect("lock").clone() {
                v["last_error"] = e.into();
            }
            if let Some(f) = self
                .inner
                .shared
                .stats
                .lock()
                .expect("lock")
                .get(&item.id)
                .map(|st| st.frontier.load(Ordering::Relaxed))
            {
                v["frontier"] = f.into();
            }
            return Some(v);
        }
        if item.sink.is_some() {
            let s = Arc::clone(state.sinks.lock().expect("lock").get(&item.id)?);
            let mut v = json!({
                "state": if s.stalled.load(Ordering::Relaxed) { "stalled" } else { "running" },
                "messages": s.messages.load(Ordering::Relaxed),
                "upper": s.upper(),
            });
            if let Some(e) = s.last_error.lock().expect("lock").clone() {
                v["last_error"] = e.into();
            }
            return Some(v);
        }
        None
    }

    /// Stops the clock and the workers; open subscriptions end. Idempotent. (Dropping the
    /// last handle does the same.)
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

impl Inner {
    fn shutdown(&self) {
        {
            let mut coord = self.coord.lock().unwrap_or_else(|p| p.into_inner());
            if coord.shutdown {
                return;
            }
            coord.shutdown = true;
        }
        if let Some((stop, handle)) = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = stop.send(());
            handle.thread().unpark();
            // The clock thread may itself be dropping the last handle; never join oneself.
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
        // End open subscriptions: their consumers see the channel close.
        for (_, feed) in self
            .shared
            .feeds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            feed.close();
        }
        for (_, hub) in self.hubs.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            hub.close();
        }
        let _ = self.send(Command::Shutdown);
        if let Some(guards) = self.guards.lock().unwrap_or_else(|p| p.into_inner()).take() {
            crate::cluster::join_workers(guards, &self.shared, Duration::from_secs(30));
        }
        // Reads still waiting now will never be answered: let them fail.
        self.shared.stopped.store(true, Ordering::SeqCst);
        tracing::info!("engine stopped");
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Advances time when nothing is written (every `tick`), and at once when a source has rows
/// waiting at ingestion time; lets arrangements compact past the retention on each tick.
fn clock(engine: Weak<Inner>, stop: crossbeam_channel::Receiver<()>, tick: Duration) {
    let mut next_tick = std::time::Instant::now() + tick;
    // Set while source rows wait for the clock to pass their time: check again soon rather
    // than sleeping to the next tick (workers do not wake us again for the same rows).
    let mut retry = false;
    loop {
        if retry {
            std::thread::sleep(Duration::from_micros(200));
            retry = false;
        } else {
            let wait = next_tick.saturating_duration_since(std::time::Instant::now());
            std::thread::park_timeout(wait);
        }
        if !matches!(stop.try_recv(), Err(crossbeam_channel::TryRecvError::Empty)) {
            return;
        }
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let ticked = std::time::Instant::now() >= next_tick;
        let wanted = inner.shared.advance_wanted.swap(false, Ordering::AcqRel);
        if !ticked && !wanted {
            continue;
        }
        let mut coord = match inner.lock() {
            Ok(c) => c,
            // Time stands still while the log is replayed at its own timestamps.
            Err(Error::Recovering(_)) => continue,
            Err(_) => return,
        };
        let mut now = now_ms();
        if wanted && now < coord.upper {
            // Rows went in at `upper`, which is not yet past: wait for the clock to pass it.
            drop(coord);
            inner.shared.advance_wanted.store(true, Ordering::Release);
            retry = true;
            continue;
        }
        if now >= coord.upper {
            now = now.max(coord.upper);
            coord.upper = now + 1;
            let _ = inner.send(Command::Advance { upper: now + 1 });
        }
        if ticked {
            next_tick = std::time::Instant::now() + tick;
            let retention = inner.config.retention.as_millis() as Time;
            let mut since = coord.read_ts().saturating_sub(retention);
            // An event-time source that trails the clock by more than the retention window
            // (a large `lateness`, or a backlog) holds compaction back: reads of views over
            // it are answered at its frontier, which must stay readable.
            {
                let stats = inner.shared.stats.lock().expect("lock");
                for item in coord
                    .catalog
                    .items()
                    .filter(|i| i.source.as_ref().is_some_and(|s| s.event_time.is_some()))
                {
                    let f = stats
                        .get(&item.id)
                        .map(|st| st.frontier.load(Ordering::Relaxed))
                        .unwrap_or(0);
                    since = since.min(f.saturating_sub(1));
                }
            }
            if since > coord.since {
                coord.since = since;
                let _ = inner.send(Command::AllowCompaction { since });
            }
            drop(coord);
            snapshot::maybe_snapshot(&inner);
        }
    }
}
