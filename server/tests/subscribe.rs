//! Subscriptions checked against an oracle: a seeded random stream of inserts and deletes goes
//! through HTTP while SQLite receives the same writes; at every `progress` T the accumulated
//! updates must equal SQLite's answer to the view's query as of the latest write before T.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{apply, diff, encode, sqlite_rows, Msg, Multiset, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const VIEW_SQL: &str = "SELECT b.name, count(*) AS n, sum(a.v) AS s, min(a.v) AS lo, max(a.v) AS hi FROM a JOIN b ON a.k = b.k GROUP BY b.name";
const NAMES: [&str; 4] = ["x", "y", "z", "w"];

/// Drives random writes through HTTP and mirrors them in SQLite.
struct Oracle {
    db: rusqlite::Connection,
    rng: StdRng,
    next_id: i64,
    /// (write timestamp, SQLite result of VIEW_SQL after that write), in timestamp order.
    records: Vec<(u64, Multiset)>,
}

impl Oracle {
    fn new(server: &Server, seed: u64) -> Oracle {
        server.sql_ok(&format!(
            "CREATE TABLE a (id bigint NOT NULL, k bigint NOT NULL, v bigint); \
             CREATE TABLE b (k bigint NOT NULL, name text NOT NULL); \
             CREATE VIEW agg AS {VIEW_SQL}"
        ));
        let db = rusqlite::Connection::open_in_memory().expect("sqlite");
        db.execute_batch("CREATE TABLE a (id INTEGER NOT NULL, k INTEGER NOT NULL, v INTEGER); CREATE TABLE b (k INTEGER NOT NULL, name TEXT NOT NULL);")
            .expect("sqlite schema");
        Oracle {
            db,
            rng: StdRng::seed_from_u64(seed),
            next_id: 1,
            records: Vec::new(),
        }
    }

    fn record(&mut self, ts: u64) {
        if let Some((last, _)) = self.records.last() {
            assert!(
                ts > *last,
                "write timestamps must strictly increase: {ts} after {last}"
            );
        }
        let state = sqlite_rows(&self.db, VIEW_SQL);
        self.records.push((ts, state));
    }

