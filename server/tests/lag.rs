//! A subscriber that does not read is cut off with `lagged` instead of blocking the service.

mod common;

use std::time::{Duration, Instant};

use common::{apply, Multiset, Server};
use serde_json::json;

#[test]
fn slow_subscriber_gets_lagged_and_the_server_stays_healthy() {
    let server = Server::start(&["--subscriber-buffer", "4"]);
    server.sql_ok("CREATE TABLE big (id bigint NOT NULL, pad text NOT NULL); CREATE TABLE small (x bigint NOT NULL)");
    let mut stream = server.subscribe_ok("view=big", &[]);
    // Not read from here on: the socket buffers fill, then the 4-event buffer.
    let pad = "p".repeat(60);
    let started = Instant::now();
    let mut last_ts = 0;
    let mut id = 0i64;
    for _ in 0..300 {
        let mut body = String::with_capacity(500 * 100);
        for _ in 0..500 {
            body.push_str(&format!("{{\"id\": {id}, \"pad\": \"{pad}\"}}\n"));
            id += 1;
        }
        let ts = server.ingest_ok("big", &body);
        assert!(ts > last_ts);
        last_ts = ts;
    }
    let write_time = started.elapsed();
    // The writes never waited for the subscriber.
    assert!(
        write_time < Duration::from_secs(60),
        "300 ingests took {write_time:?}"
    );

    // Meanwhile the service answers.
    server.assert_healthy();
    assert_eq!(
        server.sql_ok("SELECT count(*) FROM big")[0]["rows"],
        json!([[150_000]])
    );

    // Now read: whatever was buffered, then an error with code "lagged" and resume_from.
    let mut acc = Multiset::new();
    let mut last_progress = None;
    let mut rows_at_progress = 0i64;
    let first = stream.expect();
    assert_eq!(first.kind, "columns");
    let error = loop {
        let m = stream
            .next()
            .expect("the stream ended without an error message");
        match m.kind.as_str() {
            "update" => apply(&mut acc, &m.data["updates"]),
            "progress" => {
                last_progress = Some(m.time());
                rows_at_progress = acc.values().sum();
            }
            "error" => break m,
            other => panic!("unexpected {other}"),
        }
    };
    eprintln!(
        "before the cut: {} rows, last progress {last_progress:?}, error {}",
        acc.len(),
        error.data
    );
    assert_eq!(error.data["code"], "lagged", "{}", error.data);
    assert!(error.data["message"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let resume_from = error.data["resume_from"]
        .as_u64()
        .unwrap_or_else(|| panic!("no resume_from in {}", error.data));
    assert!(
        stream.next().is_none(),
        "the stream closes after the lagged error"
    );
    assert!(
        resume_from < last_ts,
        "the subscriber cannot have seen everything ({resume_from} vs last write {last_ts})"
    );
    if let Some(p) = last_progress {
        assert_eq!(resume_from, p, "resume_from is the last progress delivered");
        // What was delivered up to that progress is exactly the table as of resume_from - 1.
        let r = server.get(&format!("/v1/views/big?as_of={}", resume_from - 1));
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            rows_at_progress,
            r.json()["rows"].as_array().unwrap().len() as i64
        );
        assert!(acc.values().all(|&n| n == 1), "no row was delivered twice");
    }

    // The server is still healthy and serves reads, writes and new subscriptions.
    server.assert_healthy();
    let ts = server.ingest_ok("small", "{\"x\": 1}\n");
    let mut s = server.subscribe_ok("view=small", &[]);
    let mut acc = Multiset::new();
    s.read_past(ts, &mut acc);
    assert_eq!(acc, common::multiset(&[json!([1])]));
    let r = server.get("/metrics");
    assert_eq!(r.status, 200);
}

/// A reader that keeps up but starts (or resumes) further back than its buffer holds events:
/// the catch-up must not cut it off, and if it does, `resume_from` must let it go on, so that
/// reconnecting from `resume_from` converges on the live stream.
#[test]
fn lagged_subscriber_can_resume_and_catch_up() {
    let server = Server::start(&["--subscriber-buffer", "16"]);
    server.sql_ok("CREATE TABLE t (x bigint NOT NULL)");
    let t0 = server.ingest_ok("t", "{\"x\": 0}\n");
    let mut last = t0;
    for i in 1..=60 {
        last = server.ingest_ok("t", &format!("{{\"x\": {i}}}\n"));
    }
    let mut acc = Multiset::new();
    let mut query = format!("view=t&as_of={t0}");
    let mut reconnects = 0;
    'outer: loop {
        let mut s = server.subscribe_ok(&query, &[]);
        assert_eq!(s.expect().kind, "columns");
        let mut delivered = acc.clone();
        loop {
            let m = s.expect();
            match m.kind.as_str() {
                "update" => apply(&mut delivered, &m.data["updates"]),
                "progress" => {
                    acc = delivered.clone();
                    if m.time() > last {
                        break 'outer;
                    }
                }
                "error" => {
                    assert_eq!(m.data["code"], "lagged", "{}", m.data);
                    let resume = m.data["resume_from"].as_u64().expect("resume_from");
                    assert!(resume > t0, "lagged with resume_from {resume}, before the subscription's own start {t0}: {}", m.data);
                    reconnects += 1;
                    assert!(reconnects <= 10, "still lagging after 10 reconnects");
                    query = format!("view=t&resume_from={resume}");
                    continue 'outer;
                }
                other => panic!("unexpected {other}"),
            }
        }
    }
    let expected: Vec<serde_json::Value> = (0..=60).map(|i| json!([i])).collect();
    assert_eq!(acc, common::multiset(&expected));
}

