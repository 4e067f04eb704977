//! Kafka sinks: one message per change and per progress record. Every worker is a writer of
//! its share of the rows, on partition `writer % partitions` (a new topic gets one partition
//! per writer), so each partition holds its writers' changes in time order, each followed by
//! that writer's progress records.
//!
//! The producer is idempotent (no duplicates from its own retries) unless the broker cannot do
//! that (`idempotence = false`). Exactly-once across restarts comes from reading the topic back
//! on start (see the parent module), not from transactions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use freshet_dataflows::connector::SinkWriterId;
use freshet_dataflows::error::{Error, Result};
use freshet_dataflows::Schema;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{parse_record, Destination, ReadBack, Recovered};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Counts failed deliveries, so a commit can tell whether everything arrived.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
}

struct Context(Arc<Deliveries>);

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.0.failed.fetch_add(1, Ordering::Relaxed);
            *self.0.last_error.lock().expect("lock") = Some(e.to_string());
        }
    }
}

pub struct KafkaDestination {
    brokers: String,
    topic: String,
    writer: SinkWriterId,
    /// The partition this writer produces to (known once the topic has been read back).
    partition: i32,
    producer: ThreadedProducer<Context>,
    deliveries: Arc<Deliveries>,
}

impl KafkaDestination {
    pub fn new(
        brokers: &str,
        topic: &str,
        idempotence: bool,
        writer: SinkWriterId,
    ) -> Result<KafkaDestination> {
        let deliveries = Arc::new(Deliveries::default());
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set(
                "enable.idempotence",
                if idempotence { "true" } else { "false" },
            )
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("message.timeout.ms", "0")
            .create_with_context(Context(Arc::clone(&deliveries)))
            .map_err(|e| Error::plan(format!("Kafka sink: {e}")))?;
        Ok(KafkaDestination {
            brokers: brokers.to_string(),
            topic: topic.to_string(),
            writer,
            partition: 0,
            producer,
            deliveries,
        })
    }

    /// Creates the topic, with one partition per writer, if it does not exist.
    fn ensure_topic(&self) -> std::result::Result<(), String> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .map_err(|e| e.to_string())?;
        let partitions = i32::try_from(self.writer.count).unwrap_or(i32::MAX);
        let topic = NewTopic::new(&self.topic, partitions, TopicReplication::Fixed(1));
        let results = futures::executor::block_on(admin.create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        ))
        .map_err(|e| format!("creating topic {}: {e}", self.topic))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => return Err(format!("creating topic {t}: {code}")),
            }
        }
        Ok(())
    }
}

impl KafkaDestination {
    /// Adds partition `partition`'s records to `recovered`.
    fn read_back(
        &self,
        consumer: &BaseConsumer,
        schema: &Schema,
        partition: i32,
        recovered: &mut Recovered,
    ) -> std::result::Result<(), String> {
        let (low, high) = consumer
            .fetch_watermarks(&self.topic, partition, TIMEOUT)
            .map_err(|e| format!("topic {} partition {partition}: {e}", self.topic))?;
        if high <= low {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, partition, Offset::Offset(low))
            .map_err(|e| e.to_string())?;
        consumer.assign(&tpl).map_err(|e| e.to_string())?;
        // Read until the partition stays quiet past the high watermark: some brokers (tansu)
        // report a watermark that trails the last offset of a batch.
        let mut next = low;
        let mut idle = 0;
        loop {
            match consumer.poll(Duration::from_millis(200)) {
                None if next >= high => return Ok(()),
                None => {
                    idle += 1;
                    if idle > 50 {
                        return Err(format!(
                            "reading topic {} partition {partition} back stalled at offset {next} of {high}",
                            self.topic
                        ));
                    }
                }
                Some(Err(e)) => return Err(format!("reading topic {} back: {e}", self.topic)),
                Some(Ok(m)) => {
                    idle = 0;
                    next = m.offset() + 1;
                    match parse_record(schema, m.payload().unwrap_or_default()) {
                        Ok(ReadBack::Update(row, d)) => {
                            *recovered.contents.entry(row).or_default() += d;
                        }
                        Ok(ReadBack::Progress(p)) => recovered.upper = recovered.upper.max(p),
                        Err(e) => {
                            return Err(format!(
                                "topic {} partition {partition} offset {}: {e} (not written by this sink?)",
                                self.topic,
                                m.offset()
                            ))
                        }
                    }
                }
            }
        }
    }
}

impl Destination for KafkaDestination {
    /// Reads every partition: rows are divided among writers by content, and an earlier run
    /// may have had another number of writers, so this writer's rows can be anywhere.
    fn recover(&mut self, schema: &Schema) -> std::result::Result<Recovered, String> {
        self.ensure_topic()?;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", format!("freshet-sink-{}", self.topic))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| e.to_string())?;
        let metadata = consumer
            .fetch_metadata(Some(&self.topic), TIMEOUT)
            .map_err(|e| format!("topic {}: {e}", self.topic))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == self.topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(format!("topic {} has no partitions", self.topic));
        }
        let mut recovered = Recovered::default();
        for p in &partitions {
            self.read_back(&consumer, schema, *p, &mut recovered)?;
        }
        recovered.contents.retain(|_, d| *d != 0);
        self.partition = partitions[self.writer.index % partitions.len()];
        Ok(recovered)
    }

    fn write(&mut self, records: &[Vec<u8>]) -> std::result::Result<(), String> {
        for r in records {
            let mut record = BaseRecord::to(&self.topic)
                .payload(r)
                .partition(self.partition);
            loop {
                match self.producer.send::<(), _>(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((e, _)) => return Err(format!("producing to {}: {e}", self.topic)),
                }
            }
        }
        Ok(())
    }

    fn commit(&mut self) -> std::result::Result<(), String> {
        self.producer
            .flush(TIMEOUT)
            .map_err(|e| format!("flushing to {}: {e}", self.topic))?;
        let failed = self.deliveries.failed.swap(0, Ordering::Relaxed);
        if failed > 0 {
            let e = self.deliveries.last_error.lock().expect("lock").clone();
            tracing::error!(
                topic = self.topic,
                failed,
                "Kafka sink: messages were not delivered ({}); the topic will be corrected when the sink restarts",
                e.unwrap_or_default()
            );
        }
        Ok(())
    }
}
