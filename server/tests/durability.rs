//! Durability against the real binary: concurrent writers, SIGKILL at random points, restart
//! on the same data directory, and checks that every acknowledged write is there, nothing
//! unacknowledged is there by halves, views equal SQLite over the recovered table, history
//! within retention reads the same after a restart, torn and corrupt log tails are cut, and a
//! second process on the directory is refused.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{diff, sqlite_rows, Multiset, Server};

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const ROWS_PER_BATCH: i64 = 3;

fn start(dir: &Path, workers: &str) -> Server {
    let dir = dir.to_str().expect("utf-8 path");
    let server = Server::start(&["--data-dir", dir, "--workers", workers]);
    server.wait_ready(Duration::from_secs(60));
    server
}

/// Batches each writer had acknowledged: (writer, batch).
type Acked = Arc<Mutex<BTreeSet<(i64, i64)>>>;

/// Writes batches of rows `(writer, batch, part)` until told to stop or the server dies.
fn writer(addr: String, w: i64, first: i64, acked: Acked, stop: Arc<AtomicBool>) -> i64 {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    let mut batch = first;
    while !stop.load(Ordering::Relaxed) {
        let body: String = (0..ROWS_PER_BATCH)
            .map(|p| json!({"w": w, "b": batch, "p": p}).to_string() + "\n")
            .collect();
        let r = agent
            .post(&format!("http://{addr}/v1/tables/t/rows"))
            .header("content-type", "application/x-ndjson")
            .send(body.as_bytes());
        match r {
            Ok(resp) if resp.status() == 200 => {
                acked.lock().expect("lock").insert((w, batch));
            }
            Ok(resp) => panic!("write failed with {}", resp.status()),
            Err(_) => break, // the server died under us
        }
        batch += 1;
    }
    batch
}

/// The recovered table, checked: whole batches only, and every acknowledged one present.
fn check_table(server: &Server, acked: &BTreeSet<(i64, i64)>) -> Vec<(i64, i64, i64)> {
    let rows = server.read("t")["rows"].as_array().expect("rows").clone();
    let mut per_batch: BTreeMap<(i64, i64), BTreeSet<i64>> = BTreeMap::new();
    let mut out = Vec::new();
    for r in &rows {
        let (w, b, p) = (
            r[0].as_i64().unwrap(),
            r[1].as_i64().unwrap(),
            r[2].as_i64().unwrap(),
        );
        assert!(
            per_batch.entry((w, b)).or_default().insert(p),
            "row {r} twice"
        );
        out.push((w, b, p));
    }
    for (k, parts) in &per_batch {
        assert_eq!(
            parts.len() as i64,
            ROWS_PER_BATCH,
            "batch {k:?} is there by halves"
        );
    }
    for k in acked {
        assert!(
            per_batch.contains_key(k),
            "acknowledged batch {k:?} was lost"
        );
    }
    out
}

const VIEW: &str = "SELECT w, count(*) AS n, max(b) AS last FROM t GROUP BY w";

fn check_view(server: &Server, rows: &[(i64, i64, i64)]) {
    let db = rusqlite::Connection::open_in_memory().expect("sqlite");
    db.execute_batch("CREATE TABLE t (w INTEGER, b INTEGER, p INTEGER)")
        .expect("create");
    let tx = db.unchecked_transaction().expect("tx");
    for (w, b, p) in rows {
        tx.execute("INSERT INTO t VALUES (?1, ?2, ?3)", (w, b, p))
            .expect("insert");
    }
    tx.commit().expect("commit");
    let expected = sqlite_rows(&db, VIEW);
    let got = server.rows("per_writer");
    assert_eq!(got, expected, "{}", diff(&expected, &got));
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = std::env::var("FRESHET_LONG_TESTS").is_ok();
    let cycles = if long { 50 } else { 6 };
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let acked: Acked = Arc::default();
    let mut next_batch: BTreeMap<i64, i64> = BTreeMap::new();
    {
        let server = start(dir.path(), "2");
        server.sql_ok(&format!(
            "CREATE TABLE t (w bigint NOT NULL, b bigint NOT NULL, p bigint NOT NULL, PRIMARY KEY (w, b, p));
             CREATE VIEW per_writer AS {VIEW}"
        ));
    }
    for cycle in 0..cycles {
        let workers = if cycle % 2 == 0 { "2" } else { "1" };
        let mut server = start(dir.path(), workers);
        let rows = check_table(&server, &acked.lock().expect("lock"));
        check_view(&server, &rows);
        // Concurrent writers, then a kill at a random moment.
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let (addr, acked, stop) =
                    (server.addr.clone(), Arc::clone(&acked), Arc::clone(&stop));
                // Batch numbers keep growing across cycles so no key repeats.
                let first = next_batch.get(&w).copied().unwrap_or(0) + 1_000;
                std::thread::spawn(move || writer(addr, w, first, acked, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(20..400)));
        server.kill_hard();
        stop.store(true, Ordering::Relaxed);
        for (w, h) in handles.into_iter().enumerate() {
            let last = h.join().expect("writer");
            next_batch.insert(w as i64, last);
        }
    }
    let server = start(dir.path(), "2");
    let rows = check_table(&server, &acked.lock().expect("lock"));
    check_view(&server, &rows);
    assert!(
        acked.lock().expect("lock").len() > 20,
        "too few writes to mean anything"
    );
}

