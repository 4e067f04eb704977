//! Windows and temporal filters end to end.
//!
//! - `tumble` / `hop` grouping on fixed data, with their `_end` companions, and the errors for
//!   misusing them. (Randomized comparisons with SQLite are in `oracle.rs`.)
//! - Temporal filters against the engine's real clock: rows whose timestamps are placed a few
//!   hundred milliseconds after the engine's current time must leave a view, its subscription
//!   and ad-hoc reads exactly when logical time passes them, without any write to move time
//!   along (the engine's clock does). Waits follow the subscription's progress, bounded by a
//!   deadline, never a blind sleep.
//! - `now()` in places a temporal filter cannot be: each refused with an error naming the place.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use freshet_dataflows::engine::{Engine, EngineConfig, SubscribeOptions, SubscribeTarget};
use freshet_dataflows::subscribe::SubscribeEvent;
use freshet_dataflows::{Row, Value};

fn start(workers: usize) -> Engine {
    Engine::start(EngineConfig {
        workers,
        ..Default::default()
    })
    .expect("engine starts")
}

fn rows(engine: &Engine, sql: &str) -> Vec<Vec<Value>> {
    let res = engine.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    res.last()
        .expect("a result")
        .rows
        .clone()
        .expect("rows")
        .into_iter()
        .map(Row::into_values)
        .collect()
}

/// The error `sql` fails with, as (code, message).
fn error(engine: &Engine, sql: &str) -> (&'static str, String) {
    match engine.execute(sql) {
        Ok(_) => panic!("{sql}: expected an error"),
        Err(e) => (e.error.code(), e.error.to_string()),
    }
}

fn ts(text: &str) -> Value {
    Value::Timestamp(freshet_dataflows::value::parse_timestamp(text).expect("timestamp"))
}

fn int(i: i64) -> Value {
    Value::Int(i)
}

