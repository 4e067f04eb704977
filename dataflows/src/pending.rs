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

impl Bucket {
    fn push(&mut self, row: Row, diff: Diff) {
        if let Some((prev, _)) = self.updates.last() {
            self.in_order &= *prev < row;
        }
        self.updates.push((row, diff));
    }
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
        let at = self.bucket(time);
        self.buckets[at].push(row, diff);
    }

    /// Adds a chunk of `(row, time, diff)`, each time raised to at least `at_least`; a run of
    /// updates at one time goes to its bucket together (a chunk at a single time, as a batch
    /// of a view's arrangement mostly is, with room made for all of it at once).
    pub fn extend(&mut self, chunk: Vec<(Row, Time, Diff)>, at_least: Time) {
        let single = match (chunk.first(), chunk.last()) {
            (Some(first), Some(last)) => first.1.max(at_least) == last.1.max(at_least),
            _ => return,
        };
        let n = chunk.len();
        let mut at = usize::MAX;
        for (row, time, diff) in chunk {
            let time = time.max(at_least);
            if self.buckets.get(at).is_none_or(|b| b.time != time) {
                at = self.bucket(time);
                if single {
                    self.buckets[at].updates.reserve(n);
                }
            }
            if diff != 0 {
                self.buckets[at].push(row, diff);
            }
        }
    }

    /// The bucket of `time`, made if there is none.
    fn bucket(&mut self, time: Time) -> usize {
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
        at
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

    #[test]
    fn chunks_add_as_their_updates_would_one_by_one() {
        // A batch's walk (row order, several times), a second worker's run of the same time,
        // times below `at_least` raised to it, a zero diff, and a chunk at one time.
        let chunks = vec![
            vec![(1, 2, 1), (1, 5, -1), (3, 5, 1), (4, 1, 1), (6, 0, 0)],
            vec![(0, 5, 1), (3, 5, 1), (2, 3, 1)],
            vec![(7, 9, 1), (8, 9, 1), (9, 9, -1)],
        ];
        let (mut by_chunk, mut one_by_one) = (PendingUpdates::default(), PendingUpdates::default());
        for chunk in &chunks {
            let chunk: Vec<_> = chunk.iter().map(|&(row, t, d)| (r(row), t, d)).collect();
            for (row, t, d) in chunk.clone() {
                one_by_one.push(row, t.max(3), d);
            }
            by_chunk.extend(chunk, 3);
        }
        let expected = one_by_one.take_before(10);
        assert_eq!(
            expected,
            vec![
                (3, vec![(r(1), 1), (r(2), 1), (r(4), 1)]),
                (5, vec![(r(0), 1), (r(1), -1), (r(3), 2)]),
                (9, vec![(r(7), 1), (r(8), 1), (r(9), -1)]),
            ]
        );
        assert_eq!(by_chunk.take_before(10), expected);
        assert!(by_chunk.is_empty());
    }
}
