//! Kafka sources and sinks against a real Kafka-protocol broker (tansu) and the real binary:
//! backfill then live, a missing topic reported and recovered from, and a sink whose topic,
//! summed up, equals the view after the service is killed and restarted mid-stream (written by
//! one writer per worker, each on its own partition, then by one writer over the same topic).

mod common;
#[path = "common/kafka.rs"]
mod kafka;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{diff, sqlite_rows, Multiset, Server};
use kafka::Broker;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Input rows: (auction, price), JSON-encoded.
fn bids(rng: &mut impl Rng, n: usize) -> Vec<(i64, i64)> {
    (0..n)
        .map(|_| (rng.random_range(0..20), rng.random_range(1..1000)))
        .collect()
}

fn payloads(rows: &[(i64, i64)]) -> Vec<String> {
    rows.iter()
        .map(|(a, p)| json!({"auction": a, "price": p}).to_string())
        .collect()
}

const AGG: &str = "SELECT auction, count(*) AS n, sum(price) AS total FROM bids GROUP BY auction";

fn oracle(rows: &[(i64, i64)]) -> Multiset {
    let db = rusqlite::Connection::open_in_memory().expect("sqlite");
    db.execute_batch("CREATE TABLE bids (auction INTEGER, price INTEGER)")
        .expect("create");
    for (a, p) in rows {
        db.execute("INSERT INTO bids VALUES (?1, ?2)", (a, p))
            .expect("insert");
    }
    sqlite_rows(&db, AGG)
}

#[test]
fn kafka_source_backfills_then_follows_live() {
    let broker = Broker::start();
    broker.create_topic("bids", 3);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut all = Vec::new();
    for p in 0..3 {
        let rows = bids(&mut rng, 700);
        broker.produce("bids", p, &payloads(&rows));
        all.extend(rows);
    }
    // A bad record: counted, sampled, skipped.
    broker.produce("bids", 1, &["{\"auction\": \"x\"}".to_string()]);

    let server = Server::start(&["--workers", "2"]);
    server.sql_ok(&format!(
        "CREATE SOURCE bids (auction bigint, price bigint, part bigint, off bigint)
           FROM KAFKA BROKERS '{}' TOPIC 'bids' FORMAT JSON
           WITH (start = 'earliest', partition_column = 'part', offset_column = 'off', bad_records = 'skip');
         CREATE VIEW agg AS {AGG};
         CREATE VIEW per_partition AS SELECT part, count(*) AS n, max(off) AS last FROM bids GROUP BY part",
        broker.addr
    ));
    server.wait_ready(Duration::from_secs(60));
    // Caught up means the history is in: the backfilled view equals the oracle at once.
    let got = server.rows("agg");
    assert_eq!(got, oracle(&all), "{}", diff(&oracle(&all), &got));
    let parts = server.rows("per_partition");
    let expected_parts: Multiset = [
        (json!([0, 700, 699]), 1),
        (json!([1, 700, 699]), 1),
        (json!([2, 700, 699]), 1),
    ]
    .into_iter()
    .map(|(v, n)| (v.to_string(), n))
    .collect();
    assert_eq!(parts, expected_parts);
    let status = server.connector_status("sources", "bids");
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["errors"], 1, "{status}");
    assert!(
        status["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("partition 1") && e.contains("auction")),
        "{status}"
    );

    // Live: a subscriber sees the new messages.
    let mut stream = server.subscribe_ok("view=agg", &[]);
    let mut acc = Multiset::new();
    let first = stream.expect();
    assert_eq!(first.kind, "columns");
    let (mut t, _) = stream.read_past(0, &mut acc);
    assert_eq!(acc, oracle(&all));
    for round in 0..3 {
        let rows = bids(&mut rng, 50);
        broker.produce("bids", round % 3, &payloads(&rows));
        all.extend(rows);
        let expected = oracle(&all);
        let deadline = Instant::now() + Duration::from_secs(30);
        while acc != expected {
            assert!(
                Instant::now() < deadline,
                "live updates missing:\n{}",
                diff(&expected, &acc)
            );
            let (next, _) = stream.read_past(t, &mut acc);
            t = next;
        }
    }
    server.assert_healthy();
}

