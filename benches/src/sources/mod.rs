//! `freshet-bench sources`: backfill from a CSV file, a JSON-lines file and a Kafka topic into
//! an aggregate view, Kafka produce → subscriber latency, and a Kafka sink writing the source
//! back out (one writer per worker), against the real binary.
//!
//! A backfill is timed from the `CREATE SOURCE …; CREATE VIEW …` request until `/readyz` is
//! ready *and* the view's counts add up to every row; then the view is compared with what the
//! harness computed from the rows it generated. The server's CPU time over the same span
//! gives rows per CPU-second, the figure the per-core target is about. Two controls say where
//! the time goes: the decoder alone over the same files (in-process, one thread), and the
//! same rows posted through HTTP ingest in large requests (same dataflow work, one timestamp
//! per request instead of one per clock millisecond); and for Kafka, a bare consumer beside
//! the source.

mod data;
mod kafka;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use freshet_dataflows::connector::Format;

use crate::server::{usage, Server};
use crate::stats::{fmt, percentile};
use data::Expected;

pub struct Options {
    pub bin: String,
    pub workers: Vec<usize>,
    /// Rows in each generated file.
    pub rows: u64,
    /// Messages produced to the Kafka topic for its backfill (0: no Kafka runs).
    pub messages: u64,
    /// Single live messages timed for latency, and their rate per second.
    pub live: usize,
    pub rate: f64,
    /// Where the generated files go.
    pub dir: PathBuf,
    pub tansu: Option<PathBuf>,
    /// Also time file backfills with a data directory.
    pub durable: bool,
}

/// How often readiness and the view are polled while a backfill runs.
const POLL: Duration = Duration::from_millis(5);
/// How long a backfill may take before the run fails.
const TIMEOUT: Duration = Duration::from_secs(600);

/// One timed backfill.
struct Backfill {
    rows: u64,
    ready: Duration,
    complete: Duration,
    /// CPU seconds of the server over the backfill.
    cpu: f64,
    /// The catalog's own `rows_per_second` for the source.
    catalog_rate: f64,
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    // 1. Files.
    eprintln!(
        "writing {} rows as CSV and JSON lines to {}",
        o.rows,
        o.dir.display()
    );
    let expected = data::write_files(&o.dir, o.rows)?;
    let dir = o.dir.canonicalize()?;
    let files = [
        (
            "CSV",
            dir.join("rows.csv"),
            Format::Csv,
            "FORMAT CSV WITH (header = true)",
        ),
        ("JSON", dir.join("rows.jsonl"), Format::Json, "FORMAT JSON"),
    ];
    println!("Parse speed, one thread in-process (the file source's line reading and `RecordDecoder`, no dataflow):\n");
    println!("| format | file | lines only | lines + decode | decode alone |");
    println!("|---|---|---|---|---|");
    for (name, path, format, _) in &files {
        let s = data::parse_speed(path, *format, *format == Format::Csv)?;
        let per_row = s.decode.saturating_sub(s.lines_only).as_secs_f64() / s.rows as f64;
        println!(
            "| {name} | {:.0} MB, {} rows | {} rows/s ({:.0} MB/s) | {} rows/s ({:.0} MB/s) | {:.0} ns/row |",
            s.bytes as f64 / 1e6,
            s.rows,
            thousands(s.rows as f64 / s.lines_only.as_secs_f64()),
            s.bytes as f64 / 1e6 / s.lines_only.as_secs_f64(),
            thousands(s.rows as f64 / s.decode.as_secs_f64()),
            s.bytes as f64 / 1e6 / s.decode.as_secs_f64(),
            per_row * 1e9
        );
    }
    println!();
    let mut results = Vec::new();
    for &w in &o.workers {
        for (name, path, _, clause) in &files {
            let sql = format!(
                "CREATE SOURCE s ({}) FROM FILE '{}' {clause}; {}",
                data::COLUMNS,
                path.display(),
                data::VIEW
            );
            eprintln!("{name} file backfill, {w} worker(s)");
            let server = Server::start(&o.bin, w)?;
            let b = backfill(&server, &sql, &expected)?;
            results.push((format!("{name} file"), w, b, None));
            drop(server);
            if o.durable {
                eprintln!("{name} file backfill with a data directory, {w} worker(s)");
                let data_dir = o.dir.join(format!("data-{name}-{w}"));
                let _ = std::fs::remove_dir_all(&data_dir);
                let server = Server::start_durable(&o.bin, w, &data_dir)?;
                let b = backfill(&server, &sql, &expected)?;
                results.push((format!("{name} file, data directory"), w, b, None));
                drop(server);
                let _ = std::fs::remove_dir_all(&data_dir);
            }
        }
        eprintln!("reference: the same rows through HTTP ingest, {w} worker(s)");
        let server = Server::start(&o.bin, w)?;
        let b = ingest(&server, &files[1].1, &expected)?;
        results.push((
            format!("*reference:* HTTP NDJSON ingest, {INGEST_ROWS}-row requests"),
            w,
            b,
            None,
        ));
    }

