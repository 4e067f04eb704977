//! A sink's end of its dataflow: the relation's changes, handed to the sink's writers one
//! complete timestamp at a time.
//!
//! A destination that takes many writers (Kafka) gets one per worker, and each worker's writer
//! writes the rows [`SinkWriterId::writer_of`] gives it: the data is written where it lives,
//! not funnelled through one thread of one process. A file has one writer, on worker 0.
//!
//! Each writer gets a snapshot first, then each complete time's consolidated updates in time
//! order, then the frontier. The snapshot waits until the sources under the relation have read
//! the history they found at start: a sink restarted over a backfilling source would otherwise
//! retract what it wrote before and write it again as the backfill proceeds (correct once
//! summed, but not "each change once"). Only worker 0 can tell (process 0 holds every process's
//! source statistics), so it decides the first frontier at which the history is in and
//! broadcasts it; every writer snapshots once its own frontier reaches that. Everything the
//! destination needs for exactly-once (reading back what an earlier run wrote, writing only the
//! difference, progress records) is the writer's business; here we only promise order and
//! completeness.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::{source, Operator};
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::StreamVec;
use timely::scheduling::Activator;

use crate::connector::{SinkEvent, SinkWriter, SinkWriterId};
use crate::pending::PendingUpdates;
use crate::plan::Diff;
use crate::render::Time;
use crate::row::{consolidate, Row};

/// Builds a sink's operators over `data`. `history_in` (consulted on worker 0 only) says, once
/// every upstream source has read its history, the time that history went in at; `writers` is
/// how many writers divide the rows (1: everything goes to worker 0).
pub(super) fn render(
    data: StreamVec<'_, Time, (Row, Time, Diff)>,
    decider: bool,
    history_in: Box<dyn Fn() -> Option<Time>>,
    writers: usize,
    mut op: SinkOperator,
) {
    // The writer operator on worker 0 shows the decider each frontier it reaches (no copy of
    // the data goes to the decider) and wakes it until the decision is made.
    let seen: Rc<Cell<Option<Option<Time>>>> = Rc::new(Cell::new(None));
    let wake: Rc<RefCell<Option<Activator>>> = Rc::new(RefCell::new(None));
    let scope = data.scope();
    let decision = {
        let (seen, wake) = (Rc::clone(&seen), Rc::clone(&wake));
        source::<_, CapacityContainerBuilder<Vec<Time>>, _, _>(
            scope,
            "SinkHistory",
            move |capability, info| {
                *wake.borrow_mut() = Some(scope.activator_for(info.address));
                let mut capability = decider.then_some(capability);
                move |output| {
                    let (Some(cap), Some(frontier)) = (capability.as_ref(), seen.get()) else {
                        return;
                    };
                    let from = match frontier {
                        None => Some(Time::MAX),
                        Some(bound) => history_in().is_some_and(|t| bound > t).then_some(bound),
                    };
                    if let Some(from) = from {
                        output.session(cap).give(from);
                        capability = None;
                    }
                }
            },
        )
        .broadcast()
    };
    data.binary_frontier::<_, CapacityContainerBuilder<Vec<()>>, _, _, _, _>(
        decision,
        Exchange::new(move |(row, _, _): &(Row, Time, Diff)| {
            SinkWriterId::writer_of(row, writers) as u64
        }),
        Pipeline,
        "SinkWriter",
        move |_capability, _info| {
            move |(input, frontier), (decision, _), _output| {
                decision.for_each(|_cap, data| {
                    if let Some(from) = data.iter().min() {
                        op.history_from = Some(*from);
                    }
                });
                input.for_each(|_cap, data| {
                    if op.writer.is_some() {
                        for (row, t, d) in data.drain(..) {
                            op.pending.push(row, t.max(op.as_of), d);
                        }
                    }
                });
                let upper = frontier.frontier().iter().next().copied();
                if decider && op.history_from.is_none() {
                    seen.set(Some(upper));
                    if let Some(a) = wake.borrow().as_ref() {
                        a.activate();
                    }
                }
                op.advance(upper);
            }
        },
    );
}

pub(super) struct SinkOperator {
    pub writer: Option<Box<dyn SinkWriter>>,
    pub as_of: Time,
    pub snapshot_sent: bool,
    pub last_upper: Time,
    /// Rows received, by time (times before `as_of` fold into it).
    pub pending: PendingUpdates,
    /// Complete updates folded into the snapshot while the history is still coming in.
    pub held: Vec<(Row, Diff)>,
    pub name: String,
    /// The frontier from which the history is in (decided by worker 0), once known.
    pub history_from: Option<Time>,
}

impl SinkOperator {
    /// Called when data arrives or the frontier moves; `upper` is `None` once the input closed.
    pub fn advance(&mut self, upper: Option<Time>) {
        let Some(writer) = self.writer.as_mut() else {
            self.pending.clear();
            return;
        };
        let bound = upper.unwrap_or(Time::MAX);
        let complete = upper.is_none() || self.history_from.is_some_and(|from| bound >= from);
        // Nothing new, unless the decision that the history is in just arrived.
        let snapshot_due = !self.snapshot_sent && complete;
        if bound <= self.as_of || (bound <= self.last_upper && !snapshot_due) {
            return;
        }
        let as_of = self.as_of;
        let mut batches = self.pending.take_before(bound);
        let mut ok = true;
        if !self.snapshot_sent {
            for (_, updates) in batches.drain(..) {
                self.held.extend(updates);
            }
            consolidate(&mut self.held);
            if !complete {
                self.last_upper = bound;
                return;
            }
            self.snapshot_sent = true;
            let rows = std::mem::take(&mut self.held);
            let time = bound.saturating_sub(1).max(as_of);
            ok &= writer.send(SinkEvent::Snapshot { time, rows });
        }
        for (time, updates) in batches {
            ok &= writer.send(SinkEvent::Updates { time, updates });
        }
        if let Some(upper) = upper {
            ok &= writer.send(SinkEvent::Progress { upper });
        }
        self.last_upper = bound;
        if !ok {
            tracing::error!(
                sink = self.name,
                "sink writer stopped; changes are no longer written"
            );
            self.writer = None;
        }
    }
}