#[test]
fn history_within_retention_reads_the_same_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path(), "1");
    server.sql_ok(
        "CREATE TABLE kv (k bigint, v bigint); CREATE VIEW s AS SELECT sum(v) AS total FROM kv",
    );
    let mut times = Vec::new();
    for i in 0..20 {
        let r = server.sql_ok(&format!("INSERT INTO kv VALUES ({i}, {})", i * i));
        times.push(r[0]["timestamp"].as_u64().expect("timestamp"));
    }
    server.sql_ok("DELETE FROM kv WHERE k < 5");
    let before: Vec<Value> = times
        .iter()
        .map(|t| server.get(&format!("/v1/views/s?as_of={t}")).json()["rows"].clone())
        .collect();
    // Resuming a subscription after the restart from a time before it replays the same changes.
    let resume_from = times[10];
    let mut expected_stream =
        server.subscribe_ok(&format!("view=s&resume_from={resume_from}"), &[]);
    let expected_msgs = changes_until(&mut expected_stream, times[19]);
    drop(expected_stream);
    server.kill_hard();

    let server = start(dir.path(), "2");
    for (t, rows) in times.iter().zip(&before) {
        let now = server.get(&format!("/v1/views/s?as_of={t}")).json()["rows"].clone();
        assert_eq!(&now, rows, "AS OF {t} differs after the restart");
    }
    let mut stream = server.subscribe_ok(&format!("view=s&resume_from={resume_from}"), &[]);
    let msgs = changes_until(&mut stream, times[19]);
    assert!(!msgs.is_empty(), "no changes replayed");
    assert_eq!(msgs, expected_msgs, "resumed changes differ after restart");
    // Time goes on after the recovered timestamps.
    let r = server.sql_ok("INSERT INTO kv VALUES (100, 1)");
    assert!(r[0]["timestamp"].as_u64().expect("ts") > *times.last().expect("times"));
}

/// The update messages of a resumed subscription up to the first progress past `ts`.
fn changes_until(stream: &mut common::Stream, ts: u64) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let m = stream.expect();
        match m.kind.as_str() {
            "update" => out.push(m.data.clone()),
            "progress" if m.time() > ts => return out,
            "error" => panic!("subscription error: {}", m.data),
            _ => {}
        }
    }
}

fn last_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segs.sort();
    segs.pop().expect("a segment")
}

#[test]
fn torn_and_corrupt_log_tails_are_cut_at_the_last_whole_record() {
    for damage in ["truncate", "flip"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = start(dir.path(), "1");
        server.sql_ok("CREATE TABLE x (i bigint)");
        for i in 0..10 {
            server.sql_ok(&format!("INSERT INTO x VALUES ({i})"));
        }
        server.kill_hard();
        let seg = last_segment(dir.path());
        let mut bytes = std::fs::read(&seg).expect("read segment");
        match damage {
            "truncate" => bytes.truncate(bytes.len() - 3),
            _ => {
                let n = bytes.len();
                bytes[n - 2] ^= 0x40;
            }
        }
        std::fs::write(&seg, &bytes).expect("write segment");
        let server = start(dir.path(), "1");
        // The damaged record (the last insert) is gone; everything before it is intact.
        let rows = server.rows("x");
        let expected: Multiset = (0..9).map(|i| (json!([i]).to_string(), 1)).collect();
        assert_eq!(rows, expected, "{damage}: {}", diff(&expected, &rows));
        // And the service takes writes again, after the cut.
        server.sql_ok("INSERT INTO x VALUES (42)");
        assert_eq!(server.rows("x").len(), 10);
    }
}

#[test]
fn a_second_process_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _server = start(dir.path(), "1");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_freshet"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run freshet");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another freshet process"), "{err}");
}

