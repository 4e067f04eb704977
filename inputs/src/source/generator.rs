//! Generated rows, for demos and benchmarks.
//!
//! - `COUNTER (rate = r, max = n)`: one column `n`, counting 1, 2, 3, … at `r` rows per second
//!   (default 1).
//! - `NEXMARK (stream = 'bid'|'auction'|'person', rate = r, events = n, base_time = ms)`: the
//!   Nexmark benchmark's streams from the `nexmark` crate, `r` rows per second (0, the
//!   default, as fast as the dataflow takes them), `n` rows in all (default: no end). Every
//!   worker generates its stride of the sequence; `base_time` (default: now) fixes the event
//!   times so runs are repeatable.
//!
//! A bounded generator catches up when it has produced everything; an unbounded one has no
//! history and counts as caught up from the start.

use std::time::{Duration, Instant};

use freshet_dataflows::connector::{Closed, ReaderContext, SourceSpec, Transport};
use freshet_dataflows::error::{Error, Result};
use freshet_dataflows::{Column, DataType, Row, RowPacker, Schema, Value};
use nexmark::config::NexmarkConfig;
use nexmark::event::{Event, EventType};
use nexmark::EventGenerator;

use super::{check_options, u64_option};

pub(crate) fn prepare(spec: &mut SourceSpec) -> Result<()> {
    if !spec.schema.is_empty() {
        return Err(Error::plan(
            "generator sources define their own columns; drop the column list",
        ));
    }
    if spec.format.is_some() {
        return Err(Error::plan("generator sources take no FORMAT"));
    }
    match kind(spec).as_str() {
        "counter" => {
            check_options(spec, &["rate", "max"])?;
            u64_option(spec, "rate")?;
            u64_option(spec, "max")?;
            spec.schema = Schema::new(vec![Column::new("n", DataType::Int, false)]);
        }
        "nexmark" => {
            check_options(spec, &["stream", "rate", "events", "base_time"])?;
            u64_option(spec, "rate")?;
            u64_option(spec, "events")?;
            u64_option(spec, "base_time")?;
            spec.schema = nexmark_schema(stream(spec)?);
        }
        other => {
            return Err(Error::plan(format!(
                "unknown generator {other} (known: COUNTER, NEXMARK)"
            )))
        }
    }
    Ok(())
}

fn kind(spec: &SourceSpec) -> String {
    match &spec.transport {
        Transport::Generator { kind } => kind.clone(),
        _ => String::new(),
    }
}

fn stream(spec: &SourceSpec) -> Result<EventType> {
    match spec
        .option("stream")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("bid") | Some("bids") => Ok(EventType::Bid),
        Some("auction") | Some("auctions") => Ok(EventType::Auction),
        Some("person") | Some("people") | Some("persons") => Ok(EventType::Person),
        Some(other) => Err(Error::plan(format!(
            "NEXMARK stream must be 'bid', 'auction' or 'person', not '{other}'"
        ))),
        None => Err(Error::plan(
            "NEXMARK needs a stream: (stream = 'bid' | 'auction' | 'person')",
        )),
    }
}

/// The columns of each Nexmark stream, as the benchmark's SQL expects them.
pub fn nexmark_schema(stream: EventType) -> Schema {
    let c = |n: &str, t| Column::new(n, t, false);
    use DataType::{Int, Text, Timestamp};
    Schema::new(match stream {
        EventType::Person => vec![
            c("id", Int),
            c("name", Text),
            c("email_address", Text),
            c("credit_card", Text),
            c("city", Text),
            c("state", Text),
            c("date_time", Timestamp),
            c("extra", Text),
        ],
        EventType::Auction => vec![
            c("id", Int),
            c("item_name", Text),
            c("description", Text),
            c("initial_bid", Int),
            c("reserve", Int),
            c("date_time", Timestamp),
            c("expires", Timestamp),
            c("seller", Int),
            c("category", Int),
            c("extra", Text),
        ],
        EventType::Bid => vec![
            c("auction", Int),
            c("bidder", Int),
            c("price", Int),
            c("channel", Text),
            c("url", Text),
            c("date_time", Timestamp),
            c("extra", Text),
        ],
    })
}

/// A Nexmark event as a row of its stream, encoded field by field (no `Value` per string).
pub fn nexmark_row(event: Event) -> Row {
    let mut p = RowPacker::new();
    let ts = |ms: u64| ms as i64 * 1000;
    match event {
        Event::Person(e) => {
            p.push_int(e.id as i64);
            p.push_text(&e.name);
            p.push_text(&e.email_address);
            p.push_text(&e.credit_card);
            p.push_text(&e.city);
            p.push_text(&e.state);
            p.push_timestamp(ts(e.date_time));
            p.push_text(&e.extra);
        }
        Event::Auction(a) => {
            p.push_int(a.id as i64);
            p.push_text(&a.item_name);
            p.push_text(&a.description);
            p.push_int(a.initial_bid as i64);
            p.push_int(a.reserve as i64);
            p.push_timestamp(ts(a.date_time));
            p.push_timestamp(ts(a.expires));
            p.push_int(a.seller as i64);
            p.push_int(a.category as i64);
            p.push_text(&a.extra);
        }
        Event::Bid(b) => {
            p.push_int(b.auction as i64);
            p.push_int(b.bidder as i64);
            p.push_int(b.price as i64);
            p.push_text(&b.channel);
            p.push_text(&b.url);
            p.push_timestamp(ts(b.date_time));
            p.push_text(&b.extra);
        }
    }
    p.finish()
}

