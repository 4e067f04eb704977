//! Subscriptions: a snapshot at a timestamp, then every change in time order, with progress.
//!
//! A subscription's dataflow imports the arrangement it reads (or renders an ad-hoc plan over
//! existing arrangements), routes every update to worker 0, and there a sink groups updates by
//! time as the frontier passes them. Events go into a bounded channel: a consumer that falls
//! behind is told it lagged (with the last complete time to resume from) and is cut off, so
//! it never blocks the workers nor makes them buffer without bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::plan::Diff;
use crate::render::Time;
use crate::row::Row;

/// One message of a subscription.
#[derive(Clone, Debug, PartialEq)]
pub enum SubscribeEvent {
    /// Every change at `time` (the snapshot arrives as the changes at `as_of`).
    Update {
        time: Time,
        updates: Vec<(Row, Diff)>,
    },
    /// All changes at times before `upper` have been sent.
    Progress { upper: Time },
    /// The stream ended with an error; `resume_from` says where a new subscription may resume.
    Error {
        code: &'static str,
        message: String,
        resume_from: Option<Time>,
    },
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

/// One consumer of a subscription: a bounded channel and what it has been sent.
pub struct Member {
    /// Unbounded as a channel (so an idle consumer costs no preallocated buffer), bounded by
    /// `capacity` here.
    pub sender: async_channel::Sender<SubscribeEvent>,
    pub state: Arc<SubscriptionState>,
    /// Events this consumer may have waiting before it counts as lagging.
    pub capacity: usize,
}

impl Member {
    /// Offers an event without blocking; false when the consumer is gone or lagged.
    fn offer(&self, event: SubscribeEvent) -> bool {
        let progress = if let SubscribeEvent::Progress { upper } = &event {
            Some(*upper)
        } else {
            None
        };
        if self.sender.len() >= self.capacity {
            self.state.lagged.store(true, Ordering::Release);
            self.sender.close();
            return false;
        }
        match self.sender.try_send(event) {
            Ok(()) => {
                if let Some(u) = progress {
                    self.state.last_progress.store(u, Ordering::Release);
                }
                true
            }
            Err(async_channel::TrySendError::Full(_)) => {
                self.state.lagged.store(true, Ordering::Release);
                self.sender.close();
                false
            }
            Err(async_channel::TrySendError::Closed(_)) => false,
        }
    }
}

/// Consumers of one subscription dataflow. A shared fan-out (for subscriptions to a view at
/// its latest time) also keeps the accumulated contents, so a consumer can join the running
/// stream at any time with a snapshot and no dataflow of its own.
struct FanOut {
    members: Vec<Member>,
    /// Consumers waiting for the stream to pass their snapshot time.
    pending: Vec<(Time, Member)>,
    contents: Option<HashMap<Row, Diff>>,
    /// The snapshot time of the dataflow, until the first progress.
    as_of: Time,
    /// The last progress sent.
    frontier: Option<Time>,
    stopped: bool,
}

/// The feeding side of a subscription, handed to worker 0's sink.
#[derive(Clone)]
pub struct SubscriptionFeed {
    inner: Arc<Mutex<FanOut>>,
}

/// Outcome of offering an event to the consumers.
pub enum Offer {
    Sent,
    /// Every consumer is gone or lagged; the subscription should be stopped.
    Stop,
}

impl FanOut {
    /// The accumulated contents as updates.
    fn snapshot(&self) -> Vec<(Row, Diff)> {
        self.contents
            .as_ref()
            .map(|c| c.iter().map(|(r, d)| (r.clone(), *d)).collect())
            .unwrap_or_default()
    }
}

impl SubscriptionFeed {
    /// A feed for one consumer.
    pub fn single(member: Member, as_of: Time) -> Self {
        SubscriptionFeed {
            inner: Arc::new(Mutex::new(FanOut {
                members: vec![member],
                pending: Vec::new(),
                contents: None,
                as_of,
                frontier: None,
                stopped: false,
            })),
        }
    }

