//! A subscription's end of its dataflow: every worker's share of the subscribed relation goes
//! to worker 0, which hands it to the consumer one complete time at a time.
//!
//! Worker 0 is where a subscription's feed lives, so every update crosses to it. A view's
//! subscription reads the view's arrangement, whose batches come out consolidated and in row
//! order; walked into a collection first, each update would be pushed once into a container,
//! once more into the exchange's buffer for worker 0, and then one by one into the pending
//! times. Instead each batch is walked into chunks of updates that cross as single elements
//! and are added to the pending times a run at a time ([`batch_chunks`]); relations computed
//! for the subscription itself (an ad-hoc query) pass their containers on as chunks
//! ([`collection_chunks`]).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::cursor::Navigable;
use differential_dataflow::trace::implementations::spine_fueled::SpineBatch;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::Stream;
use timely::scheduling::Activator;

use crate::error::EvalError;
use crate::pending::PendingUpdates;
use crate::plan::Diff;
use crate::render::prefix::RowArranged;
use crate::render::{Errs, Rows, Time};
use crate::row::Row;
use crate::subscribe::{Offer, SubscribeEvent, SubscriptionFeed};

/// Updates that travel to worker 0 together.
pub type Chunk = Vec<(Row, Time, Diff)>;

/// Updates per chunk: large enough that a chunk's own cost vanishes, small enough that a
/// batch of millions does not travel as one allocation.
const CHUNK: usize = 4096;

/// An arrangement's batches as chunks of their updates, in each batch's (row, time) order.
pub fn batch_chunks<'s>(arranged: &RowArranged<'s, Time>) -> Stream<'s, Time, Vec<Chunk>> {
    arranged
        .stream
        .clone()
        .unary::<CapacityContainerBuilder<Vec<Chunk>>, _, _, _>(
            Pipeline,
            "SubscribeChunks",
            |_, _| {
                move |input, output| {
                    input.for_each(|cap, spans| {
                        let mut session = output.session(&cap);
                        for span in spans.iter() {
                            let Some(batch) = span.inner.as_ref() else {
                                continue;
                            };
                            let mut chunk = Vec::with_capacity(batch.len().min(CHUNK));
                            let mut cursor = batch.cursor();
                            while let Some(row) = cursor.get_key(batch) {
                                cursor.map_times(batch, |t, d| chunk.push((row.clone(), *t, *d)));
                                if chunk.len() >= CHUNK {
                                    session.give(std::mem::replace(
                                        &mut chunk,
                                        Vec::with_capacity(CHUNK),
                                    ));
                                }
                                cursor.step_key(batch);
                            }
                            if !chunk.is_empty() {
                                session.give(chunk);
                            }
                        }
                    });
                }
            },
        )
}

/// A collection's containers passed on as chunks.
pub fn collection_chunks<'s>(rows: Rows<'s, Time>) -> Stream<'s, Time, Vec<Chunk>> {
    rows.inner
        .unary::<CapacityContainerBuilder<Vec<Chunk>>, _, _, _>(
            Pipeline,
            "SubscribeChunks",
            |_, _| {
                move |input, output| {
                    input.for_each(|cap, data| {
                        if !data.is_empty() {
                            output.session(&cap).give(std::mem::take(data));
                        }
                    });
                }
            },
        )
}

/// What a subscription's sink starts from.
pub struct SinkStart {
    pub id: u64,
    /// The consumer's end, on worker 0 only (elsewhere, or once it is gone, `None`).
    pub feed: Option<SubscriptionFeed>,
    pub as_of: Time,
    pub snapshot: bool,
    /// Where the sink reports that its consumer went away.
    pub stopped: Rc<RefCell<Vec<u64>>>,
}

/// Sends every worker's chunks and errors to worker 0 and feeds its consumer from there.
pub fn render<'s>(chunks: Stream<'s, Time, Vec<Chunk>>, errs: Errs<'s, Time>, start: SinkStart) {
    let scope = chunks.scope();
    chunks.binary_frontier::<_, CapacityContainerBuilder<Vec<()>>, _, _, _, _>(
        errs.inner,
        Exchange::new(|_: &Chunk| 0u64),
        Exchange::new(|_| 0u64),
        "SubscribeSink",
        move |_capability, info| {
            let as_of = start.as_of;
            let mut sink = SubscribeSink {
                id: start.id,
                feed: start.feed,
                as_of,
                snapshot: start.snapshot,
                snapshot_sent: false,
                pending: PendingUpdates::default(),
                errors: Vec::new(),
                last_upper: 0,
                stopped: start.stopped,
                backlog: VecDeque::new(),
                catching_up: true,
                activator: scope.activator_for(info.address),
            };
            move |(rows, rows_frontier), (errors, errors_frontier), _output| {
                rows.for_each(|_cap, data| {
                    if sink.feed.is_some() {
                        for chunk in data.drain(..) {
                            sink.pending.extend(chunk, as_of);
                        }
                    }
                });
                errors.for_each(|_cap, data| {
                    if sink.feed.is_some() {
                        sink.errors.append(data);
                    }
                });
                let upper = rows_frontier
                    .frontier()
                    .iter()
                    .chain(errors_frontier.frontier().iter())
                    .min()
                    .copied();
                sink.advance(upper);
                sink.flush();
            }
        },
    );
}

