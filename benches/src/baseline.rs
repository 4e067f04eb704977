//! The hand-written differential dataflow for the same view, over typed tuples: the limit of
//! what freshet's design can reach. Worker 0 plays the writer: it inserts, advances time and
//! steps until the output's probe passes that time.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use differential_dataflow::input::InputSession;
use rand::{Rng, SeedableRng};
use timely::dataflow::ProbeHandle;

use crate::stats::{percentile, Outcome};

/// Advances both inputs to `time`, sealing everything before it.
fn seal(
    a: &mut InputSession<u64, (u64, u64), isize>,
    b: &mut InputSession<u64, (u64, u64), isize>,
    time: u64,
) {
    for input in [a, b] {
        input.advance_to(time);
        input.flush();
    }
}

pub fn run(workers: usize, keys: u64, updates: usize, batch: usize, batches: usize) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let peers = worker.peers() as u64;
        let mut a: InputSession<u64, (u64, u64), isize> = InputSession::new();
        let mut b: InputSession<u64, (u64, u64), isize> = InputSession::new();
        let probe = ProbeHandle::new();
        worker.dataflow::<u64, _, _>(|scope| {
            let a = a.to_collection(scope);
            let b = b.to_collection(scope);
            a.join(b)
                .map(|(k, (_x, y))| (k, y))
                .reduce(
                    |_k, vals: &[(&u64, isize)], out: &mut Vec<((isize, u64), isize)>| {
                        let n: isize = vals.iter().map(|(_, m)| *m).sum();
                        let s: u64 = vals.iter().map(|(y, m)| **y * *m as u64).sum();
                        out.push(((n, s), 1));
                    },
                )
                .probe_with(&probe);
        });
        let mut time = 1u64;
        for k in (0..keys).filter(|k| k % peers == index as u64) {
            a.insert((k, k));
            b.insert((k, 1));
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
                b.insert((k, i as u64));
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
                    b.insert((k, y));
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
