//! Sinks: a relation's changes written as JSON, exactly once across restarts.
//!
//! Every sink writes two kinds of records, in order:
//!
//! ```json
//! {"row": [1, "a"], "diff": 1, "time": 1732540000123}
//! {"progress": 1732540000124}
//! ```
//!
//! A progress record says that every change at a time before it has been written. Exactly-once
//! does not rest on transactions (the brokers we can run do not isolate aborted ones); it
//! rests on reading back. When a sink starts, it reads what earlier runs wrote and sums it up
//! (`row → diff`). A file is first cut back to its last progress record. A Kafka topic cannot
//! be cut, so records after the last progress (a run that died mid-write) stay in the sum.
//! The sink then writes only the difference between the relation's snapshot and that sum,
//! and continues with live changes. Summed over the destination, the diffs always equal the
//! relation: nothing is lost and nothing counts twice, whatever the point of the crash.
//! Times never go backwards: a restart continues at or after the last progress.

pub mod file;
pub mod kafka;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use freshet_dataflows::connector::{
    SinkEvent, SinkFactory, SinkSpec, SinkStats, SinkWriter, SinkWriterId, Transport,
};
use freshet_dataflows::error::{Error, Result};
use freshet_dataflows::plan::Diff;
use freshet_dataflows::render::Time;
use freshet_dataflows::sql::connector::check_known_options;
use freshet_dataflows::{Row, Schema, Value};

/// Progress is written (and the destination synced) at most this often while data flows.
const COMMIT_INTERVAL: Duration = Duration::from_millis(100);

/// The sinks `freshet-inputs` can write.
#[derive(Debug, Default)]
pub struct Sinks;

impl SinkFactory for Sinks {
    fn prepare(&self, spec: &SinkSpec) -> Result<()> {
        match &spec.transport {
            Transport::File { path } => {
                check_known_options(&spec.options, &[])?;
                file::prepare(path)
            }
            Transport::Kafka { .. } => check_known_options(&spec.options, &["idempotence"]),
            Transport::Generator { .. } => Err(Error::plan("a generator cannot be a sink")),
        }
    }

    fn parallel(&self, spec: &SinkSpec) -> bool {
        // A topic takes many producers; a file has one end to append to.
        matches!(spec.transport, Transport::Kafka { .. })
    }

    fn start(
        &self,
        spec: &SinkSpec,
        writer: SinkWriterId,
        stats: Arc<SinkStats>,
    ) -> Result<Box<dyn SinkWriter>> {
        let destination: Box<dyn Destination> = match &spec.transport {
            Transport::File { path } => Box::new(file::FileDestination::new(path)),
            Transport::Kafka { brokers, topic } => {
                let idempotence = spec.options.get("idempotence").map(|v| v != "false");
                Box::new(kafka::KafkaDestination::new(
                    brokers,
                    topic,
                    idempotence.unwrap_or(true),
                    writer,
                )?)
            }
            Transport::Generator { .. } => return Err(Error::plan("a generator cannot be a sink")),
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        let name = spec.name.clone();
        let schema = spec.schema.clone();
        std::thread::Builder::new()
            .name(format!("freshet-sink-{name}-{}", writer.index))
            .spawn(move || run(name, schema, writer, destination, rx, stats))
            .map_err(|e| Error::Internal(format!("could not start a sink thread: {e}")))?;
        Ok(Box::new(ChannelWriter { tx }))
    }
}

struct ChannelWriter {
    tx: crossbeam_channel::Sender<SinkEvent>,
}

impl SinkWriter for ChannelWriter {
    fn send(&mut self, event: SinkEvent) -> bool {
        self.tx.send(event).is_ok()
    }
}

/// What earlier runs left in a destination.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every data record still there, summed per row.
    pub contents: HashMap<Row, Diff>,
    /// The latest progress any writer wrote (0 if none).
    pub upper: Time,
}

/// A place a sink writes records to.
pub trait Destination: Send {
    /// Reads back what is there (cutting off an unfinished tail where the medium allows).
    fn recover(&mut self, schema: &Schema) -> std::result::Result<Recovered, String>;
    /// Appends records (JSON, one per line or message): all of them or, on error, none.
    fn write(&mut self, records: &[Vec<u8>]) -> std::result::Result<(), String>;
    /// Makes everything written so far durable (fsync, or every message acknowledged).
    fn commit(&mut self) -> std::result::Result<(), String>;
}

/// A data record (fields in this order, as they always were).
#[derive(serde::Serialize)]
struct Update<'a> {
    diff: Diff,
    row: freshet_dataflows::row::JsonRow<'a>,
    time: Time,
}

/// A data record.
pub fn update_record(row: &Row, diff: Diff, time: Time) -> Vec<u8> {
    serde_json::to_vec(&Update {
        diff,
        row: row.json(),
        time,
    })
    .unwrap_or_default()
}

/// A progress record: every change of `writer`'s rows at a time before `upper` is written.
/// (A sink with one writer leaves out who wrote it.)
pub fn progress_record(upper: Time, writer: SinkWriterId) -> Vec<u8> {
    let record = if writer.count > 1 {
        serde_json::json!({ "progress": upper, "writer": writer.index, "writers": writer.count })
    } else {
        serde_json::json!({ "progress": upper })
    };
    serde_json::to_vec(&record).unwrap_or_default()
}

/// What a record read back says.
pub enum ReadBack {
    Update(Row, Diff),
    Progress(Time),
}