#[test]
fn tumbling_and_hopping_windows_group_rows() {
    for workers in [1, 2] {
        let engine = start(workers);
        engine
            .execute(
                "CREATE TABLE ev (k text, ts timestamp, v bigint);
                 INSERT INTO ev VALUES
                   ('a', TIMESTAMP '2024-01-01 00:00:01', 1),
                   ('a', TIMESTAMP '2024-01-01 00:00:04', 2),
                   ('b', TIMESTAMP '2024-01-01 00:00:05', 4),
                   ('a', TIMESTAMP '2024-01-01 00:00:09.5', 8),
                   ('b', NULL, 16);
                 CREATE VIEW tumbling AS
                   SELECT tumble(ts, INTERVAL '5 seconds') AS w,
                          tumble_end(ts, INTERVAL '5 seconds') AS e, sum(v) AS s
                   FROM ev GROUP BY tumble(ts, INTERVAL '5 seconds');
                 CREATE VIEW hopping AS
                   SELECT k, hop(ts, INTERVAL '10 seconds', INTERVAL '5 seconds') AS w,
                          hop_end(ts, INTERVAL '10 seconds', INTERVAL '5 seconds') AS e,
                          sum(v) AS s, count(*) AS n
                   FROM ev GROUP BY k, w",
            )
            .expect("setup");
        // A NULL timestamp is its own tumbling window (like any NULL group key) …
        assert_eq!(
            rows(&engine, "SELECT * FROM tumbling ORDER BY w NULLS FIRST"),
            vec![
                vec![Value::Null, Value::Null, int(16)],
                vec![ts("2024-01-01 00:00:00"), ts("2024-01-01 00:00:05"), int(3)],
                vec![
                    ts("2024-01-01 00:00:05"),
                    ts("2024-01-01 00:00:10"),
                    int(12)
                ],
            ]
        );
        // … but belongs to no hopping window.
        let expected = vec![
            vec![
                Value::text("a"),
                ts("2023-12-31 23:59:55"),
                ts("2024-01-01 00:00:05"),
                int(3),
                int(2),
            ],
            vec![
                Value::text("a"),
                ts("2024-01-01 00:00:00"),
                ts("2024-01-01 00:00:10"),
                int(11),
                int(3),
            ],
            vec![
                Value::text("a"),
                ts("2024-01-01 00:00:05"),
                ts("2024-01-01 00:00:15"),
                int(8),
                int(1),
            ],
            vec![
                Value::text("b"),
                ts("2024-01-01 00:00:00"),
                ts("2024-01-01 00:00:10"),
                int(4),
                int(1),
            ],
            vec![
                Value::text("b"),
                ts("2024-01-01 00:00:05"),
                ts("2024-01-01 00:00:15"),
                int(4),
                int(1),
            ],
        ];
        assert_eq!(
            rows(&engine, "SELECT * FROM hopping ORDER BY k, w"),
            expected
        );
        // The same query ad hoc, grouping by position; deleting a row retracts all its copies.
        let adhoc = "SELECT k, hop(ts, INTERVAL '10 seconds', INTERVAL '5 seconds'), sum(v) \
                     FROM ev GROUP BY 1, 2 ORDER BY 1, 2";
        assert_eq!(rows(&engine, adhoc).len(), 5);
        engine
            .execute("DELETE FROM ev WHERE v = 8")
            .expect("delete");
        assert_eq!(
            rows(&engine, "SELECT k, w, s FROM hopping ORDER BY k, w"),
            vec![
                vec![Value::text("a"), ts("2023-12-31 23:59:55"), int(3)],
                vec![Value::text("a"), ts("2024-01-01 00:00:00"), int(3)],
                vec![Value::text("b"), ts("2024-01-01 00:00:00"), int(4)],
                vec![Value::text("b"), ts("2024-01-01 00:00:05"), int(4)],
            ]
        );
        // A date is a timestamp at midnight.
        assert_eq!(
            rows(
                &engine,
                "SELECT hop(d, INTERVAL '2 days', INTERVAL '1 day') AS w, count(*) \
                 FROM (VALUES (DATE '2024-03-02')) AS t(d) GROUP BY w ORDER BY w"
            ),
            vec![
                vec![ts("2024-03-01"), int(1)],
                vec![ts("2024-03-02"), int(1)]
            ]
        );
        let plan = rows(
            &engine,
            "EXPLAIN SELECT hop(ts, INTERVAL '10 seconds', INTERVAL '5 seconds'), count(*) \
             FROM ev GROUP BY 1",
        );
        let plan: Vec<String> = plan.iter().map(|r| r[0].to_string()).collect();
        // Only `ts` (#1) is copied per window: the hop reads it as #0 of its narrowed input.
        assert!(
            plan.iter()
                .any(|l| l.contains("FlatMap hop(#0, 00:00:10, 00:00:05)")
                    && l.contains("Project (#1)")),
            "{plan:?}"
        );
        engine.shutdown();
    }
}

#[test]
fn window_misuse_is_refused() {
    let engine = start(1);
    engine
        .execute("CREATE TABLE ev (k text, ts timestamp, v bigint)")
        .expect("setup");
    for (sql, code, needle) in [
        (
            "SELECT count(*) FROM ev GROUP BY hop(ts, INTERVAL '10 seconds', INTERVAL '3 seconds')",
            "invalid_query",
            "hop size (00:00:10) must be a multiple of the slide (00:00:03)",
        ),
        (
            "SELECT count(*) FROM ev GROUP BY hop(ts, INTERVAL '10 seconds', INTERVAL '0 seconds')",
            "invalid_query",
            "must be positive",
        ),
        (
            "SELECT count(*) FROM ev GROUP BY hop(ts, INTERVAL '1 day', INTERVAL '1 second')",
            "invalid_query",
            "at most 10000",
        ),
        (
            "SELECT count(*) FROM ev GROUP BY hop(ts, ts - ts, INTERVAL '1 second')",
            "invalid_query",
            "must be a constant interval",
        ),
        (
            "SELECT count(*) FROM ev GROUP BY hop(k, INTERVAL '2 seconds', INTERVAL '1 second')",
            "invalid_query",
            "must be a timestamp",
        ),
        (
            "SELECT count(*) FROM ev GROUP BY hop(ts, INTERVAL '2 seconds')",
            "invalid_query",
            "takes 3 arguments",
        ),
        (
            "SELECT hop(ts, INTERVAL '2 seconds', INTERVAL '1 second') FROM ev",
            "unsupported",
            "hop(…) outside GROUP BY",
        ),
        (
            "SELECT k FROM ev WHERE hop(ts, INTERVAL '2 seconds', INTERVAL '1 second') > ts",
            "unsupported",
            "hop(…) outside GROUP BY",
        ),
        (
            "SELECT hop_end(ts, INTERVAL '4 seconds', INTERVAL '1 second'), count(*) FROM ev \
             GROUP BY hop(ts, INTERVAL '2 seconds', INTERVAL '1 second')",
            "invalid_query",
            "column \"ts\" must appear in the GROUP BY clause",
        ),
        (
            "SELECT hop_end(ts, INTERVAL '2 seconds', INTERVAL '1 second') FROM ev",
            "unsupported",
            "hop_end(…) outside GROUP BY",
        ),
        (
            "SELECT tumble(ts, 5) FROM ev",
            "invalid_query",
            "second argument of tumble must be an interval",
        ),
    ] {
        let (c, message) = error(&engine, sql);
        assert_eq!(c, code, "{sql}: {message}");
        assert!(message.contains(needle), "{sql}: {message}");
    }
    engine.shutdown();
}

