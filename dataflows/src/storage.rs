//! The seam to durable storage: what the engine logs and what it gets back after a restart.
//!
//! The engine decides *what* must survive: every catalog change (as the SQL that made it) and
//! every table write (rows with their timestamp), in the one order the coordinator gave them
//! a sequence number. Where and how it is kept (files, checksums, group commit, snapshots) is
//! the business of `freshet-inputs`, which implements [`Storage`].
//!
//! Recovery replays the same statements and writes at their original timestamps, so the
//! history within the retention window is the same after a restart as before it: reads
//! `AS OF` a retained time and subscriptions resumed from one get the same answers.

use serde::{Deserialize, Serialize};

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
        rows: Vec<(Row, Diff)>,
    },
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
    pub tables: Vec<(GlobalId, Vec<(Row, Diff)>)>,
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