    /// `count` random existing rows of `table` (distinct rowids): (rowid, JSON object).
    fn pick(&mut self, table: &str, count: usize) -> Vec<(i64, Value)> {
        let total: i64 = self
            .db
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count");
        let mut chosen = BTreeSet::new();
        for _ in 0..count.min(total as usize) {
            chosen.insert(self.rng.random_range(0..total));
        }
        let mut out = Vec::new();
        for offset in chosen {
            let row = if table == "a" {
                self.db
                    .query_row("SELECT rowid, id, k, v FROM a ORDER BY rowid LIMIT 1 OFFSET ?1", [offset], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            json!({"id": r.get::<_, i64>(1)?, "k": r.get::<_, i64>(2)?, "v": r.get::<_, Option<i64>>(3)?}),
                        ))
                    })
                    .expect("pick a")
            } else {
                self.db
                    .query_row(
                        "SELECT rowid, k, name FROM b ORDER BY rowid LIMIT 1 OFFSET ?1",
                        [offset],
                        |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                json!({"k": r.get::<_, i64>(1)?, "name": r.get::<_, String>(2)?}),
                            ))
                        },
                    )
                    .expect("pick b")
            };
            out.push(row);
        }
        out
    }

    fn random_a(&mut self) -> (i64, i64, Option<i64>) {
        let id = self.next_id;
        self.next_id += 1;
        let k = self.rng.random_range(0..6);
        let v = if self.rng.random_bool(0.15) {
            None
        } else {
            Some(self.rng.random_range(-5..20))
        };
        (id, k, v)
    }

    /// One random write through HTTP, mirrored in SQLite; returns its timestamp if it had one.
    fn step(&mut self, server: &Server) -> Option<u64> {
        let choice = self.rng.random_range(0..100);
        let ts = if choice < 55 {
            // NDJSON into a: plain objects, {"insert": …}, {"delete": …}.
            let mut lines = Vec::new();
            for _ in 0..self.rng.random_range(1..=4) {
                let (id, k, v) = self.random_a();
                let obj = match (v, self.rng.random_bool(0.5)) {
                    (None, true) => json!({"k": k, "id": id}),
                    (v, _) => json!({"id": id, "k": k, "v": v}),
                };
                lines.push(if self.rng.random_bool(0.5) {
                    obj.to_string()
                } else {
                    json!({ "insert": obj }).to_string()
                });
                self.db
                    .execute(
                        "INSERT INTO a (id, k, v) VALUES (?1, ?2, ?3)",
                        rusqlite::params![id, k, v],
                    )
                    .expect("sqlite insert");
            }
            let n_del = self.rng.random_range(0..=2);
            let victims = self.pick("a", n_del);
            for (rowid, obj) in victims {
                lines.push(json!({ "delete": obj }).to_string());
                self.db
                    .execute("DELETE FROM a WHERE rowid = ?1", [rowid])
                    .expect("sqlite delete");
            }
            // Deletes were picked after the inserts were mirrored, so a delete may hit a row
            // inserted by this very request: the request nets out, as SQLite's state does.
            let body = lines.join("\n") + "\n";
            Some(server.ingest_ok("a", &body))
        } else if choice < 75 {
            // Into b: CSV inserts, or an NDJSON delete.
            let existing = self.pick("b", 1);
            if !existing.is_empty() && self.rng.random_bool(0.35) {
                let (rowid, obj) = existing.into_iter().next().expect("one");
                self.db
                    .execute("DELETE FROM b WHERE rowid = ?1", [rowid])
                    .expect("sqlite delete b");
                Some(server.ingest_ok("b", &format!("{}\n", json!({ "delete": obj }))))
            } else {
                let mut body = String::from("name,k\n");
                for _ in 0..self.rng.random_range(1..=2) {
                    let k = self.rng.random_range(0..6i64);
                    let name = NAMES[self.rng.random_range(0..NAMES.len())];
                    body.push_str(&format!("{name},{k}\n"));
                    self.db
                        .execute(
                            "INSERT INTO b (k, name) VALUES (?1, ?2)",
                            rusqlite::params![k, name],
                        )
                        .expect("sqlite insert b");
                }
                let r = server.ingest("b", "text/csv", &body);
                assert_eq!(r.status, 200, "CSV ingest failed: {}", r.text);
                Some(r.json()["timestamp"].as_u64().expect("timestamp"))
            }
        } else {
            // SQL statements, which SQLite runs unchanged.
            let k = self.rng.random_range(0..6);
            let stmt = match self.rng.random_range(0..3) {
                0 => format!("DELETE FROM a WHERE k = {k}"),
                1 => format!("UPDATE a SET v = v + 1 WHERE k = {k}"),
                _ => format!(
                    "INSERT INTO b VALUES ({k}, '{}')",
                    NAMES[self.rng.random_range(0..NAMES.len())]
                ),
            };
            let changed = self.db.execute(&stmt, []).expect("sqlite statement");
            let results = server.sql_ok(&stmt);
            let ts = results[0]["timestamp"].as_u64();
            if ts.is_none() {
                assert_eq!(
                    changed, 0,
                    "{stmt} changed {changed} rows but returned no timestamp: {:?}",
                    results
                );
            }
            ts
        };
        if let Some(ts) = ts {
            self.record(ts);
        }
        ts
    }

    /// SQLite's result as of `t`: after the latest write with timestamp ≤ t.
    fn state_at(&self, t: u64) -> Multiset {
        let i = self.records.partition_point(|(ts, _)| *ts <= t);
        if i == 0 {
            Multiset::new()
        } else {
            self.records[i - 1].1.clone()
        }
    }

    fn write_times(&self) -> BTreeSet<u64> {
        self.records.iter().map(|(t, _)| *t).collect()
    }
}

