//! Resuming a subscription after a dropped connection: `Last-Event-ID` or `?resume_from`.

mod common;

use std::time::Duration;

use common::{diff, Multiset, Server};
use serde_json::json;

fn setup(server: &Server) {
    server.sql_ok(
        "CREATE TABLE a (id bigint NOT NULL, k bigint NOT NULL, v bigint); \
         CREATE TABLE b (k bigint NOT NULL, name text NOT NULL); \
         CREATE VIEW agg AS SELECT b.name, count(*) AS n, sum(a.v) AS s FROM a JOIN b ON a.k = b.k GROUP BY b.name",
    );
    server.ingest_ok(
        "b",
        "{\"k\": 0, \"name\": \"zero\"}\n{\"k\": 1, \"name\": \"one\"}\n{\"k\": 2, \"name\": \"two\"}\n",
    );
}

/// Writes `n` changes (inserts, and deletes of earlier inserts); returns the last timestamp.
fn write_some(server: &Server, from: i64, n: i64) -> u64 {
    let mut ts = 0;
    for i in from..from + n {
        let mut body = format!("{{\"id\": {i}, \"k\": {}, \"v\": {}}}\n", i % 3, i * 2);
        if i % 4 == 3 {
            let j = i - 2;
            body.push_str(&format!(
                "{{\"delete\": {{\"id\": {j}, \"k\": {}, \"v\": {}}}}}\n",
                j % 3,
                j * 2
            ));
        }
        ts = server.ingest_ok("a", &body);
    }
    ts
}

/// Reads up to the first progress past the last write, drops the connection, writes more,
/// resumes with `how`, and checks first part + resumed part = the view.
fn resume(how: &str) {
    let server = Server::start(&[]);
    setup(&server);
    let t0 = write_some(&server, 0, 6);
    let mut first = server.subscribe_ok("view=agg", &[]);
    let cols = first.expect();
    assert_eq!(cols.kind, "columns");
    let t1 = write_some(&server, 6, 8);
    assert!(t1 > t0);
    let mut acc = Multiset::new();
    let (resume_at, msgs) = first.read_past(t1, &mut acc);
    assert!(
        msgs.iter().any(|m| m.kind == "update" && m.time() > t0),
        "changes after the snapshot arrived"
    );
    let last = msgs.last().expect("progress");
    assert_eq!(
        last.id.as_deref(),
        Some(resume_at.to_string().as_str()),
        "the progress event's id is its time"
    );
    assert_eq!(
        acc,
        common::multiset(
            server
                .get(&format!("/v1/views/agg?as_of={}", resume_at - 1))
                .json()["rows"]
                .as_array()
                .unwrap()
        ),
        "state at the resume point"
    );
    drop(first);

    // Changes while disconnected.
    let t2 = write_some(&server, 14, 10);
    assert!(t2 >= resume_at);

    let mut resumed = match how {
        "last-event-id" => {
            server.subscribe_ok("view=agg", &[("Last-Event-ID", &resume_at.to_string())])
        }
        "resume_from" => server.subscribe_ok(&format!("view=agg&resume_from={resume_at}"), &[]),
        other => panic!("{other}"),
    };
    let cols = resumed.expect();
    assert_eq!(cols.kind, "columns", "{cols:?}");
    // The resumed part goes on from the state delivered before the connection dropped.
    let mut acc_resumed = acc.clone();
    let (end, msgs) = resumed.read_past(t2, &mut acc_resumed);
    let mut last_update = None;
    for m in &msgs {
        if m.kind == "update" {
            let t = m.time();
            assert!(
                t >= resume_at,
                "resumed stream repeated a change at {t} < {resume_at}: {}",
                m.data
            );
            assert!(t <= t2, "change at {t} after the last write {t2}");
            assert!(last_update.is_none_or(|l| t > l));
            last_update = Some(t);
        }
    }
    assert!(
        last_update.is_some(),
        "the resumed stream carried the changes made while disconnected"
    );
    assert!(end > t2);
    let view = common::multiset(server.read("agg")["rows"].as_array().unwrap());
    assert_eq!(
        acc_resumed,
        view,
        "first part + resumed part != the view:\n{}",
        diff(&view, &acc_resumed)
    );
    let mut acc = acc_resumed;
    // The stream keeps going live after resumption.
    let t3 = server.ingest_ok("b", "{\"k\": 1, \"name\": \"uno\"}\n");
    let (_, msgs) = resumed.read_past(t3, &mut acc);
    assert!(msgs.iter().any(|m| m.kind == "update" && m.time() == t3));
    assert_eq!(
        acc,
        common::multiset(server.read("agg")["rows"].as_array().unwrap())
    );
}