/// A Nexmark generator for one worker's stride of one stream.
pub fn nexmark_generator(
    stream: EventType,
    base_time: u64,
    worker: usize,
    peers: usize,
) -> EventGenerator {
    let config = NexmarkConfig {
        base_time,
        ..NexmarkConfig::default()
    };
    EventGenerator::new(config)
        .with_type_filter(stream)
        .with_offset(worker as u64)
        .with_step(peers as u64)
}

/// How many events a Nexmark generator may run ahead of the slowest of its source's others
/// in this process (two of its batches).
const ALIGN_SLACK: u64 = 8192;

pub(crate) fn start(spec: &SourceSpec, ctx: ReaderContext) -> Result<Box<dyn Send>> {
    let rate = u64_option(spec, "rate")?;
    let name = format!("freshet-gen-{}-{}", spec.name, ctx.worker);
    let (worker, peers) = (ctx.worker, ctx.peers);
    let mut rows: Box<dyn Iterator<Item = Row> + Send> = match kind(spec).as_str() {
        "counter" => {
            // One worker counts; the sequence is small and ordered.
            let max = u64_option(spec, "max")?.unwrap_or(u64::MAX);
            let n = if worker == 0 { max } else { 0 };
            Box::new((1..=n).map(|i| Row::new(vec![Value::Int(i as i64)])))
        }
        _ => {
            let base_time =
                u64_option(spec, "base_time")?.unwrap_or_else(freshet_dataflows::engine::now_ms);
            let generator = nexmark_generator(stream(spec)?, base_time, worker, peers);
            let total = u64_option(spec, "events")?;
            let mine = total.map(|t| (t + (peers - 1 - worker) as u64) / peers as u64);
            Box::new(
                generator
                    .take(mine.map(|m| m as usize).unwrap_or(usize::MAX))
                    .map(nexmark_row),
            )
        }
    };
    let counter = kind(spec) == "counter";
    // Per-worker rate: the counter runs on one worker, Nexmark on all.
    let rate = match (rate, counter) {
        (None, true) => Some(1),
        (r, true) => r.filter(|r| *r > 0),
        (r, false) => r.filter(|r| *r > 0).map(|r| (r / peers as u64).max(1)),
    };
    let bounded = (counter && u64_option(spec, "max")?.is_some())
        || (!counter && u64_option(spec, "events")?.is_some());
    // After a restart, the rows made before are back from the data directory: skip them.
    // Generators are divided among workers, so this needs the same number of workers.
    let resume = ctx
        .resume
        .as_ref()
        .map(|r| r.own.as_ref().map(|o| o.get(&0).copied().unwrap_or(0)));
    let source_name = spec.name.clone();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let out = &ctx.output;
            let mut run = || -> std::result::Result<(), Closed> {
                let mut made: u64 = 0;
                match resume {
                    None => {}
                    Some(Some(n)) => {
                        for _ in rows.by_ref().take(n as usize) {}
                        made = n;
                    }
                    Some(None) => {
                        out.stats.stall(format!(
                            "source \"{source_name}\": generated by a different number of \
                             workers before the restart; restart with that number, or drop and \
                             create the source again"
                        ));
                        while !out.is_closed() {
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        return Err(Closed);
                    }
                }
                let mut batcher = super::Batcher::new(out);
                if !bounded {
                    batcher.caught_up()?;
                }
                // Each worker makes an equal stride of one sequence of events in time order:
                // kept level, every window of event time gets its rows at fewer timestamps.
                let level = (!counter).then(|| out.stats.alignment.join(worker, made));
                let started = Instant::now();
                let mut produced: u64 = 0;
                loop {
                    if let Some(level) = &level {
                        level.wait_within(ALIGN_SLACK, || out.is_closed());
                    }
                    let allowed = match rate {
                        Some(r) => {
                            let due = (started.elapsed().as_secs_f64() * r as f64) as u64 + 1;
                            due.saturating_sub(produced).min(4096)
                        }
                        None => 4096,
                    };
                    if allowed == 0 {
                        if out.is_closed() {
                            return Err(Closed);
                        }
                        let r = rate.unwrap_or(1).max(1);
                        std::thread::sleep(Duration::from_micros(
                            (1_000_000 / r).clamp(200, 10_000),
                        ));
                        continue;
                    }
                    let mut batch = freshet_dataflows::connector::SourceBatch::default();
                    for row in rows.by_ref().take(allowed as usize) {
                        batch.rows.push((row, 1));
                    }
                    let n = batch.rows.len() as u64;
                    produced += n;
                    made += n;
                    if let Some(level) = &level {
                        level.advance(made);
                    }
                    batch.positions.insert(0, made);
                    batch.bytes = n * 8;
                    let finished = n < allowed;
                    if finished && bounded {
                        batch.caught_up = true;
                    }
                    if !batch.rows.is_empty() || batch.caught_up {
                        out.send(batch)?;
                    }
                    if finished {
                        return Ok(());
                    }
                }
            };
            let _ = run();
        })
        .map_err(|e| Error::Internal(format!("could not start a generator thread: {e}")))?;
    Ok(Box::new(()))
}