fn check_columns(m: &Msg) -> u64 {
    assert_eq!(
        m.kind, "columns",
        "the first message must be columns: {m:?}"
    );
    let names: Vec<&str> = m.data["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["name", "n", "s", "lo", "hi"]);
    let types: Vec<&str> = m.data["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["text", "bigint", "bigint", "bigint", "bigint"]);
    m.data["as_of"].as_u64().expect("as_of")
}

/// Replays the messages against the oracle; returns (final accumulated state, progress checks).
fn verify(msgs: &[Msg], oracle: &Oracle, snapshot: bool, sse: bool) -> (Multiset, usize) {
    let as_of = check_columns(&msgs[0]);
    let writes = oracle.write_times();
    let mut acc = if snapshot {
        Multiset::new()
    } else {
        oracle.state_at(as_of)
    };
    let mut last_update: Option<u64> = None;
    let mut last_progress: Option<u64> = None;
    let mut checks = 0;
    let mut saw_snapshot = false;
    for (i, m) in msgs.iter().enumerate().skip(1) {
        match m.kind.as_str() {
            "update" => {
                let t = m.time();
                assert!(m.id.is_none(), "update events carry no id: {m:?}");
                if let Some(p) = last_progress {
                    assert!(
                        t >= p,
                        "update at {t} after progress {p} promised nothing earlier would come"
                    );
                }
                if let Some(u) = last_update {
                    assert!(t > u, "updates out of time order: {t} after {u}");
                }
                if t == as_of {
                    assert!(
                        snapshot,
                        "snapshot=false, yet an update at as_of {as_of}: {}",
                        m.data
                    );
                    assert_eq!(i, 1, "the snapshot must come right after columns");
                    saw_snapshot = true;
                } else {
                    assert!(t > as_of, "update at {t} before as_of {as_of}");
                    assert!(
                        writes.contains(&t),
                        "update at {t}, which is no write's timestamp"
                    );
                }
                last_update = Some(t);
                apply(&mut acc, &m.data["updates"]);
                let expected = oracle.state_at(t);
                assert_eq!(
                    acc,
                    expected,
                    "after the update at {t}, the accumulated state differs from SQLite:\n{}",
                    diff(&expected, &acc)
                );
            }
            "progress" => {
                let t = m.time();
                if let Some(p) = last_progress {
                    assert!(t > p, "progress went from {p} to {t}");
                }
                if sse {
                    assert_eq!(
                        m.id.as_deref(),
                        Some(t.to_string().as_str()),
                        "SSE id of a progress event must be its time"
                    );
                }
                if snapshot && !saw_snapshot {
                    panic!("progress {t} before the snapshot");
                }
                last_progress = Some(t);
                let expected = oracle.state_at(t - 1);
                assert_eq!(
                    acc,
                    expected,
                    "at progress {t}, the accumulated state differs from SQLite as of {}:\n{}",
                    t - 1,
                    diff(&expected, &acc)
                );
                checks += 1;
            }
            other => panic!("unexpected message {other}: {}", m.data),
        }
    }
    if snapshot {
        assert!(saw_snapshot, "no snapshot was sent");
    }
    (acc, checks)
}

struct Run {
    workers: usize,
    seed: u64,
    writes: usize,
    /// Use `?sql=` instead of `?view=agg`.
    adhoc: bool,
    ndjson: bool,
    snapshot: bool,
    /// Further subscribers that join while the writes go on.
    late_joiners: usize,
}

/// Reads messages until a progress past the last write (known once the writer has finished).
fn collect(stream: &mut common::Stream, last_write: &AtomicU64) -> Vec<Msg> {
    let started = Instant::now();
    let mut msgs = Vec::new();
    loop {
        let m = stream.expect();
        if m.kind == "error" {
            panic!("subscription error: {}", m.data);
        }
        let progress = if m.kind == "progress" {
            Some(m.time())
        } else {
            None
        };
        msgs.push(m);
        let done = last_write.load(Ordering::SeqCst);
        if progress.is_some_and(|t| done != 0 && t > done) {
            return msgs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the subscription did not catch up within 60 s"
        );
    }
}

fn run_oracle(run: Run) {
    let workers = run.workers.to_string();
    let server = Server::start(&["--workers", &workers]);
    let mut oracle = Oracle::new(&server, run.seed);
    // Some history before the subscription starts.
    for _ in 0..15 {
        oracle.step(&server);
    }
    let mut query = if run.adhoc {
        format!("sql={}", encode(VIEW_SQL))
    } else {
        "view=agg".to_string()
    };
    if !run.snapshot {
        query.push_str("&snapshot=false");
    }
    let headers: &[(&str, &str)] = if run.ndjson {
        &[("Accept", "application/x-ndjson")]
    } else {
        &[]
    };
    let mut stream = server.subscribe_ok(&query, headers);
    if run.ndjson {
        assert!(
            stream.content_type.starts_with("application/x-ndjson"),
            "content type {}",
            stream.content_type
        );
    } else {
        assert!(
            stream.content_type.starts_with("text/event-stream"),
            "content type {}",
            stream.content_type
        );
    }
    let last_write = AtomicU64::new(0);
    let writes_done = AtomicUsize::new(0);
    let (msgs, joiners, oracle) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for _ in 0..run.writes {
                oracle.step(&server);
                writes_done.fetch_add(1, Ordering::SeqCst);
            }
            last_write.store(oracle.records.last().expect("writes").0, Ordering::SeqCst);
            oracle
        });
        // Later subscribers to the same query join while the writes go on.
        let joiners: Vec<_> = (0..run.late_joiners)
            .map(|j| {
                let (server, query, last_write, writes_done) =
                    (&server, &query, &last_write, &writes_done);
                s.spawn(move || {
                    let at = run.writes * (j + 1) / (run.late_joiners + 1);
                    while writes_done.load(Ordering::SeqCst) < at {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    let mut stream = server.subscribe_ok(query, headers);
                    collect(&mut stream, last_write)
                })
            })
            .collect();
        let msgs = collect(&mut stream, &last_write);
        let joiners: Vec<Vec<Msg>> = joiners
            .into_iter()
            .map(|j| j.join().expect("joiner"))
            .collect();
        (msgs, joiners, writer.join().expect("writer"))
    });
    for (j, msgs) in joiners.iter().enumerate() {
        let (acc, checks) = verify(msgs, &oracle, run.snapshot, !run.ndjson);
        assert!(
            checks >= 3,
            "late subscriber {j}: only {checks} progress checkpoints"
        );
        assert_eq!(
            acc,
            oracle.records.last().expect("records").1,
            "late subscriber {j}: final state"
        );
    }
    let (acc, checks) = verify(&msgs, &oracle, run.snapshot, !run.ndjson);
    let updates = msgs.iter().filter(|m| m.kind == "update").count();
    assert!(checks >= 10, "only {checks} progress checkpoints");
    assert!(updates >= 10, "only {updates} update messages");
    let final_state = oracle.records.last().expect("records").1.clone();
    assert_eq!(
        acc,
        final_state,
        "final state differs:\n{}",
        diff(&final_state, &acc)
    );
    assert_eq!(
        server.rows("agg"),
        final_state,
        "GET /v1/views/agg differs from SQLite"
    );
    eprintln!(
        "{} writes, {checks} progress checkpoints, {updates} update messages",
        oracle.records.len()
    );
}

