//! Clusters of real `freshet serve` processes on loopback: 2 and 3 processes must give the
//! same views, reads and subscriptions as one process and as SQLite (views created before and
//! after the writes, a file source read by every process); a killed process must take the
//! others down within seconds, saying why; start-up waits for peers in any order, with a
//! timeout and a clear message; a cluster restarted from process 0's data directory has the
//! same tables, views and source history (every process's share of a source is logged), and a
//! Kafka sink written by every process's worker holds each change once across that restart.

mod common;
// Not every helper is used here.
#[allow(dead_code)]
#[path = "common/kafka.rs"]
mod kafka;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{apply, diff, encode, free_port, sqlite_rows, Multiset, Server, Stream};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A `freshet serve` process started directly (worker-only processes print no address).
struct Peer {
    child: Child,
    log: PathBuf,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Cluster tests pick free ports, release them and hand them to processes that bind them a
/// moment later; running them one at a time keeps two tests from picking the same port.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

impl Peer {
    fn start(args: &[&str]) -> Peer {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("freshet-peer-{}-{n}.log", std::process::id()));
        let child = Command::new(env!("CARGO_BIN_EXE_freshet"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--ephemeral"])
            .args(args)
            .env_remove("FRESHET_WORKERS")
            .env_remove("FRESHET_PROCESSES")
            .env_remove("FRESHET_PROCESS")
            .env_remove("FRESHET_HOSTS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(&log).expect("create peer log"),
            ))
            .spawn()
            .expect("spawn freshet");
        Peer { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- log of a peer {} ---", self.log.display());
            for l in self
                .log_text()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .iter()
                .rev()
            {
                eprintln!("{l}");
            }
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// `n` loopback addresses on free ports, comma-separated.
fn hosts(n: usize) -> String {
    (0..n)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect::<Vec<_>>()
        .join(",")
}

fn peer_args(processes: usize, process: usize, hosts: &str, workers: usize) -> Vec<String> {
    vec![
        "--processes".into(),
        processes.to_string(),
        "--process".into(),
        process.to_string(),
        "--hosts".into(),
        hosts.into(),
        "--workers".into(),
        workers.to_string(),
        "--peer-timeout-secs".into(),
        "60".into(),
    ]
}

/// Process 0 (serving HTTP) and the worker-only processes of a cluster; the workers start
/// first, so process 0's address line means every process has joined.
struct Cluster {
    server: Server,
    peers: Vec<Peer>,
}

fn cluster(processes: usize, workers: usize) -> Cluster {
    cluster_with(processes, workers, &[])
}

/// Like `cluster`, with extra flags for process 0.
fn cluster_with(processes: usize, workers: usize, extra: &[&str]) -> Cluster {
    let hosts = hosts(processes);
    let peers = (1..processes)
        .map(|p| {
            let args = peer_args(processes, p, &hosts, workers);
            Peer::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect();
    let mut args = peer_args(processes, 0, &hosts, workers);
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    Cluster { server, peers }
}

impl Cluster {
    /// SIGTERM to process 0: every process exits 0.
    fn stop(mut self) {
        let status = self.server.terminate(Duration::from_secs(30));
        assert!(status.success(), "process 0 exited with {status}");
        for (i, p) in self.peers.iter_mut().enumerate() {
            let status = p
                .wait_exit(Duration::from_secs(30))
                .unwrap_or_else(|| panic!("process {} did not exit after process 0", i + 1));
            assert!(status.success(), "process {} exited with {status}", i + 1);
        }
    }
}

const VIEWS: &[(&str, &str)] = &[
    (
        "agg",
        "SELECT b.name, count(*) AS n, sum(a.v) AS s, min(a.v) AS lo FROM a JOIN b ON a.k = b.k GROUP BY b.name",
    ),
    ("dist", "SELECT DISTINCT k FROM a"),
    (
        "lj",
        "SELECT a.id, a.v, b.name FROM a LEFT JOIN b ON a.k = b.k",
    ),
];

fn view_sql(name: &str) -> &'static str {
    VIEWS.iter().find(|(n, _)| *n == name).expect("view").1
}

/// Random writes as SQL statements, run unchanged by SQLite; records every view's SQLite
/// result after each write, by the cluster's timestamp.
struct Oracle {
    db: rusqlite::Connection,
    rng: StdRng,
    next_id: i64,
    records: Vec<(u64, BTreeMap<&'static str, Multiset>)>,
}

impl Oracle {
    fn new(seed: u64) -> Oracle {
        let db = rusqlite::Connection::open_in_memory().expect("sqlite");
        db.execute_batch(
            "CREATE TABLE a (id INTEGER NOT NULL, k INTEGER NOT NULL, v INTEGER);
             CREATE TABLE b (k INTEGER NOT NULL, name TEXT NOT NULL);",
        )
        .expect("sqlite schema");
        Oracle {
            db,
            rng: StdRng::seed_from_u64(seed),
            next_id: 1,
            records: Vec::new(),
        }
    }

    fn statement(&mut self) -> String {
        let k = self.rng.random_range(0..7);
        match self.rng.random_range(0..10) {
            0..=4 => {
                let rows: Vec<String> = (0..self.rng.random_range(1..=4))
                    .map(|_| {
                        let id = self.next_id;
                        self.next_id += 1;
                        let v = if self.rng.random_bool(0.1) {
                            "NULL".to_string()
                        } else {
                            self.rng.random_range(-5..50).to_string()
                        };
                        format!("({id}, {}, {v})", self.rng.random_range(0..7))
                    })
                    .collect();
                format!("INSERT INTO a VALUES {}", rows.join(", "))
            }
            5 | 6 => format!(
                "INSERT INTO b VALUES ({k}, '{}')",
                ["x", "y", "z"][self.rng.random_range(0..3)]
            ),
            7 => format!("DELETE FROM a WHERE k = {k} AND v < 10"),
            8 => format!("UPDATE a SET v = v + 1 WHERE k = {k}"),
            _ => format!("DELETE FROM b WHERE k = {k}"),
        }
    }

    fn record(&mut self, ts: u64) {
        let state = VIEWS
            .iter()
            .map(|(n, sql)| (*n, sqlite_rows(&self.db, sql)))
            .collect();
        self.records.push((ts, state));
    }

    fn state_at(&self, view: &str, t: u64) -> Multiset {
        let i = self.records.partition_point(|(ts, _)| *ts <= t);
        if i == 0 {
            return Multiset::new();
        }
        self.records[i - 1].1[view].clone()
    }

    fn now(&self, view: &str) -> Multiset {
        sqlite_rows(&self.db, view_sql(view))
    }
}

/// Reads a subscription until progress passes `last`, checking at every progress T that the
/// accumulated updates equal SQLite as of T−1 (from `from` on; earlier the snapshot may be of
/// a view created later than the first write); the final state.
fn follow(stream: &mut Stream, oracle: &Oracle, view: &str, from: u64, last: u64) -> Multiset {
    let columns = stream.expect();
    assert_eq!(columns.kind, "columns", "{:?}", columns.data);
    let mut acc = Multiset::new();
    let mut checks = 0;
    loop {
        let m = stream.expect();
        match m.kind.as_str() {
            "update" => apply(&mut acc, &m.data["updates"]),
            "progress" => {
                let t = m.time();
                if t > from {
                    let expected = oracle.state_at(view, t - 1);
                    assert_eq!(
                        acc,
                        expected,
                        "subscription to {view} at progress {t} differs from SQLite:\n{}",
                        diff(&expected, &acc)
                    );
                    checks += 1;
                }
                if t > last {
                    assert!(checks > 0);
                    return acc;
                }
            }
            other => panic!("unexpected {other}: {}", m.data),
        }
    }
}

fn rows_of(server: &Server, sql: &str) -> Multiset {
    let results = server.sql_ok(sql);
    common::multiset(results[0]["rows"].as_array().expect("rows"))
}

/// Writes, views created before and after them, reads, ad-hoc queries and subscriptions on a
/// cluster, checked against one process and SQLite.
fn matches_single_process_and_sqlite(processes: usize, workers: usize, seed: u64) {
    let c = cluster(processes, workers);
    let single = Server::start(&[]);
    let servers = [&c.server, &single];
    let setup = format!(
        "CREATE TABLE a (id bigint NOT NULL, k bigint NOT NULL, v bigint);
         CREATE TABLE b (k bigint NOT NULL, name text NOT NULL);
         CREATE VIEW agg AS {}",
        view_sql("agg")
    );
    for s in servers {
        s.sql_ok(&setup);
    }
    let sse = [("Accept", "text/event-stream")];
    let ndjson = [("Accept", "application/x-ndjson")];
    let mut sub_view = c.server.subscribe_ok("view=agg", &sse);
    let mut sub_sql = c
        .server
        .subscribe_ok(&format!("sql={}", encode(view_sql("lj"))), &ndjson);

    let mut oracle = Oracle::new(seed);
    let mut late_from = 0;
    for i in 0..80 {
        if i == 40 {
            for s in servers {
                s.sql_ok(&format!(
                    "CREATE VIEW dist AS {}; CREATE VIEW lj AS {}",
                    view_sql("dist"),
                    view_sql("lj")
                ));
            }
            late_from = c.server.frontiers().0;
        }
        let stmt = oracle.statement();
        oracle.db.execute(&stmt, []).expect("sqlite");
        let ts = c.server.sql_ok(&stmt)[0]["timestamp"].as_u64();
        single.sql_ok(&stmt);
        if let Some(ts) = ts {
            oracle.record(ts);
        }
    }
    let last = oracle.records.last().expect("writes").0;
    let mut sub_late = c.server.subscribe_ok("view=dist", &sse);

    for (view, _) in VIEWS {
        let expected = oracle.now(view);
        let got = c.server.rows(view);
        assert_eq!(
            got,
            expected,
            "{view} on the cluster:\n{}",
            diff(&expected, &got)
        );
        assert_eq!(
            single.rows(view),
            got,
            "{view}: cluster and one process differ"
        );
        let adhoc = rows_of(&c.server, view_sql(view));
        assert_eq!(
            adhoc,
            expected,
            "ad-hoc {view}:\n{}",
            diff(&expected, &adhoc)
        );
    }
    let t = rows_of(&c.server, "SELECT * FROM a");
    assert_eq!(t, sqlite_rows(&oracle.db, "SELECT * FROM a"));

    let acc = follow(&mut sub_view, &oracle, "agg", 0, last);
    assert_eq!(acc, oracle.now("agg"));
    let acc = follow(&mut sub_sql, &oracle, "lj", 0, last);
    assert_eq!(acc, oracle.now("lj"));
    let acc = follow(&mut sub_late, &oracle, "dist", late_from.max(last), last);
    assert_eq!(acc, oracle.now("dist"));
    // Exact decimals, with a column's bounds, spread over every process (the catalog reaches
    // the peers in the commands, in bincode).
    let numeric = "CREATE TABLE price (k bigint, p numeric(8, 2));
         INSERT INTO price SELECT k, id * 0.005 FROM a;
         CREATE VIEW priced AS SELECT k, sum(p) AS total, count(*) AS n FROM price GROUP BY k";
    for s in servers {
        s.sql_ok(numeric);
    }
    let totals = rows_of(&c.server, "SELECT * FROM priced");
    assert!(!totals.is_empty(), "no numeric totals");
    assert_eq!(totals, rows_of(&single, "SELECT * FROM priced"));
    c.server.assert_healthy();
    let catalog = c.server.get("/v1/catalog").json();
    assert_eq!(catalog["cluster"]["processes"], processes);
    assert_eq!(catalog["cluster"]["state"], "running");
    drop((sub_view, sub_sql, sub_late));
    c.stop();
}

#[test]
fn two_processes_match_one_process_and_sqlite() {
    let _serial = serial();
    matches_single_process_and_sqlite(2, 1, 7);
}

#[test]
fn three_processes_match_one_process_and_sqlite() {
    let _serial = serial();
    matches_single_process_and_sqlite(3, 1, 11);
}

#[test]
fn a_file_source_is_read_by_every_process() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.csv");
    let db = rusqlite::Connection::open_in_memory().expect("sqlite");
    db.execute_batch(
        "CREATE TABLE s (k INTEGER, v INTEGER); CREATE TABLE names (k INTEGER, name TEXT);",
    )
    .expect("schema");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("csv"));
    writeln!(file, "k,v").expect("write");
    let mut rng = StdRng::seed_from_u64(3);
    let tx = db.unchecked_transaction().expect("tx");
    for _ in 0..30_000 {
        let (k, v) = (rng.random_range(0..50i64), rng.random_range(-100..1000i64));
        writeln!(file, "{k},{v}").expect("write");
        tx.execute("INSERT INTO s VALUES (?1, ?2)", [k, v])
            .expect("insert");
    }
    tx.commit().expect("commit");
    file.flush().expect("flush");
    drop(file);
    let total = std::fs::metadata(&path).expect("size").len();

    let c = cluster(3, 1);
    let single = Server::start(&[]);
    let view = "SELECT names.name, count(*) AS n, sum(s.v) AS t, max(s.v) AS m FROM s JOIN names ON s.k % 5 = names.k GROUP BY names.name";
    let sql = format!(
        "CREATE SOURCE s (k bigint, v bigint) FROM FILE '{}' FORMAT CSV WITH (header = true);
         CREATE TABLE names (k bigint, name text);
         INSERT INTO names VALUES (0, 'zero'), (1, 'one'), (2, 'two'), (3, 'three'), (3, 'drei');
         CREATE VIEW sv AS {view}",
        path.display()
    );
    let sink_path = dir.path().join("out.json");
    db.execute_batch(
        "INSERT INTO names VALUES (0, 'zero'), (1, 'one'), (2, 'two'), (3, 'three'), (3, 'drei');",
    )
    .expect("names");
    for s in [&c.server, &single] {
        s.sql_ok(&sql);
        s.wait_ready(Duration::from_secs(60));
    }
    // A sink writes from process 0, after the history read by every process is in.
    c.server.sql_ok(&format!(
        "CREATE SINK out FROM sv INTO FILE '{}' FORMAT JSON",
        sink_path.display()
    ));
    let expected = sqlite_rows(&db, view);
    let got = c.server.rows("sv");
    assert_eq!(
        got,
        expected,
        "sv on the cluster:\n{}",
        diff(&expected, &got)
    );
    assert_eq!(single.rows("sv"), got);
    let all = rows_of(&c.server, "SELECT count(*), sum(v) FROM s");
    assert_eq!(all, sqlite_rows(&db, "SELECT count(*), sum(v) FROM s"));

    // Statistics from every process reach the catalog and the metrics.
    let catalog = c.server.get("/v1/catalog").json();
    let status = &catalog["sources"][0]["status"];
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["rows"], 30_000, "{status}");
    let single_catalog = single.get("/v1/catalog").json();
    assert_eq!(
        status["bytes"],
        single_catalog["sources"][0]["status"]["bytes"]
    );
    assert_eq!(
        status["total_bytes"],
        single_catalog["sources"][0]["status"]["total_bytes"]
    );
    assert!(
        status["bytes"].as_u64().expect("bytes") + 4 >= total,
        "{status}"
    );
    let metrics = c.server.get("/metrics").text;
    assert!(
        metrics.contains("freshet_source_rows_total{source=\"s\"} 30000"),
        "{metrics}"
    );

    // A subscription's snapshot equals the view, and a write reaches it.
    let mut sub = c
        .server
        .subscribe_ok("view=sv", &[("Accept", "application/x-ndjson")]);
    let mut acc = Multiset::new();
    let ts = c.server.sql_ok("INSERT INTO names VALUES (4, 'four')")[0]["timestamp"]
        .as_u64()
        .expect("timestamp");
    db.execute_batch("INSERT INTO names VALUES (4, 'four')")
        .expect("sqlite");
    sub.read_past(ts, &mut acc);
    let expected = sqlite_rows(&db, view);
    assert_eq!(acc, expected, "subscription:\n{}", diff(&expected, &acc));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let written = sink_rows(&sink_path);
        if written == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sink file differs from the view:\n{}",
            diff(&expected, &written)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(sub);
    c.stop();
}

/// The rows a JSON sink file adds up to (`{"row": […], "diff": n, "time": t}` lines; progress
/// records skipped).
fn sink_rows(path: &std::path::Path) -> Multiset {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    sum_records(text.lines())
}

/// What a sink topic adds up to, and the (partition, writer) of each progress record in it.
fn sink_topic(broker: &kafka::Broker, topic: &str) -> (Multiset, BTreeSet<(usize, i64)>) {
    let partitions = broker.consume_partitions(topic);
    let mut writers = BTreeSet::new();
    for (p, records) in partitions.iter().enumerate() {
        for r in records {
            let v: serde_json::Value = serde_json::from_str(r).expect("record");
            if v.get("progress").is_some() {
                assert_eq!(v["writers"], 2, "{r}");
                writers.insert((p, v["writer"].as_i64().expect("writer")));
            }
        }
    }
    let sum = sum_records(partitions.iter().flatten().map(String::as_str));
    (sum, writers)
}

/// Data records (`{"row": […], "diff": n, "time": t}`) summed per row; progress skipped.
fn sum_records<'a>(records: impl Iterator<Item = &'a str>) -> Multiset {
    let mut sum = Multiset::new();
    for line in records {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v.get("row").is_none() {
            continue;
        }
        let key = v["row"].to_string();
        let e = sum.entry(key.clone()).or_default();
        *e += v["diff"].as_i64().expect("diff");
        if *e == 0 {
            sum.remove(&key);
        }
    }
    sum
}

#[test]
fn a_killed_process_stops_the_others_within_seconds() {
    let _serial = serial();
    // Process 0 first this time: it waits for the others.
    let hosts = hosts(3);
    let args0 = peer_args(3, 0, &hosts, 1);
    let starter = std::thread::spawn(move || {
        Server::start(&args0.iter().map(String::as_str).collect::<Vec<_>>())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let mut peers: Vec<Peer> = (1..3)
        .map(|p| {
            let args = peer_args(3, p, &hosts, 1);
            Peer::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect();
    let mut server = starter.join().expect("process 0 starts");
    server.sql_ok(
        "CREATE TABLE t (k bigint, v bigint); INSERT INTO t VALUES (1, 1), (2, 2), (3, 3);
         CREATE VIEW s AS SELECT sum(v) AS s FROM t",
    );
    assert_eq!(
        server.rows("s"),
        common::multiset(&[serde_json::json!([6])])
    );
    let mut sub = server.subscribe_ok("view=s", &[("Accept", "application/x-ndjson")]);
    let mut acc = Multiset::new();
    sub.read_past(0, &mut acc);

    peers[0].child.kill().expect("SIGKILL process 1");
    let killed = Instant::now();

    // Process 0 says why before it goes.
    let mut seen_unhealthy = None;
    while killed.elapsed() < Duration::from_secs(10) {
        match server.try_request("GET", "/healthz", &[], None) {
            Ok(r) if r.status == 503 => {
                seen_unhealthy = Some(r.json());
                break;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let health = seen_unhealthy.expect("/healthz reported the failure before process 0 exited");
    let message = health["message"].as_str().expect("message");
    assert!(message.contains("process 1"), "{health}");

    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("process 0 exits within 10 s of losing a peer");
    assert!(!status.success(), "process 0 exited with {status}");
    let status = peers[1]
        .wait_exit(Duration::from_secs(10))
        .expect("process 2 exits within 10 s of losing a peer");
    assert!(!status.success(), "process 2 exited with {status}");
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "took {:?}",
        killed.elapsed()
    );
    assert!(
        server
            .log_text()
            .contains("lost the connection to cluster process 1"),
        "{}",
        server.log_text()
    );
    assert!(
        peers[1]
            .log_text()
            .contains("lost the connection to cluster process"),
        "{}",
        peers[1].log_text()
    );
    drop(sub);
}

#[test]
fn start_up_waits_for_peers_with_a_timeout_and_checks_flags() {
    let _serial = serial();
    // Alone: gives up after the timeout, naming who it waited for.
    let hosts2 = hosts(2);
    let p0_address = hosts2.split(',').next().expect("first").to_string();
    let mut lonely = Peer::start(&[
        "--processes",
        "2",
        "--process",
        "1",
        "--hosts",
        &hosts2,
        "--peer-timeout-secs",
        "2",
    ]);
    let status = lonely
        .wait_exit(Duration::from_secs(15))
        .expect("a process without peers exits after its timeout");
    assert!(!status.success());
    let log = lonely.log_text();
    assert!(
        log.contains("timed out after 2 s") && log.contains(&format!("process 0 ({p0_address})")),
        "{log}"
    );

    // Different worker counts: both refuse, saying why.
    let hosts2 = hosts(2);
    let mut a = Peer::start(&[
        "--processes",
        "2",
        "--process",
        "0",
        "--hosts",
        &hosts2,
        "--workers",
        "1",
        "--peer-timeout-secs",
        "10",
    ]);
    let mut b = Peer::start(&[
        "--processes",
        "2",
        "--process",
        "1",
        "--hosts",
        &hosts2,
        "--workers",
        "2",
        "--peer-timeout-secs",
        "10",
    ]);
    for p in [&mut a, &mut b] {
        let status = p.wait_exit(Duration::from_secs(20)).expect("exits");
        assert!(!status.success());
    }
    assert!(a.log_text().contains("same --workers"), "{}", a.log_text());

    // Bad flags are refused at once.
    let mut bad = Peer::start(&[
        "--processes",
        "3",
        "--process",
        "0",
        "--hosts",
        "127.0.0.1:1",
    ]);
    let status = bad.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(!status.success());
    assert!(
        bad.log_text().contains("3 processes need 3"),
        "{}",
        bad.log_text()
    );
}

#[test]
fn a_cluster_restarted_after_a_loss_recovers_from_process_0s_data_directory() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 path");
    let mut c = cluster_with(2, 1, &["--data-dir", data]);
    c.server.sql_ok(
        "CREATE TABLE t (k bigint, v bigint);
         CREATE VIEW s AS SELECT k % 3 AS g, count(*) AS n, sum(v) AS total FROM t GROUP BY k % 3",
    );
    for i in 0..20 {
        c.server
            .ingest_ok("t", &format!("{{\"k\": {i}, \"v\": {}}}\n", i * i));
    }
    c.server.sql_ok("DELETE FROM t WHERE k = 4");
    let before = c.server.rows("s");
    let table = c.server.rows("t");
    assert_eq!(table.len(), 19);

    // Lose process 1: both go down.
    c.peers[0].child.kill().expect("SIGKILL process 1");
    let status = c
        .server
        .wait_exit(Duration::from_secs(10))
        .expect("process 0 exits after losing process 1");
    assert!(!status.success());
    drop(c);

    // The same cluster again, on new ports: process 0 replays its data directory.
    let c = cluster_with(2, 1, &["--data-dir", data]);
    c.server.wait_ready(Duration::from_secs(60));
    assert_eq!(c.server.rows("t"), table);
    assert_eq!(c.server.rows("s"), before);
    let ts = c.server.ingest_ok("t", "{\"k\": 100, \"v\": 1}\n");
    assert!(ts > 0);
    assert_eq!(c.server.rows("t").len(), 20);
    c.stop();
}

/// A Nexmark generator read by two processes of one worker each makes the same events as one
/// process of two workers: each worker makes its stride of one sequence, wherever it runs.
#[test]
fn a_generator_is_read_across_processes_as_in_one() {
    let _serial = serial();
    let sql = "CREATE SOURCE bids FROM GENERATOR NEXMARK (stream = 'bid', events = 100000, base_time = 1700000000000);
         CREATE VIEW per_auction AS SELECT auction, count(*) AS n, max(price) AS top FROM bids GROUP BY auction;
         CREATE VIEW per_second AS SELECT date_trunc('second', date_time) AS s, count(*) AS n FROM bids GROUP BY 1";
    let c = cluster(2, 1);
    let single = Server::start(&["--workers", "2"]);
    for s in [&c.server, &single] {
        s.sql_ok(sql);
        s.wait_ready(Duration::from_secs(120));
    }
    for view in ["per_auction", "per_second"] {
        let (got, want) = (c.server.rows(view), single.rows(view));
        assert!(!want.is_empty(), "{view} has rows");
        assert_eq!(got, want, "{view}:\n{}", diff(&want, &got));
    }
    let status = c.server.connector_status("sources", "bids");
    assert_eq!(status["rows"], 100_000, "{status}");
    assert_eq!(
        rows_of(&c.server, "SELECT count(*) FROM bids"),
        rows_of(&single, "SELECT count(*) FROM bids")
    );
    c.stop();
}

/// A Kafka topic with event time, read by every process of a 2-process cluster: each process
/// reads its partitions, the view equals one process's and the oracle, and no record is late.
#[test]
fn a_kafka_event_time_source_is_read_across_processes() {
    let _serial = serial();
    let broker = kafka::Broker::start();
    broker.create_topic("ev", 4);
    let mut rng = StdRng::seed_from_u64(9);
    let mut sums: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    // Event times just before now, so that none is behind the frontier, which follows the
    // clock (less lateness) while a reader is idle.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        - 1_000;
    for p in 0..4 {
        let payloads: Vec<String> = (0..500)
            .map(|i| {
                let (k, v) = (rng.random_range(0..30i64), rng.random_range(-50..500i64));
                let e = sums.entry(k).or_default();
                e.0 += 1;
                e.1 += v;
                serde_json::json!({"k": k, "v": v, "ts": base + i + p as i64}).to_string()
            })
            .collect();
        broker.produce("ev", p, &payloads);
    }
    let expected: Multiset = sums
        .iter()
        .map(|(k, (n, s))| (serde_json::json!([k, n, s]).to_string(), 1))
        .collect();
    let sql = format!(
        "CREATE SOURCE ev (k bigint, v bigint, ts bigint) FROM KAFKA BROKERS '{}' TOPIC 'ev'
           FORMAT JSON WITH (event_time = 'ts', lateness = '5 seconds', idle_timeout = '200 milliseconds');
         CREATE VIEW per_k AS SELECT k, count(*) AS n, sum(v) AS total FROM ev GROUP BY k",
        broker.addr
    );
    let c = cluster(2, 1);
    let single = Server::start(&[]);
    for (name, s) in [("one process", &single), ("2-process cluster", &c.server)] {
        s.sql_ok(&sql);
        s.wait_ready(Duration::from_secs(60));
        // Rows show once the frontier (the clock less lateness, when idle) passes them.
        common::eventually(
            &format!("the view over the topic, {name}"),
            Duration::from_secs(60),
            &expected,
            || s.rows("per_k"),
        );
        let status = s.connector_status("sources", "ev");
        assert_eq!(status["late"], 0, "{status}");
        assert_eq!(status["errors"], 0, "{status}");
    }
    c.stop();
}

/// With a data directory, every process's share of a source is logged (process 1's through
/// process 0): after the cluster is lost and started again, the source's history reads the
/// same at a time before the loss, and what was produced while it was down is read once.
#[test]
fn every_process_share_of_a_source_survives_a_cluster_restart() {
    let _serial = serial();
    let broker = kafka::Broker::start();
    broker.create_topic("ev", 4);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 path");
    let mut rng = StdRng::seed_from_u64(21);
    let mut sums: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut produce = |sums: &mut BTreeMap<i64, (i64, i64)>| {
        for p in 0..4 {
            let payloads: Vec<String> = (0..300)
                .map(|_| {
                    let (k, v) = (rng.random_range(0..20i64), rng.random_range(-50..500i64));
                    let e = sums.entry(k).or_default();
                    e.0 += 1;
                    e.1 += v;
                    serde_json::json!({"k": k, "v": v}).to_string()
                })
                .collect();
            broker.produce("ev", p, &payloads);
        }
    };
    let expected = |sums: &BTreeMap<i64, (i64, i64)>| -> Multiset {
        sums.iter()
            .map(|(k, (n, s))| (serde_json::json!([k, n, s]).to_string(), 1))
            .collect()
    };
    produce(&mut sums);
    let mut c = cluster_with(2, 1, &["--data-dir", data]);
    c.server.sql_ok(&format!(
        "CREATE SOURCE ev (k bigint, v bigint) FROM KAFKA BROKERS '{}' TOPIC 'ev' FORMAT JSON;
         CREATE VIEW per_k AS SELECT k, count(*) AS n, sum(v) AS total FROM ev GROUP BY k;
         CREATE SINK out FROM per_k INTO KAFKA BROKERS '{0}' TOPIC 'out' FORMAT JSON",
        broker.addr
    ));
    c.server.wait_ready(Duration::from_secs(60));
    let before = expected(&sums);
    common::eventually(
        "the view before the loss",
        Duration::from_secs(60),
        &before,
        || c.server.rows("per_k"),
    );
    // Each process's worker writes its share of the sink, on its own partition.
    let both = BTreeSet::from([(0, 0), (1, 1)]);
    common::eventually_eq(
        "the sink topic before the loss",
        Duration::from_secs(60),
        &(before.clone(), both.clone()),
        || sink_topic(&broker, "out"),
    );
    // Process 0's catalog counts process 1's writer too: progress needs both writers.
    common::eventually_eq("the sink's status", Duration::from_secs(30), &true, || {
        let catalog = c.server.get("/v1/catalog").json();
        let status = &catalog["sinks"][0]["status"];
        status["upper"].as_u64().unwrap_or(0) > 0
            && status["messages"].as_u64().unwrap_or(0) >= before.len() as u64
    });
    let read = c.server.read("per_k");
    let t = read["timestamp"].as_u64().expect("timestamp");
    assert_eq!(
        common::multiset(read["rows"].as_array().expect("rows")),
        before
    );

    // Lose process 1; produce more while the cluster is down.
    c.peers[0].child.kill().expect("SIGKILL process 1");
    c.server
        .wait_exit(Duration::from_secs(10))
        .expect("process 0 exits after losing process 1");
    drop(c);
    produce(&mut sums);

    let c = cluster_with(2, 1, &["--data-dir", data]);
    c.server.wait_ready(Duration::from_secs(60));
    let r = c.server.get(&format!("/v1/views/per_k?as_of={t}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let then = common::multiset(r.json()["rows"].as_array().expect("rows"));
    assert_eq!(
        then,
        before,
        "the view as of {t} differs after the restart:\n{}",
        diff(&before, &then)
    );
    let after = expected(&sums);
    common::eventually(
        "the view after the restart (every record once)",
        Duration::from_secs(60),
        &after,
        || c.server.rows("per_k"),
    );
    // The sink came back with the catalog: summed, its topic is the view, each row once.
    common::eventually_eq(
        "the sink topic after the restart",
        Duration::from_secs(60),
        &(after, both),
        || sink_topic(&broker, "out"),
    );
    c.stop();
}