#[test]
fn now_outside_a_temporal_filter_is_refused() {
    let engine = start(1);
    engine
        .execute("CREATE TABLE ev (id bigint, ts timestamp); CREATE TABLE other (id bigint)")
        .expect("setup");
    for (sql, needle) in [
        ("SELECT now() FROM ev", "now() in the select list"),
        (
            "SELECT id, ts < mz_now() FROM ev",
            "now() in the select list",
        ),
        (
            "SELECT id FROM ev WHERE ts > now() OR id = 1",
            "now() inside OR",
        ),
        (
            "SELECT id FROM ev WHERE NOT (ts > now())",
            "now() inside NOT",
        ),
        (
            "SELECT id FROM ev WHERE now() NOT BETWEEN ts AND ts",
            "now() in NOT BETWEEN",
        ),
        (
            "SELECT id FROM ev WHERE ts <> now()",
            "now() compared with <>",
        ),
        (
            "SELECT id FROM ev WHERE now() - now() < ts - ts",
            "on one side of the comparison",
        ),
        (
            "SELECT ev.id FROM ev JOIN other ON ev.id = other.id AND ev.ts > now()",
            "now() in a JOIN condition",
        ),
        (
            "SELECT id, count(*) FROM ev GROUP BY id HAVING max(ts) > now()",
            "now() in HAVING",
        ),
        (
            "SELECT count(*) FROM ev GROUP BY ts < now()",
            "now() in GROUP BY",
        ),
        ("SELECT id FROM ev ORDER BY now() - ts", "now() in ORDER BY"),
        (
            "WITH RECURSIVE r(id, ts) AS (SELECT id, ts FROM ev UNION \
             SELECT id + 1, ts FROM r WHERE ts > now() AND id < 5) SELECT * FROM r",
            "now() in the recursive term of WITH RECURSIVE",
        ),
        (
            "INSERT INTO ev VALUES (1, now())",
            "now() outside the WHERE clause of a query",
        ),
        (
            "DELETE FROM ev WHERE ts < current_timestamp",
            "now() outside the WHERE clause of a query",
        ),
    ] {
        let (code, message) = error(&engine, sql);
        assert_eq!(code, "unsupported", "{sql}: {message}");
        assert!(message.contains(needle), "{sql}: {message}");
        assert!(message.contains("temporal filter"), "{sql}: {message}");
    }
    let (code, message) = error(&engine, "SELECT id FROM ev WHERE now() > id");
    assert_eq!(code, "invalid_query", "{message}");
    assert!(
        message.contains("cannot be compared with bigint"),
        "{message}"
    );
    engine.shutdown();
}

/// A row of the temporal test: its id and the logical time (ms) its timestamp column names.
struct Event {
    id: i64,
    /// `None` for a NULL timestamp.
    at_ms: Option<u64>,
}

