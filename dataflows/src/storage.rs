//! The seam to durable storage: what the engine logs and what it gets back after a restart.
//!
//! The engine decides *what* must survive: every catalog change (as the SQL that made it),
//! every table write (rows with their timestamp), and every batch a source's reader handed a
//! worker (rows with the times the worker gave them, and the reader's positions after it), in
//! one order of sequence numbers. Where and how it is kept (files, checksums, group commit, snapshots) is
//! the business of `freshet-inputs`, which implements [`Storage`].
//!
//! Recovery replays the same statements and writes at their original timestamps, so the
//! history within the retention window is the same after a restart as before it: reads
//! `AS OF` a retained time and subscriptions resumed from one get the same answers. Sources
//! resume reading from the positions stored with their last logged batch, so nothing they
//! read before the crash is read (and counted) twice.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::connector::Positions;
use crate::error::EvalError;
use crate::plan::{Diff, GlobalId};
use crate::render::Time;
use crate::row::Row;

/// One entry of the log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum LogRecord {
    /// A statement that changed the catalog (`CREATE …`, `DROP …`), replayed as SQL.
    Ddl { sql: String },
    /// Rows written to a table at `ts`.
    Write {
        ts: Time,
        table: GlobalId,
        #[serde(with = "crate::row::stored")]
        rows: Vec<(Row, Diff)>,
    },
    /// A batch one worker took from a source's reader, with the times it gave the rows.
    Source {
        source: GlobalId,
        /// The worker that read it, and how many workers there were (positions are per
        /// worker: they can be resumed only by the same share of the source).
        worker: u32,
        peers: u32,
        #[serde(with = "crate::row::stored")]
        rows: Vec<(Row, Time, Diff)>,
        errors: Vec<(EvalError, Time, Diff)>,
        /// The reader's positions after this batch (only the parts that moved).
        positions: Positions,
    },
}

impl LogRecord {
    /// The times this record writes at (none for a catalog statement).
    fn times(&self) -> Box<dyn Iterator<Item = Time> + '_> {
        match self {
            LogRecord::Ddl { .. } => Box::new(std::iter::empty()),
            LogRecord::Write { ts, .. } => Box::new(std::iter::once(*ts)),
            LogRecord::Source { rows, errors, .. } => Box::new(
                rows.iter()
                    .map(|(_, t, _)| *t)
                    .chain(errors.iter().map(|(_, t, _)| *t)),
            ),
        }
    }

    /// The latest time this record writes at, if it writes anything.
    pub fn max_time(&self) -> Option<Time> {
        self.times().max()
    }

    /// The earliest time this record writes at, if it writes anything.
    pub fn min_time(&self) -> Option<Time> {
        self.times().min()
    }
}

/// Where each worker's reader of one source stands.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SourcePositions {
    /// The number of workers that read the source.
    pub peers: u32,
    /// Per worker, its reader's positions (merged over all its batches).
    pub workers: BTreeMap<u32, Positions>,
    /// Positions from before the number of workers last changed, merged over workers.
    pub carried: Positions,
}

impl SourcePositions {
    /// Takes in a batch's positions (later batches win, part by part).
    pub fn merge(&mut self, worker: u32, peers: u32, positions: &Positions) {
        if self.peers != peers {
            // Per-worker positions of another division of the source mean nothing to this
            // one; merged, they still say where shared parts (partitions, files) stand.
            self.carried = self.all();
            self.workers.clear();
            self.peers = peers;
        }
        let mine = self.workers.entry(worker).or_default();
        for (part, offset) in positions {
            mine.insert(*part, *offset);
        }
    }

    /// Where worker `worker` of `peers` resumes.
    pub fn resume_for(&self, worker: u32, peers: u32) -> crate::connector::Resume {
        crate::connector::Resume {
            own: (self.peers == peers)
                .then(|| self.workers.get(&worker).cloned().unwrap_or_default()),
            all: self.all(),
        }
    }

    /// Every worker's positions merged (the furthest per part).
    fn all(&self) -> Positions {
        let mut all = self.carried.clone();
        for positions in self.workers.values() {
            for (part, offset) in positions {
                let o = all.entry(*part).or_insert(*offset);
                *o = (*o).max(*offset);
            }
        }
        all
    }
}

/// A source's contents at a snapshot's time, and where its readers stood.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SourceSnapshot {
    pub source: GlobalId,
    #[serde(with = "crate::row::stored")]
    pub rows: Vec<(Row, Diff)>,
    pub errors: Vec<(EvalError, Diff)>,
    pub positions: SourcePositions,
}

/// Table contents at one time, from which the log after it is replayed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    /// The time the contents are exact at (the compaction frontier when it was taken).
    pub ts: Time,
    /// The last log sequence number the snapshot covers: records up to it are not replayed.
    pub seq: u64,
    /// Catalog statements up to `seq`, in order.
    pub ddl: Vec<String>,
    /// Each table's rows at `ts`.
    #[serde(with = "crate::row::stored::keyed")]
    pub tables: Vec<(GlobalId, Vec<(Row, Diff)>)>,
    /// Each source's rows at `ts`, with the positions of the batches logged up to `seq`.
    /// Log records after `seq` may still hold rows at or before `ts` (sources log out of
    /// time order): replay skips those, as they are here.
    pub sources: Vec<SourceSnapshot>,
}

/// What storage holds after a restart.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    pub snapshot: Option<Snapshot>,
    /// Log records after the snapshot, with their sequence numbers, in order.
    pub records: Vec<(u64, LogRecord)>,
}

/// Called once a record is durable (`Ok`) or can never be (`Err`), in log order.
pub type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Durable storage for the catalog and table writes (implemented by `freshet-inputs`).
pub trait Storage: Send + Sync {
    /// Everything stored, cutting a torn or corrupt tail at the last whole record.
    fn recover(&self) -> Result<Recovered, String>;

    /// Queues `record` as number `seq` (one more than the last); `done` runs once it is on
    /// disk, or failed. Records become durable in the order they were appended.
    fn append(&self, seq: u64, record: &LogRecord, done: Done);

    /// Stores a snapshot; log records up to `snapshot.seq` may then be discarded.
    fn snapshot(&self, snapshot: Snapshot) -> Result<(), String>;

    /// Bytes of log kept since the last snapshot (to decide when to take the next).
    fn log_bytes(&self) -> u64;
}
