//! Service-level benchmarks against the real `freshet` binary over loopback HTTP:
//! write → subscriber latency, bulk NDJSON ingest, and the idle cost of many subscribers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::stats::{fmt, percentile};

/// A running server, killed on drop.
pub struct Server {
    child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(bin: &str, workers: usize) -> anyhow::Result<Server> {
        // In memory: runs start empty and leave nothing behind (no data directory).
        Server::start_with(bin, workers, &["--ephemeral"])
    }

    /// A server keeping its state in `dir` (which should start empty).
    pub fn start_durable(
        bin: &str,
        workers: usize,
        dir: &std::path::Path,
    ) -> anyhow::Result<Server> {
        let dir = dir.to_str().context("data directory path is not UTF-8")?;
        Server::start_with(bin, workers, &["--data-dir", dir])
    }

    fn start_with(bin: &str, workers: usize, extra: &[&str]) -> anyhow::Result<Server> {
        let mut child = Command::new(bin)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--workers",
                &workers.to_string(),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("starting {bin} (build it with cargo build --release -p freshet-server)")
            })?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .context("no listening line")?
            .to_string();
        Ok(Server { child, addr })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sql(&self, sql: &str) -> anyhow::Result<serde_json::Value> {
        let body = serde_json::json!({ "sql": sql }).to_string();
        let response = ureq::post(&format!("http://{}/v1/sql", self.addr))
            .config()
            .http_status_as_error(false)
            .build()
            .send(body)?;
        let status = response.status();
        let text = response.into_body().read_to_string()?;
        if !status.is_success() {
            bail!("{sql}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// `GET path`: the status and the body, whatever the status.
    pub fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let response = ureq::get(&format!("http://{}{path}", self.addr))
            .config()
            .http_status_as_error(false)
            .build()
            .call()?;
        let status = response.status().as_u16();
        Ok((status, response.into_body().read_to_string()?))
    }

    pub fn ingest(&self, table: &str, ndjson: String) -> anyhow::Result<u64> {
        let text = ureq::post(&format!("http://{}/v1/tables/{table}/rows", self.addr))
            .header("Content-Type", "application/x-ndjson")
            .send(ndjson)?
            .into_body()
            .read_to_string()?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        v["timestamp"]
            .as_u64()
            .with_context(|| format!("ingest failed: {text}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) and resident bytes of a process.
pub fn usage(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((ticks / 100.0, rss_kb * 1024))
}

/// Peak resident set size (VmHWM) of a process, bytes.
pub fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .context("no VmHWM")?;
    Ok(kb * 1024)
}

/// Opens an SSE subscription on a raw socket (headers sent, body left to the caller).
fn open_sse(addr: &str, view: &str) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    write!(s, "GET /v1/subscribe?view={view} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n")?;
    Ok(s)
}

pub fn run(
    bin: &str,
    workers: usize,
    writes: usize,
    subscribers: &[usize],
    rates: &[f64],
) -> anyhow::Result<()> {
    let server = Server::start(bin, workers)?;
    server.sql("CREATE TABLE bids (auction bigint NOT NULL, price bigint NOT NULL); CREATE VIEW best AS SELECT auction, max(price) AS top, count(*) AS n FROM bids GROUP BY auction")?;

    // 1. Write → subscriber latency: one row per request, timed until the subscriber has seen
    //    progress past the write's timestamp.
    let (tx, rx) = mpsc::channel::<(u64, Instant)>();
    let stream = open_sse(&server.addr, "best")?;
    std::thread::spawn(move || {
        let reader = BufReader::new(stream);
        for line in reader.lines().map_while(Result::ok) {
            if let Some(id) = line.strip_prefix("id: ") {
                if let Ok(t) = id.trim().parse::<u64>() {
                    if tx.send((t, Instant::now())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut lat = Vec::with_capacity(writes);
    for i in 0..writes {
        let start = Instant::now();
        let ts = server.ingest(
            "bids",
            format!("{{\"auction\": {}, \"price\": {i}}}\n", i % 100),
        )?;
        loop {
            let (upper, at) = rx
                .recv_timeout(Duration::from_secs(10))
                .context("no progress from the subscriber")?;
            if upper > ts {
                lat.push(at - start);
                break;
            }
        }
    }
    lat.sort();
    println!(
        "| write → SSE subscriber ({workers} worker{}) | p50 {} | p99 {} | p99.9 {} | {writes} single-row writes |",
        if workers == 1 { "" } else { "s" },
        fmt(percentile(&lat, 0.5)),
        fmt(percentile(&lat, 0.99)),
        fmt(percentile(&lat, 0.999))
    );

    // 1b. The same latency with writes arriving at a rate (open loop), rate after rate.
    for &rate in rates {
        rate_sweep(&server, workers, rate)?;
    }

    // 2. Idle subscribers: CPU and memory of the server with many open, idle subscriptions.
    for &n in subscribers {
        idle_subscribers(&server, workers, n)?;
    }

    // 3. Bulk NDJSON ingest into the table behind the aggregate view.
    bulk(&server, workers)
}

/// Writes for this long at each rate.
const SWEEP: Duration = Duration::from_secs(4);
/// Writer threads sharing a rate (one thread's serial requests cannot reach the higher rates).
const SWEEP_WRITERS: usize = 8;

/// Single-row writes at `rate` per second from several writers, each scheduled at a fixed
/// time whether or not earlier ones were answered; each write's latency is from its scheduled
/// time until a subscriber saw progress past its timestamp (so queueing counts).
fn rate_sweep(server: &Server, workers: usize, rate: f64) -> anyhow::Result<()> {
    let stream = open_sse(&server.addr, "best")?;
    let (tx, rx) = mpsc::channel::<(u64, Instant)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let Some(t) = line
                .strip_prefix("id: ")
                .and_then(|t| t.trim().parse().ok())
            {
                if tx.send((t, Instant::now())).is_err() {
                    return;
                }
            }
        }
    });
    let start = Instant::now() + Duration::from_millis(200);
    let per_writer = rate / SWEEP_WRITERS as f64;
    let handles: Vec<_> = (0..SWEEP_WRITERS)
        .map(|w| {
            let addr = server.addr.clone();
            std::thread::spawn(move || -> Vec<(u64, Instant)> {
                let agent = ureq::Agent::new_with_defaults();
                let url = format!("http://{addr}/v1/tables/bids/rows");
                let mut out = Vec::new();
                for i in 0.. {
                    let due = start
                        + Duration::from_secs_f64(
                            (i as f64 + w as f64 / SWEEP_WRITERS as f64) / per_writer,
                        );
                    if due > start + SWEEP {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let body = format!("{{\"auction\": {}, \"price\": {i}}}\n", (i * 7 + w) % 100);
                    let Ok(mut r) = agent
                        .post(&url)
                        .header("Content-Type", "application/x-ndjson")
                        .send(body)
                    else {
                        continue;
                    };
                    let text = r.body_mut().read_to_string().unwrap_or_default();
                    let ts = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["timestamp"].as_u64());
                    if let Some(ts) = ts {
                        out.push((ts, due));
                    }
                }
                out
            })
        })
        .collect();
    let mut sent: Vec<(u64, Instant)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_default())
        .collect();
    sent.sort();
    let last = sent.last().map(|(t, _)| *t).unwrap_or(0);
    let mut progress: Vec<(u64, Instant)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while progress.last().is_none_or(|(t, _)| *t <= last) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(p) => progress.push(p),
            Err(_) => bail!("the subscriber stopped reporting progress"),
        }
    }
    // The first progress past each write's timestamp (both lists are in time order).
    let mut lat = Vec::with_capacity(sent.len());
    let mut j = 0;
    for (ts, due) in &sent {
        while progress[j].0 <= *ts {
            j += 1;
        }
        lat.push(progress[j].1.saturating_duration_since(*due));
    }
    lat.sort();
    println!(
        "| write → SSE subscriber at {rate:.0} writes/s ({workers} worker{}) | p50 {} | p99 {} | p99.9 {} | {} writes in {:.0} s ({:.0}/s achieved), {SWEEP_WRITERS} writers, latency from each write's scheduled time |",
        if workers == 1 { "" } else { "s" },
        fmt(percentile(&lat, 0.5)),
        fmt(percentile(&lat, 0.99)),
        fmt(percentile(&lat, 0.999)),
        sent.len(),
        SWEEP.as_secs_f64(),
        sent.len() as f64 / SWEEP.as_secs_f64(),
    );
    Ok(())
}

/// CPU and memory of the server with `subscribers` open, idle subscriptions.
fn idle_subscribers(server: &Server, workers: usize, subscribers: usize) -> anyhow::Result<()> {
    let pid = server.pid();
    std::thread::sleep(Duration::from_secs(1));
    let (cpu0, rss0) = usage(pid)?;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let (cpu1, _) = usage(pid)?;
    let idle_base = (cpu1 - cpu0) / t0.elapsed().as_secs_f64();
    let mut socks = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        socks.push(open_sse(&server.addr, "best")?);
    }
    // Let every subscription get its snapshot, then measure a quiet period.
    std::thread::sleep(Duration::from_secs(3));
    for s in &mut socks {
        s.set_nonblocking(true)?;
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                bail!("a subscriber was disconnected");
            }
        }
    }
    let (cpu2, rss2) = usage(pid)?;
    let t2 = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let (cpu3, _) = usage(pid)?;
    let idle_subs = (cpu3 - cpu2) / t2.elapsed().as_secs_f64();
    println!(
        "| {subscribers} idle SSE subscribers on one view ({workers} worker{}) | {:.2} % of a core (server idle without them: {:.2} %) | +{:.1} MB RSS ({:.1} KB each) | progress once a second to each |",
        if workers == 1 { "" } else { "s" },
        idle_subs * 100.0,
        idle_base * 100.0,
        (rss2.saturating_sub(rss0)) as f64 / 1e6,
        (rss2.saturating_sub(rss0)) as f64 / 1e3 / subscribers as f64
    );
    drop(socks);
    // Let the server notice the closed connections before the next measurement.
    std::thread::sleep(Duration::from_secs(2));
    Ok(())
}