/// Whether `e` is in `WHERE ts + INTERVAL '1 second' > now()` at logical time `t`: while
/// `t * 1000 µs < ts + 1 s`, that is `t < at_ms + 1000`.
fn recent_at(e: &Event, t: u64) -> bool {
    e.at_ms.is_some_and(|at| t < at + 1000)
}

/// Whether `e` is in `WHERE now() BETWEEN ts AND ts + INTERVAL '300 milliseconds'` at `t`.
fn due_at(e: &Event, t: u64) -> bool {
    e.at_ms.is_some_and(|at| at <= t && t <= at + 300)
}

/// A subscription's accumulated rows, with the time each id was last retracted.
#[derive(Default)]
struct Followed {
    state: BTreeMap<Vec<Value>, isize>,
    retracted_at: BTreeMap<Vec<Value>, u64>,
    upper: u64,
}

impl Followed {
    fn apply(&mut self, event: SubscribeEvent) -> Option<u64> {
        match event {
            SubscribeEvent::Update { time, updates } => {
                for (row, d) in updates {
                    let row = row.into_values();
                    if d < 0 {
                        self.retracted_at.insert(row.clone(), time);
                    }
                    *self.state.entry(row).or_default() += d;
                }
                self.state.retain(|_, d| *d != 0);
                None
            }
            SubscribeEvent::Progress { upper } => {
                self.upper = upper;
                Some(upper)
            }
            SubscribeEvent::Error { code, message, .. } => panic!("{code}: {message}"),
        }
    }

    fn ids(&self) -> Vec<i64> {
        let mut out = Vec::new();
        for (row, d) in &self.state {
            assert!(*d > 0, "{row:?} has multiplicity {d}");
            if let Value::Int(i) = row[0] {
                out.extend(std::iter::repeat_n(i, *d as usize));
            }
        }
        out
    }
}

fn id_of(row: &Row) -> i64 {
    match row.get(0) {
        Value::Int(i) => i,
        other => panic!("not an id: {other:?}"),
    }
}

fn expected_ids(events: &[Event], t: u64, present: fn(&Event, u64) -> bool) -> Vec<i64> {
    events
        .iter()
        .filter(|e| present(e, t))
        .map(|e| e.id)
        .collect()
}

#[test]
fn temporal_filters_retract_rows_as_time_passes() {
    for workers in [1, 2] {
        temporal_filters_with(workers);
    }
}

