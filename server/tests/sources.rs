//! File and generator sources, event time, and file sinks, against the real binary: backfill
//! then live through a subscription, bad records, windows and late records against SQLite, an
//! idle event-time source that must not stall a join, and a file sink across kills.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{diff, sqlite_rows, Multiset, Server};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
    f.sync_data().expect("sync");
}

const AGG: &str = "SELECT k, count(*) AS n, sum(v) AS total, min(v) AS low FROM s GROUP BY k";

fn oracle(rows: &[(i64, i64)]) -> Multiset {
    let db = rusqlite::Connection::open_in_memory().expect("sqlite");
    db.execute_batch("CREATE TABLE s (k INTEGER, v INTEGER)")
        .expect("create");
    let tx = db.unchecked_transaction().expect("tx");
    for (k, v) in rows {
        tx.execute("INSERT INTO s VALUES (?1, ?2)", (k, v))
            .expect("insert");
    }
    tx.commit().expect("commit");
    sqlite_rows(&db, AGG)
}

#[test]
fn csv_file_backfills_then_follows_appends_and_truncation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.csv");
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut rows: Vec<(i64, i64)> = (0..30_000)
        .map(|_| (rng.random_range(0..50), rng.random_range(-1000..1000)))
        .collect();
    // The header names the columns in another order than the declaration.
    let mut text = String::from("v,k\n");
    for (k, v) in &rows {
        text.push_str(&format!("{v},{k}\n"));
    }
    std::fs::write(&path, text).expect("write");

    let server = Server::start(&["--workers", "2"]);
    server.sql_ok(&format!(
        "CREATE SOURCE s (k bigint, v bigint) FROM FILE '{}' FORMAT CSV WITH (header = true, tail = true);
         CREATE VIEW agg AS {AGG}",
        path.display()
    ));
    server.wait_ready(Duration::from_secs(60));
    let got = server.rows("agg");
    assert_eq!(got, oracle(&rows), "{}", diff(&oracle(&rows), &got));
    let st = server.connector_status("sources", "s");
    assert_eq!(st["rows"], 30_000, "{st}");
    assert_eq!(st["percent"], 100.0, "{st}");
    assert_eq!(st["state"], "running", "{st}");

    // Appended lines reach a subscriber; a partial line waits for its newline.
    let mut stream = server.subscribe_ok("view=agg", &[]);
    let mut acc = Multiset::new();
    stream.expect();
    let (mut t, _) = stream.read_past(0, &mut acc);
    append(&path, "5,7\n-3,");
    rows.push((7, 5));
    let mut expect_live = |acc: &mut Multiset, rows: &[(i64, i64)], t: &mut u64| {
        let expected = oracle(rows);
        let deadline = Instant::now() + Duration::from_secs(20);
        while *acc != expected {
            assert!(
                Instant::now() < deadline,
                "appends not seen:\n{}",
                diff(&expected, acc)
            );
            let (next, _) = stream.read_past(*t, acc);
            *t = next;
        }
    };
    expect_live(&mut acc, &rows, &mut t);
    append(&path, "8\n");
    rows.push((8, -3));
    expect_live(&mut acc, &rows, &mut t);

    // Truncation: the file is read again from its start, and its rows are added again.
    std::fs::write(&path, "v,k\n100,1\n").expect("truncate");
    rows.push((1, 100));
    expect_live(&mut acc, &rows, &mut t);
    server.assert_healthy();
}

/// A file appended to while its source starts: every worker divides the backfill by the same
/// length, so no bytes fall between two workers' ranges, and every row is read once.
#[test]
fn a_file_growing_while_its_source_starts_is_read_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("growing.csv");
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let row = |rng: &mut rand::rngs::StdRng| (rng.random_range(0..20), rng.random_range(-50..100));
    let mut rows: Vec<(i64, i64)> = (0..5_000).map(|_| row(&mut rng)).collect();
    let mut text = String::from("k,v\n");
    for (k, v) in &rows {
        text.push_str(&format!("{k},{v}\n"));
    }
    std::fs::write(&path, text).expect("write");

    let server = Server::start(&["--workers", "2"]);
    // Appends run before, during and after CREATE SOURCE, each a few complete lines.
    let appender = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut appended = Vec::new();
            for _ in 0..400 {
                let mut text = String::new();
                for _ in 0..20 {
                    let (k, v) = row(&mut rng);
                    text.push_str(&format!("{k},{v}\n"));
                    appended.push((k, v));
                }
                append(&path, &text);
                std::thread::sleep(Duration::from_micros(500));
            }
            appended
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    server.sql_ok(&format!(
        "CREATE SOURCE s (k bigint, v bigint) FROM FILE '{}' FORMAT CSV WITH (header = true, tail = true);
         CREATE VIEW agg AS {AGG}",
        path.display()
    ));
    rows.extend(appender.join().expect("appender"));
    let expected = oracle(&rows);
    common::eventually(
        "every row of the grown file",
        Duration::from_secs(30),
        &expected,
        || server.rows("agg"),
    );
    server.assert_healthy();
}

