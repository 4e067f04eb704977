//! Runs one hand-written query (`dataflows.rs`) the way freshet runs a view over generator
//! sources, in a process of its own (`freshet-bench nexmark-baseline`) so that its peak memory
//! is its own.
//!
//! The setup mirrors freshet's: per worker and stream, a generator thread produces that
//! worker's stride of the Nexmark sequence (the same generator, `with_offset(worker)
//! .with_step(peers)`) in batches of 4,096 rows into a channel of 16 batches; the worker takes
//! up to 16 batches per stream per step, stamps them with the current millisecond (ingestion
//! time, as freshet's sources), and runs the dataflow until its probe passes the last time.
//!
//! With `pregenerated`, the generators run to their end before the clock starts and the
//! workers insert every row at one time: the dataflow alone is timed, as freshet's view is
//! with `--view-after-sources` (its sources read before `CREATE VIEW`).

use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::{Arc, Barrier};
use std::thread::Thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use differential_dataflow::input::InputSession;
use freshet_inputs::source::generator::nexmark_generator;
use nexmark::event::{Event, EventType};
use timely::dataflow::ProbeHandle;

use super::dataflows::{self, Auction, Bid, Diff, Inputs, Person, Time};
use super::queries::{self, Stream, SIDE_INPUT_KEYS};
use super::Measured;
use crate::server::{peak_rss, usage};

/// Rows per generator batch, and batches taken per stream per step (as freshet's sources).
const BATCH: usize = 4096;
const BATCHES_PER_STEP: usize = 16;

/// One input fed by generator threads.
struct Feed<D: differential_dataflow::Data> {
    input: InputSession<Time, D, Diff>,
    rx: Option<Receiver<Vec<D>>>,
}

impl<D: differential_dataflow::Data + Send> Feed<D> {
    fn new() -> Self {
        Feed {
            input: InputSession::new(),
            rx: None,
        }
    }

    /// Inserts up to `BATCHES_PER_STEP` batches; returns the rows inserted.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        for _ in 0..BATCHES_PER_STEP {
            let Some(rx) = &self.rx else { return n };
            match rx.try_recv() {
                Ok(batch) => {
                    n += batch.len();
                    for row in batch {
                        self.input.insert(row);
                    }
                }
                Err(TryRecvError::Empty) => return n,
                Err(TryRecvError::Disconnected) => self.rx = None,
            }
        }
        n
    }

    fn done(&self) -> bool {
        self.rx.is_none()
    }

    /// Takes every batch the generator will send, until it ends.
    fn collect(&mut self) -> Vec<Vec<D>> {
        self.rx
            .take()
            .map(|rx| rx.iter().collect())
            .unwrap_or_default()
    }

    fn advance(&mut self, time: Time) {
        self.input.advance_to(time);
        self.input.flush();
    }
}

/// Starts a thread that generates `worker`'s stride of `rows` rows of `stream`.
fn spawn<D: Send + 'static>(
    stream: EventType,
    base_time: u64,
    (worker, peers): (usize, usize),
    rows: u64,
    convert: fn(Event) -> Option<D>,
    wake: Thread,
) -> Receiver<Vec<D>> {
    let (tx, rx) = sync_channel(BATCHES_PER_STEP);
    let mine = (rows + (peers - 1 - worker) as u64) / peers as u64;
    std::thread::spawn(move || {
        let mut events = nexmark_generator(stream, base_time, worker, peers)
            .take(mine as usize)
            .filter_map(convert);
        loop {
            let batch: Vec<D> = events.by_ref().take(BATCH).collect();
            if batch.is_empty() || tx.send(batch).is_err() {
                return;
            }
            wake.unpark();
        }
    });
    rx
}

fn bid(e: Event) -> Option<Bid> {
    match e {
        Event::Bid(b) => Some(Bid {
            auction: b.auction as u64,
            bidder: b.bidder as u64,
            price: b.price as u64,
            channel: b.channel,
            url: b.url,
            date_time: b.date_time,
            extra: b.extra,
        }),
        _ => None,
    }
}