    // 2. Kafka: one topic, backfilled by a fresh server per worker count; the live messages
    //    of one run are history for the next.
    let mut latencies = Vec::new();
    let mut kafka_notes = Vec::new();
    let mut sinks = Vec::new();
    if o.messages > 0 {
        let broker = kafka::Broker::start(o.tansu.clone())?;
        let (topic, partitions) = ("rows", 2);
        broker.create_topic(topic, partitions)?;
        eprintln!("producing {} messages to {topic}", o.messages);
        let (mut expected, produced) = broker.produce_rows(topic, partitions, o.messages)?;
        kafka_notes.push(format!(
            "producing {} JSON messages into tansu (2 partitions, rdkafka, linger 5 ms): {} msg/s",
            o.messages,
            thousands(o.messages as f64 / produced.as_secs_f64())
        ));
        let raw = broker.consume_raw(topic, partitions, o.messages, &[])?;
        kafka_notes.push(format!(
            "a bare rdkafka consumer with the source's settings (no decoding) reads them back at {} msg/s",
            thousands(o.messages as f64 / raw.as_secs_f64())
        ));
        let tuned = [
            ("queued.min.messages", "1000000"),
            ("fetch.queue.backoff.ms", "10"),
        ];
        let raw = broker.consume_raw(topic, partitions, o.messages, &tuned)?;
        kafka_notes.push(format!(
            "the same with `queued.min.messages = 1000000, fetch.queue.backoff.ms = 10`: {} msg/s",
            thousands(o.messages as f64 / raw.as_secs_f64())
        ));
        let mut next_seq = 0i64;
        for &w in &o.workers {
            eprintln!("Kafka backfill, {w} worker(s)");
            let server = Server::start(&o.bin, w)?;
            let sql = format!(
                "CREATE SOURCE s ({}) FROM KAFKA BROKERS '{}' TOPIC '{topic}' FORMAT JSON WITH (start = 'earliest'); {}",
                data::COLUMNS,
                broker.addr,
                data::VIEW
            );
            let (broker_cpu0, _) = usage(broker.pid())?;
            let b = backfill(&server, &sql, &expected)?;
            let (broker_cpu1, _) = usage(broker.pid())?;
            let broker_share = (broker_cpu1 - broker_cpu0) / b.complete.as_secs_f64();
            results.push(("Kafka topic".to_string(), w, b, Some(broker_share)));
            if o.live > 0 {
                eprintln!("Kafka live latency, {w} worker(s): {} messages", o.live);
                let live = kafka::Live {
                    topic,
                    partitions,
                    first: next_seq,
                    messages: o.live,
                    rate: o.rate,
                };
                let series = kafka::latency(&server, &broker, &live, &mut expected)?;
                next_seq += o.live as i64;
                let csv = o.dir.join(format!("latency-{w}.csv"));
                let mut text = String::from("produced_ms,latency_ms,bare_consumer_ms\n");
                for s in &series {
                    text += &format!(
                        "{:.3},{:.3},{}\n",
                        s.produced.as_secs_f64() * 1e3,
                        s.latency.as_secs_f64() * 1e3,
                        s.bare
                            .map(|b| format!("{:.3}", b.as_secs_f64() * 1e3))
                            .unwrap_or_default()
                    );
                }
                std::fs::write(&csv, text)?;
                let mut lat: Vec<Duration> = series.iter().map(|s| s.latency).collect();
                let mut bare: Vec<Duration> = series.iter().filter_map(|s| s.bare).collect();
                lat.sort();
                bare.sort();
                latencies.push((w, lat, bare));
                check_view(&server, &expected).context("after the live messages")?;
            }
            eprintln!("Kafka sink of the source, {w} worker(s)");
            let (broker_cpu0, _) = usage(broker.pid())?;
            let snapshot = sink_snapshot(&server, &broker.addr, &format!("sink-{w}"))?;
            let (broker_cpu1, _) = usage(broker.pid())?;
            sinks.push((w, snapshot, broker_cpu1 - broker_cpu0));
        }
    }

