//! A real Kafka-protocol broker for the tests: `tansu` on a free loopback port, in memory,
//! killed when dropped. Found through `FRESHET_TANSU`, or installed by `scripts/test-deps`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

pub struct Broker {
    child: Child,
    pub addr: String,
    producer: BaseProducer,
}

fn tansu() -> PathBuf {
    if let Ok(p) = std::env::var("FRESHET_TANSU") {
        return PathBuf::from(p);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-deps");
    let out = Command::new(&script)
        .arg("tansu")
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {} failed: {e}", script.display()));
    assert!(
        out.status.success(),
        "could not install the tansu broker with {} (needs python3 and the PyPI registry)",
        script.display()
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Broker {
    pub fn start() -> Broker {
        let bin = tansu();
        let port = crate::common::free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tansu-{port}.log"));
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("broker log"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} failed: {e}", bin.display()));
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &addr)
            .set("linger.ms", "0")
            .create()
            .expect("producer");
        Broker {
            child,
            addr,
            producer,
        }
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .create()
            .expect("admin");
        let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let r = futures::executor::block_on(admin.create_topics([&t], &AdminOptions::new()))
            .expect("create_topics");
        for x in r {
            x.unwrap_or_else(|e| panic!("creating {topic}: {e:?}"));
        }
    }

    /// Produces `payloads` to `partition` and waits until all are acknowledged.
    pub fn produce(&self, topic: &str, partition: i32, payloads: &[String]) {
        for p in payloads {
            let mut record = BaseRecord::<(), _>::to(topic)
                .payload(p)
                .partition(partition);
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        self.producer.poll(Duration::from_millis(5));
                    }
                }
            }
        }
        self.producer
            .flush(Duration::from_secs(30))
            .expect("flush produced messages");
    }

    /// Every message of `topic`, partition after partition, each partition in order. (tansu
    /// reports a high watermark that can trail the last offset when messages were produced
    /// in batches, so reading goes on until the partition stays quiet.)
    pub fn consume_all(&self, topic: &str) -> Vec<String> {
        self.consume_partitions(topic)
            .into_iter()
            .flatten()
            .collect()
    }

    /// Every message of each partition of `topic`, in partition order.
    pub fn consume_partitions(&self, topic: &str) -> Vec<Vec<String>> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .set("group.id", "freshet-tests")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let mut partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        partitions.sort();
        partitions
            .into_iter()
            .map(|p| Self::consume_partition(&consumer, topic, p))
            .collect()
    }

    fn consume_partition(consumer: &BaseConsumer, topic: &str, partition: i32) -> Vec<String> {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .expect("watermarks");
        let mut out = Vec::new();
        if high <= low {
            return out;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(low))
            .expect("tpl");
        consumer.assign(&tpl).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut next = low;
        loop {
            assert!(Instant::now() < deadline, "reading {topic} timed out");
            match consumer.poll(Duration::from_millis(200)) {
                Some(m) => {
                    let m = m.expect("message");
                    next = m.offset() + 1;
                    out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
                }
                None if next >= high => return out,
                None => {}
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
