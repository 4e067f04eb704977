//! `freshet-bench nexmark`: the Nexmark queries as SQL views through `freshet serve`, beside
//! the same queries hand-written in differential dataflow, on the same events, in one run.
//!
//! For each query and worker count: a fresh server gets bounded Nexmark generator sources
//! (`events` events in all, split 1 : 3 : 46 into persons, auctions and bids, with a fixed
//! `base_time`) and the query as a view, timed until the view has taken in every event
//! (`freshet.rs`); then a child process (`freshet-bench nexmark-baseline`) runs the
//! hand-written dataflow (`dataflows.rs`) on the same events set up the same way
//! (`baseline.rs`). Both final results are written out and compared as multisets
//! (`check.rs`). Queries freshet's SQL cannot express are reported with the server's error.

mod baseline;
mod check;
mod dataflows;
mod export;
mod freshet;
mod live;
mod queries;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use check::RowWriter;
use queries::{Query, QUERIES};

/// What one timed run measured.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Seconds until `/readyz` (freshet) or the end (baseline).
    pub ready: f64,
    /// Seconds until the result held every event.
    pub complete: f64,
    /// CPU seconds (user + system) of the process over the run.
    pub cpu: f64,
    /// Peak resident set size (VmHWM), bytes.
    pub peak_rss: u64,
    /// Rows generated for the query's sources.
    pub rows_in: u64,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.rows_in as f64 / self.complete
    }
}

pub struct Options {
    pub bin: String,
    pub events: u64,
    pub queries: Vec<String>,
    pub workers: Vec<usize>,
    pub base_time: u64,
    pub dir: PathBuf,
    pub timeout: Duration,
    pub check: bool,
    /// Queries run live for the latency table, and their rates (events per second).
    pub live_queries: Vec<String>,
    pub rates: Vec<u64>,
    pub live_seconds: f64,
    /// Run the queries in DuckDB too, from scratch over the same events in CSV files.
    pub duckdb: bool,
    /// And in Flink SQL (batch mode, PyFlink's mini-cluster) over the same files.
    pub flink: bool,
    /// Draw the latency plot (a PNG, with matplotlib from `benches/scripts/bench-venv`).
    pub plot: bool,
    /// Read the sources first and time the view alone (`freshet.rs`); the hand-written
    /// dataflow's events are then generated before its clock starts (`baseline.rs`).
    pub view_after_sources: bool,
}

/// One query at one worker count.
struct Outcome {
    query: &'static Query,
    workers: usize,
    freshet: anyhow::Result<Measured>,
    baseline: anyhow::Result<Measured>,
    check: Option<anyhow::Result<check::Comparison>>,
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    std::fs::create_dir_all(&o.dir)?;
    let events = o.events / 50 * 50;
    let selected: Vec<&'static Query> = if o.queries.iter().any(|q| q == "all") {
        QUERIES.iter().collect()
    } else {
        o.queries
            .iter()
            .map(|n| queries::find(n).with_context(|| format!("unknown query {n}")))
            .collect::<anyhow::Result<_>>()?
    };
    let started = Instant::now();
    let machine = machine();
    let mut generators = Vec::new();
    for &w in &o.workers {
        eprintln!("generators alone, {w} worker(s)");
        generators.push((w, child(o, "gen", events, w, None)));
    }
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    for q in &selected {
        if let Some(original) = q.original {
            let e = freshet::error_of(&o.bin, q, original)?;
            errors.push((*q, e));
        }
        let Some(sql) = q.sql else { continue };
        for &w in &o.workers {
            eprintln!("{} ({}), {w} worker(s)", q.name, q.title);
            let ours = o.dir.join(format!("{}-freshet-w{w}.txt", q.name));
            let theirs = o.dir.join(format!("{}-differential-w{w}.txt", q.name));
            let out = |p: &PathBuf| o.check.then(|| p.clone());
            let freshet = freshet::run(o, q, sql, events, w, out(&ours).as_deref());
            if let Err(e) = &freshet {
                eprintln!("  freshet: {e:#}");
            }
            let baseline = child(o, q.name, events, w, out(&theirs).as_deref());
            if let Err(e) = &baseline {
                eprintln!("  differential: {e:#}");
            }
            let check = (o.check && freshet.is_ok() && baseline.is_ok())
                .then(|| check::compare(&theirs, &ours));
            outcomes.push(Outcome {
                query: q,
                workers: w,
                freshet,
                baseline,
                check,
            });
        }
    }
    report(
        o,
        events,
        &machine,
        &selected,
        &generators,
        &outcomes,
        &errors,
    );
    if o.duckdb {
        if let Err(e) = duckdb(o, events, &selected, &outcomes) {
            eprintln!("no DuckDB figures: {e:#}");
        }
    }
    if o.live_queries.iter().any(|q| !q.is_empty()) && !o.rates.is_empty() {
        latency(o)?;
    }
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The Python of `benches/scripts/bench-venv` (created with DuckDB and matplotlib if missing).
fn venv_python(extra: &[&str]) -> anyhow::Result<String> {
    let venv = Command::new("benches/scripts/bench-venv")
        .args(extra)
        .stderr(Stdio::inherit())
        .output()
        .context("benches/scripts/bench-venv (run from the repository root)")?;
    if !venv.status.success() {
        bail!("benches/scripts/bench-venv failed");
    }
    Ok(String::from_utf8(venv.stdout)?.trim().to_string())
}