/// Parses a record this module wrote.
pub fn parse_record(schema: &Schema, bytes: &[u8]) -> std::result::Result<ReadBack, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("unreadable record: {e}"))?;
    if let Some(p) = v.get("progress").and_then(|p| p.as_u64()) {
        return Ok(ReadBack::Progress(p));
    }
    let row = v
        .get("row")
        .and_then(|r| r.as_array())
        .ok_or("record without \"row\"")?;
    let diff = v
        .get("diff")
        .and_then(|d| d.as_i64())
        .ok_or("record without \"diff\"")?;
    if row.len() != schema.len() {
        return Err(format!(
            "record has {} values; the relation has {} columns",
            row.len(),
            schema.len()
        ));
    }
    let values = row
        .iter()
        .zip(&schema.columns)
        .map(|(v, c)| Value::from_json(v, c.ty))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(ReadBack::Update(Row::new(values), diff as Diff))
}

/// The writer thread: recover, correct, then follow the changes.
fn run(
    name: String,
    schema: Schema,
    writer: SinkWriterId,
    mut dest: Box<dyn Destination>,
    events: crossbeam_channel::Receiver<SinkEvent>,
    stats: Arc<SinkStats>,
) {
    let recovered = loop {
        match dest.recover(&schema) {
            Ok(r) => break r,
            Err(e) => {
                stats.stall(format!(
                    "sink \"{name}\": reading back what was written: {e}; retrying"
                ));
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    };
    stats.unstall();
    let floor = recovered.upper;
    // Of what earlier runs wrote (whoever wrote it), this writer answers for its own rows.
    let mut contents = recovered.contents;
    contents.retain(|row, _| writer.owns(row));
    let mut previous = Some(contents);
    let mut pending: Vec<Vec<u8>> = Vec::new();
    let mut last_commit = Instant::now();
    let mut written_since_commit = false;
    let mut upper_seen = None;
    loop {
        let event = match events.recv_timeout(COMMIT_INTERVAL) {
            Ok(e) => Some(e),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        match event {
            Some(SinkEvent::Snapshot { time, rows }) => {
                // Write only what the destination lacks: the snapshot minus what is there,
                // summed by sorting (hashing every row of a large snapshot cost more).
                let mut correction = rows;
                correction.extend(
                    previous
                        .take()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(row, d)| (row, -d)),
                );
                freshet_dataflows::row::consolidate(&mut correction);
                let time = time.max(floor);
                for (row, d) in &correction {
                    pending.push(update_record(row, *d, time));
                }
                written_since_commit = true;
                upper_seen = Some(time + 1);
            }
            Some(SinkEvent::Updates { time, updates }) => {
                let time = time.max(floor);
                for (row, d) in &updates {
                    pending.push(update_record(row, *d, time));
                }
                written_since_commit |= !updates.is_empty();
            }
            Some(SinkEvent::Progress { upper }) => upper_seen = Some(upper.max(floor)),
            None => {}
        }
        let due = last_commit.elapsed() >= COMMIT_INTERVAL;
        if let (true, Some(upper)) = (
            due && (written_since_commit || !pending.is_empty()),
            upper_seen,
        ) {
            let n = pending.len() as u64;
            pending.push(progress_record(upper, writer));
            // Retry until the destination takes it: records are never dropped. `write` is
            // all or nothing, so a retry cannot write a record twice.
            while let Err(e) = dest.write(&pending) {
                stats.stall(format!("sink \"{name}\": {e}; retrying"));
                std::thread::sleep(Duration::from_millis(500));
            }
            while let Err(e) = dest.commit() {
                stats.stall(format!("sink \"{name}\": {e}; retrying"));
                std::thread::sleep(Duration::from_millis(500));
            }
            stats.unstall();
            stats.wrote(writer.index, n, upper);
            pending.clear();
            written_since_commit = false;
            last_commit = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written() {
        let row = Row::new(vec![
            Value::Int(-3),
            Value::text("a \"b\""),
            Value::Null,
            Value::float(0.25),
            Value::Timestamp(1_732_540_000_123_000),
        ]);
        let record = update_record(&row, -2, 17);
        // The shape consumers parse: keys in this order, values as `Row::to_json` gives them.
        let expected = serde_json::json!({"row": row.to_json(), "diff": -2, "time": 17});
        assert_eq!(
            String::from_utf8(record.clone()).unwrap(),
            expected.to_string()
        );
        let schema = Schema::new(vec![
            freshet_dataflows::Column::new("a", freshet_dataflows::DataType::Int, true),
            freshet_dataflows::Column::new("b", freshet_dataflows::DataType::Text, true),
            freshet_dataflows::Column::new("c", freshet_dataflows::DataType::Int, true),
            freshet_dataflows::Column::new("d", freshet_dataflows::DataType::Float, true),
            freshet_dataflows::Column::new("e", freshet_dataflows::DataType::Timestamp, true),
        ]);
        match parse_record(&schema, &record) {
            Ok(ReadBack::Update(back, d)) => {
                assert_eq!((back, d), (row, -2));
            }
            _ => panic!("not read back as an update"),
        }
        let writer = SinkWriterId { index: 1, count: 2 };
        let progress: serde_json::Value =
            serde_json::from_slice(&progress_record(9, writer)).unwrap();
        assert_eq!(
            progress,
            serde_json::json!({"progress": 9, "writer": 1, "writers": 2})
        );
        assert!(matches!(
            parse_record(&schema, &progress_record(9, SinkWriterId::SOLE)),
            Ok(ReadBack::Progress(9))
        ));
    }
}
