//! A Kafka-protocol broker for the benchmarks (`tansu`, in memory, on a free loopback port),
//! bulk producing, a bare consumer for the broker's own read speed, and produce → subscriber
//! latency through a Kafka source.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::data::{self, Expected};
use crate::server::Server;

/// Live messages carry keys from here on (`k = LIVE_KEYS + sequence number`), apart from the
/// backfilled keys, so each one is its own row in the view.
pub const LIVE_KEYS: i64 = 1_000_000;

/// A running broker, killed on drop.
pub struct Broker {
    child: Child,
    pub addr: String,
}

/// The `tansu` binary: `--tansu`, `FRESHET_TANSU`, or installed by `scripts/test-deps`.
fn tansu(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given.or_else(|| std::env::var_os("FRESHET_TANSU").map(PathBuf::from)) {
        return Ok(p);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-deps");
    let out = Command::new(&script)
        .arg("tansu")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} tansu failed (it needs python3 and PyPI)",
            script.display()
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

impl Broker {
    pub fn start(given: Option<PathBuf>) -> anyhow::Result<Broker> {
        let bin = tansu(given)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let broker = Broker {
            child,
            addr: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&broker.addr).is_err() {
            if Instant::now() > deadline {
                bail!("tansu did not listen on {}", broker.addr);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(broker)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.addr);
        c
    }
    pub fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.config().create()?;
        let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for r in futures::executor::block_on(admin.create_topics([&t], &AdminOptions::new()))? {
            r.map_err(|(t, e)| anyhow::anyhow!("creating topic {t}: {e}"))?;
        }
        Ok(())
    }

    /// Produces the first `n` generated rows as JSON, round-robin over `partitions`, as fast
    /// as the broker takes them; returns the oracle and the time until all were acknowledged.
    pub fn produce_rows(
        &self,
        topic: &str,
        partitions: i32,
        n: u64,
    ) -> anyhow::Result<(Expected, Duration)> {
        let producer: BaseProducer = self
            .config()
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .create()?;
        let mut expected = Expected::new();
        let mut payload = Vec::with_capacity(64);
        let start = Instant::now();
        for (i, r) in data::records(n).enumerate() {
            payload.clear();
            r.json(&mut payload)?;
            data::add(&mut expected, r.k, r.v);
            send(&producer, topic, i as i32 % partitions, &payload)?;
        }
        producer
            .flush(Duration::from_secs(120))
            .context("flushing produced messages")?;
        Ok((expected, start.elapsed()))
    }

    /// A bare rdkafka consumer reading `n` messages from the start of `partitions` (no
    /// decoding), configured as the source's consumer plus `extra` settings: how fast this
    /// broker and librdkafka deliver on this machine.
    pub fn consume_raw(
        &self,
        topic: &str,
        partitions: i32,
        n: u64,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Duration> {
        let mut config = self.config();
        config
            .set("group.id", "freshet-bench-raw")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "5")
            .set("socket.nagle.disable", "true");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        let consumer: BaseConsumer = config.create()?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let start = Instant::now();
        let mut seen = 0u64;
        let mut bytes = 0usize;
        while seen < n {
            if start.elapsed() > Duration::from_secs(120) {
                bail!("the bare consumer read only {seen} of {n} messages");
            }
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                bytes += rdkafka::Message::payload(&m?).map_or(0, <[u8]>::len);
                seen += 1;
            }
        }
        std::hint::black_box(bytes);
        Ok(start.elapsed())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send(
    producer: &BaseProducer,
    topic: &str,
    partition: i32,
    payload: &[u8],
) -> anyhow::Result<()> {
    let mut record = BaseRecord::<(), [u8]>::to(topic)
        .payload(payload)
        .partition(partition);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => bail!("producing to {topic}: {e}"),
        }
    }
}

/// A run of single live messages.
pub struct Live<'a> {
    pub topic: &'a str,
    pub partitions: i32,
    /// The first message's sequence number (runs on one topic continue the numbering).
    pub first: i64,
    pub messages: usize,
    /// Messages per second.
    pub rate: f64,
}