/// A tailed file whose last line is half written when the source is created: the backfill
/// stops before that line and the tail reads it whole once its newline arrives (read early, it
/// would have been two bad records).
#[test]
fn a_line_half_written_at_create_source_is_read_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("half.csv");
    std::fs::write(&path, "k,v\n1,2\n3,").expect("write");
    let server = Server::start(&["--workers", "2"]);
    server.sql_ok(&format!(
        "CREATE SOURCE s (k bigint, v bigint) FROM FILE '{}' FORMAT CSV WITH (header = true, tail = true);
         CREATE VIEW agg AS {AGG}",
        path.display()
    ));
    server.wait_ready(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(100));
    append(&path, "4\n5,6\n");
    let expected = oracle(&[(1, 2), (3, 4), (5, 6)]);
    common::eventually(
        "the completed line",
        Duration::from_secs(30),
        &expected,
        || server.rows("agg"),
    );
    let status = server.connector_status("sources", "s");
    assert_eq!(status["errors"], 0, "{status}");
}

#[test]
fn json_directory_with_deletes_and_bad_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rows = Vec::new();
    for f in 0..4 {
        let mut text = String::new();
        for i in 0..500 {
            let (k, v) = (i % 7, f * 1000 + i);
            text.push_str(&json!({"k": k, "v": v}).to_string());
            text.push('\n');
            rows.push((k, v));
        }
        // A delete envelope retracts a row inserted above.
        text.push_str(&json!({"delete": {"k": 0, "v": f * 1000}}).to_string());
        text.push('\n');
        rows.retain(|r| *r != (0, f * 1000));
        std::fs::write(dir.path().join(format!("part-{f}.json")), text).expect("write");
    }
    let server = Server::start(&["--workers", "2"]);
    server.sql_ok(&format!(
        "CREATE SOURCE s (k bigint, v bigint) FROM FILE '{}' FORMAT JSON;
         CREATE VIEW agg AS {AGG}",
        dir.path().display()
    ));
    server.wait_ready(Duration::from_secs(60));
    assert_eq!(server.rows("agg"), oracle(&rows));

    // A bad record in another source: reads of views over it fail with where it was.
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).expect("mkdir");
    std::fs::write(
        bad.join("x.json"),
        "{\"k\": 1, \"v\": 2}\n{\"k\": \"one\"}\n",
    )
    .expect("write");
    server.sql_ok(&format!(
        "CREATE SOURCE b (k bigint, v bigint) FROM FILE '{}' FORMAT JSON;
         CREATE SOURCE b2 (k bigint, v bigint) FROM FILE '{}' FORMAT JSON WITH (bad_records = 'skip');
         CREATE VIEW bv AS SELECT sum(v) FROM b;
         CREATE VIEW bv2 AS SELECT sum(v) FROM b2",
        bad.display(),
        bad.display()
    ));
    server.wait_ready(Duration::from_secs(30));
    let r = server.get("/v1/views/bv");
    let e = r.expect_error(400, "evaluation_error");
    let message = e["message"].as_str().expect("message");
    assert!(
        message.contains("x.json:2") && message.contains("\"k\""),
        "{message}"
    );
    // Skipped: the view answers, the count and a sample are in the catalog.
    assert_eq!(server.read("bv2")["rows"], json!([[2]]));
    let st = server.connector_status("sources", "b2");
    assert_eq!(st["errors"], 1, "{st}");
    assert!(
        st["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("x.json:2")),
        "{st}"
    );
}

