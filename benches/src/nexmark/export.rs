//! The same Nexmark events as CSV files, for the peers that read files (DuckDB).
//!
//! One generator per stream over the whole sequence (the union of every worker's stride, so
//! the same rows freshet and the baseline see), timestamps as `YYYY-MM-DD HH:MM:SS[.fff]`.

use std::io::{BufWriter, Write};
use std::path::Path;

use freshet_inputs::source::generator::nexmark_generator;
use nexmark::event::{Event, EventType};

use super::queries::Stream;

/// A CSV field, quoted when it needs to be.
fn field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

fn ts(ms: u64) -> String {
    freshet_dataflows::Value::Timestamp(ms as i64 * 1000).to_string()
}

/// Writes `person.csv`, `auction.csv` and `bid.csv` (with headers) for `events` events.
pub fn write(dir: &Path, events: u64, base_time: u64) -> anyhow::Result<()> {
    for (stream, kind, header) in [
        (
            Stream::Person,
            EventType::Person,
            "id,name,email_address,credit_card,city,state,date_time,extra",
        ),
        (
            Stream::Auction,
            EventType::Auction,
            "id,item_name,description,initial_bid,reserve,date_time,expires,seller,category,extra",
        ),
        (
            Stream::Bid,
            EventType::Bid,
            "auction,bidder,price,channel,url,date_time,extra",
        ),
    ] {
        let path = dir.join(format!("{}.csv", stream.name()));
        let mut out = BufWriter::new(std::fs::File::create(&path)?);
        writeln!(out, "{header}")?;
        let rows = stream.rows(events) as usize;
        for e in nexmark_generator(kind, base_time, 0, 1).take(rows) {
            match e {
                Event::Person(p) => writeln!(
                    out,
                    "{},{},{},{},{},{},{},{}",
                    p.id,
                    field(&p.name),
                    field(&p.email_address),
                    field(&p.credit_card),
                    field(&p.city),
                    field(&p.state),
                    ts(p.date_time),
                    field(&p.extra)
                )?,
                Event::Auction(a) => writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{}",
                    a.id,
                    field(&a.item_name),
                    field(&a.description),
                    a.initial_bid,
                    a.reserve,
                    ts(a.date_time),
                    ts(a.expires),
                    a.seller,
                    a.category,
                    field(&a.extra)
                )?,
                Event::Bid(b) => writeln!(
                    out,
                    "{},{},{},{},{},{},{}",
                    b.auction,
                    b.bidder,
                    b.price,
                    field(&b.channel),
                    field(&b.url),
                    ts(b.date_time),
                    field(&b.extra)
                )?,
            }
        }
        out.flush()?;
    }
    Ok(())
}