/// DuckDB from scratch: the same events as CSV files, loaded once, then every query run over
/// all of them (what a batch system does on each refresh).
fn duckdb(
    o: &Options,
    events: u64,
    selected: &[&'static Query],
    outcomes: &[Outcome],
) -> anyhow::Result<()> {
    let python = venv_python(&[])?;
    let dir = o.dir.join("events");
    std::fs::create_dir_all(&dir)?;
    eprintln!("writing the events as CSV to {}", dir.display());
    export::write(&dir, events, o.base_time)?;
    let names: Vec<&str> = selected.iter().map(|q| q.name).collect();
    eprintln!("DuckDB: {}", names.join(","));
    let output = Command::new(python)
        .arg("benches/scripts/duckdb_nexmark.py")
        .arg(&dir)
        .args(&names)
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("duckdb_nexmark.py failed");
    }
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let run_flink = |mode: &str| {
        if !o.flink {
            return Vec::new();
        }
        flink(&dir, &names, mode).unwrap_or_else(|e| {
            eprintln!("no Flink {mode} figures: {e:#}");
            Vec::new()
        })
    };
    let flink = run_flink("batch");
    let flink_streaming = run_flink("streaming");
    let time_in = |runs: &[serde_json::Value], name: &str| {
        runs.iter()
            .find(|l| l["query"] == name)
            .map(|l| match l["seconds"].as_f64() {
                Some(t) => secs(t),
                None => format!("error: {}", l["error"]),
            })
            .unwrap_or_else(|| "–".into())
    };
    let flink_time = |name: &str| time_in(&flink, name);
    let flink_streaming_time = |name: &str| time_in(&flink_streaming, name);
    let head = lines.first().context("no output from duckdb_nexmark.py")?;
    println!();
    println!(
        "DuckDB {} ({} threads), from scratch: loading the three CSV files took {}; then each query over all the events:",
        head["version"].as_str().unwrap_or("?"),
        head["threads"],
        secs(head["load_s"].as_f64().unwrap_or(f64::NAN))
    );
    println!();
    if let Some(startup) = flink.first().and_then(|l| l["startup_s"].as_f64()) {
        println!(
            "Flink (PyFlink's local mini-cluster, parallelism 2, each query into a blackhole sink; batch mode, and streaming mode with `date_time` as event time and a 5 s watermark delay; job startup {} once, then per query):",
            secs(startup)
        );
        println!();
    }
    println!("| query | DuckDB query | rows in per second of query | Flink batch job | Flink streaming job | DuckDB result rows | freshet result rows | freshet view complete (1 worker) |");
    println!("|---|---|---|---|---|---|---|---|");
    for l in &lines[1..] {
        let name = l["query"].as_str().unwrap_or("?");
        let Some(q) = queries::find(name) else {
            continue;
        };
        let ours = outcomes
            .iter()
            .find(|r| r.query.name == name && r.workers == 1);
        let ours_rows = match ours.and_then(|r| r.check.as_ref()) {
            Some(Ok(c)) => thousands(c.right_rows as f64),
            _ => "–".into(),
        };
        let ours_time = match ours.map(|r| &r.freshet) {
            Some(Ok(m)) => secs(m.complete),
            _ => "(not run)".into(),
        };
        let rows_in: u64 = q.streams.iter().map(|s| s.rows(events)).sum();
        match l["seconds"].as_f64() {
            Some(t) => println!(
                "| {name} | {} | {} | {} | {} | {} | {ours_rows} | {ours_time} |",
                secs(t),
                thousands(rows_in as f64 / t),
                flink_time(name),
                flink_streaming_time(name),
                thousands(l["rows"].as_f64().unwrap_or(f64::NAN)),
            ),
            None => println!("| {name} | error: {} | | | | | | |", l["error"]),
        }
    }
    Ok(())
}

