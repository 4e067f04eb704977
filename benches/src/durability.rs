//! Durability benchmarks against the real binary with a data directory (fsync on):
//! acknowledged single-row writes per second and their latency under many concurrent writers
//! (group commit), and recovery speed (rows replayed per second until `/readyz` is ready).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::Server;
use crate::stats::{fmt, percentile};

/// The server under test: with a data directory, or in memory.
fn start(bin: &str, dir: Option<&std::path::Path>) -> anyhow::Result<Server> {
    match dir {
        Some(d) => Server::start_durable(bin, 1, d),
        None => Server::start(bin, 1),
    }
}

pub fn run(bin: &str, writers: usize, seconds: u64, recovery_rows: u64) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("freshet-bench-durable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    println!("| storage | writers | acknowledged writes/s | p50 | p99 | p99.9 |");
    println!("|---|---|---|---|---|---|");
    // The same writers against an in-memory server show what the log itself costs.
    for durable in [true, false] {
        writes(bin, durable.then_some(dir.as_path()), writers, seconds)?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    // The same writers calling the engine in-process (the embedded API): the storage and
    // engine path without HTTP, the 64 client threads still on the same cores.
    for durable in [true, false] {
        in_process(durable.then_some(dir.as_path()), writers, seconds)?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    recovery(bin, &dir, recovery_rows)
}

fn storage_label(dir: Option<&std::path::Path>) -> &'static str {
    if dir.is_some() {
        "data dir (fsync)"
    } else {
        "ephemeral"
    }
}

/// Runs `writers` threads for `seconds`, thread `i` calling `writer(i)(n)` for n = 0, 1, …
/// (each call one acknowledged write, true if it succeeded); prints a row of the table.
fn drive<W>(label: &str, writers: usize, seconds: u64, writer: impl Fn(usize) -> W)
where
    W: FnMut(u64) -> bool + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|i| {
            let mut write = writer(i);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if write(n) {
                        lat.push(t.elapsed());
                    }
                    n += 1;
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_default())
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "| {label} | {writers} | {:.0} | {} | {} | {} |",
        lat.len() as f64 / elapsed,
        fmt(percentile(&lat, 0.5)),
        fmt(percentile(&lat, 0.99)),
        fmt(percentile(&lat, 0.999)),
    );
}

/// Concurrent single-row writers through `Engine::write` in this process.
fn in_process(dir: Option<&std::path::Path>, writers: usize, seconds: u64) -> anyhow::Result<()> {
    use freshet_dataflows::engine::{Engine, EngineConfig, StorageHandle};
    use freshet_dataflows::{Row, Value};
    let storage = match dir {
        Some(d) => Some(StorageHandle(Arc::new(
            freshet_inputs::durable::FileStorage::open(d).map_err(|e| anyhow::anyhow!(e))?,
        ))),
        None => None,
    };
    let engine = Engine::start(EngineConfig {
        storage,
        ..Default::default()
    })?;
    engine
        .execute("CREATE TABLE w (writer bigint, n bigint)")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let label = format!("{}, in-process `Engine::write`", storage_label(dir));
    let writer = |i: usize| {
        let engine = engine.clone();
        move |n: u64| {
            let row = Row::new(vec![Value::Int(i as i64), Value::Int(n as i64)]);
            engine.write("w", vec![(row, 1)]).is_ok()
        }
    };
    drive(&label, writers, seconds, writer);
    engine.shutdown();
    Ok(())
}

/// Concurrent single-row writers, each waiting for its acknowledgement.
fn writes(
    bin: &str,
    dir: Option<&std::path::Path>,
    writers: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let server = start(bin, dir)?;
    server.sql("CREATE TABLE w (writer bigint, n bigint)")?;
    let writer = |i: usize| {
        let agent = ureq::Agent::new_with_defaults();
        let url = format!("http://{}/v1/tables/w/rows", server.addr);
        move |n: u64| {
            agent
                .post(&url)
                .header("Content-Type", "application/x-ndjson")
                .send(format!("{{\"writer\": {i}, \"n\": {n}}}"))
                .is_ok()
        }
    };
    drive(
        &format!("{}, HTTP", storage_label(dir)),
        writers,
        seconds,
        writer,
    );
    drop(server);
    Ok(())
}

/// Recovery: load rows in bulk, kill, restart, time until ready.
fn recovery(bin: &str, dir: &std::path::Path, recovery_rows: u64) -> anyhow::Result<()> {
    let server = start(bin, Some(dir))?;
    server.sql(
        "CREATE TABLE r (k bigint, v bigint, s text); CREATE VIEW rc AS SELECT count(*) FROM r",
    )?;
    let batch = 100_000u64;
    let mut loaded = 0;
    while loaded < recovery_rows {
        let body: String = (loaded..(loaded + batch).min(recovery_rows))
            .map(|i| format!("{{\"k\": {i}, \"v\": {}, \"s\": \"row {i}\"}}\n", i % 1000))
            .collect();
        server.ingest("r", body)?;
        loaded = (loaded + batch).min(recovery_rows);
    }
    let log_bytes: u64 = std::fs::read_dir(dir.join("log"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    // Dropping the server kills it (SIGKILL) and waits for it.
    drop(server);
    let t = Instant::now();
    let server = start(bin, Some(dir))?;
    while server.get("/readyz")?.0 != 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let secs = t.elapsed().as_secs_f64();
    println!();
    println!("| rows recovered | log size | time to ready | rows/s |");
    println!("|---|---|---|---|");
    println!(
        "| {recovery_rows} | {:.0} MB | {secs:.2} s | {:.0} |",
        log_bytes as f64 / 1e6,
        recovery_rows as f64 / secs
    );
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
