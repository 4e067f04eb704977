//! Live Nexmark: unbounded generator sources at a fixed rate, a view, and an SSE subscriber;
//! the latency from a row's ingestion to the subscriber's update, at rising rates.
//!
//! A source stamps each row with the millisecond it takes it in (ingestion time), and every
//! update a subscriber receives carries that time. The latency of an update is the wall clock
//! at its arrival minus its time, so it is exact to within the millisecond of the stamp.
//! Rows still waiting in a generator's channel have no stamp yet: when the dataflow cannot
//! keep up, the generators are slowed down (the channel is bounded) and the *achieved* rate,
//! counted from the catalog's row counts, falls below the target instead.

use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use super::queries::Query;
use crate::server::Server;

/// One query at one rate.
pub struct Point {
    pub target: u64,
    pub achieved: f64,
    pub updates: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

/// Rows taken in so far by all sources (the catalog's counters).
fn rows_in(server: &Server) -> anyhow::Result<u64> {
    let (_, body) = server.get("/v1/catalog")?;
    let v: serde_json::Value = serde_json::from_str(&body)?;
    Ok(v["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["status"]["rows"].as_u64())
        .sum())
}

/// Runs `q` live at `rate` events per second for `seconds` after a warm-up.
pub fn run(
    bin: &str,
    q: &Query,
    sql: &str,
    workers: usize,
    rate: u64,
    seconds: f64,
) -> anyhow::Result<Point> {
    let server = Server::start(bin, workers)?;
    let sources: Vec<String> = q
        .streams
        .iter()
        .map(|s| {
            let r = (s.rows(rate * 50) / 50).max(1);
            format!(
                "CREATE SOURCE {} FROM GENERATOR NEXMARK (stream = '{}', rate = {r})",
                s.name(),
                s.name()
            )
        })
        .collect();
    server.sql(&format!(
        "{}; CREATE VIEW {} AS {sql}",
        sources.join("; "),
        q.name
    ))?;
    let response = ureq::get(&format!(
        "http://{}/v1/subscribe?view={}",
        server.addr, q.name
    ))
    .header("Accept", "text/event-stream")
    .call()
    .context("subscribing")?;
    let reader = std::io::BufReader::new(response.into_body().into_reader());
    let (tx, rx) = mpsc::channel::<(f64, f64)>();
    std::thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { return };
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            let arrived = wall_ms();
            // Only the time is needed: read it without parsing the rows.
            if !data.starts_with("{\"type\":\"update\"") && !data.contains("\"type\":\"update\"") {
                continue;
            }
            let time = data
                .find("\"time\":")
                .map(|i| &data[i + 7..])
                .and_then(|t| t.split([',', '}']).next())
                .and_then(|t| t.trim().parse::<f64>().ok());
            if let Some(time) = time {
                if tx.send((arrived, time)).is_err() {
                    return;
                }
            }
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    let from = wall_ms();
    let (rows0, t0) = (rows_in(&server)?, Instant::now());
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let (rows1, elapsed) = (rows_in(&server)?, t0.elapsed());
    let to = wall_ms();
    drop(server);
    let mut lat: Vec<f64> = rx
        .try_iter()
        .filter(|(arrived, _)| *arrived >= from && *arrived <= to)
        .map(|(arrived, time)| arrived - time)
        .collect();
    lat.sort_by(f64::total_cmp);
    let pick = |p: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(Point {
        target: rate,
        achieved: (rows1 - rows0) as f64 / elapsed.as_secs_f64(),
        updates: lat.len(),
        p50: pick(0.5),
        p99: pick(0.99),
        max: lat.last().copied().unwrap_or(f64::NAN),
    })
}
