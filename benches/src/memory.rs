//! Arranged state against the raw bytes of the rows it holds.
//!
//! Each case runs in a child process of its own (`freshet-bench memory-case`), so one case's
//! allocator state never inflates the next one's figure. A case loads `rows` rows of two
//! bigints (16 raw bytes each) in ten writes, waits until every arrangement has taken them in,
//! lets the spines settle, and reports the growth of the process's resident set per row.
//! RSS includes allocator slack and batches still waiting to merge, so it is an upper bound on
//! the arrangements' own heap. Beside it, the growth of the live heap (bytes allocated and not
//! freed, counted by the binary's allocator, `heap.rs`) is what the arrangements hold.
//!
//! Cases:
//! - `table`: one freshet table (arranged by whole row), no views;
//! - `view`: the engine benchmark's tables `a` and `b` with `rows` keys each and its
//!   join + aggregate view (every arrangement that view builds);
//! - `dd-table` and `dd-view`: the same rows in hand-written differential dataflow over
//!   `(u64, u64)` tuples, arranged by self and joined + reduced as in `baseline.rs`.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use differential_dataflow::input::InputSession;
use freshet_dataflows::engine::{Engine, EngineConfig};
use freshet_dataflows::{Row, Value};
use timely::dataflow::operators::Probe as _;
use timely::dataflow::ProbeHandle;

/// Resident set size of this process, bytes.
fn rss() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")?;
    Ok(kb * 1024)
}

/// What one case measured.
pub struct Measured {
    /// Rows written (over all tables).
    pub rows: u64,
    /// RSS growth while loading them, bytes.
    pub bytes: u64,
    /// Live heap growth while loading them, bytes.
    pub heap: u64,
    /// Updates held in freshet's arrangements, as the engine reports them (0 for differential).
    pub records: u64,
}

/// Runs every case in a child process and prints a Markdown table.
pub fn run(rows: u64, workers: &[usize]) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    println!("| case | workers | rows | RSS growth | bytes per row | × 16 raw bytes | live heap per row | × 16 raw bytes | arranged updates (freshet) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for &w in workers {
        for case in ["dd-table", "table", "dd-view", "view"] {
            let out = std::process::Command::new(&exe)
                .args(["memory-case", case, "--rows", &rows.to_string()])
                .args(["--workers", &w.to_string()])
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "case {case} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8_lossy(&out.stdout);
            let mut f = line.split_whitespace().map(|x| x.parse::<u64>());
            let (n, bytes, heap, records) = match (f.next(), f.next(), f.next(), f.next()) {
                (Some(Ok(n)), Some(Ok(b)), Some(Ok(h)), Some(Ok(r))) => (n, b, h, r),
                _ => anyhow::bail!("case {case} printed {line:?}"),
            };
            let per_row = bytes as f64 / n as f64;
            let heap_per_row = heap as f64 / n as f64;
            println!(
                "| {case} | {w} | {n} | {:.1} MB | {per_row:.0} | {:.1}× | {heap_per_row:.0} | {:.1}× | {} |",
                bytes as f64 / 1e6,
                per_row / 16.0,
                heap_per_row / 16.0,
                if records == 0 {
                    "–".to_string()
                } else {
                    records.to_string()
                }
            );
        }
    }
    Ok(())
}

/// Runs one case in this process and prints `rows rss_bytes heap_bytes records`.
pub fn case(case: &str, rows: u64, workers: usize) -> anyhow::Result<()> {
    crate::heap::start();
    let m = match case {
        "table" => freshet(rows, workers, false)?,
        "view" => freshet(rows, workers, true)?,
        "dd-table" => differential(rows, workers, false),
        "dd-view" => differential(rows, workers, true),
        other => anyhow::bail!("unknown case {other}"),
    };
    println!("{} {} {} {}", m.rows, m.bytes, m.heap, m.records);
    Ok(())
}

fn row(k: u64, v: u64) -> Row {
    Row::new(vec![Value::Int(k as i64), Value::Int(v as i64)])
}

