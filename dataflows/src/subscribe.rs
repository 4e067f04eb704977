//! Subscriptions: a snapshot at a timestamp, then every change in time order, with progress.
//!
//! A subscription's dataflow imports the arrangement it reads (or renders an ad-hoc plan over
//! existing arrangements), routes every update to worker 0, and there a sink groups updates by
//! time as the frontier passes them. Events go into a bounded channel: a consumer that falls
//! behind is told it lagged (with the last complete time to resume from) and is cut off, so
//! it never blocks the workers nor makes them buffer without bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::plan::Diff;
use crate::render::Time;
use crate::row::Row;

/// One message of a subscription.
#[derive(Clone, Debug, PartialEq)]
pub enum SubscribeEvent {
    /// Every change at `time` (the snapshot arrives as the changes at `as_of`).
    Update { time: Time, updates: Vec<(Row, Diff)> },
    /// All changes at times before `upper` have been sent.
    Progress { upper: Time },
    /// The stream ended with an error; `resume_from` says where a new subscription may resume.
    Error { code: &'static str, message: String, resume_from: Option<Time> },
}

/// Shared between the worker that feeds a subscription and its consumer.
#[derive(Debug, Default)]
pub struct SubscriptionState {
    /// The last progress upper delivered (0 before the first).
    pub last_progress: AtomicU64,
    /// Set when the consumer lagged and the stream was cut.
    pub lagged: std::sync::atomic::AtomicBool,
}

impl SubscriptionState {
    pub fn resume_from(&self) -> Time {
        self.last_progress.load(Ordering::Acquire)
    }
}

/// The feeding side of a subscription, handed to worker 0's sink.
pub struct SubscriptionFeed {
    pub sender: async_channel::Sender<SubscribeEvent>,
    pub state: Arc<SubscriptionState>,
}

/// Outcome of offering an event to a consumer.
pub enum Offer {
    Sent,
    /// The consumer is gone or lagged; the subscription should be stopped.
    Stop,
}

impl SubscriptionFeed {
    /// Offers an event without blocking.
    pub fn offer(&self, event: SubscribeEvent) -> Offer {
        let progress = if let SubscribeEvent::Progress { upper } = &event { Some(*upper) } else { None };
        match self.sender.try_send(event) {
            Ok(()) => {
                if let Some(u) = progress {
                    self.state.last_progress.store(u, Ordering::Release);
                }
                Offer::Sent
            }
            Err(async_channel::TrySendError::Full(_)) => {
                self.state.lagged.store(true, Ordering::Release);
                self.sender.close();
                Offer::Stop
            }
            Err(async_channel::TrySendError::Closed(_)) => Offer::Stop,
        }
    }
}

/// Groups `(row, time, diff)` updates by time, consolidated, in time order.
pub fn batch_by_time(mut updates: Vec<(Row, Time, Diff)>) -> Vec<(Time, Vec<(Row, Diff)>)> {
    updates.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    let mut out: Vec<(Time, Vec<(Row, Diff)>)> = Vec::new();
    for (row, t, d) in updates {
        match out.last_mut() {
            Some((lt, rows)) if *lt == t => match rows.last_mut() {
                Some((lr, ld)) if *lr == row => *ld += d,
                _ => rows.push((row, d)),
            },
            _ => out.push((t, vec![(row, d)])),
        }
    }
    for (_, rows) in &mut out {
        rows.retain(|(_, d)| *d != 0);
    }
    out.retain(|(_, rows)| !rows.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[test]
    fn batches_consolidate_per_time() {
        let r = |i| Row::new(vec![Value::Int(i)]);
        let got = batch_by_time(vec![(r(1), 5, 1), (r(2), 3, 1), (r(1), 5, -1), (r(3), 5, 2)]);
        assert_eq!(got, vec![(3, vec![(r(2), 1)]), (5, vec![(r(3), 2)])]);
    }
}
