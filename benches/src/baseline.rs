//! The hand-written differential dataflows for the same view, over typed tuples (the limit of
//! what freshet's design can reach) or over freshet's `Row` (the cost of the representation
//! alone), aggregating the textbook way or the way freshet does. Worker 0 plays the writer:
//! it inserts, advances time and steps until the output's probe passes that time.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use differential_dataflow::input::InputSession;
use differential_dataflow::operators::CountTotal;
use differential_dataflow::{ExchangeData, Hashable};
use freshet_dataflows::{Row, Value};
use rand::{Rng, SeedableRng};
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;

use crate::stats::{percentile, Outcome};

/// A field of the baseline's records: a plain `u64`, or one value in freshet's `Row` (the same
/// dataflow over freshet's record representation, to tell the cost of the representation
/// from the cost of everything else freshet does).
pub trait Field: ExchangeData + Hashable + Default {
    fn of(x: u64) -> Self;
    fn int(&self) -> u64;
}

impl Field for u64 {
    fn of(x: u64) -> u64 {
        x
    }
    fn int(&self) -> u64 {
        *self
    }
}

impl Field for Row {
    fn of(x: u64) -> Row {
        Row::new(vec![Value::Int(x as i64)])
    }
    fn int(&self) -> u64 {
        match self.get(0) {
            Value::Int(x) => x as u64,
            _ => 0,
        }
    }
}

type Input<F> = InputSession<u64, (F, F), isize>;

/// How the baseline computes `count(*)` and `sum(b.y)` per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    /// `reduce`: the textbook dataflow; each changed key's group is read again whole, so its
    /// cost grows with the distinct values a key has seen.
    Reduce,
    /// Count and sum carried as the updates' difference (`explode` into `(1, y)`, then
    /// `count_total`): constant work per update, as freshet does it. The result is arranged,
    /// as a freshet view's is to answer reads at a timestamp.
    Diffs,
}

/// Advances both inputs to `time`, sealing everything before it.
fn seal<F: Field>(a: &mut Input<F>, b: &mut Input<F>, time: u64) {
    for input in [a, b] {
        input.advance_to(time);
        input.flush();
    }
}

pub fn run<F: Field>(
    workers: usize,
    keys: u64,
    updates: usize,
    batch: usize,
    batches: usize,
    aggregate: Aggregate,
) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let peers = worker.peers() as u64;
        let mut a: Input<F> = InputSession::new();
        let mut b: Input<F> = InputSession::new();
        let probe = ProbeHandle::new();
        worker.dataflow::<u64, _, _>(|scope| {
            let a = a.to_collection(scope);
            let b = b.to_collection(scope);
            let joined = a.join_map(b, |k, _x, y| (k.clone(), y.clone()));
            match aggregate {
                Aggregate::Reduce => {
                    joined
                        .reduce(
                            |_k, vals: &[(&F, isize)], out: &mut Vec<((isize, u64), isize)>| {
                                let n: isize = vals.iter().map(|(_, m)| *m).sum();
                                let s: u64 = vals.iter().map(|(y, m)| y.int() * *m as u64).sum();
                                out.push(((n, s), 1));
                            },
                        )
                        .probe_with(&probe);
                }
                Aggregate::Diffs => {
                    joined
                        .explode(|(k, y)| Some((k, (1isize, y.int() as isize))))
                        .count_total()
                        .arrange_by_key()
                        .stream
                        .probe_with(&probe);
                }
            }
        });
        let mut time = 1u64;
        for k in (0..keys).filter(|k| k % peers == index as u64) {
            a.insert((F::of(k), F::of(k)));
            b.insert((F::of(k), F::of(1)));
        }
        a.advance_to(time);
        b.advance_to(time);
        a.flush();
        b.flush();
        worker.step_while(|| probe.less_than(&time));

        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut lat = Vec::new();
        for i in 0..updates {
            let k = rng.random_range(0..keys);
            let start = Instant::now();
            if index == 0 {
                b.insert((F::of(k), F::of(i as u64)));
            }
            time += 1;
            seal(&mut a, &mut b, time);
            worker.step_or_park_while(Some(Duration::from_millis(1)), || probe.less_than(&time));
            lat.push(start.elapsed());
        }
        let start = Instant::now();
        for _ in 0..batches {
            for _ in 0..batch {
                let (k, y) = (rng.random_range(0..keys), rng.random_range(0..100));
                if index == 0 {
                    b.insert((F::of(k), F::of(y)));
                }
            }
            time += 1;
            seal(&mut a, &mut b, time);
        }
        worker.step_or_park_while(Some(Duration::from_millis(1)), || probe.less_than(&time));
        let elapsed = start.elapsed();
        if index == 0 {
            lat.sort();
            let _ = tx.send(Outcome {
                p50: percentile(&lat, 0.5),
                p99: percentile(&lat, 0.99),
                throughput: (batch * batches) as f64 / elapsed.as_secs_f64(),
            });
        }
    })
    .expect("timely starts");
    drop(guards);
    rx.recv().expect("worker 0 reports")
}
