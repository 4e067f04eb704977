//! freshet's side: tables `a(k, x)` and `b(k, y)`, view `v` = join on k, count and sum per k.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use freshet_dataflows::engine::{
    Engine, EngineConfig, SubscribeOptions, SubscribeTarget, Subscription,
};
use freshet_dataflows::subscribe::SubscribeEvent;
use freshet_dataflows::{Row, RowPacker};
use rand::{Rng, SeedableRng};

use crate::stats::{percentile, Outcome};

pub const VIEW: &str = "CREATE TABLE a (k bigint, x bigint); CREATE TABLE b (k bigint, y bigint);
    CREATE VIEW v AS SELECT a.k, count(*) AS n, sum(b.y) AS s FROM a JOIN b ON a.k = b.k GROUP BY a.k";

/// Packed directly, as the server's decoders do (no `Value`s in between).
fn row(k: u64, v: u64) -> Row {
    let mut p = RowPacker::new();
    p.push_int(k as i64);
    p.push_int(v as i64);
    p.finish()
}

/// Waits until the subscription reports progress past `ts`.
pub fn wait_past(sub: &Subscription, ts: u64) -> anyhow::Result<()> {
    loop {
        match sub.recv_blocking().context("subscription ended")? {
            SubscribeEvent::Progress { upper } if upper > ts => return Ok(()),
            SubscribeEvent::Error { message, .. } => anyhow::bail!(message),
            _ => {}
        }
    }
}

pub fn run(
    workers: usize,
    keys: u64,
    updates: usize,
    batch: usize,
    batches: usize,
    idle_spin: Option<Duration>,
    subscriber_poll: Option<Duration>,
) -> anyhow::Result<Outcome> {
    let defaults = EngineConfig::default();
    let engine = Engine::start(EngineConfig {
        idle_spin: idle_spin.unwrap_or(defaults.idle_spin),
        subscriber_poll,
        workers,
        tick: Duration::from_secs(3600),
        ..defaults
    })?;
    engine.execute(VIEW).map_err(|e| anyhow::anyhow!("{e}"))?;
    let a: Vec<(Row, isize)> = (0..keys).map(|k| (row(k, k), 1)).collect();
    let b: Vec<(Row, isize)> = (0..keys).map(|k| (row(k, 1), 1)).collect();
    engine.write("a", a)?;
    engine.write("b", b)?;
    let sub = engine.subscribe(
        SubscribeTarget::Name("v".into()),
        SubscribeOptions {
            snapshot: false,
            ..Default::default()
        },
    )?;
    let (latest, _) = engine.frontiers();
    wait_past(&sub, latest)?;

    // Latency: one row into `b`, until the subscriber has seen its effect.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut lat = Vec::with_capacity(updates);
    for i in 0..updates {
        let k = rng.random_range(0..keys);
        let start = Instant::now();
        let ts = engine.write("b", vec![(row(k, i as u64), 1)])?;
        wait_past(&sub, ts)?;
        lat.push(start.elapsed());
    }
    lat.sort();

    // Throughput: batches of rows into `b` written back to back, then waited for once.
    let start = Instant::now();
    let mut last = 0;
    for _ in 0..batches {
        let rows: Vec<(Row, isize)> = (0..batch)
            .map(|_| (row(rng.random_range(0..keys), rng.random_range(0..100)), 1))
            .collect();
        last = engine.write("b", rows)?;
    }
    wait_past(&sub, last)?;
    let throughput = (batch * batches) as f64 / start.elapsed().as_secs_f64();
    drop(sub);
    engine.shutdown();
    Ok(Outcome {
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        throughput,
    })
}