#[test]
fn missing_topic_is_reported_then_picked_up() {
    let broker = Broker::start();
    let server = Server::start(&[]);
    server.sql_ok(&format!(
        "CREATE SOURCE late (x bigint) FROM KAFKA BROKERS '{}' TOPIC 'later' FORMAT CSV;
         CREATE VIEW s AS SELECT sum(x) AS total FROM late",
        broker.addr
    ));
    // Not ready, and the catalog says why.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = server.connector_status("sources", "late");
        if status["state"] == "stalled" {
            assert!(
                status["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("later")),
                "{status}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never reported stalled: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = server.get("/readyz");
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.json()["sources"], json!(["late"]));

    broker.create_topic("later", 1);
    broker.produce("later", 0, &["1".into(), "2".into(), "39".into()]);
    server.wait_ready(Duration::from_secs(60));
    let expected: Multiset = [(json!([42]).to_string(), 1)].into_iter().collect();
    common::eventually(
        "the view over the new topic",
        Duration::from_secs(30),
        &expected,
        || server.rows("s"),
    );
    assert_eq!(
        server.connector_status("sources", "late")["state"],
        "running"
    );
}

/// Sums a sink topic's data records per row; returns the sum and the number of records.
fn consolidate(records: &[String]) -> (Multiset, usize, BTreeMap<String, i64>) {
    let mut sum = Multiset::new();
    let mut data = 0;
    let mut progress = BTreeMap::new();
    for r in records {
        let v: Value = serde_json::from_str(r).unwrap_or_else(|e| panic!("bad record {r}: {e}"));
        if let Some(p) = v.get("progress") {
            *progress.entry("count".to_string()).or_default() += 1;
            progress.insert("last".into(), p.as_i64().expect("progress time"));
            continue;
        }
        data += 1;
        let row = v["row"].to_string();
        let d = v["diff"].as_i64().expect("diff");
        assert!(v["time"].as_u64().is_some(), "record without time: {r}");
        let e = sum.entry(row.clone()).or_default();
        *e += d;
        if *e == 0 {
            sum.remove(&row);
        }
    }
    (sum, data, progress)
}

/// With two workers a sink has two writers, each owning a share of the rows across restarts:
/// writer `p` produces to partition `p`, says so in its progress records, never writes a change
/// at a time its progress already passed, and no row is written by both.
fn check_writers(partitions: &[Vec<String>]) {
    assert_eq!(partitions.len(), 2, "a topic per writer partition");
    let mut rows_of = Vec::new();
    for (p, records) in partitions.iter().enumerate() {
        let mut rows = BTreeSet::new();
        let mut passed = 0;
        for r in records {
            let v: Value = serde_json::from_str(r).expect("record");
            if let Some(upper) = v.get("progress") {
                assert_eq!(v["writer"], json!(p), "progress on partition {p}: {r}");
                assert_eq!(v["writers"], json!(2), "{r}");
                passed = upper.as_u64().expect("progress");
                continue;
            }
            let time = v["time"].as_u64().expect("time");
            assert!(time >= passed, "partition {p}: {r} after progress {passed}");
            rows.insert(v["row"].to_string());
        }
        assert!(!rows.is_empty(), "writer {p} wrote no rows");
        rows_of.push(rows);
    }
    let both: Vec<_> = rows_of[0].intersection(&rows_of[1]).collect();
    assert!(both.is_empty(), "rows written by both writers: {both:?}");
}

fn setup(server: &Server, broker: &Broker) {
    server.sql_ok(&format!(
        "CREATE SOURCE bids (auction bigint, price bigint)
           FROM KAFKA BROKERS '{0}' TOPIC 'input' FORMAT JSON;
         CREATE VIEW agg AS {AGG};
         CREATE SINK out FROM agg INTO KAFKA BROKERS '{0}' TOPIC 'output' FORMAT JSON",
        broker.addr
    ));
}

#[test]
fn kafka_sink_holds_each_change_once_across_kills() {
    let broker = Broker::start();
    broker.create_topic("input", 1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut all = bids(&mut rng, 500);
    broker.produce("input", 0, &payloads(&all));

    let cycles = if std::env::var("FRESHET_LONG_TESTS").is_ok() {
        10
    } else {
        3
    };
    for cycle in 0..cycles {
        let mut server = Server::start(&["--workers", "2"]);
        setup(&server, &broker);
        server.wait_ready(Duration::from_secs(60));
        // The topic, summed, equals the view: the restart wrote only what was missing.
        let expected = oracle(&all);
        common::eventually("the sink topic", Duration::from_secs(60), &expected, || {
            consolidate(&broker.consume_all("output")).0
        });
        check_writers(&broker.consume_partitions("output"));
        let (_, records_before, _) = consolidate(&broker.consume_all("output"));
        if cycle > 0 {
            // Nothing changed while the service was down except what it had not yet written:
            // a restart over an up-to-date topic writes no data records at all.
            std::thread::sleep(Duration::from_millis(300));
            let (_, records_after, _) = consolidate(&broker.consume_all("output"));
            assert_eq!(records_before, records_after, "a restart rewrote changes");
        }
        // More input while the sink runs, then a kill at a random point.
        for _ in 0..rng.random_range(1..4) {
            let n = rng.random_range(1..60);
            let rows = bids(&mut rng, n);
            broker.produce("input", 0, &payloads(&rows));
            all.extend(rows);
            std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        }
        server.kill_hard();
    }
    // A final run settles everything produced.
    let server = Server::start(&[]);
    setup(&server, &broker);
    let expected = oracle(&all);
    common::eventually(
        "the sink topic after the last restart",
        Duration::from_secs(60),
        &expected,
        || consolidate(&broker.consume_all("output")).0,
    );
    let (sum, _, progress) = consolidate(&broker.consume_all("output"));
    assert!(
        sum.values().all(|n| *n == 1),
        "a row counted twice: {sum:?}"
    );
    assert!(
        progress.get("count").is_some_and(|c| *c > 0),
        "no progress records"
    );
    assert_eq!(server.rows("agg"), expected);
}

/// A Kafka source on a data directory, killed twice: after each restart it reads on from its
/// stored offsets (only the messages produced while it was down; not the topic again), none
/// is counted twice, and a subscriber that resumes from the last progress it saw gets every
/// change exactly once. (`start = 'latest'` is not exercised here: tansu under-reports high
/// watermarks for batched produces, so "latest" there is not the end of the topic.)
#[test]
fn kafka_source_resumes_from_stored_offsets_across_kills() {
    let broker = Broker::start();
    broker.create_topic("bids", 2);
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_string();
    let start = || {
        let s = Server::start(&["--data-dir", &data, "--workers", "2"]);
        s.wait_ready(Duration::from_secs(60));
        s
    };
    let mut server = start();
    server.sql_ok(&format!(
        "CREATE SOURCE bids (auction bigint, price bigint)
           FROM KAFKA BROKERS '{}' TOPIC 'bids' FORMAT JSON;
         CREATE VIEW agg AS {AGG}",
        broker.addr
    ));
    server.wait_ready(Duration::from_secs(60));
    let mut all: Vec<(i64, i64)> = Vec::new();
    // What a subscriber has accumulated, and the last progress it saw.
    let mut acc = Multiset::new();
    let mut seen = 0u64;
    for round in 0..2 {
        for p in 0..2 {
            let rows = bids(&mut rng, 400);
            broker.produce("bids", p, &payloads(&rows));
            all.extend(rows);
        }
        let expected = oracle(&all);
        let query = if round == 0 {
            "view=agg".to_string()
        } else {
            format!("view=agg&resume_from={}", seen)
        };
        let mut stream = server.subscribe_ok(&query, &[]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while acc != expected {
            assert!(
                Instant::now() < deadline,
                "round {round}: subscriber did not reach the oracle (source {}):\n{}",
                server.connector_status("sources", "bids"),
                diff(&expected, &acc)
            );
            let (next, _) = stream.read_past(seen, &mut acc);
            seen = next;
        }
        drop(stream);
        server.kill_hard();
        // Produced while the service is down.
        for p in 0..2 {
            let rows = bids(&mut rng, 150);
            broker.produce("bids", p, &payloads(&rows));
            all.extend(rows);
        }
        server = start();
        let expected = oracle(&all);
        common::eventually(
            &format!("round {round}: view after the restart"),
            Duration::from_secs(30),
            &expected,
            || server.rows("agg"),
        );
        let read = server.connector_status("sources", "bids")["rows"]
            .as_u64()
            .expect("rows");
        assert_eq!(
            read, 300,
            "round {round}: after the restart the source should read only the 300 messages \
             produced while it was down"
        );
    }
    // The resumed subscription continues exactly where it stopped.
    let mut stream = server.subscribe_ok(&format!("view=agg&resume_from={seen}"), &[]);
    let expected = oracle(&all);
    let deadline = Instant::now() + Duration::from_secs(30);
    while acc != expected {
        assert!(
            Instant::now() < deadline,
            "resumed subscriber differs:\n{}",
            diff(&expected, &acc)
        );
        let (next, _) = stream.read_past(seen, &mut acc);
        seen = next;
    }
}