/// A disk that is full: the write fails with 507 and is not applied, reads go on, and the
/// service says writes are refused until it is restarted.
#[test]
fn a_full_disk_fails_writes_cleanly_and_keeps_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path(), "1");
    server.sql_ok("CREATE TABLE x (i bigint); INSERT INTO x VALUES (1), (2)");
    server.kill_hard();
    // The next segment the restarted service opens is /dev/full: every write fails ENOSPC.
    let seg = last_segment(dir.path());
    let bytes = std::fs::read(&seg).expect("read");
    let records = {
        // Count the records to know the next sequence number (frames: u32 len, u32 crc, body).
        let mut at = 0;
        let mut n = 0u64;
        while at + 8 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            at += 8 + len;
            n += 1;
        }
        n
    };
    let first: u64 = seg
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("segment name");
    let next = dir
        .path()
        .join("log")
        .join(format!("{:020}.wal", first + records));
    std::os::unix::fs::symlink("/dev/full", &next).expect("symlink");
    let server = start(dir.path(), "1");
    assert_eq!(server.rows("x").len(), 2);
    let r = server.sql("INSERT INTO x VALUES (3)");
    let e = r.expect_error(507, "storage_unavailable");
    assert!(e["message"].as_str().unwrap_or("").contains("log"), "{e}");
    // Not applied, and reads still work.
    assert_eq!(server.rows("x").len(), 2);
    let r = server.ingest("x", "application/x-ndjson", "{\"i\": 4}");
    r.expect_error(507, "storage_unavailable");
    assert_eq!(server.rows("x").len(), 2);
    server.assert_healthy();
}

/// A CSV file of rows `k,v` that a test appends to, the oracle of what it holds (per k: count
/// and sum of v), and a data directory beside it.
struct Events {
    /// Kept for its lifetime: the directory goes when the test ends.
    _dir: tempfile::TempDir,
    data: PathBuf,
    csv: PathBuf,
    rng: rand::rngs::StdRng,
    sums: BTreeMap<i64, (i64, i64)>,
}

impl Events {
    fn new(seed: u64) -> Events {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let csv = dir.path().join("events.csv");
        std::fs::write(&csv, "k,v\n").expect("csv");
        Events {
            _dir: dir,
            data,
            csv,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            sums: BTreeMap::new(),
        }
    }

    /// Appends `n` random rows (synced) and counts them into the oracle.
    fn append(&mut self, n: usize) {
        use std::io::Write as _;
        let mut text = String::new();
        for _ in 0..n {
            let (k, v) = (
                self.rng.random_range(0..20i64),
                self.rng.random_range(-50..100i64),
            );
            text.push_str(&format!("{k},{v}\n"));
            let e = self.sums.entry(k).or_default();
            e.0 += 1;
            e.1 += v;
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.csv)
            .expect("open csv");
        f.write_all(text.as_bytes()).expect("append");
        f.sync_all().expect("sync");
    }

    /// The view `per_k` as it must be over every row appended.
    fn oracle(&self) -> Multiset {
        let rows: Vec<Value> = self
            .sums
            .iter()
            .map(|(k, (n, s))| json!([k, n, s]))
            .collect();
        common::multiset(&rows)
    }

    /// The statements that create the source over the file and the view `per_k`.
    fn sql(&self) -> String {
        EVENTS_SOURCE.replace("{path}", self.csv.to_str().expect("utf-8"))
    }

    /// After a restart: waits for `per_k` to equal the oracle, and returns how many rows the
    /// source has read since the server started.
    fn caught_up_after_restart(&self, server: &Server, what: &str) -> u64 {
        common::eventually(what, Duration::from_secs(30), &self.oracle(), || {
            server.rows("per_k")
        });
        server.connector_status("sources", "ev")["rows"]
            .as_u64()
            .expect("rows")
    }

    fn data_arg(&self) -> &str {
        self.data.to_str().expect("utf-8")
    }
}

const EVENTS_SOURCE: &str = "CREATE SOURCE ev (k bigint, v bigint) FROM FILE '{path}' \
    FORMAT CSV WITH (header = true, tail = true); \
    CREATE VIEW per_k AS SELECT k, count(*) AS n, sum(v) AS total FROM ev GROUP BY k";

