//! A sink's end of its dataflow: the relation's changes, gathered on worker 0 and handed to
//! the sink's writer one complete timestamp at a time.
//!
//! The writer gets a snapshot first, then each complete time's consolidated updates in time
//! order, then the frontier. The snapshot waits until the sources under the relation have read
//! the history they found at start: a sink restarted over a backfilling source would otherwise
//! retract what it wrote before and write it again as the backfill proceeds (correct once
//! summed, but not "each change once"). Everything the destination needs for exactly-once
//! (reading back what an earlier run wrote, writing only the difference, progress records)
//! is the writer's business; here we only promise order and completeness.

use crate::connector::{SinkEvent, SinkWriter};
use crate::plan::Diff;
use crate::render::Time;
use crate::row::Row;
use crate::subscribe::batch_by_time;

pub(super) struct SinkOperator {
    pub writer: Option<Box<dyn SinkWriter>>,
    pub as_of: Time,
    pub snapshot_sent: bool,
    pub last_upper: Time,
    pub stash: Vec<(Row, Time, Diff)>,
    /// Complete updates folded into the snapshot while the history is still coming in.
    pub held: Vec<(Row, Diff)>,
    pub name: String,
    /// Once every upstream source has read its history: the time that history went in at.
    pub history_in: Box<dyn Fn() -> Option<Time>>,
}

impl SinkOperator {
    /// Called when data arrives or the frontier moves; `upper` is `None` once the input closed.
    pub fn advance(&mut self, upper: Option<Time>) {
        let Some(writer) = self.writer.as_mut() else {
            self.stash.clear();
            return;
        };
        let bound = upper.unwrap_or(Time::MAX);
        if bound <= self.as_of || bound <= self.last_upper {
            return;
        }
        let (ready, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.stash)
            .into_iter()
            .partition(|(_, t, _)| *t < bound);
        self.stash = rest;
        let as_of = self.as_of;
        let mut batches = batch_by_time(
            ready
                .into_iter()
                .map(|(r, t, d)| (r, t.max(as_of), d))
                .collect(),
        );
        let mut ok = true;
        if !self.snapshot_sent {
            for (_, updates) in batches.drain(..) {
                self.held.extend(updates);
            }
            consolidate(&mut self.held);
            let complete = (self.history_in)().is_some_and(|t| bound > t);
            if !complete && upper.is_some() {
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

/// Sums the diffs of equal rows and drops the ones that cancel.
fn consolidate(updates: &mut Vec<(Row, Diff)>) {
    updates.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(Row, Diff)> = Vec::with_capacity(updates.len());
    for (row, d) in updates.drain(..) {
        match out.last_mut() {
            Some((r, x)) if *r == row => *x += d,
            _ => out.push((row, d)),
        }
    }
    out.retain(|(_, d)| *d != 0);
    *updates = out;
}