    /// A feed that consumers can join while it runs.
    pub fn shared(first: Member, as_of: Time) -> Self {
        SubscriptionFeed {
            inner: Arc::new(Mutex::new(FanOut {
                members: vec![first],
                pending: Vec::new(),
                contents: Some(HashMap::new()),
                as_of,
                frontier: None,
                stopped: false,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FanOut> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Offers an event to every consumer without blocking; consumers that are gone or lagged
    /// are dropped.
    pub fn offer(&self, event: SubscribeEvent) -> Offer {
        let mut f = self.lock();
        if f.stopped {
            return Offer::Stop;
        }
        // Everything at or before a waiting consumer's snapshot time has arrived once an event
        // beyond it does (events come in time order): its snapshot is the contents now.
        let beyond = match &event {
            SubscribeEvent::Update { time, .. } => Some(*time),
            SubscribeEvent::Progress { upper } => Some(upper.saturating_sub(1)),
            SubscribeEvent::Error { .. } => {
                // Waiting consumers get the error too.
                let pending = std::mem::take(&mut f.pending);
                f.members.extend(pending.into_iter().map(|(_, m)| m));
                None
            }
        };
        if let Some(beyond) = beyond {
            let pending = std::mem::take(&mut f.pending);
            for (as_of, m) in pending {
                if beyond > as_of {
                    if m.offer(SubscribeEvent::Update {
                        time: as_of,
                        updates: f.snapshot(),
                    }) {
                        f.members.push(m);
                    }
                } else {
                    f.pending.push((as_of, m));
                }
            }
        }
        match &event {
            SubscribeEvent::Update { updates, .. } => {
                if let Some(c) = f.contents.as_mut() {
                    for (r, d) in updates {
                        let n = c.entry(r.clone()).or_default();
                        *n += d;
                        if *n == 0 {
                            c.remove(r);
                        }
                    }
                }
            }
            SubscribeEvent::Progress { upper } => f.frontier = Some(*upper),
            SubscribeEvent::Error { .. } => f.stopped = true,
        }
        let members = std::mem::take(&mut f.members);
        let last = members.len().saturating_sub(1);
        let mut event = Some(event);
        for (i, m) in members.into_iter().enumerate() {
            let e = if i == last {
                event.take()
            } else {
                event.clone()
            };
            if e.is_some_and(|e| m.offer(e)) {
                f.members.push(m);
            }
        }
        if (f.members.is_empty() && f.pending.is_empty()) || f.stopped {
            f.stopped = true;
            // A stopped shared stream keeps no copy of the view.
            if f.contents.is_some() {
                f.contents = Some(HashMap::new());
            }
            Offer::Stop
        } else {
            Offer::Sent
        }
    }

    /// Events the fullest consumer can still take before its buffer is full.
    pub fn room(&self) -> usize {
        let f = self.lock();
        f.members
            .iter()
            .map(|m| m.capacity.saturating_sub(m.sender.len()))
            .min()
            .unwrap_or(0)
    }

    /// The smallest consumer buffer.
    pub fn capacity(&self) -> usize {
        self.lock()
            .members
            .iter()
            .map(|m| m.capacity)
            .min()
            .unwrap_or(0)
    }

    /// Cuts every consumer off as lagging.
    pub fn cut_off(&self) {
        let mut f = self.lock();
        for m in f.members.drain(..) {
            m.state.lagged.store(true, Ordering::Release);
            m.sender.close();
        }
        f.stopped = true;
    }

    /// Where a consumer cut off now could resume from.
    pub fn resume_from(&self) -> Option<Time> {
        self.lock().frontier
    }

    /// Adds a consumer to a running shared feed, with a snapshot no earlier than `min_as_of`
    /// (the latest complete timestamp when it subscribed, so it sees every acknowledged
    /// write). If the stream has already passed that time the consumer gets the contents as of
    /// the last progress at once; otherwise it waits until the stream passes `min_as_of` and
    /// gets the contents as of `min_as_of` then. Returns the snapshot time, or `None` if the
    /// feed has stopped (the caller then starts a new one).
    pub fn join(&self, member: Member, min_as_of: Time) -> Option<Time> {
        let mut f = self.lock();
        if f.stopped || f.contents.is_none() {
            return None;
        }
        match f.frontier {
            Some(upper) if upper > min_as_of => {
                let time = upper - 1;
                if member.offer(SubscribeEvent::Update {
                    time,
                    updates: f.snapshot(),
                }) && member.offer(SubscribeEvent::Progress { upper })
                {
                    f.members.push(member);
                }
                Some(time)
            }
            _ => {
                let as_of = min_as_of.max(f.as_of);
                f.pending.push((as_of, member));
                Some(as_of)
            }
        }
    }

    /// Marks the feed stopped and drops every consumer (their streams end).
    pub fn close(&self) {
        let mut f = self.lock();
        f.stopped = true;
        f.members.clear();
        f.pending.clear();
        if f.contents.is_some() {
            f.contents = Some(HashMap::new());
        }
    }
}