fn freshet(rows: u64, workers: usize, view: bool) -> anyhow::Result<Measured> {
    let engine = Engine::start(EngineConfig {
        workers,
        // The clock's ticks wake the workers, which refresh the frontiers polled below.
        tick: Duration::from_millis(100),
        ..Default::default()
    })?;
    let tables: &[&str] = if view {
        engine
            .execute(crate::engine::VIEW)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        &["a", "b"]
    } else {
        engine
            .execute("CREATE TABLE t (k bigint, v bigint)")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        &["t"]
    };
    settle();
    let before = rss()?;
    let heap_before = crate::heap::live();
    let mut last = 0;
    for table in tables {
        for chunk in 0..10 {
            let part: Vec<(Row, isize)> = (chunk * rows / 10..(chunk + 1) * rows / 10)
                .map(|k| (row(k, k), 1))
                .collect();
            last = engine.write(table, part)?;
        }
    }
    // Wait until every item's arrangement has passed the last write.
    let deadline = Instant::now() + Duration::from_secs(120);
    let records = loop {
        let stats = engine.item_stats();
        if stats.iter().all(|s| s.frontier > last) {
            break stats.iter().map(|s| s.records).sum();
        }
        anyhow::ensure!(Instant::now() < deadline, "arrangements did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    };
    settle();
    let after = rss()?;
    let heap = crate::heap::live() - heap_before;
    engine.shutdown();
    Ok(Measured {
        rows: rows * tables.len() as u64,
        bytes: after.saturating_sub(before),
        heap: heap.max(0) as u64,
        records,
    })
}

/// Gives fueled merges and metrics a moment.
fn settle() {
    std::thread::sleep(Duration::from_millis(1500));
}

fn differential(rows: u64, workers: usize, view: bool) -> Measured {
    let (tx, rx) = std::sync::mpsc::channel();
    let before = rss().unwrap_or(0);
    let heap_before = crate::heap::live();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index() as u64;
        let peers = worker.peers() as u64;
        let mut a: InputSession<u64, (u64, u64), isize> = InputSession::new();
        let mut b: InputSession<u64, (u64, u64), isize> = InputSession::new();
        let probe = ProbeHandle::new();
        // Keep the traces alive until the measurement.
        let traces = worker.dataflow::<u64, _, _>(|scope| {
            let a = a.to_collection(scope);
            let b = b.to_collection(scope);
            if view {
                let aa = a.arrange_by_key();
                let ba = b.arrange_by_key();
                let out = aa
                    .clone()
                    .join_core(ba.clone(), |k, _x, y| Some((*k, *y)))
                    .reduce(
                        |_k, vals: &[(&u64, isize)], out: &mut Vec<((isize, u64), isize)>| {
                            let n: isize = vals.iter().map(|(_, m)| *m).sum();
                            let s: u64 = vals.iter().map(|(y, m)| **y * *m as u64).sum();
                            out.push(((n, s), 1));
                        },
                    );
                // The reduce keeps its output arrangement inside the operator.
                out.probe_with(&probe);
                (Some(aa.trace), Some(ba.trace), None)
            } else {
                let t = a.arrange_by_self();
                t.stream.probe_with(&probe);
                (None, None, Some(t.trace))
            }
        });
        let tables = if view { 2 } else { 1 };
        for chunk in 0..10 {
            for k in (chunk * rows / 10..(chunk + 1) * rows / 10).filter(|k| k % peers == index) {
                a.insert((k, k));
                if view {
                    b.insert((k, k));
                }
            }
            a.advance_to(chunk + 1);
            b.advance_to(chunk + 1);
            a.flush();
            b.flush();
        }
        worker.step_while(|| probe.less_than(&10));
        let settle_until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < settle_until {
            worker.step_or_park(Some(Duration::from_millis(10)));
        }
        if index == 0 {
            let _ = tx.send(rows * tables);
        }
        // Hold the state until every worker has been measured.
        std::thread::sleep(Duration::from_millis(500));
        drop(traces);
    })
    .expect("timely starts");
    let n = rx.recv().expect("worker 0 reports");
    let after = rss().unwrap_or(0);
    let heap = crate::heap::live() - heap_before;
    drop(guards);
    Measured {
        rows: n,
        bytes: after.saturating_sub(before),
        heap: heap.max(0) as u64,
        records: 0,
    }
}