#[test]
fn bad_definitions_get_clear_errors() {
    let server = Server::start(&[]);
    let cases = [
        (
            "CREATE SOURCE s (a bigint) FROM FILE '/nonexistent/x.csv' FORMAT CSV",
            "does not exist",
        ),
        (
            "CREATE SOURCE s (a bigint) FROM FILE '/tmp' FORMAT CSV WITH (colour = 'red')",
            "unknown option",
        ),
        (
            "CREATE SOURCE s (a bigint) FROM FILE '/tmp' FORMAT JSON WITH (header = true)",
            "CSV only",
        ),
        (
            "CREATE SOURCE s (a text) FROM FILE '/tmp' FORMAT CSV WITH (event_time = 'a')",
            "timestamp or bigint",
        ),
        (
            "CREATE SOURCE s FROM GENERATOR NEXMARK (stream = 'bids2')",
            "stream",
        ),
    ];
    for (sql, needle) in cases {
        let r = server.sql(sql);
        assert_eq!(r.status, 400, "{sql}: {}", r.text);
        let m = r.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(m.contains(needle), "{sql}: expected {needle:?} in {m:?}");
    }
    server
        .sql("CREATE SINK k FROM nothing INTO FILE '/tmp/x.json' FORMAT JSON")
        .expect_error(404, "not_found");
    let r = server.sql("CREATE SOURCE s (a bigint) FROM FIEL '/tmp/x' FORMAT CSV");
    let e = r.expect_error(400, "syntax_error");
    assert_eq!(e["position"], json!({"line": 1, "column": 33}), "{e}");
}

#[test]
fn generators_count_and_nexmark() {
    let server = Server::start(&["--workers", "2"]);
    server.sql_ok(
        "CREATE SOURCE bids FROM GENERATOR NEXMARK (stream = 'bid', events = 6000, base_time = 1700000000000);
         CREATE SOURCE auctions FROM GENERATOR NEXMARK (stream = 'auction', events = 300, base_time = 1700000000000);
         CREATE SOURCE c FROM GENERATOR COUNTER (rate = 500, max = 40);
         CREATE VIEW nb AS SELECT count(*) AS n, count(DISTINCT auction) > 10 AS spread FROM bids;
         CREATE VIEW na AS SELECT count(*) AS n FROM auctions;
         CREATE VIEW nc AS SELECT count(*) AS n, sum(n) AS s FROM c",
    );
    server.wait_ready(Duration::from_secs(60));
    assert_eq!(server.read("nb")["rows"], json!([[6000, true]]));
    assert_eq!(server.read("na")["rows"], json!([[300]]));
    let expected: Multiset = [(json!([40, 820]).to_string(), 1)].into_iter().collect();
    common::eventually("the counter", Duration::from_secs(20), &expected, || {
        server.rows("nc")
    });
    let cols = server.read("bids")["columns"].clone();
    assert_eq!(cols[2]["name"], "price", "{cols}");
    assert_eq!(cols[5]["type"], "timestamp", "{cols}");
}

/// Event time with out-of-order records: tumbling windows equal SQLite's, records behind
/// the frontier are counted late, and the result does not depend on the worker count.
#[test]
fn event_time_windows_and_late_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.csv");
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let base: i64 = 1_700_000_000_000;
    let lateness = 3_000;
    let mut events = Vec::new();
    let mut clock = base;
    for _ in 0..3000 {
        clock += rng.random_range(0..20);
        // Mostly in order; some a little late, a few far behind.
        let jitter = match rng.random_range(0..100) {
            0..=79 => 0,
            80..=97 => rng.random_range(0..2_000),
            _ => rng.random_range(4_000..20_000),
        };
        events.push((clock - jitter, rng.random_range(0..5i64)));
    }
    let mut text = String::new();
    for (ts, k) in &events {
        text.push_str(&format!("{ts},{k}\n"));
    }
    std::fs::write(&path, text).expect("write");
    // Late: older than (largest event time so far - lateness), as one reader sees them.
    let mut max_seen = 0;
    let mut frontier = 0;
    let mut late = 0;
    for (ts, _) in &events {
        if *ts >= frontier {
            max_seen = max_seen.max(*ts);
            frontier = frontier.max(max_seen - lateness);
        } else {
            late += 1;
        }
    }
    assert!(late > 10, "the data should have late records");

    let db = rusqlite::Connection::open_in_memory().expect("sqlite");
    db.execute_batch("CREATE TABLE e (ts INTEGER, k INTEGER)")
        .expect("create");
    for (ts, k) in &events {
        db.execute("INSERT INTO e VALUES (?1, ?2)", (ts, k))
            .expect("insert");
    }
    let expected = sqlite_rows(
        &db,
        "SELECT (ts / 10000) * 10000 AS w, k, count(*) FROM e GROUP BY 1, 2",
    );
    for workers in ["1", "2"] {
        let server = Server::start(&["--workers", workers]);
        server.sql_ok(&format!(
            "CREATE SOURCE e (ts bigint, k bigint) FROM FILE '{}' FORMAT CSV
               WITH (event_time = 'ts', lateness = '3 seconds', idle_timeout = '300 milliseconds');
             CREATE VIEW w AS SELECT (ts / 10000) * 10000 AS w, k, count(*) FROM e GROUP BY 1, 2",
            path.display()
        ));
        server.wait_ready(Duration::from_secs(60));
        // Once idle, the source's frontier follows the clock and the windows are complete.
        common::eventually("the windows", Duration::from_secs(20), &expected, || {
            server.rows("w")
        });
        let st = server.connector_status("sources", "e");
        if workers == "1" {
            assert_eq!(st["late"], late, "{st}");
        } else {
            assert!(st["late"].as_u64().is_some_and(|l| l > 0), "{st}");
        }
        let frontier = st["frontier"].as_u64().expect("frontier");
        assert!(
            frontier > base as u64 + 60_000,
            "idle source did not advance: {st}"
        );
    }
}

