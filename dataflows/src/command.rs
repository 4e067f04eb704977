//! Commands: what the coordinator asks of the workers, in one sequence.
//!
//! The coordinator hands every command to worker 0, which numbers it and sends it through a
//! timely dataflow to every worker (splitting writes so each worker inserts its share). All
//! workers therefore apply the same commands in the same order and build the same dataflows,
//! whether they are threads of one process or spread over several.

use serde::{Deserialize, Serialize};

use crate::connector::{SinkSpec, SourceSpec};
use crate::error::EvalError;
use crate::plan::mfp::Mfp;
use crate::plan::{Diff, GlobalId, Plan};
use crate::render::Time;
use crate::row::Row;
use crate::storage::SourcePositions;

/// What to read or subscribe to: a catalog item's arrangement, or a plan rendered for the
/// purpose (reusing existing arrangements).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Target {
    Item(GlobalId),
    /// An item's errors, as one-column rows of their messages (for snapshots of sources).
    Errors(GlobalId),
    Plan {
        plan: Plan,
        deps: Vec<GlobalId>,
    },
    /// An item's rows (of `arity` columns) through `mfp`, read from its arrangement without
    /// building a dataflow; with a `prefix` (the values of the leading columns that every row
    /// the mfp keeps starts with), only the rows that start with it, found by a seek.
    Fast {
        id: GlobalId,
        arity: usize,
        mfp: Mfp,
        prefix: Option<Row>,
    },
    /// How many times an item holds each of `rows` (sorted), found by seeks: what a write
    /// that deletes them checks.
    Rows {
        id: GlobalId,
        rows: Vec<Row>,
    },
}

impl Target {
    /// The catalog items the target reads.
    pub fn deps(&self) -> Vec<GlobalId> {
        match self {
            Target::Item(id)
            | Target::Errors(id)
            | Target::Fast { id, .. }
            | Target::Rows { id, .. } => vec![*id],
            Target::Plan { deps, .. } => deps.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Command {
    /// A table: an input and its arrangement.
    CreateTable { id: GlobalId, name: String },
    /// A view: a dataflow over existing arrangements, arranged for reads.
    CreateView {
        id: GlobalId,
        name: String,
        plan: Plan,
        deps: Vec<GlobalId>,
        /// An index's view: what it arranges (joins over `on` read it, see `plan::index`).
        index: Option<crate::plan::index::IndexOn>,
    },
    /// A source: every worker starts its reader, whose rows feed the source's arrangement.
    /// With `replay`, the source first takes the rows logged before a restart
    /// ([`Command::ReplaySource`]) and reads on after [`Command::Recovered`] from `resume`,
    /// where its readers stood (every worker takes its own share). With `log`, every worker
    /// logs its batches: process 0's workers to storage, the others through worker 0.
    CreateSource {
        id: GlobalId,
        spec: SourceSpec,
        replay: bool,
        log: bool,
        resume: Option<SourcePositions>,
    },
    /// Source batches that workers of other processes sent to be logged are durable (or
    /// failed): each worker takes the acknowledgements of its own batches.
    SourceDurable { acks: Vec<SourceAck> },
    /// Rows a source read before a restart, at their original times (dealt out like writes).
    ReplaySource {
        id: GlobalId,
        rows: Vec<(Row, Time, Diff)>,
        errors: Vec<(EvalError, Time, Diff)>,
    },
    /// Replay is done: sources close their replay inputs and read on. `latest` is, per
    /// source, the latest time it had rows at before the restart.
    Recovered { latest: Vec<(GlobalId, Time)> },
    /// A sink: the changes of `from` from `as_of` on, gathered on worker 0 for its writer.
    /// Its first output waits until the `sources` under `from` have read their history.
    CreateSink {
        id: GlobalId,
        spec: SinkSpec,
        from: GlobalId,
        as_of: Time,
        sources: Vec<GlobalId>,
    },
    /// Remove items (dependents first).
    Drop { ids: Vec<GlobalId> },
    /// Updates to tables at `ts`; afterwards every input is advanced to `ts + 1`.
    Write {
        ts: Time,
        writes: Vec<(GlobalId, Vec<(Row, Diff)>)>,
    },
    /// Advance every input to `upper` (time passes with no writes).
    Advance { upper: Time },
    /// Allow arrangements to forget history before `since`.
    AllowCompaction { since: Time },
    /// Read `target` as of `ts`; every worker answers its share.
    Peek { id: u64, target: Target, ts: Time },
    /// Stream `target` from `as_of` on to the subscription registered under `id`.
    Subscribe {
        id: u64,
        target: Target,
        as_of: Time,
        snapshot: bool,
    },
    /// Stop a subscription's dataflow.
    Unsubscribe { id: u64 },
    /// Stop the workers.
    Shutdown,
}

/// Worker `worker`'s batches of `source` up to number `upto` are durable (`ok`), or storage
/// failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceAck {
    pub source: GlobalId,
    pub worker: u32,
    pub upto: u64,
    pub ok: bool,
}

/// Rows to write, per table.
type Writes = Vec<(GlobalId, Vec<(Row, Diff)>)>;

impl Command {
    /// This command as each of `peers` workers sees it: each row of a write goes to the worker
    /// that keeps it (a table's rows are spread by their first column, see `render::prefix`),
    /// so the table's arrangement moves none; other commands are the same for all.
    pub fn into_shares(self, peers: usize) -> Vec<Command> {
        match self {
            Command::Write { ts, writes } => {
                let mut shares: Vec<Writes> = (0..peers)
                    .map(|_| Vec::with_capacity(writes.len()))
                    .collect();
                for (id, rows) in writes {
                    for (share, part) in shares.iter_mut().zip(place(rows, peers)) {
                        share.push((id, part));
                    }
                }
                shares
                    .into_iter()
                    .map(|writes| Command::Write { ts, writes })
                    .collect()
            }
            Command::ReplaySource { id, rows, errors } => {
                let rows = deal(rows, peers);
                let errors = deal(errors, peers);
                rows.into_iter()
                    .zip(errors)
                    .map(|(rows, errors)| Command::ReplaySource { id, rows, errors })
                    .collect()
            }
            other => vec![other; peers],
        }
    }
}

/// Rows into `peers` shares by the worker their first column places them on (timely's
/// exchange: the hash modulo the number of workers).
fn place(rows: Vec<(Row, Diff)>, peers: usize) -> Vec<Vec<(Row, Diff)>> {
    if peers == 1 {
        return vec![rows];
    }
    let mut parts: Vec<Vec<(Row, Diff)>> = (0..peers)
        .map(|_| Vec::with_capacity(rows.len() / peers + 1))
        .collect();
    for (row, diff) in rows {
        parts[(row.placement_hash() % peers as u64) as usize].push((row, diff));
    }
    parts
}

/// Deals `items` round-robin into `peers` shares.
fn deal<T>(items: Vec<T>, peers: usize) -> Vec<Vec<T>> {
    let mut parts: Vec<Vec<T>> = (0..peers)
        .map(|_| Vec::with_capacity(items.len() / peers + 1))
        .collect();
    for (i, x) in items.into_iter().enumerate() {
        parts[i % peers].push(x);
    }
    parts
}