/// Flink SQL in `mode` (batch or streaming) over the same CSV files (`benches/scripts/flink_nexmark.py`);
/// needs a JDK 17 (`JAVA_HOME`, else `/usr/lib/jvm/java-17-openjdk-amd64`).
fn flink(dir: &Path, names: &[&str], mode: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let java_home = std::env::var("JAVA_HOME")
        .unwrap_or_else(|_| "/usr/lib/jvm/java-17-openjdk-amd64".to_string());
    if !Path::new(&java_home).join("bin/java").exists() {
        bail!("no JDK at {java_home} (set JAVA_HOME)");
    }
    let python = venv_python(&["flink"])?;
    eprintln!("Flink ({mode}): {}", names.join(","));
    let output = Command::new(python)
        .env("JAVA_HOME", &java_home)
        .arg("benches/scripts/flink_nexmark.py")
        .arg(dir)
        .arg("2")
        .arg(mode)
        .args(names)
        .stderr(Stdio::null())
        .output()?;
    if !output.status.success() {
        bail!("flink_nexmark.py failed: {}", output.status);
    }
    Ok(String::from_utf8(output.stdout)?
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// The live suite: each query at each rate and worker count; a table, a CSV and a plot.
fn latency(o: &Options) -> anyhow::Result<()> {
    let mut csv = String::from("query,workers,target,achieved,updates,p50_ms,p99_ms,max_ms\n");
    println!();
    println!(
        "Live: unbounded sources at a target rate, ingestion → SSE subscriber latency over {:.0} s after a 2 s warm-up:",
        o.live_seconds
    );
    println!();
    println!(
        "| query | workers | target events/s (all streams) | rows/s taken in (its sources) | updates | p50 | p99 | max |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for name in o.live_queries.iter().filter(|q| !q.is_empty()) {
        let q = queries::find(name).with_context(|| format!("unknown query {name}"))?;
        let Some(sql) = q.sql else { continue };
        for &w in &o.workers {
            for &rate in &o.rates {
                eprintln!("live {} at {rate} events/s, {w} worker(s)", q.name);
                let p = match live::run(&o.bin, q, sql, w, rate, o.live_seconds) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("  {e:#}");
                        continue;
                    }
                };
                println!(
                    "| {} | {w} | {} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
                    q.name,
                    thousands(p.target as f64),
                    thousands(p.achieved),
                    p.updates,
                    p.p50,
                    p.p99,
                    p.max
                );
                csv += &format!(
                    "{},{w},{},{:.0},{},{:.3},{:.3},{:.3}\n",
                    q.name, p.target, p.achieved, p.updates, p.p50, p.p99, p.max
                );
            }
        }
    }
    let csv_path = o.dir.join("latency.csv");
    std::fs::write(&csv_path, csv)?;
    if o.plot {
        let png = o.dir.join("latency.png");
        match plot(&csv_path, &png) {
            Ok(()) => println!("\nPlot: `{}`.", png.display()),
            Err(e) => eprintln!("no plot: {e:#}"),
        }
    }
    Ok(())
}

