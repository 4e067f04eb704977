//! A sink's end of its dataflow: the relation's changes, gathered on worker 0 and handed to
//! the sink's writer one complete timestamp at a time.
//!
//! The writer gets the snapshot at `as_of` first, then each complete time's consolidated
//! updates in time order, then the frontier. Everything the destination needs for exactly-once
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
    pub name: String,
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
            self.snapshot_sent = true;
            let rows = match batches.first() {
                Some((t, _)) if *t == as_of => batches.remove(0).1,
                _ => Vec::new(),
            };
            ok &= writer.send(SinkEvent::Snapshot { time: as_of, rows });
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
