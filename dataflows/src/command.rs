//! Commands: what the coordinator asks of the workers, in one sequence.
//!
//! The coordinator hands every command to worker 0, which numbers it and sends it through a
//! timely dataflow to every worker (splitting writes so each worker inserts its share). All
//! workers therefore apply the same commands in the same order and build the same dataflows,
//! whether they are threads of one process or spread over several.

use serde::{Deserialize, Serialize};

use crate::plan::{Diff, GlobalId, Plan};
use crate::render::Time;
use crate::row::Row;

/// What to read or subscribe to: a catalog item's arrangement, or a plan rendered for the
/// purpose (reusing existing arrangements).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Target {
    Item(GlobalId),
    Plan { plan: Plan, deps: Vec<GlobalId> },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Command {
    /// A table: an input and its arrangement.
    CreateTable { id: GlobalId, name: String },
    /// A view: a dataflow over existing arrangements, arranged for reads.
    CreateView { id: GlobalId, name: String, plan: Plan, deps: Vec<GlobalId> },
    /// Remove items (dependents first).
    Drop { ids: Vec<GlobalId> },
    /// Updates to tables at `ts`; afterwards every input is advanced to `ts + 1`.
    Write { ts: Time, writes: Vec<(GlobalId, Vec<(Row, Diff)>)> },
    /// Advance every input to `upper` (time passes with no writes).
    Advance { upper: Time },
    /// Allow arrangements to forget history before `since`.
    AllowCompaction { since: Time },
    /// Read `target` as of `ts`; every worker answers its share.
    Peek { id: u64, target: Target, ts: Time },
    /// Stream `target` from `as_of` on to the subscription registered under `id`.
    Subscribe { id: u64, target: Target, as_of: Time, snapshot: bool },
    /// Stop a subscription's dataflow.
    Unsubscribe { id: u64 },
    /// Stop the workers.
    Shutdown,
}

impl Command {
    /// This command as seen by worker `w` of `peers`: writes carry only that worker's share.
    pub fn share_for(&self, w: usize, peers: usize) -> Command {
        match self {
            Command::Write { ts, writes } => Command::Write {
                ts: *ts,
                writes: writes
                    .iter()
                    .map(|(id, rows)| {
                        let mine = rows.iter().enumerate().filter(|(i, _)| i % peers == w).map(|(_, r)| r.clone()).collect();
                        (*id, mine)
                    })
                    .collect(),
            },
            other => other.clone(),
        }
    }
}
