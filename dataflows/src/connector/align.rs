//! Keeps a source's readers in one process level with each other.
//!
//! A source read by several workers at once (a generator's strides, a topic's partitions)
//! has one order its rows were made in, and views over it often group by something that
//! follows that order, such as a window of event time. When one reader runs ahead of the
//! others, every window receives rows from the leader at some timestamps and from the
//! laggards at later ones: each group changes at more timestamps than if the readers had
//! kept pace, and views that redo work per change of a group (a `max` per window, a join
//! against it) pay for each of them. Flink aligns its sources' watermarks for the same
//! reason. On Nexmark q5 with two workers, keeping the generators level cut the updates of
//! the per-auction counts by about a tenth; most of the spread came from the workers taking
//! batches at different times, which `worker/source.rs` handles (`docs/benchmarks.md`,
//! "Sources' shares kept level across workers").
//!
//! A reader reports its position (how far along its share of the order it is) and, before
//! making more, waits while it is more than a slack ahead of the slowest reader that has not
//! finished. Positions are in each reader's own units, comparable when the shares are equal
//! strides of one sequence. Only readers of this process are compared; a cluster's other
//! processes keep their own.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The positions of a source's readers in this process.
#[derive(Debug, Default)]
pub struct Alignment {
    positions: Mutex<BTreeMap<usize, u64>>,
    moved: Condvar,
}

/// One reader's place in an [`Alignment`]; leaving (dropped) lets the others run on.
pub struct AlignedReader {
    alignment: Arc<Alignment>,
    reader: usize,
}

impl Alignment {
    /// Joins `reader` at `position`.
    pub fn join(self: &Arc<Self>, reader: usize, position: u64) -> AlignedReader {
        self.positions
            .lock()
            .expect("lock")
            .insert(reader, position);
        self.moved.notify_all();
        AlignedReader {
            alignment: Arc::clone(self),
            reader,
        }
    }

    fn slowest(positions: &BTreeMap<usize, u64>) -> u64 {
        positions.values().copied().min().unwrap_or(0)
    }
}

impl AlignedReader {
    /// Records that this reader has reached `position`.
    pub fn advance(&self, position: u64) {
        let mut positions = self.alignment.positions.lock().expect("lock");
        let slowest_before = Alignment::slowest(&positions);
        positions.insert(self.reader, position);
        if Alignment::slowest(&positions) != slowest_before {
            self.alignment.moved.notify_all();
        }
    }

    /// Waits while this reader is more than `slack` ahead of the slowest, or until `stop`
    /// says to give up (checked every few milliseconds).
    pub fn wait_within(&self, slack: u64, stop: impl Fn() -> bool) {
        let mut positions = self.alignment.positions.lock().expect("lock");
        loop {
            let mine = positions.get(&self.reader).copied().unwrap_or(0);
            if mine <= Alignment::slowest(&positions).saturating_add(slack) || stop() {
                return;
            }
            positions = self
                .alignment
                .moved
                .wait_timeout(positions, Duration::from_millis(5))
                .expect("lock")
                .0;
        }
    }
}

impl Drop for AlignedReader {
    fn drop(&mut self) {
        let mut positions = self
            .alignment
            .positions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        positions.remove(&self.reader);
        self.alignment.moved.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_ahead_waits_for_the_slowest_and_is_let_go_when_it_leaves() {
        let alignment = Arc::new(Alignment::default());
        let fast = alignment.join(0, 0);
        let slow = alignment.join(1, 0);
        fast.advance(100);
        // Within the slack: no wait.
        fast.wait_within(100, || false);
        let waiter = std::thread::spawn(move || {
            fast.wait_within(10, || false);
            fast
        });
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            !waiter.is_finished(),
            "100 ahead of 0 with slack 10 must wait"
        );
        slow.advance(95);
        let fast = waiter
            .join()
            .expect("released once the slowest is within the slack");
        // A finished reader holds no one back.
        fast.advance(1000);
        drop(slow);
        fast.wait_within(0, || false);
    }

    #[test]
    fn stop_ends_a_wait() {
        let alignment = Arc::new(Alignment::default());
        let fast = alignment.join(0, 50);
        let _slow = alignment.join(1, 0);
        fast.wait_within(0, || true);
    }
}