/// An event-time source that has gone quiet must not hold back a join with a table.
#[test]
fn idle_event_time_source_does_not_stall_a_join() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("e.csv");
    std::fs::write(&path, "1700000000000,1\n1700000000500,2\n").expect("write");
    let server = Server::start(&["--workers", "2"]);
    server.sql_ok(&format!(
        "CREATE SOURCE e (ts bigint, k bigint) FROM FILE '{}' FORMAT CSV
           WITH (event_time = 'ts', lateness = '1 second', idle_timeout = '200 milliseconds');
         CREATE TABLE names (k bigint, name text);
         CREATE VIEW j AS SELECT name, count(*) AS n FROM e JOIN names USING (k) GROUP BY name",
        path.display()
    ));
    let mut stream = server.subscribe_ok("view=j", &[]);
    stream.expect();
    let mut acc = Multiset::new();
    let (mut t, _) = stream.read_past(0, &mut acc);
    server.ingest_ok("names", "{\"k\": 2, \"name\": \"two\"}");
    let expected: Multiset = [(json!(["two", 1]).to_string(), 1)].into_iter().collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    while acc != expected {
        assert!(
            Instant::now() < deadline,
            "the join stalled:\n{}",
            diff(&expected, &acc)
        );
        let (next, _) = stream.read_past(t, &mut acc);
        t = next;
    }
}

/// Sums a sink file's data records per row; checks the progress records are in order.
fn sink_contents(path: &Path) -> (Multiset, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut sum = Multiset::new();
    let mut records = 0;
    let mut last_progress = 0;
    // A last line without its newline is a write in progress (or the torn line the test
    // leaves, until the restarted sink cuts it): a reader skips it, as any consumer must.
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    for line in complete.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line}: {e}"));
        if let Some(p) = v.get("progress") {
            let p = p.as_u64().expect("progress");
            assert!(
                p >= last_progress,
                "progress went back: {p} < {last_progress}"
            );
            last_progress = p;
            continue;
        }
        records += 1;
        let t = v["time"].as_u64().expect("time");
        assert!(
            t + 1 >= last_progress,
            "a change at {t} after progress {last_progress}"
        );
        let key = v["row"].to_string();
        let e = sum.entry(key.clone()).or_default();
        *e += v["diff"].as_i64().expect("diff");
        if *e == 0 {
            sum.remove(&key);
        }
    }
    (sum, records)
}

#[test]
fn file_sink_holds_each_change_once_across_kills() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.json");
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut rows: Vec<(i64, i64)> = (0..2000)
        .map(|_| (rng.random_range(0..30), rng.random_range(0..100)))
        .collect();
    let csv = |rows: &[(i64, i64)]| {
        rows.iter()
            .map(|(k, v)| format!("{k},{v}\n"))
            .collect::<String>()
    };
    std::fs::write(&input, csv(&rows)).expect("write");
    let setup = |server: &Server| {
        server.sql_ok(&format!(
            "CREATE SOURCE s (k bigint, v bigint) FROM FILE '{}' FORMAT CSV WITH (tail = true);
             CREATE VIEW agg AS {AGG};
             CREATE SINK out FROM agg INTO FILE '{}' FORMAT JSON",
            input.display(),
            output.display()
        ));
    };
    for cycle in 0..3 {
        let mut server = Server::start(&["--workers", "2"]);
        setup(&server);
        server.wait_ready(Duration::from_secs(60));
        let expected = oracle(&rows);
        common::eventually("the sink file", Duration::from_secs(30), &expected, || {
            sink_contents(&output).0
        });
        if cycle > 0 {
            let (_, before) = sink_contents(&output);
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(
                before,
                sink_contents(&output).1,
                "a restart rewrote changes"
            );
        }
        for _ in 0..3 {
            let n = rng.random_range(1..40);
            let more: Vec<(i64, i64)> = (0..n)
                .map(|_| (rng.random_range(0..30), rng.random_range(0..100)))
                .collect();
            append(&input, &csv(&more));
            rows.extend(more);
            std::thread::sleep(Duration::from_millis(rng.random_range(0..120)));
        }
        server.kill_hard();
        // A torn last line, as a crash mid-write leaves it: cut on restart.
        append(&output, "{\"row\": [1, 2");
    }
    let server = Server::start(&[]);
    setup(&server);
    server.wait_ready(Duration::from_secs(60));
    let expected = oracle(&rows);
    common::eventually(
        "the sink file after the last restart",
        Duration::from_secs(30),
        &expected,
        || sink_contents(&output).0,
    );
    assert_eq!(server.rows("agg"), expected);
    assert_eq!(server.connector_status("sinks", "out")["state"], "running");
}

