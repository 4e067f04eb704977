//! One Nexmark query through the real `freshet serve`: bounded generator sources and the query
//! as a view, timed from the `CREATE SOURCE …; CREATE VIEW …` request until the view is
//! complete (or, with `--view-after-sources`, from `CREATE VIEW …` once the sources have been
//! read to their end).
//!
//! "Complete" is observed without reading the (possibly large) view: right after it the harness
//! creates `<view>_done AS SELECT * FROM <view> WHERE c IS NULL AND c IS NOT NULL` (`c` its
//! first column), which holds no rows but whose reads wait, like every read, until its input
//! has caught up with the read's timestamp. Once `/readyz` says every source has read and
//! sealed its history, one read of `_done` returns when the view has taken in all of it. (Not
//! `WHERE false`: the planner empties such a query without reading its input, so its reads
//! never wait for the view.)

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::Deserialize;

use super::check::{self, RowWriter};
use super::queries::{self, Query, SIDE_INPUT_KEYS};
use super::{Measured, Options};
use crate::server::{peak_rss, usage, Server};

/// How often `/readyz` is polled during a run.
const POLL: Duration = Duration::from_millis(2);

/// Runs `q` over `events` events with `workers` workers; writes the view's rows to `out`.
pub fn run(
    o: &Options,
    q: &Query,
    sql: &str,
    events: u64,
    workers: usize,
    out: Option<&Path>,
) -> anyhow::Result<Measured> {
    let (base_time, timeout) = (o.base_time, o.timeout);
    let server = Server::start(&o.bin, workers)?;
    if q.side_input {
        side_input(&server)?;
    }
    let name = q.name;
    let sources = queries::sources_sql(q, events, base_time);
    let views = format!("CREATE VIEW {name} AS {sql}");
    let statements = if o.view_after_sources {
        // The sources are read (and arranged) before the clock starts; the view then
        // replays their arrangements with no generator running.
        server.sql(&sources)?;
        wait_ready(&server, Instant::now(), timeout)?;
        views
    } else {
        format!("{sources}; {views}")
    };
    let pid = server.pid();
    let (cpu0, _) = usage(pid)?;
    let start = Instant::now();
    server.sql(&statements)?;
    server.sql(&done_view(&server, name)?)?;
    wait_ready(&server, start, timeout)?;
    let ready = start.elapsed();
    let (status, body) = server.get(&format!("/v1/views/{name}_done"))?;
    if status != 200 {
        bail!("reading {name}_done: {status}: {body}");
    }
    let complete = start.elapsed();
    let (cpu1, _) = usage(pid)?;
    let peak = peak_rss(pid)?;
    if let Some(out) = out {
        write_view(&server, name, out)?;
    }
    Ok(Measured {
        ready: ready.as_secs_f64(),
        complete: complete.as_secs_f64(),
        cpu: cpu1 - cpu0,
        peak_rss: peak,
        rows_in: q.streams.iter().map(|s| s.rows(events)).sum(),
    })
}

/// `CREATE VIEW <name>_done …`: no rows, but a filter over every row of `name` that the
/// planner cannot fold away, so reading it waits for `name` (see the module docs).
fn done_view(server: &Server, name: &str) -> anyhow::Result<String> {
    let (status, body) = server.get("/v1/catalog")?;
    if status != 200 {
        bail!("reading the catalog: {status}: {body}");
    }
    let catalog: serde_json::Value = serde_json::from_str(&body)?;
    let first = catalog["views"]
        .as_array()
        .and_then(|views| views.iter().find(|v| v["name"] == name))
        .and_then(|v| v["columns"][0]["name"].as_str())
        .with_context(|| format!("view {name} in the catalog"))?;
    let c = format!("\"{}\"", first.replace('"', "\"\""));
    Ok(format!(
        "CREATE VIEW {name}_done AS SELECT * FROM {name} WHERE {c} IS NULL AND {c} IS NOT NULL"
    ))
}

/// Waits until `/readyz` says every source has read and sealed its history.
fn wait_ready(server: &Server, start: Instant, timeout: Duration) -> anyhow::Result<()> {
    while server.get("/readyz")?.0 != 200 {
        if start.elapsed() > timeout {
            bail!("sources not caught up after {:.0} s", timeout.as_secs_f64());
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// The table of q13: `(key, 'v' || key)`, loaded before the clock starts.
fn side_input(server: &Server) -> anyhow::Result<()> {
    server.sql("CREATE TABLE side_input (key bigint NOT NULL, value text NOT NULL)")?;
    let body: String = (0..SIDE_INPUT_KEYS)
        .map(|k| format!("{{\"key\": {k}, \"value\": \"v{k}\"}}\n"))
        .collect();
    server.ingest("side_input", body)?;
    Ok(())
}

#[derive(Deserialize)]
struct ReadResult {
    rows: Vec<Vec<serde_json::Value>>,
}

/// Reads the whole view and writes its rows canonically.
fn write_view(server: &Server, name: &str, out: &Path) -> anyhow::Result<u64> {
    let response = ureq::get(&format!("http://{}/v1/views/{name}", server.addr))
        .call()
        .with_context(|| format!("reading {name}"))?;
    let reader = std::io::BufReader::new(response.into_body().into_reader());
    let result: ReadResult = serde_json::from_reader(reader)?;
    let mut w = RowWriter::create(out)?;
    for r in &result.rows {
        w.write(&check::row(r), 1)?;
    }
    w.finish()
}

/// The server's error for `sql` as a view over the query's sources (a few events), or
/// `None` if it is accepted.
pub fn error_of(bin: &str, q: &Query, sql: &str) -> anyhow::Result<Option<String>> {
    let server = Server::start(bin, 1)?;
    if q.side_input {
        server.sql("CREATE TABLE side_input (key bigint NOT NULL, value text NOT NULL)")?;
    }
    server.sql(&queries::sources_sql(q, 1000, 1_700_000_000_000))?;
    match server.sql(&format!("CREATE VIEW {} AS {sql}", q.name)) {
        Ok(_) => Ok(None),
        Err(e) => {
            // `Server::sql` reports "<sql>: <status>: <body>"; keep the server's message.
            let text = e.to_string();
            let body = text.rsplit_once(": {").map(|(_, b)| format!("{{{b}"));
            let message = body
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .and_then(|v| v["error"]["message"].as_str().map(String::from))
                .unwrap_or(text);
            Ok(Some(message))
        }
    }
}