fn auction(e: Event) -> Option<Auction> {
    match e {
        Event::Auction(a) => Some(Auction {
            id: a.id as u64,
            item_name: a.item_name,
            description: a.description,
            initial_bid: a.initial_bid as u64,
            reserve: a.reserve as u64,
            date_time: a.date_time,
            expires: a.expires,
            seller: a.seller as u64,
            category: a.category as u64,
            extra: a.extra,
        }),
        _ => None,
    }
}

fn person(e: Event) -> Option<Person> {
    match e {
        Event::Person(p) => Some(Person {
            id: p.id as u64,
            name: p.name,
            email_address: p.email_address,
            credit_card: p.credit_card,
            city: p.city,
            state: p.state,
            date_time: p.date_time,
            extra: p.extra,
        }),
        _ => None,
    }
}

/// The rows of a run's result (row, multiplicity), as freshet values.
pub type Rows = Vec<(Vec<freshet_dataflows::Value>, Diff)>;

/// Runs `query` (or `gen`: the generators and inputs with no query) over `events` events.
pub fn run(
    query: &str,
    events: u64,
    base_time: u64,
    workers: usize,
    pregenerated: bool,
) -> anyhow::Result<(Measured, Rows)> {
    let streams: Vec<Stream> = match query {
        "gen" => vec![Stream::Person, Stream::Auction, Stream::Bid],
        q => queries::find(q)
            .with_context(|| format!("unknown query {q}"))?
            .streams
            .to_vec(),
    };
    let side_input = queries::find(query).is_some_and(|q| q.side_input);
    let rows_in: u64 = streams.iter().map(|s| s.rows(events)).sum();
    let query = query.to_string();
    let start_line = Arc::new(Barrier::new(workers + 1));
    let finish_line = Arc::new(Barrier::new(workers + 1));
    let measured = Arc::new(Barrier::new(workers + 1));
    let (tx, rx) = std::sync::mpsc::channel();
    let barriers = (
        Arc::clone(&start_line),
        Arc::clone(&finish_line),
        Arc::clone(&measured),
    );
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let mut bids = Feed::<Bid>::new();
        let mut auctions = Feed::<Auction>::new();
        let mut persons = Feed::<Person>::new();
        let mut side: InputSession<Time, (u64, String), Diff> = InputSession::new();
        let probe = ProbeHandle::new();
        let extract = worker.dataflow::<Time, _, _>(|scope| {
            let inputs = Inputs {
                bids: bids.input.to_collection(scope),
                auctions: auctions.input.to_collection(scope),
                persons: persons.input.to_collection(scope),
                side: side.to_collection(scope),
            };
            if query == "gen" {
                let _ = inputs.bids.probe_with(&probe);
                let _ = inputs.auctions.probe_with(&probe);
                let _ = inputs.persons.probe_with(&probe);
                None
            } else {
                dataflows::build(&query, inputs, &probe)
            }
        });
        // The side input is loaded and sealed before the clock starts, as the table is in
        // freshet's run.
        if side_input && index == 0 {
            for k in 0..SIDE_INPUT_KEYS {
                side.insert((k, format!("v{k}")));
            }
        }
        let mut time: Time = 1;
        side.advance_to(time);
        side.flush();
        drop(side);
        bids.advance(time);
        auctions.advance(time);
        persons.advance(time);
        worker.step_while(|| probe.less_than(&time));

        let me = std::thread::current();
        let mut start = Instant::now();
        if !pregenerated {
            barriers.0.wait();
            start = Instant::now();
        }
        for s in &streams {
            let at = (index, peers);
            let rows = s.rows(events);
            match s {
                Stream::Bid => {
                    bids.rx = Some(spawn(EventType::Bid, base_time, at, rows, bid, me.clone()))
                }
                Stream::Auction => {
                    auctions.rx = Some(spawn(
                        EventType::Auction,
                        base_time,
                        at,
                        rows,
                        auction,
                        me.clone(),
                    ))
                }
                Stream::Person => {
                    persons.rx = Some(spawn(
                        EventType::Person,
                        base_time,
                        at,
                        rows,
                        person,
                        me.clone(),
                    ))
                }
            }
        }
        if pregenerated {
            let (b, a, p) = (bids.collect(), auctions.collect(), persons.collect());
            barriers.0.wait();
            for row in b.into_iter().flatten() {
                bids.input.insert(row);
            }
            for row in a.into_iter().flatten() {
                auctions.input.insert(row);
            }
            for row in p.into_iter().flatten() {
                persons.input.insert(row);
            }
        } else {
            loop {
                let got = bids.drain() + auctions.drain() + persons.drain();
                let now = 1 + start.elapsed().as_millis() as Time;
                time = time.max(now);
                bids.advance(time);
                auctions.advance(time);
                persons.advance(time);
                if bids.done() && auctions.done() && persons.done() {
                    break;
                }
                if got == 0 {
                    worker.step_or_park(Some(Duration::from_millis(1)));
                } else {
                    worker.step();
                }
            }
        }
        // Workers end at different times: closing the inputs seals everything on all of them.
        drop((bids, auctions, persons));
        worker.step_while(|| !probe.done());
        barriers.1.wait();
        barriers.2.wait();
        let rows = extract.map(|e| e()).unwrap_or_default();
        let _ = tx.send(rows);
    })
    .map_err(|e| anyhow::anyhow!("timely: {e}"))?;
    let pid = std::process::id();
    start_line.wait();
    let (cpu0, _) = usage(pid)?;
    let start = Instant::now();
    finish_line.wait();
    let seconds = start.elapsed().as_secs_f64();
    let (cpu1, _) = usage(pid)?;
    let peak = peak_rss(pid)?;
    measured.wait();
    drop(guards);
    let rows: Rows = rx.iter().take(workers).flatten().collect();
    Ok((
        Measured {
            ready: seconds,
            complete: seconds,
            cpu: cpu1 - cpu0,
            peak_rss: peak,
            rows_in,
        },
        rows,
    ))
}