    println!("Backfill into `SELECT k, count(*), sum(v) FROM s GROUP BY k` ({} keys), from `CREATE SOURCE` until `/readyz` is ready and the view holds every row:\n", data::KEYS);
    println!("| source | workers | rows | ready after | view complete after | rows/s | rows/s per worker | server CPU | rows per CPU-second | catalog rows/s |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, w, b, broker) in &results {
        let rate = b.rows as f64 / b.complete.as_secs_f64();
        let broker = broker
            .map(|s| format!(" (+ broker {:.0} %)", s * 100.0))
            .unwrap_or_default();
        println!(
            "| {name} | {w} | {} | {} | {} | {} | {} | {:.2} s = {:.0} % of {w} core{}{broker} | {} | {} |",
            b.rows,
            fmt(b.ready),
            fmt(b.complete),
            thousands(rate),
            thousands(rate / *w as f64),
            b.cpu,
            b.cpu / b.complete.as_secs_f64() / *w as f64 * 100.0,
            if *w == 1 { "" } else { "s" },
            thousands(b.rows as f64 / b.cpu),
            if b.catalog_rate > 0.0 {
                thousands(b.catalog_rate)
            } else {
                "–".into()
            }
        );
    }
    println!();
    for n in &kafka_notes {
        println!("- {n}");
    }
    if !sinks.is_empty() {
        println!("\nKafka sink of the source (`CREATE SINK … FROM s INTO KAFKA …`, a new topic), from the request until every writer's snapshot is acknowledged:\n");
        println!(
            "| workers (= writers) | messages | time | messages/s | server CPU | broker CPU |"
        );
        println!("|---|---|---|---|---|---|");
        for (w, (messages, took, cpu), broker) in &sinks {
            println!(
                "| {w} | {messages} | {} | {} | {cpu:.2} s | {broker:.2} s |",
                fmt(*took),
                thousands(*messages as f64 / took.as_secs_f64()),
            );
        }
    }
    if !latencies.is_empty() {
        println!(
            "\nKafka produce → SSE subscriber ({} single messages at {:.0}/s, each a new row of the view):\n",
            o.live, o.rate
        );
        println!("| workers | to | p50 | p99 | p99.9 | max |");
        println!("|---|---|---|---|---|---|");
        for (w, lat, bare) in &latencies {
            for (to, l) in [
                ("freshet SSE subscriber", lat),
                ("bare rdkafka consumer", bare),
            ] {
                println!(
                    "| {w} | {to} | {} | {} | {} | {} |",
                    fmt(percentile(l, 0.5)),
                    fmt(percentile(l, 0.99)),
                    fmt(percentile(l, 0.999)),
                    fmt(*l.last().unwrap_or(&Duration::ZERO))
                );
            }
        }
    }
    Ok(())
}

