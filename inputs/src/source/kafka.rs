//! Kafka sources through librdkafka (`rdkafka`).
//!
//! Partitions are dealt to workers (`partition % workers`) and assigned directly: no consumer
//! group, no rebalancing, and the offsets are ours (carried in each batch's positions, so a
//! restart can resume exactly where the dataflow's state ends). History is the topic from
//! `start` up to the high watermarks seen when the reader started; a reader has caught up
//! when it has passed them. A broker that is down or a topic that does not exist yet puts the
//! source in the `stalled` state with the reason (catalog, `/readyz`, logs) and the reader
//! keeps retrying. New partitions are picked up as they appear.
//!
//! Optional metadata columns: `key_column`, `partition_column`, `offset_column` and
//! `timestamp_column` name declared columns filled from the message rather than its value.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use freshet_dataflows::connector::{Closed, Format, ReaderContext, SourceSpec, Transport};
use freshet_dataflows::error::{Error, Result};
use freshet_dataflows::{DataType, Row, Schema, Value};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{check_options, Batcher};
use crate::format::record::RecordDecoder;

/// How long a metadata or watermark request may take before the reader retries.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the topic is checked for new partitions.
const RESCAN: Duration = Duration::from_secs(5);

const METADATA: [&str; 4] = [
    "key_column",
    "partition_column",
    "offset_column",
    "timestamp_column",
];