/// Draws `latency.png` from the CSV with matplotlib (installed by `benches/scripts/bench-venv`).
fn plot(csv: &Path, png: &Path) -> anyhow::Result<()> {
    let python = venv_python(&[])?;
    let status = Command::new(python)
        .arg("benches/scripts/plot_latency.py")
        .arg(csv)
        .arg(png)
        .status()?;
    if !status.success() {
        bail!("plot_latency.py failed");
    }
    Ok(())
}

/// Runs the hand-written `query` in a child process (`freshet-bench nexmark-baseline`).
fn child(
    o: &Options,
    query: &str,
    events: u64,
    workers: usize,
    out: Option<&Path>,
) -> anyhow::Result<Measured> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["nexmark-baseline", "--query", query])
        .args(["--events", &events.to_string()])
        .args(["--base-time", &o.base_time.to_string()])
        .args(["--workers", &workers.to_string()])
        .stdout(Stdio::piped());
    // The generators-alone run ("gen") times generating, so it always generates live.
    if o.view_after_sources && query != "gen" {
        cmd.arg("--pregenerated");
    }
    if let Some(out) = out {
        cmd.arg("--out").arg(out);
    }
    let mut process = cmd.spawn()?;
    let start = Instant::now();
    loop {
        if process.try_wait()?.is_some() {
            break;
        }
        if start.elapsed() > o.timeout {
            let _ = process.kill();
            let _ = process.wait();
            bail!("did not finish in {:.0} s", o.timeout.as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = process.wait_with_output()?;
    if !output.status.success() {
        bail!("the baseline process failed: {}", output.status);
    }
    let v: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let f = |k: &str| v[k].as_f64().with_context(|| format!("no {k} in {v}"));
    Ok(Measured {
        ready: f("seconds")?,
        complete: f("seconds")?,
        cpu: f("cpu")?,
        peak_rss: f("peak_rss")? as u64,
        rows_in: f("rows_in")? as u64,
    })
}

/// `freshet-bench nexmark-baseline`: runs one hand-written query, prints what it measured as
/// JSON and writes its result rows to `out`.
pub fn baseline_main(
    query: &str,
    events: u64,
    base_time: u64,
    workers: usize,
    pregenerated: bool,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let (m, rows) = baseline::run(query, events, base_time, workers, pregenerated)?;
    if let Some(out) = out {
        let mut w = RowWriter::create(out)?;
        for (row, diff) in rows {
            let json: Vec<serde_json::Value> = row.iter().map(|v| v.to_json()).collect();
            w.write(&check::row(&json), diff as i64)?;
        }
        w.finish()?;
    }
    println!(
        "{}",
        serde_json::json!({
            "seconds": m.complete, "cpu": m.cpu, "peak_rss": m.peak_rss, "rows_in": m.rows_in,
        })
    );
    Ok(())
}

fn report(
    o: &Options,
    events: u64,
    machine: &str,
    selected: &[&'static Query],
    generators: &[(usize, anyhow::Result<Measured>)],
    outcomes: &[Outcome],
    errors: &[(&'static Query, Option<String>)],
) {
    let command: Vec<String> = std::env::args().collect();
    println!("`{}`", command.join(" "));
    println!();
    println!(
        "{} Nexmark events ({} persons, {} auctions, {} bids), base_time {}; {}.",
        thousands(events as f64),
        thousands(queries::Stream::Person.rows(events) as f64),
        thousands(queries::Stream::Auction.rows(events) as f64),
        thousands(queries::Stream::Bid.rows(events) as f64),
        o.base_time,
        machine
    );
    if o.view_after_sources {
        println!();
        println!(
            "Both time the dataflow alone: freshet's sources were read to their end before \
             `CREATE VIEW`, and the hand-written dataflow's events were generated before its \
             clock started, so no generator ran beside the workers."
        );
    }
    println!();
    println!("| query | workers | rows in | result rows | freshet: ready / complete | freshet rows/s | per worker | server CPU | peak RSS | differential: complete | differential rows/s | CPU | peak RSS | freshet / differential | results equal |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in outcomes {
        let result_rows = match &r.check {
            Some(Ok(c)) => thousands(c.right_rows as f64),
            _ => "–".into(),
        };
        let (f, d) = (&r.freshet, &r.baseline);
        let cells = |m: &anyhow::Result<Measured>, ready: bool| match m {
            Ok(m) => vec![
                if ready {
                    format!("{} / {}", secs(m.ready), secs(m.complete))
                } else {
                    secs(m.complete)
                },
                thousands(m.rate()),
                if ready {
                    thousands(m.rate() / r.workers as f64)
                } else {
                    String::new()
                },
                format!("{:.2} s", m.cpu),
                format!("{:.0} MB", m.peak_rss as f64 / 1e6),
            ],
            Err(e) => {
                let mut v = vec![format!("failed: {e:#}")];
                v.extend(std::iter::repeat_n("–".to_string(), 4));
                v
            }
        };
        let mut fc = cells(f, true);
        let mut dc = cells(d, false);
        dc.remove(2);
        let ratio = match (f, d) {
            (Ok(f), Ok(d)) => format!("**{:.2}**", d.complete / f.complete),
            _ => "–".into(),
        };
        let equal = match &r.check {
            None => "not checked".to_string(),
            Some(Ok(c)) if c.equal() => "yes".to_string(),
            Some(Ok(c)) => format!(
                "**no**: {} distinct rows differ (differential {} rows, freshet {})",
                c.differing, c.left_rows, c.right_rows
            ),
            Some(Err(e)) => format!("error: {e:#}"),
        };
        let rows_in = f
            .as_ref()
            .map(|m| m.rows_in)
            .or_else(|_| d.as_ref().map(|m| m.rows_in))
            .map(|n| thousands(n as f64))
            .unwrap_or_default();
        let mut line = vec![
            r.query.name.to_string(),
            r.workers.to_string(),
            rows_in,
            result_rows,
        ];
        line.append(&mut fc);
        line.append(&mut dc);
        line.push(ratio);
        line.push(equal);
        println!("| {} |", line.join(" | "));
    }
    println!();
    for (w, g) in generators {
        if let Ok(g) = g {
            println!(
                "- Generators alone ({w} worker{}, all three streams into differential inputs, no query): {} rows/s.",
                if *w == 1 { "" } else { "s" },
                thousands(g.rate())
            );
        }
    }
    for r in outcomes {
        if let Some(Ok(c)) = &r.check {
            if !c.equal() {
                println!(
                    "- {} with {} worker(s): only in differential e.g. {:?}; only in freshet e.g. {:?}",
                    r.query.name, r.workers, c.only_left, c.only_right
                );
            }
        }
    }
    println!();
    println!("| query | runs as | freshet's error for the standard text |");
    println!("|---|---|---|");
    for q in selected {
        let error = errors
            .iter()
            .find(|(e, _)| e.name == q.name)
            .map(|(_, e)| match e {
                Some(e) => format!("`{e}`"),
                None => "(accepted)".into(),
            })
            .unwrap_or_default();
        let runs = match (q.sql, q.rewrite) {
            (None, _) => "**not run**: no equivalent SQL".to_string(),
            (Some(_), "") => "standard text".to_string(),
            (Some(_), rewrite) => format!("rewritten: {rewrite}"),
        };
        println!("| {} ({}) | {runs} | {error} |", q.name, q.title);
    }
}

fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// The machine, for the report: CPU model, cores, memory.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{cores} vCPUs ({model}), {:.0} GiB, load average {} before the run",
        mem_kb / 1024.0 / 1024.0,
        load.split_whitespace().next().unwrap_or("?")
    )
}

/// 1234567.8 → "1,234,568".
fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 && c != '-' {
            out.push(',');
        }
        out.push(c);
    }
    out
}