fn temporal_filters_with(workers: usize) {
    let engine = Engine::start(EngineConfig {
        workers,
        retention: Duration::from_secs(1),
        tick: Duration::from_millis(100),
        ..Default::default()
    })
    .expect("engine starts");
    engine
        .execute(
            "CREATE TABLE ev (id bigint, ts timestamp);
             CREATE VIEW recent AS SELECT id FROM ev WHERE ts + INTERVAL '1 second' > now();
             CREATE VIEW due AS SELECT id FROM ev
               WHERE now() BETWEEN ts AND ts + INTERVAL '300 milliseconds';
             CREATE VIEW recent_count AS
               SELECT count(*) AS n FROM ev WHERE now() - ts < INTERVAL '1 second'",
        )
        .expect("setup");
    let (now, _) = engine.frontiers();
    // Expired already, expiring within ~2 s, and long-lived; one NULL, never present.
    let offsets: [(i64, Option<i64>); 7] = [
        (1, Some(-3_000)),
        (2, Some(-700)),
        (3, Some(-200)),
        (4, Some(400)),
        (5, Some(900)),
        (6, Some(60_000)),
        (7, None),
    ];
    let events: Vec<Event> = offsets
        .iter()
        .map(|(id, off)| Event {
            id: *id,
            at_ms: off.map(|o| (now as i64 + o) as u64),
        })
        .collect();
    let batch: Vec<(Row, isize)> = events
        .iter()
        .map(|e| {
            let ts = e
                .at_ms
                .map(|ms| Value::Timestamp(ms as i64 * 1000))
                .unwrap_or(Value::Null);
            (Row::new(vec![int(e.id), ts]), 1)
        })
        .collect();
    engine.write("ev", batch).expect("write");

    // Followed: the view `recent` (by name), the `due` query ad hoc, and the count view.
    let targets = [
        SubscribeTarget::Name("recent".into()),
        SubscribeTarget::Sql(
            "SELECT id FROM ev WHERE now() BETWEEN ts AND ts + INTERVAL '300 milliseconds'".into(),
        ),
        SubscribeTarget::Name("recent_count".into()),
    ];
    let subs: Vec<_> = targets
        .into_iter()
        .map(|t| {
            engine
                .subscribe(t, SubscribeOptions::default())
                .expect("subscribe")
        })
        .collect();
    let mut followed: [Followed; 3] = Default::default();

    // Follow until logical time is past every short-lived row's end, checking at every step.
    let short = |e: &&Event| e.at_ms.is_some_and(|at| at < now + 10_000);
    let last_end = events
        .iter()
        .filter(short)
        .filter_map(|e| e.at_ms)
        .max()
        .expect("rows")
        + 1_000;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut checks = 0;
    while followed.iter().any(|f| f.upper <= last_end) {
        let uppers: Vec<u64> = followed.iter().map(|f| f.upper).collect();
        assert!(Instant::now() < deadline, "stuck at {uppers:?}");
        let mut idle = true;
        for (i, sub) in subs.iter().enumerate() {
            while let Ok(event) = sub.events.try_recv() {
                idle = false;
                let f = &mut followed[i];
                let Some(upper) = f.apply(event) else {
                    continue;
                };
                if upper <= sub.as_of {
                    continue;
                }
                // The state is exact as of `upper - 1`.
                let t = upper - 1;
                match i {
                    0 => assert_eq!(f.ids(), expected_ids(&events, t, recent_at), "at {t}"),
                    1 => assert_eq!(f.ids(), expected_ids(&events, t, due_at), "at {t}"),
                    _ => {
                        let n = expected_ids(&events, t, recent_at).len() as i64;
                        let rows: Vec<&Vec<Value>> = f.state.keys().collect();
                        assert_eq!(rows, vec![&vec![int(n)]], "count at {t}");
                    }
                }
                checks += 1;
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(checks >= 6, "only {checks} progress checks");
    assert_eq!(
        followed[0].ids(),
        vec![6],
        "only the long-lived row remains"
    );
    assert_eq!(followed[1].ids(), Vec::<i64>::new());

    // Each row left exactly when its bound stopped holding: `ts + 1 s > now()` from
    // at + 1000 ms on, `now() <= ts + 300 ms` from at + 301 ms on (rows that left before the
    // subscription started are not in its snapshot and have no retraction).
    for e in events.iter().filter(short) {
        let key = vec![int(e.id)];
        let at = e.at_ms.expect("short rows have a timestamp");
        let ends = [at + 1000, at + 301];
        for (i, end) in ends.into_iter().enumerate() {
            let expected = (end > subs[i].as_of).then_some(end);
            assert_eq!(
                followed[i].retracted_at.get(&key).copied(),
                expected,
                "id {} in subscription {i}",
                e.id
            );
        }
    }
    assert_eq!(followed[0].retracted_at.get(&vec![int(6)]), None);

    // Reads apply the same filter at their timestamp: the latest, and an earlier one.
    let res = engine
        .execute("SELECT id FROM ev WHERE ts + INTERVAL '1 second' > now() ORDER BY id")
        .expect("select");
    let read = res.last().expect("result");
    let t = read.timestamp.expect("read timestamp");
    let ids: Vec<i64> = read
        .rows
        .as_ref()
        .expect("rows")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, expected_ids(&events, t, recent_at));
    let (latest, since) = engine.frontiers();
    let earlier = latest.saturating_sub(300).max(since);
    let res = engine
        .execute(&format!(
            "SELECT id FROM recent ORDER BY id AS OF {earlier}"
        ))
        .expect("select as of");
    let ids: Vec<i64> = res[0]
        .rows
        .as_ref()
        .expect("rows")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, expected_ids(&events, earlier, recent_at));

    // State stays bounded: once compaction passes the retractions, the expired rows are gone
    // from the view's arrangement (one record left: the long-lived row).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = engine.item_stats();
        let records = stats
            .iter()
            .find(|s| s.name == "recent")
            .expect("stats")
            .records;
        if records == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the view still holds {records} records"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    engine.shutdown();
}