#[test]
fn resume_with_last_event_id() {
    resume("last-event-id");
}

#[test]
fn resume_with_resume_from_parameter() {
    resume("resume_from");
}

/// Resuming from a time before the retention window: an error with code "compacted", either
/// as the HTTP error response or as the stream's first `error` message.
#[test]
fn resume_from_compacted_time_is_refused() {
    let server = Server::start(&["--retention-secs", "1"]);
    server.sql_ok("CREATE TABLE t (x bigint)");
    let t1 = server.ingest_ok("t", "{\"x\": 1}\n");
    let mut s = server.subscribe_ok("view=t", &[]);
    let mut acc = Multiset::new();
    let (p, _) = s.read_past(t1, &mut acc);
    drop(s);
    assert_eq!(acc, common::multiset(&[json!([1])]));
    server.wait_compacted_past(p, Duration::from_secs(15));
    let attempts: [(String, Vec<(&str, String)>); 2] = [
        (format!("view=t&resume_from={p}"), vec![]),
        ("view=t".to_string(), vec![("Last-Event-ID", p.to_string())]),
    ];
    for (query, headers) in attempts {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        match server.subscribe(&query, &headers) {
            Err(r) => {
                let err = r.expect_error(410, "compacted");
                assert!(
                    err["earliest"].as_u64().is_some_and(|e| e > p),
                    "{}",
                    r.text
                );
            }
            Ok(mut stream) => {
                let mut m = stream.expect();
                if m.kind == "columns" {
                    m = stream.expect();
                }
                assert_eq!(
                    m.kind, "error",
                    "resuming from a compacted time must fail: {m:?}"
                );
                assert_eq!(m.data["code"], "compacted", "{}", m.data);
                assert!(stream.next().is_none(), "the stream ends after the error");
            }
        }
    }
    // Resuming inside the window still works.
    let (latest, _) = server.frontiers();
    let mut s = server.subscribe_ok(&format!("view=t&resume_from={latest}"), &[]);
    assert_eq!(s.expect().kind, "columns");
    let t2 = server.ingest_ok("t", "{\"x\": 2}\n");
    let mut acc = Multiset::new();
    s.read_past(t2, &mut acc);
    assert_eq!(
        acc,
        common::multiset(&[json!([2])]),
        "only the change after the resume point"
    );
    server.assert_healthy();
}

/// `as_of` for subscriptions: before retention is 410 `compacted`, in the future is 400.
#[test]
fn subscribe_as_of_outside_the_retained_range() {
    let server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (x bigint)");
    // The retention window starts at the first clock tick.
    server.wait_compacted_past(0, Duration::from_secs(10));
    let (latest, since) = server.frontiers();
    match server.subscribe(&format!("view=t&as_of={}", since - 1), &[]) {
        Err(r) => {
            let err = r.expect_error(410, "compacted");
            assert!(err["earliest"].as_u64().is_some());
        }
        Ok(_) => panic!("as_of before retention was accepted"),
    }
    match server.subscribe(&format!("view=t&as_of={}", latest + 3_600_000), &[]) {
        Err(r) => {
            r.expect_error(400, "future_timestamp");
        }
        Ok(_) => panic!("as_of in the future was accepted"),
    }
}
