//! Updates waiting for their time to complete, grouped by time as they arrive.
//!
//! Subscriptions and sinks hand out a relation's changes one complete time at a time, in time
//! order, each time's updates consolidated and sorted by row. Collecting the updates in one
//! list and sorting it by `(time, row)` at every frontier cost about a fifth of a
//! subscribed view's throughput. Updates mostly arrive already in row order within each time:
//! a view's subscription reads the view's arrangement, whose batches hold each `(row, time)`
//! once, consolidated and sorted by row, and a batch's times never appear in another batch.
//! So each update goes straight into its time's bucket, and a bucket is sorted and
//! consolidated only when an update arrived out of order (several workers, a snapshot that
//! folds earlier times into one, an ad-hoc plan's unconsolidated output).

use crate::plan::Diff;
use crate::render::Time;
use crate::row::{consolidate, Row};

/// Updates not yet handed out, by time.
#[derive(Default)]
pub struct PendingUpdates {
    /// Ordered by time, one bucket per time.
    buckets: Vec<Bucket>,
    /// The bucket the last update went to: consecutive updates often share a time.
    last: usize,
}

struct Bucket {
    time: Time,
    updates: Vec<(Row, Diff)>,
    /// Whether every update arrived after the previous one in row order (strictly, so no two
    /// share a row and the bucket is consolidated as it stands).
    in_order: bool,
}

impl PendingUpdates {
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn clear(&mut self) {
        self.buckets.clear();
        self.last = 0;
    }

    /// Adds `(row, time, diff)`.
    pub fn push(&mut self, row: Row, time: Time, diff: Diff) {
        if diff == 0 {
            return;
        }
        let at = match self.buckets.get(self.last) {
            Some(b) if b.time == time => self.last,
            _ => match self.buckets.binary_search_by_key(&time, |b| b.time) {
                Ok(at) => at,
                Err(at) => {
                    self.buckets.insert(
                        at,
                        Bucket {
                            time,
                            updates: Vec::new(),
                            in_order: true,
                        },
                    );
                    at
                }
            },
        };
        self.last = at;
        let bucket = &mut self.buckets[at];
        if let Some((prev, _)) = bucket.updates.last() {
            bucket.in_order &= *prev < row;
        }
        bucket.updates.push((row, diff));
    }

    /// The updates at times before `bound`, in time order, each time's consolidated and sorted
    /// by row; times whose updates cancel out are left out.
    pub fn take_before(&mut self, bound: Time) -> Vec<(Time, Vec<(Row, Diff)>)> {
        let split = self.buckets.partition_point(|b| b.time < bound);
        self.last = 0;
        self.buckets
            .drain(..split)
            .filter_map(|mut b| {
                if !b.in_order {
                    consolidate(&mut b.updates);
                }
                (!b.updates.is_empty()).then_some((b.time, b.updates))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn r(i: i64) -> Row {
        Row::new(vec![Value::Int(i)])
    }

    #[test]
    fn updates_come_out_by_time_consolidated_and_sorted() {
        let mut p = PendingUpdates::default();
        // Row order within each time, times interleaved (a batch's cursor walk).
        for (row, t, d) in [(1, 5, 1), (1, 3, -1), (2, 5, 1), (2, 3, 1), (4, 7, 1)] {
            p.push(r(row), t, d);
        }
        // Out of order, a duplicate, and an update that cancels another.
        for (row, t, d) in [(0, 5, 1), (2, 5, 1), (2, 3, -1), (9, 3, 0)] {
            p.push(r(row), t, d);
        }
        assert_eq!(
            p.take_before(6),
            vec![
                (3, vec![(r(1), -1)]),
                (5, vec![(r(0), 1), (r(1), 1), (r(2), 2)]),
            ]
        );
        // Later times stay until their bound passes; an earlier bound takes nothing.
        assert!(p.take_before(6).is_empty());
        p.push(r(3), 7, 1);
        assert!(!p.is_empty());
        assert_eq!(p.take_before(8), vec![(7, vec![(r(3), 1), (r(4), 1)])]);
        assert!(p.is_empty());
    }

    #[test]
    fn a_time_whose_updates_cancel_is_left_out() {
        let mut p = PendingUpdates::default();
        p.push(r(1), 2, 1);
        p.push(r(1), 2, -1);
        p.push(r(1), 4, 1);
        assert_eq!(p.take_before(10), vec![(4, vec![(r(1), 1)])]);
    }
}
