//! The loop every timely worker runs.
//!
//! Worker 0 takes commands from the coordinator, numbers them, applies its own share at once
//! and sends the other workers theirs through a small "command" dataflow; every worker applies
//! them in that order (creating and
//! dropping dataflows, inserting its share of writes, advancing inputs, compacting). Between
//! commands a worker steps its dataflows, answers reads whose timestamp its arrangements have
//! passed, and otherwise parks until timely or the coordinator wakes it: idle workers use no
//! CPU, which matters when workers share two cores.
//!
//! In a cluster the workers of other processes run this same loop; what they would have put in
//! the coordinator's memory (read answers, statistics) goes to worker 0 through the "Gather"
//! dataflow instead (`gather.rs`).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use differential_dataflow::input::InputSession;
use differential_dataflow::trace::cursor::{cursor_list, Cursor};
use differential_dataflow::trace::TraceReader;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Input;
use timely::dataflow::operators::Probe;
use timely::progress::frontier::{Antichain, AntichainRef};
use timely::worker::Worker;

mod gather;
mod sink;
mod source;
mod subscription;

pub use gather::{Report, SinkDelta, SourceDelta};

use crate::command::{Command, Target};
use crate::connector::{
    ConnectorState, Connectors, ReaderContext, ReaderGuard, SinkSpec, SinkWriterId, SourceSpec,
};
use crate::error::EvalError;
use crate::plan::{Diff, GlobalId, Plan};
use crate::render::prefix::arrange_by_first_column;
use crate::render::{arrange, Context, ErrTrace, Imported, RowTrace, Time};
use crate::row::Row;
use crate::subscribe::SubscriptionFeed;

/// One worker's answer to a read: its rows, or the first evaluation error it holds.
pub type PeekPart = Result<Vec<(Row, Diff)>, EvalError>;

/// State shared between the coordinator and the workers of this process.
pub struct Shared {
    /// Commands for worker 0 to sequence, each already split into one share per worker
    /// ([`Command::into_shares`]) by the thread that sent it: a write's rows are placed by
    /// hashing each one, which would otherwise fall to worker 0 alone for every row written.
    pub commands: crossbeam_channel::Receiver<Vec<Command>>,
    /// Where each read's answers go.
    pub peeks: Mutex<HashMap<u64, crossbeam_channel::Sender<PeekPart>>>,
    /// Feeds of subscriptions not yet picked up by worker 0's sink.
    pub feeds: Mutex<HashMap<u64, SubscriptionFeed>>,
    /// Wakes worker 0 when a command arrives.
    pub worker0: Mutex<Option<crate::wake::Waker>>,
    /// Per-item statistics, summed over workers.
    pub stats: Mutex<HashMap<GlobalId, Arc<ItemStats>>>,
    /// Set when a worker stopped by panicking: the engine can no longer answer.
    pub failed: std::sync::atomic::AtomicBool,
    /// Set once the workers have stopped after a shutdown: nothing will be answered.
    pub stopped: std::sync::atomic::AtomicBool,
    /// Readers and writers for sources and sinks, if the engine has them.
    pub connectors: Option<Connectors>,
    /// Statistics of sources and sinks.
    pub connector_state: ConnectorState,
    /// The coordinator's clock thread, woken when a source has rows waiting for a timestamp.
    pub clock: Mutex<Option<std::thread::Thread>>,
    /// Set by a worker that inserted source rows at ingestion time: time should advance now.
    pub advance_wanted: std::sync::atomic::AtomicBool,
    /// This process's place in the cluster (a cluster of one without `--processes`).
    pub cluster: crate::cluster::ClusterState,
    /// Where sources log the batches they read (process 0 of an engine with storage).
    pub(crate) durability: Option<Arc<crate::engine::durable::Durability>>,
    /// Where each source's readers stood before a restart (from the data directory).
    pub(crate) resume: Mutex<BTreeMap<GlobalId, crate::storage::SourcePositions>>,
    /// Process 0: acknowledgements of source batches that other processes' workers sent to be
    /// logged, for worker 0 to send back to them as a command.
    pub(crate) source_acks: Mutex<Vec<crate::command::SourceAck>>,
}

impl Shared {
    /// The state of a process that runs workers only: no commands arrive here (worker 0,
    /// in process 0, sequences them) and nobody reads `peeks` or `feeds`.
    pub(crate) fn for_worker_process(
        connectors: Option<Connectors>,
        cluster: crate::cluster::ClusterState,
    ) -> Shared {
        Shared {
            commands: crossbeam_channel::never(),
            peeks: Mutex::new(Default::default()),
            feeds: Mutex::new(Default::default()),
            worker0: Mutex::new(None),
            stats: Mutex::new(Default::default()),
            failed: Default::default(),
            stopped: Default::default(),
            connectors,
            connector_state: Default::default(),
            clock: Mutex::new(None),
            advance_wanted: Default::default(),
            cluster,
            durability: None,
            resume: Default::default(),
            source_acks: Default::default(),
        }
    }
}

/// Marks the engine failed if the worker thread unwinds (a bug, never user data).
struct FailureGuard(Arc<Shared>);

impl Drop for FailureGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            crate::cluster::mark_failed(
                &self.0,
                "a worker panicked (see the log); the engine must be restarted",
            );
            tracing::error!("a worker panicked; the engine stops answering");
        }
    }
}