#[cfg(test)]
mod tests {
    //! The hand-written dataflows against plain Rust over the same generated events.

    use std::collections::{BTreeMap, HashMap};

    use freshet_dataflows::Value;

    use super::*;

    const BASE: u64 = 1_700_000_000_000;

    fn bids(events: u64) -> Vec<Bid> {
        nexmark_generator(EventType::Bid, BASE, 0, 1)
            .take(Stream::Bid.rows(events) as usize)
            .filter_map(bid)
            .collect()
    }

    fn sorted(rows: Rows) -> Vec<Vec<Value>> {
        let mut out: Vec<Vec<Value>> = rows
            .into_iter()
            .flat_map(|(r, d)| std::iter::repeat_n(r, d as usize))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn q2_selects_the_same_bids_with_two_workers() {
        let (_, rows) = run("q2", 20_000, BASE, 2, false).unwrap();
        let mut expected: Vec<Vec<Value>> = bids(20_000)
            .into_iter()
            .filter(|b| b.auction % 123 == 0)
            .map(|b| vec![Value::Int(b.auction as i64), Value::Int(b.price as i64)])
            .collect();
        expected.sort();
        assert!(!expected.is_empty());
        assert_eq!(sorted(rows), expected);
    }

    #[test]
    fn q5_finds_the_hottest_auctions_of_each_hopping_window() {
        let (_, rows) = run("q5", 50_000, BASE, 1, false).unwrap();
        // Count per (window start, auction); a bid is in the five 10 s windows starting at
        // multiples of 2 s that contain it.
        let mut counts: BTreeMap<(u64, u64), i64> = BTreeMap::new();
        for b in bids(50_000) {
            let last = b.date_time / 2000 * 2000;
            for k in 0..5 {
                *counts.entry((last - k * 2000, b.auction)).or_default() += 1;
            }
        }
        let mut max: HashMap<u64, i64> = HashMap::new();
        for (&(start, _), &n) in &counts {
            let m = max.entry(start).or_default();
            *m = (*m).max(n);
        }
        let mut expected: Vec<Vec<Value>> = counts
            .iter()
            .filter(|((start, _), n)| **n >= max[start])
            .map(|((_, auction), n)| vec![Value::Int(*auction as i64), Value::Int(*n)])
            .collect();
        expected.sort();
        assert_eq!(sorted(rows), expected);
    }
}