#[test]
fn sse_view_subscription_matches_sqlite() {
    run_oracle(Run {
        workers: 2,
        seed: 7,
        writes: 500,
        adhoc: false,
        ndjson: false,
        snapshot: true,
        late_joiners: 4,
    });
}

#[test]
fn ndjson_adhoc_sql_subscription_matches_sqlite() {
    run_oracle(Run {
        workers: 2,
        seed: 11,
        writes: 150,
        adhoc: true,
        ndjson: true,
        snapshot: true,
        late_joiners: 2,
    });
}

#[test]
fn snapshot_false_sends_changes_only() {
    run_oracle(Run {
        workers: 1,
        seed: 23,
        writes: 100,
        adhoc: false,
        ndjson: false,
        snapshot: false,
        late_joiners: 2,
    });
}

#[test]
fn progress_false_sends_updates_without_progress() {
    let server = Server::start(&[]);
    let mut oracle = Oracle::new(&server, 31);
    for _ in 0..10 {
        oracle.step(&server);
    }
    let mut stream = server.subscribe_ok("view=agg&progress=false", &[]);
    let first = stream.expect();
    let as_of = check_columns(&first);
    for _ in 0..40 {
        oracle.step(&server);
    }
    let final_state = oracle.records.last().expect("records").1.clone();
    // Read until the accumulated state reaches the final one (a missing change ends in the
    // stream's read timeout); every update must leave exactly SQLite's state at its time.
    let mut acc = Multiset::new();
    let mut last: Option<u64> = None;
    let mut updates = 0;
    while updates == 0 || acc != final_state {
        let m = stream.expect();
        assert_eq!(
            m.kind, "update",
            "with progress=false only updates may come: {m:?}"
        );
        assert!(m.id.is_none(), "no SSE ids without progress: {m:?}");
        let t = m.time();
        if let Some(l) = last {
            assert!(t > l, "updates out of order");
        } else {
            assert_eq!(t, as_of, "the first update is the snapshot at as_of");
        }
        last = Some(t);
        apply(&mut acc, &m.data["updates"]);
        let expected = oracle.state_at(t);
        assert_eq!(
            acc,
            expected,
            "after the update at {t}:\n{}",
            diff(&expected, &acc)
        );
        updates += 1;
    }
    assert!(updates >= 10, "only {updates} updates");
    assert_eq!(server.rows("agg"), final_state);
}