/// Produces `live.messages` single messages at `live.rate` per second, each its own key of
/// the view, and times each from the produce call until a subscriber of `agg` (SSE) receives
/// its row; a bare consumer of the topic is timed beside it. Adds what it produced to
/// `expected`.
pub fn latency(
    server: &Server,
    broker: &Broker,
    live: &Live<'_>,
    expected: &mut Expected,
) -> anyhow::Result<Vec<Sample>> {
    let Live {
        topic,
        partitions,
        first,
        messages,
        rate,
    } = *live;
    let producer: BaseProducer = broker
        .config()
        .set("linger.ms", "0")
        .set("socket.nagle.disable", "true")
        .create()?;
    let (tx, rx) = mpsc::channel::<Option<(i64, Instant)>>();
    let url = format!(
        "http://{}/v1/subscribe?view=agg&snapshot=false&progress=false",
        server.addr
    );
    let body = ureq::get(&url)
        .header("Accept", "text/event-stream")
        .call()?
        .into_body()
        .into_reader();
    std::thread::spawn(move || {
        let mut announced = false;
        for line in BufReader::new(body).lines().map_while(Result::ok) {
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let at = Instant::now();
            if !announced {
                announced = true;
                if tx.send(None).is_err() {
                    return;
                }
            }
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                continue;
            };
            if msg["type"] != "update" {
                continue;
            }
            for u in msg["updates"].as_array().into_iter().flatten() {
                let k = u["row"][0].as_i64().unwrap_or(0);
                if u["diff"].as_i64() == Some(1)
                    && k >= LIVE_KEYS
                    && tx.send(Some((k - LIVE_KEYS, at))).is_err()
                {
                    return;
                }
            }
        }
    });
    // The subscription is open once its first message (the columns) has arrived.
    rx.recv_timeout(Duration::from_secs(10))
        .context("the subscription sent nothing")?;
    // A bare consumer at the end of the topic, configured as the source's, sees the same
    // messages: what the broker and librdkafka alone take.
    let (bare_tx, bare_rx) = mpsc::channel::<(i64, Instant)>();
    let bare: BaseConsumer = broker
        .config()
        .set("group.id", "freshet-bench-tail")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "5")
        .set("socket.nagle.disable", "true")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::End)?;
    }
    bare.assign(&tpl)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_bare = std::sync::Arc::clone(&stop);
    let bare_thread = std::thread::spawn(move || {
        while !stop_bare.load(std::sync::atomic::Ordering::Relaxed) {
            let Some(Ok(m)) = bare.poll(Duration::from_millis(50)) else {
                continue;
            };
            let at = Instant::now();
            let payload = rdkafka::Message::payload(&m).unwrap_or_default();
            let k = serde_json::from_slice::<serde_json::Value>(payload)
                .ok()
                .and_then(|v| v["k"].as_i64())
                .unwrap_or(0);
            if k >= LIVE_KEYS && bare_tx.send((k - LIVE_KEYS, at)).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(200));

    let period = Duration::from_secs_f64(1.0 / rate);
    let mut sent = Vec::with_capacity(messages);
    let mut payload = Vec::with_capacity(64);
    let start = Instant::now();
    for i in 0..messages {
        let next = start + period * i as u32;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let seq = first + i as i64;
        let record = data::Record {
            k: LIVE_KEYS + seq,
            v: seq,
            t: 0,
        };
        payload.clear();
        record.json(&mut payload)?;
        data::add(expected, record.k, record.v);
        sent.push(Instant::now());
        send(&producer, topic, (seq % partitions as i64) as i32, &payload)?;
        producer.poll(Duration::ZERO);
    }
    let mut arrived: Vec<Option<Instant>> = vec![None; messages];
    let mut missing = messages;
    let deadline = Instant::now() + Duration::from_secs(20);
    while missing > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((seq, at))) = rx.recv_timeout(left) else {
            bail!("{missing} of {messages} live messages never reached the subscriber");
        };
        let i = (seq - first) as usize;
        if i < messages && arrived[i].is_none() {
            arrived[i] = Some(at);
            missing -= 1;
        }
    }
    producer.flush(Duration::from_secs(10))?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = bare_thread.join();
    let mut bare = vec![None; messages];
    for (seq, at) in bare_rx.try_iter() {
        if let Some(slot) = bare.get_mut((seq - first) as usize) {
            *slot = Some(at);
        }
    }
    Ok(arrived
        .iter()
        .zip(&sent)
        .zip(&bare)
        .map(|((a, s), b)| Sample {
            produced: s.duration_since(start),
            latency: a.expect("all arrived").saturating_duration_since(*s),
            bare: b.map(|b| b.saturating_duration_since(*s)),
        })
        .collect())
}

/// One live message.
pub struct Sample {
    /// When it was produced, since the first.
    pub produced: Duration,
    /// Produce call → the subscriber has its row.
    pub latency: Duration,
    /// Produce call → a bare consumer has it (`None` if it never did).
    pub bare: Option<Duration>,
}
