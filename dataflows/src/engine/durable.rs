//! Acknowledged means durable: logging writes and catalog changes, and releasing commands to
//! the workers in log order once what they depend on is on disk.
//!
//! A write is logged (queued for the storage's group commit) under the coordinator lock, which
//! gives it its place in the log and its timestamp. Its command waits in the [`Pipeline`]
//! until the storage says the record is durable; every command issued after it (advances,
//! reads, other writes) queues behind it, so the workers still see one order. No worker, and
//! so no reader or subscriber, ever sees a write that could be lost in a crash; the writer is
//! answered once it is durable. If storage fails, the failed writes are never applied, and the
//! engine refuses further writes until it is restarted (reads go on).
//!
//! Catalog changes are rarer: they are logged and waited for while the coordinator lock is
//! still held, right after they are applied.
//!
//! Sources log from the workers: each batch a worker takes from a reader is logged with the
//! times it gave the rows and the reader's positions, and the worker holds the source's
//! frontier at those times until the record is durable (`worker::source`). Sequence numbers
//! are handed out and records queued under one lock, so the log's order is the order of the
//! numbers whichever thread logs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use std::collections::BTreeMap;

use crate::command::Command;
use crate::error::{Error, Result};
use crate::plan::GlobalId;
use crate::render::Time;
use crate::storage::{Done, LogRecord, SourcePositions, Storage};

/// A logged record as snapshots see it: the latest time it writes at, its number, and (for a
/// source's batch) where that batch left its reader.
type Logged = (Time, u64, Option<SourceMark>);

/// A source batch's (source, worker, peers, positions).
type SourceMark = (GlobalId, u32, u32, crate::connector::Positions);

enum Entry {
    /// A command that waits only for the entries before it.
    Ready(Command),
    /// A write's command, waiting for its record to be durable (`Some(ok)` once known).
    Logged {
        seq: u64,
        cmd: Command,
        status: Option<bool>,
    },
}

/// Commands in log order, each released once it and everything before it may be applied.
#[derive(Default)]
pub(crate) struct Pipeline {
    queue: Mutex<VecDeque<Entry>>,
}

impl Pipeline {
    /// Sends `cmd` now if nothing waits, else queues it behind what does.
    pub fn send(&self, cmd: Command, send_now: &dyn Fn(Command) -> Result<()>) -> Result<()> {
        let mut q = self.queue.lock().expect("lock");
        if q.is_empty() {
            send_now(cmd)
        } else {
            q.push_back(Entry::Ready(cmd));
            Ok(())
        }
    }

    /// Queues a write's command until record `seq` is durable.
    pub fn push_logged(&self, seq: u64, cmd: Command) {
        self.queue.lock().expect("lock").push_back(Entry::Logged {
            seq,
            cmd,
            status: None,
        });
    }

    /// Record `seq` is durable (or failed): release what can go, in order.
    pub fn complete(&self, seq: u64, ok: bool, send_now: &dyn Fn(Command) -> Result<()>) {
        let mut q = self.queue.lock().expect("lock");
        for e in q.iter_mut() {
            if let Entry::Logged { seq: s, status, .. } = e {
                if *s == seq {
                    *status = Some(ok);
                    break;
                }
            }
        }
        while let Some(front) = q.front() {
            match front {
                Entry::Logged { status: None, .. } => break,
                _ => match q.pop_front() {
                    Some(Entry::Ready(cmd))
                    | Some(Entry::Logged {
                        cmd,
                        status: Some(true),
                        ..
                    }) => {
                        let _ = send_now(cmd);
                    }
                    // A failed write is never applied.
                    _ => {}
                },
            }
        }
    }
}

/// The engine's end of durable storage.
pub(crate) struct Durability {
    pub storage: Arc<dyn Storage>,
    /// The last sequence number handed out; held while a record is queued.
    pub seq: Mutex<u64>,
    /// Set once storage failed: writes are refused until a restart.
    pub failed: AtomicBool,
    /// Logged writes and source batches not yet covered by a snapshot, in log order.
    writes: Mutex<VecDeque<Logged>>,
    /// Source positions of the batches already covered by a snapshot.
    covered: Mutex<BTreeMap<GlobalId, SourcePositions>>,
    /// Every catalog statement with its sequence number (small; kept for snapshots).
    ddl: Mutex<Vec<(u64, String)>>,
    /// When the last snapshot finished (ms), and whether one is being taken.
    pub last_snapshot: std::sync::atomic::AtomicU64,
    pub snapshotting: AtomicBool,
}

/// A write that was given its timestamp and queued: wait on it (blocking or async) to learn
/// that it is durable. Dropping it does not undo the write.
#[must_use = "a write is acknowledged only once it is durable"]
pub struct PendingWrite {
    rx: Option<async_channel::Receiver<std::result::Result<(), String>>>,
}

pub(crate) type Pending = PendingWrite;

impl PendingWrite {
    pub(crate) fn none() -> PendingWrite {
        PendingWrite { rx: None }
    }

    fn outcome(
        r: std::result::Result<std::result::Result<(), String>, async_channel::RecvError>,
    ) -> Result<()> {
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Storage(e)),
            Err(_) => Err(Error::Storage(
                "storage stopped before the write was durable".into(),
            )),
        }
    }

    /// Returns once the write is durable; an error if storage failed.
    pub fn wait(self) -> Result<()> {
        match self.rx {
            None => Ok(()),
            Some(rx) => Self::outcome(rx.recv_blocking()),
        }
    }

    /// The same, without blocking a thread.
    pub async fn durable(self) -> Result<()> {
        match self.rx {
            None => Ok(()),
            Some(rx) => Self::outcome(rx.recv().await),
        }
    }
}