/// A new subscription starts with a snapshot (the update at its `as_of`) that reflects every
/// write whose response has returned, and after catching up holds exactly the view. Each
/// subscription here is dropped right after its snapshot, so the next one may find the
/// previous stream still running.
#[test]
fn new_subscription_snapshot_reflects_prior_writes() {
    let server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (x bigint NOT NULL); CREATE VIEW c AS SELECT count(*) AS n, sum(x) AS s FROM t");
    let mut expected_sum = 0;
    let mut problems = Vec::new();
    for i in 1..=30i64 {
        let ts = server.ingest_ok("t", &format!("{{\"x\": {i}}}\n"));
        expected_sum += i;
        let expected = json!([{"row": [i, expected_sum], "diff": 1}]);
        let headers: &[(&str, &str)] = if i % 2 == 0 {
            &[("Accept", "application/x-ndjson")]
        } else {
            &[]
        };
        let mut s = server.subscribe_ok("view=c", headers);
        let cols = s.expect();
        assert_eq!(cols.kind, "columns");
        let as_of = cols.data["as_of"].as_u64().expect("as_of");
        let snap = s.expect();
        if snap.kind != "update" || snap.time() != as_of {
            // Without a snapshot, does the stream still converge on the view?
            let mut acc = Multiset::new();
            if snap.kind == "update" {
                apply(&mut acc, &snap.data["updates"]);
            }
            s.read_past(ts, &mut acc);
            problems.push(format!("subscription {i}: no snapshot, first message {}; state after catching up {acc:?}, view {:?}", snap.data, server.rows("c")));
        } else if as_of < ts || snap.data["updates"] != expected {
            problems.push(format!(
                "subscription {i}: write at {ts}, snapshot as of {as_of} = {}",
                snap.data["updates"]
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of 30 subscriptions went wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// `as_of=T` starts the snapshot at an earlier retained time and replays the changes since.
#[test]
fn as_of_subscription_replays_history() {
    let server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (k text NOT NULL, x bigint NOT NULL); CREATE VIEW s AS SELECT k, sum(x) AS total FROM t GROUP BY k");
    let mut times = Vec::new();
    for i in 1..=6i64 {
        let k = if i % 2 == 0 { "even" } else { "odd" };
        times.push(server.ingest_ok("t", &format!("{{\"k\": \"{k}\", \"x\": {i}}}\n")));
    }
    let start = times[2];
    let mut s = server.subscribe_ok(&format!("view=s&as_of={start}"), &[]);
    let cols = s.expect();
    assert_eq!(cols.data["as_of"], start);
    let snap = s.expect();
    assert_eq!((snap.kind.as_str(), snap.time()), ("update", start));
    let mut acc = Multiset::new();
    apply(&mut acc, &snap.data["updates"]);
    assert_eq!(
        acc,
        common::multiset(&[json!(["odd", 4]), json!(["even", 2])]),
        "snapshot as of the third write"
    );
    let (_, msgs) = s.read_past(times[5], &mut acc);
    let update_times: Vec<u64> = msgs
        .iter()
        .filter(|m| m.kind == "update")
        .map(|m| m.time())
        .collect();
    assert_eq!(
        update_times,
        times[3..].to_vec(),
        "one update per later write, in order"
    );
    assert_eq!(
        acc,
        common::multiset(&[json!(["odd", 9]), json!(["even", 12])])
    );
}

/// Dropping the subscribed view ends the stream with `closed`.
#[test]
fn dropping_the_view_closes_the_stream() {
    let server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (x bigint); CREATE VIEW v AS SELECT x FROM t");
    let ts = server.ingest_ok("t", "{\"x\": 1}\n");
    let mut s = server.subscribe_ok("view=v", &[("Accept", "application/x-ndjson")]);
    let mut acc = Multiset::new();
    s.read_past(ts, &mut acc);
    server.sql_ok("DROP VIEW v");
    let m = loop {
        let m = s.expect();
        if m.kind != "progress" {
            break m;
        }
    };
    assert_eq!(m.kind, "error", "{m:?}");
    assert_eq!(m.data["code"], "closed", "{}", m.data);
    assert!(s.next().is_none(), "the stream ends after closed");
    server.assert_healthy();
}

/// SIGTERM ends open streams with `shutting_down` and the process exits 0.
#[test]
fn sigterm_ends_streams_and_exits_cleanly() {
    let mut server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (x bigint)");
    let ts = server.ingest_ok("t", "{\"x\": 1}\n");
    let mut sse = server.subscribe_ok("view=t", &[]);
    let mut ndjson = server.subscribe_ok("view=t", &[("Accept", "application/x-ndjson")]);
    let mut acc = Multiset::new();
    sse.read_past(ts, &mut acc);
    ndjson.read_past(ts, &mut Multiset::new());
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
    for s in [&mut sse, &mut ndjson] {
        let m = loop {
            match s.next() {
                Some(m) if m.kind == "progress" || m.kind == "update" => continue,
                other => break other,
            }
        };
        let m = m.expect("the stream ended without saying why");
        assert_eq!(m.kind, "error", "{m:?}");
        assert_eq!(m.data["code"], "shutting_down", "{}", m.data);
        assert!(s.next().is_none());
    }
}

/// Several clients write at once; each request must land atomically at its own timestamp.
/// The writes are replayed into SQLite in timestamp order afterwards, and the subscription
/// must match that replay at every progress.
#[test]
fn concurrent_writers_match_sqlite_replayed_in_timestamp_order() {
    let server = Server::start(&["--workers", "2"]);
    server.sql_ok(&format!(
        "CREATE TABLE a (id bigint NOT NULL, k bigint NOT NULL, v bigint); \
         CREATE TABLE b (k bigint NOT NULL, name text NOT NULL); \
         CREATE VIEW agg AS {VIEW_SQL}"
    ));
    let mut stream = server.subscribe_ok("view=agg", &[]);
    let last_write = AtomicU64::new(0);
    type Op = (u64, &'static str, Vec<(Value, i64)>);
    let (msgs, ops) = std::thread::scope(|s| {
        let writers: Vec<_> = (0..3u64)
            .map(|w| {
                let server = &server;
                s.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(100 + w);
                    let mut mine: Vec<Value> = Vec::new();
                    let mut ops: Vec<Op> = Vec::new();
                    for i in 0..80i64 {
                        let table = if w == 0 { "b" } else { "a" };
                        let mut changes = Vec::new();
                        for j in 0..rng.random_range(1..=3i64) {
                            let row = if table == "b" {
                                json!({"k": rng.random_range(0..5i64), "name": NAMES[rng.random_range(0..NAMES.len())]})
                            } else {
                                let v = if rng.random_bool(0.1) { Value::Null } else { json!(rng.random_range(0..50i64)) };
                                json!({"id": (w as i64) * 1_000_000 + i * 10 + j, "k": rng.random_range(0..5i64), "v": v})
                            };
                            changes.push((row, 1));
                        }
                        if !mine.is_empty() && rng.random_bool(0.5) {
                            let victim = mine.swap_remove(rng.random_range(0..mine.len()));
                            changes.push((victim, -1));
                        }
                        let body: String = changes
                            .iter()
                            .map(|(r, d)| if *d > 0 { format!("{r}\n") } else { format!("{}\n", json!({ "delete": r })) })
                            .collect();
                        let ts = server.ingest_ok(table, &body);
                        mine.extend(changes.iter().filter(|(_, d)| *d > 0).map(|(r, _)| r.clone()));
                        ops.push((ts, table, changes));
                    }
                    ops
                })
            })
            .collect();
        let done = s.spawn(|| {
            let mut ops: Vec<Op> = writers
                .into_iter()
                .flat_map(|w| w.join().expect("writer"))
                .collect();
            ops.sort_by_key(|(ts, _, _)| *ts);
            last_write.store(ops.last().expect("ops").0, Ordering::SeqCst);
            ops
        });
        let mut msgs = Vec::new();
        let started = Instant::now();
        loop {
            let m = stream.expect();
            assert_ne!(m.kind, "error", "{}", m.data);
            let p = if m.kind == "progress" {
                Some(m.time())
            } else {
                None
            };
            msgs.push(m);
            let done = last_write.load(Ordering::SeqCst);
            if p.is_some_and(|t| done != 0 && t > done) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no catch-up within 60 s"
            );
        }
        (msgs, done.join().expect("ops"))
    });
    for pair in ops.windows(2) {
        assert!(
            pair[0].0 < pair[1].0,
            "two writes share timestamp {}",
            pair[0].0
        );
    }
    // Replay into SQLite in timestamp order.
    let db = rusqlite::Connection::open_in_memory().expect("sqlite");
    db.execute_batch("CREATE TABLE a (id INTEGER NOT NULL, k INTEGER NOT NULL, v INTEGER); CREATE TABLE b (k INTEGER NOT NULL, name TEXT NOT NULL);")
        .expect("schema");
    let mut oracle = Oracle {
        db,
        rng: StdRng::seed_from_u64(0),
        next_id: 0,
        records: Vec::new(),
    };
    for (ts, table, changes) in &ops {
        for (row, diff) in changes {
            let n = if table == &"a" {
                let (id, k, v) = (row["id"].as_i64(), row["k"].as_i64(), row["v"].as_i64());
                if *diff > 0 {
                    oracle.db.execute(
                        "INSERT INTO a VALUES (?1, ?2, ?3)",
                        rusqlite::params![id, k, v],
                    )
                } else {
                    oracle.db.execute("DELETE FROM a WHERE rowid = (SELECT rowid FROM a WHERE id = ?1 AND k = ?2 AND v IS ?3 LIMIT 1)", rusqlite::params![id, k, v])
                }
            } else {
                let (k, name) = (row["k"].as_i64(), row["name"].as_str());
                if *diff > 0 {
                    oracle
                        .db
                        .execute("INSERT INTO b VALUES (?1, ?2)", rusqlite::params![k, name])
                } else {
                    oracle.db.execute("DELETE FROM b WHERE rowid = (SELECT rowid FROM b WHERE k = ?1 AND name = ?2 LIMIT 1)", rusqlite::params![k, name])
                }
            };
            assert_eq!(n.expect("sqlite"), 1);
        }
        oracle.record(*ts);
    }
    let (acc, checks) = verify(&msgs, &oracle, true, true);
    assert!(checks >= 20, "only {checks} progress checkpoints");
    let final_state = oracle.records.last().expect("records").1.clone();
    assert_eq!(acc, final_state, "final:\n{}", diff(&final_state, &acc));
    assert_eq!(server.rows("agg"), final_state);
    eprintln!(
        "{} concurrent writes, {checks} progress checkpoints",
        ops.len()
    );
}

/// Read-your-writes for a subscription that joins a view other clients already follow: its
/// snapshot (the update at its `as_of`) must include every write acknowledged before it.
#[test]
fn second_subscriber_snapshot_reflects_prior_writes() {
    let server = Server::start(&[]);
    server
        .sql_ok("CREATE TABLE t (x bigint NOT NULL); CREATE VIEW c AS SELECT count(*) AS n FROM t");
    // The first subscriber stays connected (and is never read: its buffer has room).
    let mut first = server.subscribe_ok("view=c", &[]);
    assert_eq!(first.expect().kind, "columns");
    let mut stale = Vec::new();
    for i in 1..=30i64 {
        let ts = server.ingest_ok("t", "{\"x\": 1}\n");
        let mut s = server.subscribe_ok("view=c", &[("Accept", "application/x-ndjson")]);
        let cols = s.expect();
        let as_of = cols.data["as_of"].as_u64().expect("as_of");
        let snap = s.expect();
        assert_eq!(
            snap.kind, "update",
            "the snapshot must come first: {snap:?}"
        );
        assert_eq!(snap.time(), as_of);
        if as_of < ts || snap.data["updates"] != json!([{"row": [i], "diff": 1}]) {
            stale.push(format!(
                "write {i} at {ts}: snapshot as of {as_of} = {}",
                snap.data["updates"]
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "{} of 30 snapshots missed an acknowledged write:\n{}",
        stale.len(),
        stale.join("\n")
    );
}