/// Two subscribers of one view: one never reads and is cut off; the other, reading along,
/// gets every change and ends with exactly the table.
#[test]
fn lagging_subscriber_does_not_disturb_others_on_the_same_view() {
    let server = Server::start(&["--subscriber-buffer", "8"]);
    server.sql_ok("CREATE TABLE big (id bigint NOT NULL, pad text NOT NULL)");
    let mut slow = server.subscribe_ok("view=big", &[]);
    let mut reader = server.subscribe_ok("view=big", &[("Accept", "application/x-ndjson")]);
    let seen = std::sync::atomic::AtomicU64::new(0);
    let done = std::sync::atomic::AtomicU64::new(0);
    let pad = "q".repeat(60);
    let acc = std::thread::scope(|s| {
        let reading = s.spawn(|| {
            let mut acc = Multiset::new();
            assert_eq!(reader.expect().kind, "columns");
            loop {
                let m = reader.expect();
                match m.kind.as_str() {
                    "update" => apply(&mut acc, &m.data["updates"]),
                    "progress" => {
                        seen.store(m.time(), std::sync::atomic::Ordering::SeqCst);
                        let d = done.load(std::sync::atomic::Ordering::SeqCst);
                        if d != 0 && m.time() > d {
                            return acc;
                        }
                    }
                    _ => panic!("the reading subscriber got {}", m.data),
                }
            }
        });
        let mut id = 0i64;
        let mut last = 0;
        for _ in 0..300 {
            let mut body = String::with_capacity(500 * 100);
            for _ in 0..500 {
                body.push_str(&format!("{{\"id\": {id}, \"pad\": \"{pad}\"}}\n"));
                id += 1;
            }
            last = server.ingest_ok("big", &body);
            // Lockstep with the reader, so that it never falls behind by itself.
            let deadline = Instant::now() + Duration::from_secs(30);
            while seen.load(std::sync::atomic::Ordering::SeqCst) <= last {
                assert!(Instant::now() < deadline, "the reading subscriber stalled");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        done.store(last, std::sync::atomic::Ordering::SeqCst);
        // One more (empty) write, for a progress past `last` that the reader sees after `done`.
        server.ingest_ok("big", "");
        reading.join().expect("reader")
    });
    assert_eq!(acc.len(), 150_000);
    assert!(acc.values().all(|&n| n == 1));
    assert_eq!(
        server.sql_ok("SELECT count(*) FROM big")[0]["rows"],
        json!([[150_000]])
    );
    // The one that never read was cut off with lagged.
    let error = loop {
        match slow.next() {
            Some(m) if m.kind == "error" => break m,
            Some(_) => continue,
            None => panic!("the slow subscriber's stream ended without an error"),
        }
    };
    assert_eq!(error.data["code"], "lagged", "{}", error.data);
    server.assert_healthy();
}