/// Creates the source and view with `sql` and times the backfill; checks the view after.
fn backfill(server: &Server, sql: &str, expected: &Expected) -> anyhow::Result<Backfill> {
    let rows: i64 = expected.values().map(|e| e.0).sum();
    let pid = server.pid();
    let (cpu0, _) = usage(pid)?;
    let start = Instant::now();
    server.sql(sql)?;
    while server.get("/readyz")?.0 != 200 {
        if start.elapsed() > TIMEOUT {
            bail!("not ready after {:?}", start.elapsed());
        }
        std::thread::sleep(POLL);
    }
    let ready = start.elapsed();
    wait_for_count(server, rows, start)?;
    let complete = start.elapsed();
    let (cpu1, _) = usage(pid)?;
    check_view(server, expected)?;
    let (_, catalog) = server.get("/v1/catalog")?;
    let catalog: serde_json::Value = serde_json::from_str(&catalog)?;
    let catalog_rate = catalog["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == "s")
        .and_then(|s| s["status"]["rows_per_second"].as_f64())
        .unwrap_or(0.0);
    Ok(Backfill {
        rows: rows as u64,
        ready,
        complete,
        cpu: cpu1 - cpu0,
        catalog_rate,
    })
}

/// Rows per request in the HTTP ingest reference (one timestamp each).
const INGEST_ROWS: usize = 100_000;

/// The reference: the same JSON lines posted to a table of the same columns in large
/// requests (each applied at one timestamp), timed until the view holds every row.
fn ingest(
    server: &Server,
    jsonl: &std::path::Path,
    expected: &Expected,
) -> anyhow::Result<Backfill> {
    let rows: i64 = expected.values().map(|e| e.0).sum();
    let text = std::fs::read_to_string(jsonl)?;
    let lines: Vec<&str> = text.lines().collect();
    let bodies: Vec<String> = lines
        .chunks(INGEST_ROWS)
        .map(|c| c.join("\n") + "\n")
        .collect();
    server.sql(&format!(
        "CREATE TABLE s ({}); {}",
        data::COLUMNS,
        data::VIEW
    ))?;
    let pid = server.pid();
    let (cpu0, _) = usage(pid)?;
    let start = Instant::now();
    for body in bodies {
        server.ingest("s", body)?;
    }
    let ready = start.elapsed();
    wait_for_count(server, rows, start)?;
    let complete = start.elapsed();
    let (cpu1, _) = usage(pid)?;
    check_view(server, expected)?;
    Ok(Backfill {
        rows: rows as u64,
        ready,
        complete,
        cpu: cpu1 - cpu0,
        catalog_rate: 0.0,
    })
}

/// Polls `agg` until its counts add up to `rows`.
fn wait_for_count(server: &Server, rows: i64, start: Instant) -> anyhow::Result<()> {
    loop {
        let got: i64 = view(server)?.values().map(|e| e.0).sum();
        if got == rows {
            return Ok(());
        }
        if got > rows || start.elapsed() > TIMEOUT {
            bail!("the view counts {got} rows, expected {rows}");
        }
        std::thread::sleep(POLL);
    }
}

/// `agg` as the oracle's map.
fn view(server: &Server) -> anyhow::Result<Expected> {
    let (status, text) = server.get("/v1/views/agg")?;
    if status != 200 {
        bail!("reading agg: status {status}");
    }
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let int = |x: &serde_json::Value| {
        x.as_i64()
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            .with_context(|| format!("not an integer: {x}"))
    };
    let mut out = Expected::new();
    for row in v["rows"].as_array().context("no rows")? {
        out.insert(int(&row[0])?, (int(&row[1])?, int(&row[2])?));
    }
    Ok(out)
}

/// Creates a Kafka sink of the source `s` into a new topic and waits until every writer has
/// written progress, i.e. its share of the snapshot is acknowledged by the broker. Returns the
/// messages written, the time taken and the server's CPU seconds over it.
fn sink_snapshot(
    server: &Server,
    brokers: &str,
    topic: &str,
) -> anyhow::Result<(u64, Duration, f64)> {
    let pid = server.pid();
    let (cpu0, _) = usage(pid)?;
    let start = Instant::now();
    server.sql(&format!(
        "CREATE SINK out FROM s INTO KAFKA BROKERS '{brokers}' TOPIC '{topic}' FORMAT JSON"
    ))?;
    loop {
        let (_, catalog) = server.get("/v1/catalog")?;
        let catalog: serde_json::Value = serde_json::from_str(&catalog)?;
        let status = &catalog["sinks"][0]["status"];
        if status["upper"].as_u64().unwrap_or(0) > 0 {
            let took = start.elapsed();
            let (cpu1, _) = usage(pid)?;
            let messages = status["messages"].as_u64().unwrap_or(0);
            server.sql("DROP SINK out")?;
            return Ok((messages, took, cpu1 - cpu0));
        }
        if start.elapsed() > TIMEOUT {
            bail!("the sink did not write its snapshot: {status}");
        }
        std::thread::sleep(POLL);
    }
}

fn check_view(server: &Server, expected: &Expected) -> anyhow::Result<()> {
    let got = view(server)?;
    if &got != expected {
        let wrong: Vec<_> = expected
            .iter()
            .filter(|(k, e)| got.get(k) != Some(e))
            .take(5)
            .collect();
        bail!(
            "the view differs from the generated rows ({} groups, expected {}); e.g. {wrong:?}",
            got.len(),
            expected.len()
        );
    }
    Ok(())
}

/// 1234567.8 → "1,234,568".
fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