impl Durability {
    pub fn new(storage: Arc<dyn Storage>, last_seq: u64) -> Durability {
        Durability {
            storage,
            seq: Mutex::new(last_seq),
            failed: AtomicBool::new(false),
            writes: Mutex::new(VecDeque::new()),
            covered: Mutex::new(BTreeMap::new()),
            ddl: Mutex::new(Vec::new()),
            last_snapshot: std::sync::atomic::AtomicU64::new(super::now_ms()),
            snapshotting: AtomicBool::new(false),
        }
    }

    /// Remembers a recovered record, so later snapshots can cover it.
    pub fn note_recovered(&self, seq: u64, record: &LogRecord) {
        match record {
            LogRecord::Ddl { sql } => self.ddl.lock().expect("lock").push((seq, sql.clone())),
            _ => self.note_logged(seq, record),
        }
    }

    /// Remembers the positions a recovered snapshot holds.
    pub fn note_snapshot_positions(&self, id: GlobalId, positions: SourcePositions) {
        self.covered.lock().expect("lock").insert(id, positions);
    }

    fn note_logged(&self, seq: u64, record: &LogRecord) {
        let mark = match record {
            LogRecord::Source {
                source,
                worker,
                peers,
                positions,
                ..
            } => Some((*source, *worker, *peers, positions.clone())),
            _ => None,
        };
        // A batch with no rows (positions only) is at no time: any snapshot may cover it.
        let t = record.max_time().unwrap_or(0);
        self.writes.lock().expect("lock").push_back((t, seq, mark));
    }

    /// Where a snapshot at `ts` cuts the log: the last sequence number whose records are all
    /// at or before `ts`, the catalog statements up to it, and the source positions of the
    /// batches up to it.
    pub fn cut_at(&self, ts: Time) -> (u64, Vec<String>, Vec<(GlobalId, SourcePositions)>) {
        let last = *self.seq.lock().expect("lock");
        let mut writes = self.writes.lock().expect("lock");
        let seq = writes
            .iter()
            .find(|(t, _, _)| *t > ts)
            .map(|(_, s, _)| s - 1)
            .unwrap_or(last);
        let mut covered = self.covered.lock().expect("lock");
        while writes.front().is_some_and(|(_, s, _)| *s <= seq) {
            if let Some((_, _, Some((id, worker, peers, positions)))) = writes.pop_front() {
                covered
                    .entry(id)
                    .or_default()
                    .merge(worker, peers, &positions);
            }
        }
        let positions = covered.iter().map(|(k, v)| (*k, v.clone())).collect();
        let ddl = self
            .ddl
            .lock()
            .expect("lock")
            .iter()
            .filter(|(s, _)| *s <= seq)
            .map(|(_, sql)| sql.clone())
            .collect();
        (seq, ddl, positions)
    }

    pub fn check_writable(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(Error::Storage(
                "storage failed earlier; writes are refused until the service is restarted (reads still work)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Numbers `record` and queues it for storage, in one step under the sequence lock (so
    /// records reach storage in the order of their numbers). `done_for` makes the callback
    /// from the number, before the record is queued.
    fn append(&self, record: &LogRecord, done_for: impl FnOnce(u64) -> Done) {
        let mut last = self.seq.lock().expect("lock");
        *last += 1;
        let seq = *last;
        match record {
            LogRecord::Ddl { sql } => self.ddl.lock().expect("lock").push((seq, sql.clone())),
            _ => self.note_logged(seq, record),
        }
        let done = done_for(seq);
        self.storage.append(seq, record, done);
    }

    /// Marks storage failed (once, with a log line).
    fn fail(&self, e: &str) {
        if !self.failed.swap(true, Ordering::AcqRel) {
            tracing::error!("storage failed; refusing writes until restart: {e}");
        }
    }

    /// Logs a write and queues its command; call under the coordinator lock.
    pub fn log_write(
        self: &Arc<Self>,
        record: &LogRecord,
        cmd: Command,
        pipeline: &Arc<Pipeline>,
        send_now: Arc<dyn Fn(Command) -> Result<()> + Send + Sync>,
    ) -> Pending {
        let (tx, rx) = async_channel::bounded(1);
        let me = Arc::clone(self);
        self.append(record, |seq| {
            pipeline.push_logged(seq, cmd);
            let pipeline = Arc::clone(pipeline);
            Box::new(move |result| {
                if let Err(e) = &result {
                    me.fail(e);
                }
                pipeline.complete(seq, result.is_ok(), &*send_now);
                let _ = tx.try_send(result);
            })
        });
        Pending { rx: Some(rx) }
    }

    /// Logs a catalog change and waits until it is durable.
    pub fn log_ddl(self: &Arc<Self>, sql: &str) -> Result<()> {
        let (tx, rx) = async_channel::bounded(1);
        let me = Arc::clone(self);
        let record = LogRecord::Ddl {
            sql: sql.to_string(),
        };
        self.append(&record, |_| {
            Box::new(move |result| {
                if let Err(e) = &result {
                    me.fail(e);
                }
                let _ = tx.try_send(result);
            })
        });
        Pending { rx: Some(rx) }.wait()
    }

    /// Logs a source's batch from a worker; `done` runs once it is durable or failed.
    pub fn log_source(self: &Arc<Self>, record: &LogRecord, done: Done) {
        let me = Arc::clone(self);
        self.append(record, |_| {
            Box::new(move |result| {
                if let Err(e) = &result {
                    me.fail(e);
                }
                done(result);
            })
        });
    }
}