/// Bulk NDJSON ingest into the table behind the aggregate view.
fn bulk(server: &Server, workers: usize) -> anyhow::Result<()> {
    let pid = server.pid();
    let rows_per_request = 100_000;
    let requests = 10;
    let bodies: Vec<String> = (0..requests)
        .map(|r| {
            (0..rows_per_request)
                .map(|i| {
                    format!(
                        "{{\"auction\": {}, \"price\": {}}}\n",
                        (r * rows_per_request + i) % 10_000,
                        i
                    )
                })
                .collect()
        })
        .collect();
    let bytes: usize = bodies.iter().map(String::len).sum();
    let start = Instant::now();
    let mut last = 0;
    for body in bodies {
        last = server.ingest("bids", body)?;
    }
    // Visible in the view: a read at a later time waits for it.
    let _ = server.sql("SELECT count(*) FROM best")?;
    let elapsed = start.elapsed();
    let _ = last;
    println!(
        "| bulk NDJSON ingest ({workers} worker{}) | {:.0} rows/s | {:.0} MB/s | {} requests of {rows_per_request} rows, into a table with one aggregate view |",
        if workers == 1 { "" } else { "s" },
        (requests * rows_per_request) as f64 / elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        requests
    );

    // 4. Arranged state against raw bytes: a table of two bigints (16 raw bytes a row).
    server.sql("CREATE TABLE plain (a bigint NOT NULL, b bigint NOT NULL)")?;
    std::thread::sleep(Duration::from_millis(500));
    let (_, before) = usage(pid)?;
    let rows = 1_000_000u64;
    for chunk in 0..10u64 {
        let body: String = (0..rows / 10)
            .map(|i| format!("{{\"a\": {}, \"b\": {i}}}\n", chunk * rows + i))
            .collect();
        server.ingest("plain", body)?;
    }
    let _ = server.sql("SELECT count(*) FROM plain")?;
    std::thread::sleep(Duration::from_secs(2));
    let (_, after) = usage(pid)?;
    let per_row = after.saturating_sub(before) as f64 / rows as f64;
    println!(
        "| arranged table state ({workers} worker{}) | {per_row:.0} bytes of RSS per row | {:.1}× the 16 raw bytes | | 1M rows of two bigints, no views; RSS includes allocator slack |",
        if workers == 1 { "" } else { "s" },
        per_row / 16.0
    );
    Ok(())
}