/// What `/metrics` shows per table and view.
#[derive(Debug, Default)]
pub struct ItemStats {
    /// Updates (row, time, diff) the item's dataflow has produced.
    pub updates: std::sync::atomic::AtomicU64,
    /// Updates held in the item's arrangement (after compaction), all workers.
    pub records: std::sync::atomic::AtomicI64,
    /// Batches in the item's arrangement, empty ones too, all workers (merged or waiting to be).
    pub batches: std::sync::atomic::AtomicI64,
    /// The arrangement's frontier: every time before it is complete.
    pub frontier: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// Asks the clock to advance time soon (source rows are waiting to be sealed).
    fn want_advance(&self) {
        if !self
            .advance_wanted
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            if let Some(t) = self.clock.lock().expect("lock").as_ref() {
                t.unpark();
            }
        }
    }

    fn stats_for(&self, id: GlobalId) -> Arc<ItemStats> {
        Arc::clone(self.stats.lock().expect("lock").entry(id).or_default())
    }
}

/// A catalog item's arrangements on this worker.
struct Item {
    oks: RowTrace,
    errs: Option<ErrTrace>,
    input: Option<InputSession<Time, Row, Diff>>,
    dataflow: usize,
    name: String,
    stats: Arc<ItemStats>,
    /// This worker's last contributions to `stats.records` and `stats.batches`.
    records: i64,
    batches: i64,
    /// The physical compaction frontiers last set on `oks` and `errs` (see [`follow_upper`]).
    physical: (Time, Time),
    /// An index: what it arranges (joins read it in place, see `plan::index`).
    index: Option<crate::plan::index::IndexOn>,
}

struct PendingPeek {
    id: u64,
    ts: Time,
    oks: RowTrace,
    errs: Option<ErrTrace>,
    dataflow: Option<usize>,
    /// Answer with the errors (as rows of their messages) instead of the rows.
    errors_only: bool,
    /// Read only some rows ([`Target::Fast`], [`Target::Rows`]).
    fast: Option<FastRead>,
}

/// A read straight from an item's arrangement.
enum FastRead {
    /// Its rows through an mfp, from a prefix on.
    Through(crate::plan::mfp::MfpEval, Option<Row>),
    /// How many times it holds each of these (sorted) rows.
    Rows(Vec<Row>),
}

struct WorkerState {
    items: BTreeMap<GlobalId, Item>,
    upper: Time,
    since: Time,
    peeks: Vec<PendingPeek>,
    subscriptions: BTreeMap<u64, usize>,
    /// This worker's share of each source.
    sources: BTreeMap<GlobalId, source::SourceInput>,
    /// Sink dataflows.
    sinks: BTreeMap<GlobalId, usize>,
    /// Subscriptions whose consumer left or lagged (worker 0 only), to be unsubscribed.
    stopped: Rc<RefCell<Vec<u64>>>,
    shutdown: bool,
    /// Reports to worker 0 from other processes.
    gather: gather::Gather,
    /// Wakes this worker from other threads (source readers, storage acknowledgements).
    waker: crate::wake::Waker,
}

