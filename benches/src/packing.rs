//! Building rows: the cost of packing values into a `Row`, which every write, source record,
//! join output, group key and aggregate result pays. Each case builds `n` rows from values
//! made beforehand (so the figure is the packing alone) and reports nanoseconds per row, the
//! fastest of `rounds` runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use freshet_dataflows::{Row, RowPacker, Value};
use rand::{Rng, SeedableRng};

/// One way of building a row: the `i`th row of the case.
type Build<'a> = Box<dyn FnMut(usize) -> Row + 'a>;

/// Runs `build` over `0..n` `rounds` times; the fastest time per row, in nanoseconds.
fn per_row(n: usize, rounds: usize, mut build: impl FnMut(usize) -> Row) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        for i in 0..n {
            black_box(build(i));
        }
        best = best.min(start.elapsed());
    }
    best.as_secs_f64() * 1e9 / n as f64
}

pub fn run(n: usize, rounds: usize) -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let ints: Vec<(i64, i64)> = (0..n)
        .map(|_| (rng.random_range(0..10_000), rng.random_range(0..1_000_000)))
        .collect();
    let names = ["Alice Smith", "Bob", "Carol Jones", "Dave Walker-Brown"];
    let mut packer = RowPacker::new();
    let pairs: Vec<Row> = ints
        .iter()
        .map(|&(k, v)| {
            packer.push_int(k);
            packer.push_int(v);
            packer.finish()
        })
        .collect();
    let (ints, pairs) = (&ints, &pairs);
    let (mut p1, mut p2) = (RowPacker::new(), RowPacker::new());
    let cases: [(&str, Build); 4] = [
        (
            "two bigints (RowPacker: a write, an ingested record)",
            Box::new(move |i| {
                let (k, v) = ints[i];
                p1.push_int(k);
                p1.push_int(v);
                p1.finish()
            }),
        ),
        (
            "bigint, text, timestamp (RowPacker: a source record, on the heap)",
            Box::new(move |i| {
                let (k, v) = ints[i];
                p2.push_int(k);
                p2.push_text(names[i % names.len()]);
                p2.push_timestamp(1_700_000_000_000_000 + v);
                p2.finish()
            }),
        ),
        (
            "two fields of a row, swapped (Row::from_fields: join outputs, keys)",
            Box::new(move |i| {
                let f = pairs[i].fields();
                Row::from_fields([Some(f[1]), Some(f[0])])
            }),
        ),
        (
            "two bigint values (Row::pack: results from values)",
            Box::new(move |i| {
                let (k, v) = ints[i];
                Row::pack([Value::Int(k), Value::Int(v)])
            }),
        ),
    ];
    println!("| rows built | ns per row |");
    println!("|---|---|");
    for (name, build) in cases {
        println!("| {name} | {:.1} |", per_row(n, rounds, build));
    }
    Ok(())
}