/// A tailed file source over several SIGKILLs: after each restart the source reads on from
/// its stored position (it does not read the file again), rows appended while the server was
/// down are taken in, no row is counted twice, and the view's history reads the same.
#[test]
fn sources_resume_from_stored_positions_with_the_same_history() {
    let mut ev = Events::new(11);
    ev.append(5000);
    let mut total = 5000;
    let mut server = start(&ev.data, "2");
    server.sql_ok(&ev.sql());
    // (time, view at that time) read before each kill, checked after every later restart.
    let mut history: Vec<(u64, Value)> = Vec::new();
    for round in 0..3 {
        server.wait_ready(Duration::from_secs(60));
        common::eventually(
            &format!("round {round}: view over the file"),
            Duration::from_secs(30),
            &ev.oracle(),
            || server.rows("per_k"),
        );
        let read = server.read("per_k");
        history.push((
            read["timestamp"].as_u64().expect("ts"),
            read["rows"].clone(),
        ));
        // More rows, and a kill while they may still be on their way in.
        ev.append(3000);
        total += 3000;
        std::thread::sleep(Duration::from_millis(ev.rng.random_range(0..40)));
        server.kill_hard();
        ev.append(1000);
        total += 1000;

        server = start(&ev.data, "2");
        let read_now =
            ev.caught_up_after_restart(&server, &format!("round {round}: view after the restart"));
        assert!(
            read_now < total as u64,
            "round {round}: the source read {read_now} rows after the restart, of {total} in \
             the file: it read the file again instead of resuming"
        );
        for (t, rows) in &history {
            let now = server.get(&format!("/v1/views/per_k?as_of={t}"));
            assert_eq!(now.status, 200, "AS OF {t}: {}", now.text);
            assert_eq!(
                &now.json()["rows"],
                rows,
                "AS OF {t} differs after the restart"
            );
        }
    }
}

/// With snapshots taken every second and a short retention, the log before them goes; a
/// restart rebuilds the source from the snapshot plus the log after it, and reads on.
#[test]
fn snapshots_hold_source_contents_and_positions() {
    let mut ev = Events::new(12);
    let data_arg = ev.data_arg().to_string();
    let args = [
        "--data-dir",
        &data_arg,
        "--workers",
        "2",
        "--retention-secs",
        "1",
        "--snapshot-interval-secs",
        "1",
    ];
    let mut server = Server::start(&args);
    server.wait_ready(Duration::from_secs(60));
    server.sql_ok(&ev.sql());
    let mut total = 0;
    let snapshot = ev.data.join("snapshot.bin");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Keep appending until a snapshot has been taken after some of the rows.
    loop {
        ev.append(500);
        total += 500;
        std::thread::sleep(Duration::from_millis(300));
        let grown = std::fs::metadata(&snapshot).map(|m| m.len()).unwrap_or(0);
        if total >= 4000 && grown > 4000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot with the source's rows within 30 s"
        );
    }
    common::eventually(
        "view before the kill",
        Duration::from_secs(30),
        &ev.oracle(),
        || server.rows("per_k"),
    );
    server.kill_hard();
    ev.append(700);
    total += 700;
    let server = Server::start(&args);
    server.wait_ready(Duration::from_secs(60));
    let read_now = ev.caught_up_after_restart(&server, "view after the restart");
    assert!(
        read_now < total as u64,
        "the source read {read_now} of {total} rows again after the restart"
    );
}