/// Runs one worker until the coordinator says to shut down.
pub fn run(worker: &mut Worker, shared: Arc<Shared>, initial_upper: Time) {
    let index = worker.index();
    let peers = worker.peers();
    let _failure = FailureGuard(Arc::clone(&shared));
    let waker = crate::wake::Waker::for_worker(worker);
    if index == 0 {
        *shared.worker0.lock().expect("lock") = Some(waker.clone());
    }

    let received: Rc<RefCell<Vec<(u64, Command)>>> = Rc::new(RefCell::new(Vec::new()));
    let (cmd_input, _cmd_probe) = worker.dataflow_named::<u64, _, _>("Commands", |scope| {
        let (input, stream) = scope.new_input::<(u64, u64, Command)>();
        let recv = Rc::clone(&received);
        let (probe, stream) = stream.probe();
        stream.sink(
            Exchange::new(|x: &(u64, u64, Command)| x.0),
            "CommandSink",
            move |(input, _frontier)| {
                input.for_each(|_cap, data| {
                    recv.borrow_mut()
                        .extend(data.drain(..).map(|(_, seq, cmd)| (seq, cmd)));
                });
            },
        );
        (input, probe)
    });
    let gather = gather::Gather::build(worker, &shared);
    let mut last_stats = std::time::Instant::now();
    let mut last_physical = std::time::Instant::now();
    // Only worker 0 sends commands; the others close their inputs at once.
    let mut cmd_input = if index == 0 {
        Some(cmd_input)
    } else {
        drop(cmd_input);
        None
    };
    let mut seq: u64 = 0;

    let mut state = WorkerState {
        items: BTreeMap::new(),
        upper: initial_upper,
        since: 0,
        peeks: Vec::new(),
        subscriptions: BTreeMap::new(),
        sources: BTreeMap::new(),
        sinks: BTreeMap::new(),
        stopped: Rc::new(RefCell::new(Vec::new())),
        shutdown: false,
        gather,
        waker,
    };
    let mut stats_pending = false;

    // Worker 0's own shares of the commands it sequences: applied at once, in sequence order,
    // instead of through the "Commands" dataflow (a step earlier; with one worker, always).
    let mut own: Vec<Command> = Vec::new();
    loop {
        if let Some(input) = cmd_input.as_mut() {
            let mut sent = false;
            let stopped: Vec<u64> = state.stopped.borrow_mut().drain(..).collect();
            let acks = std::mem::take(&mut *shared.source_acks.lock().expect("lock"));
            let internal = stopped
                .into_iter()
                .map(|id| Command::Unsubscribe { id })
                .chain((!acks.is_empty()).then_some(Command::SourceDurable { acks }))
                .map(|cmd| cmd.into_shares(peers));
            let external = std::iter::from_fn(|| shared.commands.try_recv().ok());
            for shares in internal.chain(external) {
                debug_assert_eq!(shares.len(), peers, "one share per worker");
                seq += 1;
                for (w, share) in shares.into_iter().enumerate() {
                    if w == 0 {
                        own.push(share);
                    } else {
                        input.send((w as u64, seq, share));
                        sent = true;
                    }
                }
            }
            if sent {
                input.advance_to(seq + 1);
                input.flush();
            }
            for cmd in own.drain(..) {
                state.apply(worker, &shared, cmd);
            }
        }

        let sources_pending = state.poll_sources(&shared);
        // Park only when nothing is waiting on us.
        let park = if sources_pending {
            Some(std::time::Duration::ZERO)
        } else if !state.peeks.is_empty() {
            Some(std::time::Duration::from_millis(1))
        } else if stats_pending {
            Some(std::time::Duration::from_millis(20))
        } else {
            None
        };
        worker.step_or_park(park);
        if last_physical.elapsed() >= PHYSICAL_EVERY {
            last_physical = std::time::Instant::now();
            state.release_physical();
        }
        if index == 0 {
            state.gather.apply(&shared);
            state.report_source_frontiers();
        }

        let mut cmds = std::mem::take(&mut *received.borrow_mut());
        cmds.sort_by_key(|(s, _)| *s);
        for (_, cmd) in cmds {
            state.apply(worker, &shared, cmd);
        }
        state.answer_peeks(worker, &shared);
        let items_due = last_stats.elapsed() >= STATS_INTERVAL;
        if items_due {
            last_stats = std::time::Instant::now();
            state.update_stats(index == 0);
        }
        stats_pending = state.gather.report_stats(&shared, items_due);
        state.gather.flush();
        if state.shutdown {
            break;
        }
    }

    // Close inputs and drop everything so timely can wind down.
    drop(cmd_input.take());
    state.gather.close();
    let dataflows: Vec<usize> = state
        .items
        .values()
        .map(|i| i.dataflow)
        .chain(state.subscriptions.values().copied())
        .chain(state.sinks.values().copied())
        .collect();
    state.sources.clear();
    state.items.clear();
    state.peeks.clear();
    for d in dataflows {
        worker.drop_dataflow(d);
    }
    // Wind down the command and gather dataflows with the other workers (timely would do it
    // after we return, but the process waits for this count before it exits).
    while worker.has_dataflows() {
        worker.step_or_park(Some(std::time::Duration::from_millis(100)));
    }
    shared
        .cluster
        .finished
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

impl WorkerState {
    fn apply(&mut self, worker: &mut Worker, shared: &Arc<Shared>, cmd: Command) {
        match cmd {
            Command::CreateTable { id, name } => {
                let mut input = InputSession::new();
                let dataflow = worker.next_dataflow_index();
                let stats = shared.stats_for(id);
                let counter = Arc::clone(&stats);
                let mut oks =
                    worker.dataflow_named::<Time, _, _>(&format!("table {name}"), |scope| {
                        let rows = input
                            .to_collection(scope)
                            .inspect_batch(move |_t, data| count_updates(&counter, data.len()));
                        // Writes arrive split into the workers' shares by this placement.
                        arrange_by_first_column(rows, &format!("arrange {name}"), true).trace
                    });
                input.advance_to(self.upper);
                input.flush();
                oks.set_logical_compaction(AntichainRef::new(&[self.since]));
                self.items.insert(
                    id,
                    Item {
                        oks,
                        errs: None,
                        input: Some(input),
                        dataflow,
                        name,
                        stats,
                        records: 0,
                        batches: 0,
                        physical: (0, 0),
                        index: None,
                    },
                );
            }
            Command::CreateView {
                id,
                name,
                plan,
                deps,
                index,
            } => {
                let dataflow = worker.next_dataflow_index();
                let items = &mut self.items;
                let stats = shared.stats_for(id);
                let counter = Arc::clone(&stats);
                let (mut oks, mut errs) =
                    worker.dataflow_named::<Time, _, _>(&format!("view {name}"), |scope| {
                        let mut ctx = Context::new(scope);
                        import(&mut ctx, items, &deps);
                        let lowered = crate::plan::lower::lower(plan);
                        let placed = crate::plan::placement::placed(&lowered);
                        let bundle = ctx.render(&lowered);
                        let rows = bundle
                            .oks
                            .inspect_batch(move |_t, data| count_updates(&counter, data.len()));
                        let name = format!("arrange {name}");
                        (
                            arrange_by_first_column(rows, &name, placed).trace,
                            arrange::by_self(bundle.errs, &format!("errors {name}")).trace,
                        )
                    });
                oks.set_logical_compaction(AntichainRef::new(&[self.since]));
                errs.set_logical_compaction(AntichainRef::new(&[self.since]));
                self.items.insert(
                    id,
                    Item {
                        oks,
                        errs: Some(errs),
                        input: None,
                        dataflow,
                        name,
                        stats,
                        records: 0,
                        batches: 0,
                        physical: (0, 0),
                        index,
                    },
                );
            }
            Command::Drop { ids } => {
                for id in ids {
                    shared.stats.lock().expect("lock").remove(&id);
                    if let Some(d) = self.sinks.remove(&id) {
                        worker.drop_dataflow(d);
                        shared
                            .connector_state
                            .sinks
                            .lock()
                            .expect("lock")
                            .remove(&id);
                    }
                    if let Some(src) = self.sources.remove(&id) {
                        drop(src);
                        shared
                            .connector_state
                            .sources
                            .lock()
                            .expect("lock")
                            .remove(&id);
                    }
                    if let Some(mut item) = self.items.remove(&id) {
                        if let Some(input) = item.input.take() {
                            input.close();
                        }
                        drop(item.oks);
                        drop(item.errs);
                        worker.drop_dataflow(item.dataflow);
                        tracing::debug!(name = item.name, "dropped dataflow");
                    }
                }
            }
            Command::Write { ts, writes } => {
                let ts = ts.max(self.upper);
                for item in self.items.values_mut() {
                    if let Some(input) = item.input.as_mut() {
                        input.advance_to(ts);
                    }
                }
                for src in self.sources.values_mut() {
                    src.clock(ts);
                }
                for (id, rows) in writes {
                    if let Some(input) = self.items.get_mut(&id).and_then(|i| i.input.as_mut()) {
                        for (row, diff) in rows {
                            input.update(row, diff);
                        }
                    }
                }
                self.advance(ts + 1);
            }
            Command::Advance { upper } => self.advance(upper),
            Command::CreateSource {
                id,
                spec,
                replay,
                log,
                resume,
            } => {
                let start = source::Start {
                    replay,
                    log,
                    resume,
                };
                self.create_source(worker, shared, id, spec, start)
            }
            Command::SourceDurable { acks } => {
                let me = worker.index() as u32;
                for ack in acks.into_iter().filter(|a| a.worker == me) {
                    if let Some(src) = self.sources.get_mut(&ack.source) {
                        src.acknowledged(ack.upto, ack.ok);
                    }
                }
            }
            Command::ReplaySource { id, rows, errors } => {
                if let Some(src) = self.sources.get_mut(&id) {
                    src.replay(rows, errors);
                }
            }
            Command::Recovered { latest } => {
                let latest: BTreeMap<GlobalId, Time> = latest.into_iter().collect();
                for (id, src) in self.sources.iter_mut() {
                    src.end_replay(latest.get(id).copied());
                }
            }
            Command::CreateSink {
                id,
                spec,
                from,
                as_of,
                sources,
            } => self.create_sink(worker, shared, id, spec, (from, as_of, sources)),
            Command::AllowCompaction { since } => {
                if since > self.since {
                    self.since = since;
                    let f = [since];
                    // Physical compaction follows in `release_physical`.
                    for item in self.items.values_mut() {
                        item.oks.set_logical_compaction(AntichainRef::new(&f));
                        if let Some(e) = item.errs.as_mut() {
                            e.set_logical_compaction(AntichainRef::new(&f));
                        }
                    }
                }
            }
            Command::Peek { id, target, ts } => match target {
                Target::Item(gid) | Target::Errors(gid) => match self.items.get(&gid) {
                    Some(item) => self.peeks.push(PendingPeek {
                        id,
                        ts,
                        oks: item.oks.clone(),
                        errs: item.errs.clone(),
                        dataflow: None,
                        errors_only: matches!(target, Target::Errors(_)),
                        fast: None,
                    }),
                    None => self.send_peek(shared, id, Ok(Vec::new())),
                },
                Target::Fast {
                    id: gid,
                    arity,
                    mfp,
                    prefix,
                } => match self.items.get(&gid) {
                    Some(item) => self.peeks.push(PendingPeek {
                        id,
                        ts,
                        oks: item.oks.clone(),
                        errs: item.errs.clone(),
                        dataflow: None,
                        errors_only: false,
                        fast: Some(FastRead::Through(mfp.evaluator(arity), prefix)),
                    }),
                    None => self.send_peek(shared, id, Ok(Vec::new())),
                },
                Target::Rows { id: gid, rows } => match self.items.get(&gid) {
                    Some(item) => self.peeks.push(PendingPeek {
                        id,
                        ts,
                        oks: item.oks.clone(),
                        errs: None,
                        dataflow: None,
                        errors_only: false,
                        fast: Some(FastRead::Rows(rows)),
                    }),
                    None => self.send_peek(shared, id, Ok(Vec::new())),
                },
                Target::Plan { plan, deps } => {
                    let dataflow = worker.next_dataflow_index();
                    let items = &mut self.items;
                    let (oks, errs) = worker.dataflow_named::<Time, _, _>("peek", |scope| {
                        let mut ctx = Context::new(scope);
                        import(&mut ctx, items, &deps);
                        let bundle = ctx.render(&crate::plan::lower::lower(plan));
                        (
                            arrange::by_self(bundle.oks, "peek").trace,
                            arrange::by_self(bundle.errs, "peek errors").trace,
                        )
                    });
                    self.peeks.push(PendingPeek {
                        id,
                        ts,
                        oks,
                        errs: Some(errs),
                        dataflow: Some(dataflow),
                        errors_only: false,
                        fast: None,
                    });
                }
            },
            Command::Subscribe {
                id,
                target,
                as_of,
                snapshot,
            } => {
                let feed = if worker.index() == 0 {
                    shared.feeds.lock().expect("lock").remove(&id)
                } else {
                    None
                };
                let stopped = Rc::clone(&self.stopped);
                if worker.index() == 0 && feed.is_none() {
                    stopped.borrow_mut().push(id);
                }
                let dataflow = worker.next_dataflow_index();
                let items = &mut self.items;
                worker.dataflow_named::<Time, _, _>(&format!("subscribe {id}"), |scope| {
                    let mut ctx = Context::new(scope);
                    let (chunks, errs) = match target {
                        Target::Item(gid) | Target::Errors(gid) | Target::Rows { id: gid, .. } => {
                            import(&mut ctx, items, &[gid]);
                            match ctx.imported.get(&gid) {
                                Some(imported) => (
                                    subscription::batch_chunks(&imported.whole),
                                    imported.errs.clone(),
                                ),
                                None => (
                                    subscription::collection_chunks(ctx.constant(vec![])),
                                    ctx.no_errors(),
                                ),
                            }
                        }
                        Target::Plan { plan, deps } => {
                            import(&mut ctx, items, &deps);
                            let bundle = ctx.render(&crate::plan::lower::lower(plan));
                            (subscription::collection_chunks(bundle.oks), bundle.errs)
                        }
                        Target::Fast {
                            id: gid,
                            arity,
                            mfp,
                            ..
                        } => {
                            import(&mut ctx, items, &[gid]);
                            let plan = Plan::Mfp {
                                input: Box::new(Plan::Get { id: gid, arity }),
                                mfp,
                            };
                            let bundle = ctx.render(&plan);
                            (subscription::collection_chunks(bundle.oks), bundle.errs)
                        }
                    };
                    let start = subscription::SinkStart {
                        id,
                        feed,
                        as_of,
                        snapshot,
                        stopped,
                    };
                    subscription::render(chunks, errs, start);
                });
                self.subscriptions.insert(id, dataflow);
            }
            Command::Unsubscribe { id } => {
                if let Some(d) = self.subscriptions.remove(&id) {
                    worker.drop_dataflow(d);
                }
                shared.feeds.lock().expect("lock").remove(&id);
            }
            Command::Shutdown => self.shutdown = true,
        }
    }

    /// Refreshes arrangement sizes (this worker's share) and, on worker 0, frontiers.
    /// Moves every arrangement's physical compaction frontier (see [`follow_upper`]).
    fn release_physical(&mut self) {
        let since = self.since;
        for item in self.items.values_mut() {
            follow_upper(&mut item.oks, &mut item.physical.0, since);
            if let Some(e) = item.errs.as_mut() {
                follow_upper(e, &mut item.physical.1, since);
            }
        }
    }

    fn update_stats(&mut self, report_frontier: bool) {
        use differential_dataflow::trace::implementations::spine_fueled::SpineBatch;
        for item in self.items.values_mut() {
            let (mut records, mut batches) = (0i64, 0i64);
            item.oks.map_spans(|span| {
                if let Some(b) = &span.inner {
                    records += b.len() as i64;
                }
                batches += 1;
            });
            item.stats
                .records
                .fetch_add(records - item.records, std::sync::atomic::Ordering::Relaxed);
            item.stats
                .batches
                .fetch_add(batches - item.batches, std::sync::atomic::Ordering::Relaxed);
            item.records = records;
            item.batches = batches;
            if report_frontier {
                let mut upper = Antichain::new();
                item.oks.read_upper(&mut upper);
                let f = upper.elements().first().copied().unwrap_or(Time::MAX);
                item.stats
                    .frontier
                    .store(f, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    fn advance(&mut self, upper: Time) {
        if upper < self.upper {
            return;
        }
        self.upper = upper;
        for item in self.items.values_mut() {
            if let Some(input) = item.input.as_mut() {
                input.advance_to(upper);
                input.flush();
            }
        }
        for src in self.sources.values_mut() {
            src.clock(upper);
        }
    }

    /// Inserts what source readers have sent; returns whether more is waiting.
    fn poll_sources(&mut self, shared: &Arc<Shared>) -> bool {
        let mut pending = false;
        let mut ingested = false;
        for src in self.sources.values_mut() {
            // Batches that became durable let the frontier on (the storage thread wakes us).
            src.settle();
            let (n, more) = src.drain(self.upper);
            pending |= more;
            for (number, record) in src.outbox() {
                self.gather.send(Report::SourceBatch { number, record });
            }
            if n > 0 && !src.event_time() {
                src.flush();
                ingested = true;
            }
        }
        if ingested {
            if self.gather.remote() {
                self.gather.send(Report::AdvanceWanted);
            } else {
                shared.want_advance();
            }
        }
        pending
    }

    /// Worker 0 publishes sources' frontiers as soon as they move: reads of views over
    /// event-time sources are answered at the latest complete time, which these bound, and
    /// readiness waits for a source's history to be sealed.
    fn report_source_frontiers(&mut self) {
        for id in self.sources.keys() {
            if let Some(item) = self.items.get_mut(id) {
                let mut upper = Antichain::new();
                item.oks.read_upper(&mut upper);
                let f = upper.elements().first().copied().unwrap_or(Time::MAX);
                item.stats
                    .frontier
                    .store(f, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    fn create_source(
        &mut self,
        worker: &mut Worker,
        shared: &Arc<Shared>,
        id: GlobalId,
        spec: SourceSpec,
        start: source::Start,
    ) {
        let source::Start {
            replay,
            log,
            resume,
        } = start;
        let name = spec.name.clone();
        let stats = Arc::clone(
            shared
                .connector_state
                .sources
                .lock()
                .expect("lock")
                .entry(id)
                .or_default(),
        );
        let mut oks_in = InputSession::new();
        let mut errs_in = InputSession::new();
        // Rows logged before a restart come back through inputs of their own, held at the
        // earliest time until recovery is done.
        let mut replay_in: Option<source::ReplayInputs> =
            replay.then(|| (InputSession::new(), InputSession::new()));
        let dataflow = worker.next_dataflow_index();
        let item_stats = shared.stats_for(id);
        let counter = Arc::clone(&item_stats);
        let (mut oks, mut errs) =
            worker.dataflow_named::<Time, _, _>(&format!("source {name}"), |scope| {
                let mut oks = oks_in.to_collection(scope);
                let mut errs = errs_in.to_collection(scope);
                if let Some((r_oks, r_errs)) = replay_in.as_mut() {
                    oks = oks.concat(r_oks.to_collection(scope));
                    errs = errs.concat(r_errs.to_collection(scope));
                }
                (
                    arrange_by_first_column(
                        oks.inspect_batch(move |_t, data| count_updates(&counter, data.len())),
                        &format!("arrange {name}"),
                        false,
                    )
                    .trace,
                    arrange::by_self(errs, &format!("errors {name}")).trace,
                )
            });
        let start = if spec.event_time.is_some() {
            0
        } else {
            self.upper
        };
        oks_in.advance_to(start);
        errs_in.advance_to(start);
        oks_in.flush();
        errs_in.flush();
        oks.set_logical_compaction(AntichainRef::new(&[self.since]));
        errs.set_logical_compaction(AntichainRef::new(&[self.since]));
        let (mut ctx, batches, stop) = ReaderContext::new(
            worker.index(),
            worker.peers(),
            self.waker.clone(),
            Arc::clone(&stats),
            16,
        );
        if replay {
            ctx.resume = resume
                .as_ref()
                .map(|p| p.resume_for(worker.index() as u32, worker.peers() as u32));
        }
        // Process 0's workers log to storage themselves; the others through worker 0.
        let log = log.then(|| {
            let to = match shared.durability.as_ref() {
                Some(d) => source::LogTo::Storage(Arc::clone(d)),
                None => source::LogTo::Coordinator(Vec::new()),
            };
            source::SourceLog::new(
                to,
                id,
                worker.index() as u32,
                worker.peers() as u32,
                self.waker.clone(),
            )
        });
        let reader = match shared.connectors.as_ref() {
            Some(c) => {
                // Worker 0 also counts the readers of other processes, which report when they
                // catch up (`worker::gather`): the source is caught up once all have.
                let remote = if worker.index() == 0 {
                    worker.peers() - shared.cluster.local_workers.min(worker.peers())
                } else {
                    0
                };
                stats
                    .readers
                    .fetch_add(1 + remote as u64, std::sync::atomic::Ordering::AcqRel);
                match c.sources.start(&spec, ctx) {
                    Ok(resources) => Some(ReaderGuard::new(stop, resources)),
                    Err(e) => {
                        stats.stall(format!("source \"{name}\" could not start: {e}"));
                        None
                    }
                }
            }
            None => None,
        };
        let once_per_time = worker.peers() > 1 && spec.event_time.is_none();
        self.sources.insert(
            id,
            source::SourceInput {
                spec,
                oks: oks_in,
                errs: errs_in,
                batches,
                stats,
                _reader: reader,
                frontier: start,
                max_seen: 0,
                last_data: self.upper,
                target: start,
                log,
                replay: replay_in,
                once_per_time,
                drained_at: None,
            },
        );
        self.items.insert(
            id,
            Item {
                oks,
                errs: Some(errs),
                input: None,
                dataflow,
                name,
                stats: item_stats,
                records: 0,
                batches: 0,
                physical: (0, 0),
                index: None,
            },
        );
    }

    fn create_sink(
        &mut self,
        worker: &mut Worker,
        shared: &Arc<Shared>,
        id: GlobalId,
        spec: SinkSpec,
        (from, as_of, sources): (GlobalId, Time, Vec<GlobalId>),
    ) {
        let upstream: Vec<Arc<crate::connector::SourceStats>> = {
            let stats = shared.connector_state.sources.lock().expect("lock");
            sources
                .iter()
                .filter_map(|s| stats.get(s).cloned())
                .collect()
        };
        let parallel = shared
            .connectors
            .as_ref()
            .is_some_and(|c| c.sinks.parallel(&spec));
        let writers = if parallel { worker.peers() } else { 1 };
        let writer = if parallel || worker.index() == 0 {
            let stats = Arc::clone(
                shared
                    .connector_state
                    .sinks
                    .lock()
                    .expect("lock")
                    .entry(id)
                    .or_default(),
            );
            stats
                .writers
                .store(writers as u64, std::sync::atomic::Ordering::Relaxed);
            let me = SinkWriterId {
                index: worker.index(),
                count: writers,
            };
            match shared.connectors.as_ref() {
                Some(c) => match c.sinks.start(&spec, me, Arc::clone(&stats)) {
                    Ok(w) => Some(w),
                    Err(e) => {
                        stats.stall(format!("sink \"{}\" could not start: {e}", spec.name));
                        None
                    }
                },
                None => None,
            }
        } else {
            None
        };
        let history_in: Box<dyn Fn() -> Option<Time>> = Box::new(move || {
            let mut at = 0;
            for s in &upstream {
                if !s.is_caught_up() {
                    return None;
                }
                at = at.max(s.caught_up_time.load(std::sync::atomic::Ordering::Acquire));
            }
            Some(at)
        });
        let decider = worker.index() == 0;
        let dataflow = worker.next_dataflow_index();
        let items = &mut self.items;
        let name = spec.name.clone();
        worker.dataflow_named::<Time, _, _>(&format!("sink {name}"), |scope| {
            let mut ctx = Context::new(scope);
            import(&mut ctx, items, &[from]);
            let Some(bundle) = ctx.get(from) else {
                return;
            };
            let op = sink::SinkOperator {
                writer,
                as_of,
                snapshot_sent: false,
                last_upper: 0,
                pending: Default::default(),
                held: Vec::new(),
                name,
                history_from: None,
            };
            sink::render(bundle.oks.inner, decider, history_in, writers, op);
        });
        self.sinks.insert(id, dataflow);
    }

    /// Answers read `id`: directly in the coordinator's process, else through worker 0.
    fn send_peek(&mut self, shared: &Arc<Shared>, id: u64, part: PeekPart) {
        if self.gather.remote() {
            self.gather.send(Report::Peek { id, part });
        } else {
            answer_locally(shared, id, part);
        }
    }

    /// Answers every read whose timestamp the arrangements have passed.
    fn answer_peeks(&mut self, worker: &mut Worker, shared: &Arc<Shared>) {
        let mut i = 0;
        while i < self.peeks.len() {
            let p = &mut self.peeks[i];
            let done = |t: &mut dyn FnMut(&mut Antichain<Time>), ts: Time| {
                let mut upper = Antichain::new();
                t(&mut upper);
                !upper.less_equal(&ts)
            };
            let ts = p.ts;
            let oks_done = done(&mut |a| p.oks.read_upper(a), ts);
            let errs_done = match p.errs.as_mut() {
                Some(e) => done(&mut |a| e.read_upper(a), ts),
                None => true,
            };
            if !(oks_done && errs_done) {
                i += 1;
                continue;
            }
            let mut p = self.peeks.swap_remove(i);
            let errors = p
                .errs
                .as_mut()
                .map(|e| read_at(e, p.ts))
                .unwrap_or_default();
            let answer = if p.errors_only {
                Ok(errors
                    .into_iter()
                    .map(|(e, d)| {
                        let message = match e {
                            EvalError::Source(m) => m,
                            other => other.to_string(),
                        };
                        (Row::new(vec![crate::value::Value::text(&message)]), d)
                    })
                    .collect())
            } else {
                match errors.into_iter().find(|(_, d)| *d > 0) {
                    Some((e, _)) => Err(e),
                    None => match &p.fast {
                        Some(FastRead::Through(mfp, prefix)) => {
                            read_through(&mut p.oks, p.ts, mfp, prefix.as_ref())
                        }
                        Some(FastRead::Rows(rows)) => Ok(read_rows(&mut p.oks, p.ts, rows)),
                        None => Ok(read_at(&mut p.oks, p.ts)),
                    },
                }
            };
            self.send_peek(shared, p.id, answer);
            if let Some(d) = p.dataflow {
                drop(p);
                worker.drop_dataflow(d);
            }
        }
    }
}

/// How often arrangement sizes and frontiers are refreshed for metrics.
const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

fn count_updates(stats: &ItemStats, n: usize) {
    stats
        .updates
        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
}

/// Hands a read's answer to the coordinator waiting for it in this process.
fn answer_locally(shared: &Arc<Shared>, id: u64, part: PeekPart) {
    if let Some(tx) = shared.peeks.lock().expect("lock").get(&id) {
        let _ = tx.send(part);
    }
}

/// Brings the arrangements of `deps` into a dataflow as collections.
fn import<'s>(
    ctx: &mut Context<'s, Time>,
    items: &mut BTreeMap<GlobalId, Item>,
    deps: &[GlobalId],
) {
    for id in deps {
        let Some(item) = items.get_mut(id) else {
            tracing::error!(id, "dependency missing on worker");
            continue;
        };
        let arranged = item
            .oks
            .import_named(ctx.scope, &format!("import {}", item.name));
        let errs = match item.errs.as_mut() {
            Some(e) => e
                .import_named(ctx.scope, &format!("import errors {}", item.name))
                .as_collection(|k: &EvalError, _: &()| k.clone()),
            None => ctx.no_errors(),
        };
        let whole = arranged.clone();
        ctx.imported.insert(
            *id,
            Imported {
                rows: Box::new(move || arranged.clone().as_collection(|k: &Row, _: &()| k.clone())),
                whole,
                index: item.index.clone(),
                errs,
            },
        );
    }
}

/// Batches (with data or empty) an arrangement may hold unmerged before its physical
/// compaction frontier jumps to its upper.
const MAX_UNMERGED: usize = 32;

/// How often the worker loop looks at its arrangements' batches (see [`follow_upper`]).
const PHYSICAL_EVERY: std::time::Duration = std::time::Duration::from_millis(1);

/// Moves `trace`'s physical compaction frontier (never back), kept in `physical`.
///
/// Differential merges no batch beyond that frontier ("pending"), so that a reader could still
/// cut the trace there. No reader of ours does: reads accumulate every batch up to their time
/// (`read_at`), and views and subscriptions import whole arrangements. Held at `since` (the
/// start of the retention window), as it once was, the frontier kept every batch of the window
/// apart, and a read after 20,000 single-row writes walked 20,000 batches (hundreds of
/// milliseconds). Empty batches count too: every advance of time adds one to every
/// arrangement, written to or not, and walking the batches (which differential does even to
/// read a trace's upper) cost the worker loop more the longer it ran. Merging at once has its
/// own cost: a merge compacts only times before `since`, so history that leaves the window
/// later (a temporal filter's retractions) stays until the batch is merged again. So the
/// frontier follows `since` while few batches wait, and jumps to the upper once more than
/// [`MAX_UNMERGED`] do. A new arrangement's frontier starts at the beginning of time, and the
/// frontier never passes the trace's upper.
fn follow_upper<K: timely::ExchangeData + Ord + Clone + 'static>(
    trace: &mut differential_dataflow::operators::arrange::TraceAgent<
        differential_dataflow::trace::implementations::KeySpine<K, Time, Diff>,
    >,
    physical: &mut Time,
    since: Time,
) {
    let current = *physical;
    let mut waiting = 0;
    // The spans come oldest first: the last one's upper is the trace's.
    let mut upper: Time = 0;
    trace.map_spans(|span| {
        let end = span
            .desc
            .upper()
            .elements()
            .first()
            .copied()
            .unwrap_or(Time::MAX);
        if end > current {
            waiting += 1;
        }
        upper = end;
    });
    // Never beyond the upper: a join reading the trace in place (`render::prefix`) starts from
    // its batches, which differential requires to reach the physical compaction frontier.
    let target = if waiting > MAX_UNMERGED {
        since.max(upper)
    } else {
        since
    }
    .min(upper);
    if target > *physical {
        *physical = target;
        trace.set_physical_compaction(AntichainRef::new(&[target]));
    }
}

/// The count at `ts` of the key under `cursor`, over all its values, leaving the cursor past
/// them: what every read of an arrangement accumulates per key.
fn count_at<C>(cursor: &mut C, storage: &C::Storage, ts: Time) -> Diff
where
    C: for<'a> Cursor<TimeGat<'a> = &'a Time, DiffGat<'a> = &'a Diff>,
{
    let mut count: Diff = 0;
    while cursor.val_valid(storage) {
        cursor.map_times(storage, |t, d| {
            if *t <= ts {
                count += *d;
            }
        });
        cursor.step_val(storage);
    }
    count
}

/// The accumulated contents of a key arrangement as of `ts`.
fn read_at<K: timely::ExchangeData + Ord + Clone + 'static>(
    trace: &mut differential_dataflow::operators::arrange::TraceAgent<
        differential_dataflow::trace::implementations::KeySpine<K, Time, Diff>,
    >,
    ts: Time,
) -> Vec<(K, Diff)> {
    let Some(batches) = trace.batches_through(Antichain::new().borrow()) else {
        return Vec::new();
    };
    let (mut cursor, storage) = cursor_list(batches);
    let mut out = Vec::new();
    while cursor.key_valid(&storage) {
        let count = count_at(&mut cursor, &storage, ts);
        if count != 0 {
            out.push((cursor.key(&storage).clone(), count));
        }
        cursor.step_key(&storage);
    }
    out
}

/// The rows of `trace` at `ts` through `mfp`: from `prefix` on, as long as rows start with it
/// (rows sort by their leading values), or all of them.
fn read_through(
    trace: &mut RowTrace,
    ts: Time,
    mfp: &crate::plan::mfp::MfpEval,
    prefix: Option<&Row>,
) -> Result<Vec<(Row, Diff)>, EvalError> {
    let Some(batches) = trace.batches_through(Antichain::new().borrow()) else {
        return Ok(Vec::new());
    };
    let (mut cursor, storage) = cursor_list(batches);
    if let Some(p) = prefix {
        cursor.seek_key(&storage, p);
    }
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    while cursor.key_valid(&storage) {
        let row = cursor.key(&storage);
        if prefix.is_some_and(|p| !row.starts_with(p)) {
            break;
        }
        let count = count_at(&mut cursor, &storage, ts);
        if count != 0 {
            if let Some(r) = mfp.apply(row, &mut scratch)? {
                out.push((r, count));
            }
        }
        cursor.step_key(&storage);
    }
    Ok(out)
}

/// How many times `trace` holds each of `rows` (sorted) at `ts`, by a seek each.
fn read_rows(trace: &mut RowTrace, ts: Time, rows: &[Row]) -> Vec<(Row, Diff)> {
    let Some(batches) = trace.batches_through(Antichain::new().borrow()) else {
        return Vec::new();
    };
    let (mut cursor, storage) = cursor_list(batches);
    let mut out = Vec::new();
    for row in rows {
        cursor.seek_key(&storage, row);
        if !cursor.key_valid(&storage) {
            break;
        }
        if cursor.key(&storage) != row {
            continue;
        }
        let count = count_at(&mut cursor, &storage, ts);
        if count != 0 {
            out.push((row.clone(), count));
        }
    }
    out
}
