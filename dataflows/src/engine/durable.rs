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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::command::Command;
use crate::error::{Error, Result};
use crate::storage::{LogRecord, Storage};

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
    /// The last sequence number handed out.
    pub seq: Mutex<u64>,
    /// Set once storage failed: writes are refused until a restart.
    pub failed: AtomicBool,
    /// (timestamp, sequence number) of logged writes not yet covered by a snapshot.
    writes: Mutex<VecDeque<(crate::render::Time, u64)>>,
    /// Every catalog statement with its sequence number (small; kept for snapshots).
    ddl: Mutex<Vec<(u64, String)>>,
    /// When the last snapshot finished (ms), and whether one is being taken.
    pub last_snapshot: std::sync::atomic::AtomicU64,
    pub snapshotting: AtomicBool,
}

/// Waits for a write to be durable.
pub(crate) struct Pending {
    pub rx: Option<crossbeam_channel::Receiver<std::result::Result<(), String>>>,
}

impl Pending {
    pub fn none() -> Pending {
        Pending { rx: None }
    }

    /// Returns once the write is durable; an error if storage failed.
    pub fn wait(self) -> Result<()> {
        match self.rx {
            None => Ok(()),
            Some(rx) => match rx.recv() {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(Error::Storage(e)),
                Err(_) => Err(Error::Storage(
                    "storage stopped before the write was durable".into(),
                )),
            },
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
            ddl: Mutex::new(Vec::new()),
            last_snapshot: std::sync::atomic::AtomicU64::new(super::now_ms()),
            snapshotting: AtomicBool::new(false),
        }
    }

    /// Remembers a recovered record, so later snapshots can cover it.
    pub fn note_recovered(&self, seq: u64, record: &LogRecord) {
        match record {
            LogRecord::Ddl { sql } => self.ddl.lock().expect("lock").push((seq, sql.clone())),
            LogRecord::Write { ts, .. } => self.writes.lock().expect("lock").push_back((*ts, seq)),
        }
    }

    /// Where a snapshot at `ts` cuts the log: the last sequence number whose records are all
    /// at or before `ts`, and the catalog statements up to it.
    pub fn cut_at(&self, ts: crate::render::Time) -> (u64, Vec<String>) {
        let last = *self.seq.lock().expect("lock");
        let mut writes = self.writes.lock().expect("lock");
        let seq = writes
            .iter()
            .find(|(t, _)| *t > ts)
            .map(|(_, s)| s - 1)
            .unwrap_or(last);
        while writes.front().is_some_and(|(_, s)| *s <= seq) {
            writes.pop_front();
        }
        let ddl = self
            .ddl
            .lock()
            .expect("lock")
            .iter()
            .filter(|(s, _)| *s <= seq)
            .map(|(_, sql)| sql.clone())
            .collect();
        (seq, ddl)
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

    fn next_seq(&self) -> u64 {
        let mut s = self.seq.lock().expect("lock");
        *s += 1;
        *s
    }

    /// Logs a write and queues its command; call under the coordinator lock.
    pub fn log_write(
        self: &Arc<Self>,
        record: &LogRecord,
        cmd: Command,
        pipeline: &Arc<Pipeline>,
        send_now: Arc<dyn Fn(Command) -> Result<()> + Send + Sync>,
    ) -> Pending {
        let seq = self.next_seq();
        if let LogRecord::Write { ts, .. } = record {
            self.writes.lock().expect("lock").push_back((*ts, seq));
        }
        pipeline.push_logged(seq, cmd);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let pipeline = Arc::clone(pipeline);
        let me = Arc::clone(self);
        self.storage.append(
            seq,
            record,
            Box::new(move |result| {
                if let Err(e) = &result {
                    if !me.failed.swap(true, Ordering::AcqRel) {
                        tracing::error!("storage failed; refusing writes until restart: {e}");
                    }
                }
                pipeline.complete(seq, result.is_ok(), &*send_now);
                let _ = tx.send(result);
            }),
        );
        Pending { rx: Some(rx) }
    }

    /// Logs a catalog change and waits until it is durable.
    pub fn log_ddl(self: &Arc<Self>, sql: &str) -> Result<()> {
        let seq = self.next_seq();
        self.ddl.lock().expect("lock").push((seq, sql.to_string()));
        let (tx, rx) = crossbeam_channel::bounded(1);
        let me = Arc::clone(self);
        self.storage.append(
            seq,
            &LogRecord::Ddl {
                sql: sql.to_string(),
            },
            Box::new(move |result| {
                if result.is_err() {
                    me.failed.store(true, Ordering::Release);
                }
                let _ = tx.send(result);
            }),
        );
        Pending { rx: Some(rx) }.wait()
    }
}