/// A single file's byte ranges are per worker: restarted with another number of workers, the
/// source says why it cannot resume instead of reading rows twice or skipping some.
#[test]
fn a_file_source_restarted_with_other_workers_stalls_with_the_reason() {
    let mut ev = Events::new(13);
    ev.append(1000);
    let mut server = start(&ev.data, "2");
    server.sql_ok(&ev.sql());
    common::eventually(
        "view before the kill",
        Duration::from_secs(30),
        &ev.oracle(),
        || server.rows("per_k"),
    );
    server.kill_hard();
    let server = Server::start(&["--data-dir", ev.data_arg(), "--workers", "1"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        // The catalog answers 503 while the data directory is replayed.
        if server.get("/v1/catalog").status != 200 {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let status = server.connector_status("sources", "ev");
        if status["state"] == "stalled" {
            let reason = status["last_error"].as_str().unwrap_or_default();
            assert!(
                reason.contains("different number of workers"),
                "unexpected reason: {status}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the source did not report why it cannot resume: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // What was read before the restart is still there, exactly once.
    assert_eq!(server.rows("per_k"), ev.oracle());
    assert_eq!(
        server.get("/readyz").status,
        503,
        "an unresumable source is not ready"
    );
}

/// Indexes are catalog statements like any other: after a restart the index is there, the view
/// whose join reads it still depends on it and equals what it was, point reads by the indexed
/// column find the same rows, and writes after the restart reach the view through the index.
#[test]
fn indexes_and_the_views_that_read_them_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path(), "1");
    server.sql_ok(
        "CREATE TABLE orders (id bigint, customer bigint, amount bigint);
         CREATE TABLE customers (id bigint, name text);
         CREATE INDEX orders_by_customer ON orders (customer);
         CREATE VIEW spend AS SELECT c.name, sum(o.amount) AS total
             FROM customers AS c JOIN orders AS o ON o.customer = c.id GROUP BY c.name",
    );
    server.sql_ok(
        "INSERT INTO customers VALUES (1, 'ann'), (2, 'bob');
         INSERT INTO orders VALUES (10, 1, 5), (11, 1, 7), (12, 2, 3), (13, 3, 100)",
    );
    let spend = server.rows("spend");
    let point =
        server.sql_ok("SELECT id FROM orders WHERE customer = 1 ORDER BY id")[0]["rows"].clone();
    assert_eq!(point, json!([[10], [11]]));
    server.kill_hard();

    let server = start(dir.path(), "1");
    assert_eq!(
        server.rows("spend"),
        spend,
        "the view differs after the restart"
    );
    let shown = server.sql_ok("SHOW INDEXES")[0]["rows"].clone();
    assert_eq!(shown, json!([["orders_by_customer"]]));
    let again =
        server.sql_ok("SELECT id FROM orders WHERE customer = 1 ORDER BY id")[0]["rows"].clone();
    assert_eq!(again, point);
    server
        .sql("DROP INDEX orders_by_customer")
        .expect_error(409, "dependent_objects");
    server.sql_ok("INSERT INTO orders VALUES (14, 2, 40)");
    let after = server.sql_ok("SELECT * FROM spend ORDER BY name")[0]["rows"].clone();
    assert_eq!(after, json!([["ann", 12], ["bob", 43]]));
}

/// Exact decimals over HTTP: JSON numbers and strings and CSV fields in, strings out (as exact
/// as the values), exact sums in a view, and the same after a restart from the log.
#[test]
fn numeric_values_are_exact_over_http_and_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path(), "2");
    server.sql_ok(
        "CREATE TABLE pay (id bigint, amount numeric);
         CREATE VIEW totals AS SELECT sum(amount) AS total, count(*) AS n FROM pay",
    );
    let r = server.ingest(
        "pay",
        "application/x-ndjson",
        "{\"id\": 1, \"amount\": 0.1}\n{\"id\": 2, \"amount\": \"0.2\"}\n{\"id\": 3, \"amount\": 7}\n",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = server.ingest(
        "pay",
        "text/csv",
        "id,amount\n4,12345678901234.56789\n5,-0.30\n",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // A value that is no number is refused with its line, and nothing of the request lands.
    let r = server.ingest("pay", "text/csv", "id,amount\n6,1.5\n7,abc\n");
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("line"), "{}", r.text);

    let expected = json!([["12345678901241.56789", 5]]);
    let read = server.read("totals");
    assert_eq!(
        read["columns"],
        json!([{"name": "total", "type": "numeric"}, {"name": "n", "type": "bigint"}])
    );
    assert_eq!(read["rows"], expected);
    let r = server.sql_ok("SELECT amount FROM pay WHERE amount < 1 ORDER BY amount");
    assert_eq!(r[0]["rows"], json!([["-0.3"], ["0.1"], ["0.2"]]));

    // A numeric(6, 2) column rounds what is written to it and refuses what does not fit.
    server.sql_ok("CREATE TABLE priced (p numeric(6, 2))");
    let r = server.ingest(
        "priced",
        "application/x-ndjson",
        "{\"p\": \"1.005\"}\n{\"p\": 2.675}\n",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = server.ingest("priced", "text/csv", "p\n1\n10000\n");
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("numeric field overflow"), "{}", r.text);
    let r = server.sql_ok("SELECT p FROM priced ORDER BY p");
    assert_eq!(r[0]["rows"], json!([["1.01"], ["2.68"]]));
    server.kill_hard();

    let server = start(dir.path(), "1");
    assert_eq!(server.read("totals")["rows"], expected);
    let r = server.sql_ok("SELECT sum(amount) FROM pay WHERE id <= 2");
    assert_eq!(r[0]["rows"], json!([["0.3"]]));
    // The column's bounds are kept in the catalog across the restart.
    let r = server.sql("INSERT INTO priced VALUES (12345)");
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("numeric field overflow"), "{}", r.text);
}
