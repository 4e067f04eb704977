//! Reads after many small writes. Every single-row write is a batch in each arrangement it
//! reaches; a read of a view must cost about the same after 20,000 such writes as after 200,
//! for the whole retention window. (Until differential was allowed to merge batches as soon
//! as they were complete, each read walked every batch of the window.)

use std::time::Instant;

use freshet_dataflows::engine::{Engine, EngineConfig, SubscribeOptions, SubscribeTarget};
use freshet_dataflows::{Row, Value};

use crate::stats::{fmt, percentile};

const SQL: &str = "CREATE TABLE t (k bigint, v bigint);
    CREATE VIEW s AS SELECT k % 10 AS g, count(*) AS n, sum(v) AS total FROM t GROUP BY k % 10";

/// For each count in `writes`: a fresh engine, that many single-row writes, then `reads`
/// reads of the view at the latest time and `reads` at the time of the first write.
pub fn run(workers: usize, writes: &[usize], reads: usize) -> anyhow::Result<()> {
    println!(
        "| workers | single-row writes before | view read p50 | p99 | AS OF the first write, p50 |"
    );
    println!("|---|---|---|---|---|");
    for &n in writes {
        let engine = Engine::start(EngineConfig {
            workers,
            ..Default::default()
        })?;
        engine.execute(SQL).map_err(|e| anyhow::anyhow!("{e}"))?;
        // Each write is seen by a subscriber before the next, as when writes come one by one
        // (otherwise the workers take several in one step, as one batch).
        let sub = engine.subscribe(
            SubscribeTarget::Name("s".into()),
            SubscribeOptions {
                snapshot: false,
                ..Default::default()
            },
        )?;
        let mut first = None;
        for i in 0..n as i64 {
            let row = Row::new(vec![Value::Int(i), Value::Int(i % 97)]);
            let ts = engine.write("t", vec![(row, 1)])?;
            crate::engine::wait_past(&sub, ts)?;
            first.get_or_insert(ts);
        }
        drop(sub);
        let time = |as_of: Option<u64>| -> anyhow::Result<Vec<std::time::Duration>> {
            let mut lat = Vec::with_capacity(reads);
            for _ in 0..reads {
                let start = Instant::now();
                let r = engine.read("s", as_of)?;
                lat.push(start.elapsed());
                anyhow::ensure!(as_of.is_some() || r.rows.len() == n.min(10), "wrong answer");
            }
            lat.sort();
            Ok(lat)
        };
        let latest = time(None)?;
        let old = time(first)?;
        println!(
            "| {workers} | {n} | {} | {} | {} |",
            fmt(percentile(&latest, 0.5)),
            fmt(percentile(&latest, 0.99)),
            fmt(percentile(&old, 0.5)),
        );
        engine.shutdown();
    }
    Ok(())
}