/// `freshet run`: a batch job over a file source reads the whole file before its query.
#[test]
fn run_script_reads_sources_to_the_end_before_querying() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("d.csv");
    let rows: Vec<(i64, i64)> = (0..50_000).map(|i| (i % 13, i)).collect();
    let text: String = rows.iter().map(|(k, v)| format!("{k},{v}\n")).collect();
    std::fs::write(&data, text).expect("write");
    let script = dir.path().join("job.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE s (k bigint, v bigint) FROM FILE '{}' FORMAT CSV;\n{AGG};\n",
            data.display()
        ),
    )
    .expect("write script");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_freshet"))
        .args([
            "run",
            script.to_str().expect("utf-8"),
            "--workers",
            "2",
            "--format",
            "json",
        ])
        .output()
        .expect("run freshet");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Multiset = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            (json!([v["k"], v["n"], v["total"], v["low"]]).to_string(), 1)
        })
        .collect();
    assert_eq!(got, oracle(&rows), "{}", diff(&oracle(&rows), &got));
}

/// A temporal filter over an event-time source: `now()` is the logical time, so rows whose
/// event time has aged out of the window are gone once the source's frontier passes them.
#[test]
fn temporal_filter_over_event_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("e.csv");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    // Two rows that have aged out of the one-minute window and one still inside it.
    let db = rusqlite::Connection::open_in_memory().expect("sqlite");
    let text = |ms: i64| -> String {
        db.query_row(
            "SELECT strftime('%Y-%m-%d %H:%M:%f', ?1 / 1000.0, 'unixepoch')",
            [ms],
            |r| r.get(0),
        )
        .expect("format")
    };
    std::fs::write(
        &path,
        format!(
            "{},1\n{},2\n{},3\n",
            text(now - 120_000),
            text(now - 90_000),
            text(now - 10_000)
        ),
    )
    .expect("write");
    let server = Server::start(&[]);
    server.sql_ok(&format!(
        "CREATE SOURCE e (ts timestamp, k bigint) FROM FILE '{}' FORMAT CSV
           WITH (event_time = 'ts', idle_timeout = '200 milliseconds');
         CREATE VIEW recent AS SELECT k FROM e WHERE ts + INTERVAL '1 minute' > now()",
        path.display()
    ));
    let expected: Multiset = [(json!([3]).to_string(), 1)].into_iter().collect();
    common::eventually(
        "the temporal filter",
        Duration::from_secs(20),
        &expected,
        || server.rows("recent"),
    );
}

/// An event-time source whose lateness is longer than the retention window: compaction waits
/// for its frontier, so reads of a view over it are answered (at the frontier) instead of
/// waiting for a time the source will not reach for an hour.
#[test]
fn lateness_beyond_retention_holds_compaction_and_reads_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("late.csv");
    std::fs::write(&path, "k,ts\n1,1000\n2,2000\n").expect("csv");
    let server = Server::start(&["--retention-secs", "1"]);
    server.sql_ok(&format!(
        "CREATE SOURCE ev (k bigint, ts bigint) FROM FILE '{}' FORMAT CSV
           WITH (header = true, event_time = 'ts', lateness = '1 hour', idle_timeout = '100 milliseconds');
         CREATE VIEW n AS SELECT count(*) AS n FROM ev",
        path.display()
    ));
    server.wait_ready(Duration::from_secs(30));
    // Past a few compaction ticks.
    std::thread::sleep(Duration::from_millis(2500));
    let started = std::time::Instant::now();
    let r = server.get("/v1/views/n");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the read waited {:?}",
        started.elapsed()
    );
    // The rows' event times (in 1970) are long complete at the frontier (an hour ago).
    assert_eq!(r.json()["rows"], serde_json::json!([[2]]), "{}", r.text);
}
