//! Forming batches of rows: differential's merge batcher against freshet's (`RunMerger`).
//!
//! Every arrangement's updates pass through a batcher, so its cost is paid per update by tables,
//! views, join sides and aggregates. Three inputs: rows in random order (a table's writes),
//! rows in order (a join's or an aggregate's output), and rows in order but for pairs swapped
//! (an aggregate's retraction and insertion of a group's row, in either order), and two ordered
//! sources taking turns (what a worker receives from itself and a peer).

use std::time::{Duration, Instant};

use differential_dataflow::batcher::Batcher;
use differential_dataflow::trace::implementations::KeyBatcher as DifferentialBatcher;
use freshet_dataflows::render::arrange::KeyBatcher as FreshetBatcher;
use freshet_dataflows::{Row, Value};
use rand::{Rng, SeedableRng};
use timely::progress::Antichain;

type Update = ((Row, ()), u64, isize);

/// Rows arrive in containers of this many updates, as timely's buffers carry them.
const CONTAINER: usize = 1024;

fn rows(order: &str, batch: usize, batches: usize) -> Vec<Vec<Update>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    (0..batches)
        .map(|b| {
            let time = b as u64;
            let mut keys: Vec<i64> = match order {
                "random" => (0..batch).map(|_| rng.random_range(0..1_000_000)).collect(),
                "two sources" => (0..batch as i64).collect(),
                _ => (0..batch as i64).map(|k| k * 3 + b as i64 % 3).collect(),
            };
            if order == "pairs" {
                for pair in keys.chunks_mut(2) {
                    pair.reverse();
                }
            }
            if order == "two sources" {
                // Each of two ordered halves in turn, a container at a time.
                let (a, b): (Vec<i64>, Vec<i64>) = keys.iter().partition(|k| *k % 2 == 0);
                keys = a
                    .chunks(CONTAINER)
                    .zip(b.chunks(CONTAINER))
                    .flat_map(|(a, b)| a.iter().chain(b))
                    .copied()
                    .collect();
            }
            keys.into_iter()
                .map(|k| {
                    let row = Row::new(vec![Value::Int(k), Value::Int(k % 97)]);
                    ((row, ()), time, 1)
                })
                .collect()
        })
        .collect()
}

/// Feeds every batch through `batcher`, sealing each at the next time; the total time.
fn time<B>(mut batcher: B, input: &[Vec<Update>]) -> (Duration, usize)
where
    B: Batcher<Vec<Update>, Time = u64>,
    B::Output: BatchLen,
{
    let start = Instant::now();
    let mut updates = 0;
    for (time, batch) in input.iter().enumerate() {
        for container in batch.chunks(CONTAINER) {
            batcher.insert(&mut container.to_vec());
        }
        let upper = Antichain::from_elem(time as u64 + 1);
        let (sealed, _) = batcher.extract(upper.borrow());
        updates += sealed.map(|b| b.updates()).unwrap_or(0);
    }
    (start.elapsed(), updates)
}

/// The number of updates in a sealed batch, so the sealing cannot be optimized away.
trait BatchLen {
    fn updates(&self) -> usize;
}

impl<B: differential_dataflow::trace::implementations::spine_fueled::SpineBatch> BatchLen for B {
    fn updates(&self) -> usize {
        self.len()
    }
}

pub fn run(batch: usize, batches: usize, rounds: usize) -> anyhow::Result<()> {
    println!("| input | differential's merge batcher | freshet's (`RunMerger`) | ratio |");
    println!("|---|---|---|---|");
    for order in ["random", "ordered", "pairs", "two sources"] {
        let input = rows(order, batch, batches);
        let (mut dd, mut ours) = (Duration::MAX, Duration::MAX);
        for _ in 0..rounds {
            let (t, n) = time(DifferentialBatcher::<Row, u64, isize>::new(None, 0), &input);
            let (u, m) = time(FreshetBatcher::<Row, u64, isize>::new(None, 0), &input);
            anyhow::ensure!(n == m, "{order}: {n} updates sealed against {m}");
            dd = dd.min(t);
            ours = ours.min(u);
        }
        println!(
            "| {order} | {:.1} ms | {:.1} ms | {:.2} |",
            dd.as_secs_f64() * 1e3,
            ours.as_secs_f64() * 1e3,
            dd.as_secs_f64() / ours.as_secs_f64()
        );
    }
    Ok(())
}