pub(crate) fn prepare(spec: &mut SourceSpec) -> Result<()> {
    let mut known = vec!["start", "start_offsets"];
    known.extend(METADATA);
    check_options(spec, &known)?;
    start_of(spec)?;
    start_offsets(spec)?;
    for key in METADATA {
        if let Some(col) = spec.option(key) {
            let i = spec
                .schema
                .index_of(col)
                .ok_or_else(|| Error::plan(format!("{key}: column \"{col}\" does not exist")))?;
            let ty = spec.schema.columns[i].ty;
            let ok = match key {
                "key_column" => ty == DataType::Text,
                "timestamp_column" => matches!(ty, DataType::Timestamp | DataType::Int),
                _ => ty == DataType::Int,
            };
            if !ok {
                return Err(Error::plan(format!(
                    "{key}: column \"{col}\" has type {ty}, which cannot hold it"
                )));
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Start {
    Earliest,
    Latest,
}

fn start_of(spec: &SourceSpec) -> Result<Start> {
    match spec.option("start").map(str::to_ascii_lowercase).as_deref() {
        None | Some("earliest") => Ok(Start::Earliest),
        Some("latest") => Ok(Start::Latest),
        Some(other) => Err(Error::plan(format!(
            "start must be 'earliest' or 'latest' (or use start_offsets), not '{other}'"
        ))),
    }
}

/// `start_offsets = '0:120,1:98'`: where to start in given partitions.
fn start_offsets(spec: &SourceSpec) -> Result<BTreeMap<i32, i64>> {
    let mut out = BTreeMap::new();
    if let Some(text) = spec.option("start_offsets") {
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let parsed = part.split_once(':').and_then(|(p, o)| {
                Some((p.trim().parse::<i32>().ok()?, o.trim().parse::<i64>().ok()?))
            });
            match parsed {
                Some((p, o)) if p >= 0 && o >= 0 => {
                    out.insert(p, o);
                }
                _ => {
                    return Err(Error::plan(format!(
                        "start_offsets must look like '0:120,1:98', not '{text}'"
                    )))
                }
            }
        }
    }
    Ok(out)
}

/// Where each metadata column goes, and the columns the message value fills.
struct Layout {
    payload: Vec<usize>,
    key: Option<usize>,
    partition: Option<usize>,
    offset: Option<usize>,
    timestamp: Option<(usize, DataType)>,
    arity: usize,
}

impl Layout {
    fn new(spec: &SourceSpec) -> (Layout, Schema) {
        let col = |k: &str| spec.option(k).and_then(|c| spec.schema.index_of(c));
        let key = col("key_column");
        let partition = col("partition_column");
        let offset = col("offset_column");
        let timestamp = col("timestamp_column").map(|i| (i, spec.schema.columns[i].ty));
        let meta = [key, partition, offset, timestamp.map(|t| t.0)];
        let payload: Vec<usize> = (0..spec.schema.len())
            .filter(|i| !meta.contains(&Some(*i)))
            .collect();
        let schema = Schema::new(
            payload
                .iter()
                .map(|i| spec.schema.columns[*i].clone())
                .collect(),
        );
        (
            Layout {
                payload,
                key,
                partition,
                offset,
                timestamp,
                arity: spec.schema.len(),
            },
            schema,
        )
    }

    fn has_metadata(&self) -> bool {
        self.payload.len() != self.arity
    }

    /// The full row: decoded value columns plus the message's metadata.
    fn assemble(
        &self,
        value: Row,
        key: Option<&[u8]>,
        partition: i32,
        offset: i64,
        ts: Option<i64>,
    ) -> Row {
        let mut values = vec![Value::Null; self.arity];
        for (v, &i) in value.iter().zip(&self.payload) {
            values[i] = v.clone();
        }
        if let (Some(i), Some(k)) = (self.key, key) {
            values[i] = Value::text(&String::from_utf8_lossy(k));
        }
        if let Some(i) = self.partition {
            values[i] = Value::Int(partition as i64);
        }
        if let Some(i) = self.offset {
            values[i] = Value::Int(offset);
        }
        if let (Some((i, ty)), Some(ms)) = (self.timestamp, ts) {
            values[i] = if ty == DataType::Timestamp {
                Value::Timestamp(ms * 1000)
            } else {
                Value::Int(ms)
            };
        }
        Row::new(values)
    }
}

pub(crate) fn start(spec: &SourceSpec, ctx: ReaderContext) -> Result<Box<dyn Send>> {
    let (brokers, topic) = match &spec.transport {
        Transport::Kafka { brokers, topic } => (brokers.clone(), topic.clone()),
        _ => return Err(Error::Internal("not a Kafka source".into())),
    };
    let start = start_of(spec)?;
    let offsets = start_offsets(spec)?;
    let (layout, payload_schema) = Layout::new(spec);
    let decoder = RecordDecoder::new(payload_schema, spec.format.unwrap_or(Format::Json));
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("freshet-{}", spec.name))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "5")
        // librdkafka's defaults pause fetching for a second once 100K messages are queued,
        // which caps a backfill at about that many per second.
        .set("queued.min.messages", "1000000")
        .set("fetch.queue.backoff.ms", "1")
        .set("socket.nagle.disable", "true")
        .create()
        .map_err(|e| Error::plan(format!("Kafka source \"{}\": {e}", spec.name)))?;
    let name = spec.name.clone();
    let thread = format!("freshet-kafka-{}-{}", spec.name, ctx.worker);
    std::thread::Builder::new()
        .name(thread)
        .spawn(move || {
            let reader = Reader {
                name,
                topic,
                consumer,
                decoder,
                layout,
                start,
                offsets,
                ctx,
            };
            if reader.run().is_err() {
                tracing::debug!("Kafka reader stopped");
            }
        })
        .map_err(|e| Error::Internal(format!("could not start a reader thread: {e}")))?;
    Ok(Box::new(()))
}

struct Reader {
    name: String,
    topic: String,
    consumer: BaseConsumer,
    decoder: RecordDecoder,
    layout: Layout,
    start: Start,
    offsets: BTreeMap<i32, i64>,
    ctx: ReaderContext,
}

impl Reader {
    /// This worker's partitions of the topic, once the topic exists.
    fn partitions(&self) -> std::result::Result<Vec<i32>, String> {
        let md = self
            .consumer
            .fetch_metadata(Some(&self.topic), REQUEST_TIMEOUT)
            .map_err(|e| format!("broker unreachable: {e}"))?;
        let t = md
            .topics()
            .iter()
            .find(|t| t.name() == self.topic)
            .ok_or_else(|| format!("topic \"{}\" does not exist yet", self.topic))?;
        if let Some(e) = t.error() {
            return Err(format!("topic \"{}\": {:?}", self.topic, e));
        }
        if t.partitions().is_empty() {
            return Err(format!("topic \"{}\" does not exist yet", self.topic));
        }
        let peers = self.ctx.peers as i32;
        Ok(t.partitions()
            .iter()
            .map(|p| p.id())
            .filter(|p| p % peers == self.ctx.worker as i32)
            .collect())
    }

    /// The stored position of partition `p`, after a restart.
    fn resumed(&self, p: i32) -> Option<i64> {
        let resume = self.ctx.resume.as_ref()?;
        resume.all.get(&(p as u64)).map(|o| *o as i64)
    }

    fn run(self) -> std::result::Result<(), Closed> {
        let out = &self.ctx.output;
        let stats = &out.stats;
        let mut batcher = Batcher::new(out);
        // Wait for the broker and the topic, reporting why while we wait.
        let mut mine = loop {
            match self.partitions() {
                Ok(p) => break p,
                Err(message) => {
                    stats.stall(format!("source \"{}\": {message}; retrying", self.name));
                    sleep(out, Duration::from_millis(500))?;
                }
            }
        };
        stats.unstall();
        // History ends at the high watermarks seen now.
        let mut targets: BTreeMap<i32, i64> = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for &p in &mine {
            let (low, high) = loop {
                match self
                    .consumer
                    .fetch_watermarks(&self.topic, p, REQUEST_TIMEOUT)
                {
                    Ok(w) => break w,
                    Err(e) => {
                        stats.stall(format!(
                            "source \"{}\": watermarks: {e}; retrying",
                            self.name
                        ));
                        sleep(out, Duration::from_millis(500))?;
                    }
                }
            };
            // After a restart, the stored position wins over the `start` options: rows
            // before it are back from the data directory already.
            let resumed = self.resumed(p);
            let from = match (resumed.or(self.offsets.get(&p).copied()), self.start) {
                (Some(o), _) => Offset::Offset(o),
                (None, Start::Earliest) => Offset::Beginning,
                // The end as the watermarks gave it just now (rather than `Offset::End`,
                // resolved later by the client), so the position stored is where reading
                // really starts.
                (None, Start::Latest) => Offset::Offset(high),
            };
            let first = match from {
                Offset::Offset(o) => o.max(low),
                Offset::Beginning => low,
                _ => high,
            };
            if first < high {
                targets.insert(p, high);
            }
            // Stored with the first batch, so a restart resumes here even if nothing has
            // been read (with `start = 'latest'`, what arrives while down is not lost).
            batcher.position(p as u64, first.max(0) as u64);
            let _ = assignment.add_partition_offset(&self.topic, p, from);
        }
        stats.unstall();
        if let Err(e) = self.consumer.assign(&assignment) {
            stats.stall(format!("source \"{}\": assign failed: {e}", self.name));
        }
        let mut caught_up = targets.is_empty();
        if caught_up {
            batcher.caught_up()?;
        }
        let mut last_scan = Instant::now();
        loop {
            if out.is_closed() {
                return Err(Closed);
            }
            // Block briefly for the first message, then take what is already there.
            let mut wait = Duration::from_millis(100);
            loop {
                let Some(result) = self.consumer.poll(wait) else {
                    break;
                };
                wait = Duration::ZERO;
                match result {
                    Ok(m) => {
                        stats.unstall();
                        let (p, o) = (m.partition(), m.offset());
                        let payload = m.payload().unwrap_or_default();
                        let ts = m.timestamp().to_millis();
                        if self.layout.has_metadata() {
                            batcher.bytes(payload.len() as u64);
                            match self.decoder.decode(payload) {
                                None => {}
                                Some(Ok((row, diff))) => {
                                    let row = self.layout.assemble(row, m.key(), p, o, ts);
                                    batcher.push(row, diff)?;
                                }
                                Some(Err(e)) => batcher.error(format!(
                                    "topic {} partition {p} offset {o}: {e}",
                                    self.topic
                                ))?,
                            }
                        } else {
                            batcher.record(&self.decoder, payload, || {
                                format!("topic {} partition {p} offset {o}", self.topic)
                            })?;
                        }
                        batcher.position(p as u64, (o + 1) as u64);
                        if targets.get(&p).is_some_and(|h| o + 1 >= *h) {
                            targets.remove(&p);
                        }
                        if !batcher.has_room() {
                            break;
                        }
                    }
                    Err(e) => {
                        stats.stall(format!("source \"{}\": {e}; retrying", self.name));
                        break;
                    }
                }
            }
            if !caught_up && targets.is_empty() {
                caught_up = true;
                batcher.caught_up()?;
            } else {
                batcher.flush()?;
            }
            if last_scan.elapsed() >= RESCAN {
                last_scan = Instant::now();
                if let Ok(now) = self.partitions() {
                    let new: Vec<i32> = now.into_iter().filter(|p| !mine.contains(p)).collect();
                    if !new.is_empty() {
                        tracing::info!(
                            source = self.name,
                            ?new,
                            "new partitions; reading them from the start"
                        );
                        let mut more = TopicPartitionList::new();
                        for &p in &new {
                            let from = self.resumed(p).map_or(Offset::Beginning, Offset::Offset);
                            let _ = more.add_partition_offset(&self.topic, p, from);
                        }
                        if self.consumer.incremental_assign(&more).is_ok() {
                            mine.extend(new);
                        }
                    }
                }
            }
        }
    }
}

fn sleep(
    out: &freshet_dataflows::connector::SourceOutput,
    d: Duration,
) -> std::result::Result<(), Closed> {
    if out.is_closed() {
        return Err(Closed);
    }
    std::thread::sleep(d);
    if out.is_closed() {
        return Err(Closed);
    }
    Ok(())
}