/// Worker 0's end of a subscription dataflow: batches updates by time as the frontier passes.
struct SubscribeSink {
    id: u64,
    feed: Option<SubscriptionFeed>,
    as_of: Time,
    snapshot: bool,
    snapshot_sent: bool,
    /// Rows received, by time (times before `as_of` fold into it).
    pending: PendingUpdates,
    /// Errors received, with their times.
    errors: Vec<(EvalError, Time, Diff)>,
    last_upper: Time,
    stopped: Rc<RefCell<Vec<u64>>>,
    /// Events computed but not yet handed to the consumer.
    backlog: VecDeque<SubscribeEvent>,
    /// Until the first backlog has been delivered (the snapshot and, for `as_of` or resumed
    /// subscriptions, the history since then) events are paced to the consumer's free buffer
    /// instead of counting a full buffer as lagging: catching up is not falling behind.
    catching_up: bool,
    activator: Activator,
}

/// A consumer whose undelivered events exceed this many buffers is cut off even while
/// catching up: it is not keeping up with the live stream.
const MAX_BACKLOG_BUFFERS: usize = 64;

impl SubscribeSink {
    /// Hands backlog events to the consumer: all of them once live, as many as fit while
    /// catching up (then polling again shortly).
    fn flush(&mut self) {
        while !self.backlog.is_empty() {
            let Some(feed) = self.feed.as_ref() else {
                self.backlog.clear();
                return;
            };
            if self.catching_up && feed.room() == 0 {
                if self.backlog.len() > MAX_BACKLOG_BUFFERS * feed.capacity().max(1) {
                    feed.cut_off();
                    self.stop();
                    return;
                }
                self.activator
                    .activate_after(std::time::Duration::from_millis(1));
                return;
            }
            let event = self.backlog.pop_front().expect("non-empty");
            let ends = matches!(event, SubscribeEvent::Error { .. });
            if !self.offer(event) {
                return;
            }
            if ends {
                self.stop();
                return;
            }
        }
        if self.snapshot_sent {
            self.catching_up = false;
        }
    }

    fn stop(&mut self) {
        if self.feed.take().is_some() {
            self.stopped.borrow_mut().push(self.id);
        }
        self.pending.clear();
        self.errors.clear();
    }

    fn offer(&mut self, event: SubscribeEvent) -> bool {
        match self.feed.as_ref().map(|f| f.offer(event)) {
            Some(Offer::Sent) => true,
            _ => {
                self.stop();
                false
            }
        }
    }

    /// Called whenever data arrives or the frontier moves; `upper` is `None` once the input
    /// is closed (the view was dropped or the server is stopping).
    fn advance(&mut self, upper: Option<Time>) {
        if self.feed.is_none() {
            self.pending.clear();
            self.errors.clear();
            return;
        }
        let bound = upper.unwrap_or(Time::MAX);
        if bound <= self.as_of || bound <= self.last_upper {
            return;
        }
        let mut errors: BTreeMap<EvalError, Diff> = BTreeMap::new();
        self.errors.retain(|(e, t, d)| match *t < bound {
            true => {
                *errors.entry(e.clone()).or_default() += d;
                false
            }
            false => true,
        });
        if let Some((e, _)) = errors.into_iter().find(|(_, d)| *d > 0) {
            let resume_from = self.feed.as_ref().and_then(|f| f.resume_from());
            self.backlog.push_back(SubscribeEvent::Error {
                code: "evaluation_error",
                message: e.to_string(),
                resume_from,
            });
            self.pending.clear();
            self.errors.clear();
            self.last_upper = bound;
            return;
        }
        let mut batches = self.pending.take_before(bound);
        let as_of = self.as_of;
        if !self.snapshot_sent {
            self.snapshot_sent = true;
            let has_snapshot = batches.first().is_some_and(|(t, _)| *t == as_of);
            if self.snapshot && !has_snapshot {
                batches.insert(0, (as_of, Vec::new()));
            } else if !self.snapshot && has_snapshot {
                batches.remove(0);
            }
        }
        for (time, updates) in batches {
            self.backlog
                .push_back(SubscribeEvent::Update { time, updates });
        }
        self.last_upper = bound;
        match upper {
            Some(u) => self
                .backlog
                .push_back(SubscribeEvent::Progress { upper: u }),
            None => self.backlog.push_back(SubscribeEvent::Error {
                code: "closed",
                message: "the subscribed relation was dropped or the server is shutting down"
                    .into(),
                resume_from: None,
            }),
        }
    }
}
