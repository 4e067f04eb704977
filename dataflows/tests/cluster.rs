//! A cluster inside one test process: process 0 (the engine) and worker-only processes on
//! loopback, each with its own timely runtime and TCP connections, against a single-process
//! engine given the same statements. Reads, ad-hoc queries and subscriptions must agree.

use std::collections::BTreeMap;
use std::time::Duration;

use freshet_dataflows::cluster::{ClusterConfig, WorkerProcess};
use freshet_dataflows::engine::{Engine, EngineConfig, SubscribeOptions, SubscribeTarget};
use freshet_dataflows::subscribe::SubscribeEvent;
use freshet_dataflows::{Row, Value};

/// A port nobody listens on, below the kernel's ephemeral range (32768 and up on Linux): a
/// port the kernel hands out for `:0` can be taken by any outgoing connection of a test
/// running beside this one before it is bound again (a cluster test once waited 20 s for a
/// process whose port was gone). Ports are taken in turn from a start that depends on the
/// process, so two tests of one binary never get the same one.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 12_000) as u16;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (start + n % 12_000) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Process 0's engine and the other processes of a cluster of `processes` × `workers`.
fn cluster(processes: usize, workers: usize) -> (Engine, Vec<WorkerProcess>) {
    let addresses: Vec<String> = (0..processes)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let config = |process| ClusterConfig {
        processes,
        process,
        addresses: addresses.clone(),
        peer_timeout: Duration::from_secs(20),
    };
    // Start the worker processes first: start-up order must not matter.
    let others: Vec<_> = (1..processes)
        .map(|p| {
            let c = config(p);
            std::thread::spawn(move || {
                WorkerProcess::start(c, workers, None, freshet_dataflows::wake::IDLE_SPIN)
            })
        })
        .collect();
    let engine = Engine::start(EngineConfig {
        workers,
        cluster: Some(config(0)),
        ..Default::default()
    })
    .expect("process 0 starts");
    let others = others
        .into_iter()
        .map(|t| t.join().expect("thread").expect("worker process starts"))
        .collect();
    (engine, others)
}

fn rows(engine: &Engine, sql: &str) -> Vec<Vec<Value>> {
    let res = engine.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows: Vec<Vec<Value>> = res
        .last()
        .expect("a result")
        .rows
        .clone()
        .expect("rows")
        .into_iter()
        .map(|r| r.into_values())
        .collect();
    rows.sort();
    rows
}

/// Accumulates a subscription until progress passes `ts`.
fn follow(
    events: &async_channel::Receiver<SubscribeEvent>,
    state: &mut BTreeMap<Row, isize>,
    ts: u64,
) {
    loop {
        let event = events
            .recv_blocking()
            .expect("the subscription stream stays open");
        match event {
            SubscribeEvent::Update { updates, .. } => {
                for (r, d) in updates {
                    *state.entry(r).or_default() += d;
                }
                state.retain(|_, d| *d != 0);
            }
            SubscribeEvent::Progress { upper } if upper > ts => return,
            SubscribeEvent::Progress { .. } => {}
            SubscribeEvent::Error { message, .. } => panic!("{message}"),
        }
    }
}

fn as_rows(state: &BTreeMap<Row, isize>) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for (r, d) in state {
        for _ in 0..*d {
            out.push(r.clone().into_values());
        }
    }
    out.sort();
    out
}

const SETUP: &str = "CREATE TABLE t (k bigint, v text); CREATE TABLE u (k bigint, w bigint);
    CREATE VIEW j AS SELECT t.k, v, sum(w) AS s, count(*) AS n FROM t JOIN u ON t.k = u.k GROUP BY t.k, v";

const QUERIES: &[&str] = &[
    "SELECT * FROM t",
    "SELECT * FROM j",
    "SELECT k, count(*) FROM u GROUP BY k",
    "SELECT t.k, u.w FROM t LEFT JOIN u ON t.k = u.k",
    "SELECT DISTINCT w % 7 FROM u",
    "SELECT * FROM late",
];

/// The same statements on a cluster and on one process give the same answers, and a
/// subscription started before the writes ends up equal to the view.
fn same_as_single_process(processes: usize, workers: usize) {
    let single = Engine::start(EngineConfig::default()).expect("single process");
    let (engine, others) = cluster(processes, workers);
    assert_eq!(engine.topology(), (processes, workers));
    for e in [&single, &engine] {
        e.execute(SETUP).expect("setup");
    }
    let sub = engine
        .subscribe(
            SubscribeTarget::Name("j".into()),
            SubscribeOptions::default(),
        )
        .expect("subscribe");
    let mut state = BTreeMap::new();
    let mut last = 0;
    for round in 0..20i64 {
        let mut sql = format!(
            "INSERT INTO t VALUES ({round}, 'v{round}'), ({}, 'w'); INSERT INTO u VALUES ",
            round % 5
        );
        let values: Vec<String> = (0..8)
            .map(|i| format!("({}, {})", (round + i) % 9, i * round))
            .collect();
        sql.push_str(&values.join(", "));
        if round % 4 == 3 {
            sql.push_str(&format!("; DELETE FROM u WHERE w < {round}"));
        }
        if round == 10 {
            // A view created after start, over data that already exists.
            sql.push_str(
                "; CREATE VIEW late AS SELECT v, max(w) AS m FROM t JOIN u ON t.k = u.k GROUP BY v",
            );
        }
        for e in [&single, &engine] {
            let res = e.execute(&sql).unwrap_or_else(|err| panic!("{sql}: {err}"));
            if std::ptr::eq(e, &engine) {
                last = res.iter().filter_map(|r| r.timestamp).max().unwrap_or(last);
            }
        }
    }
    for q in QUERIES {
        assert_eq!(rows(&engine, q), rows(&single, q), "{q}");
    }
    for name in ["j", "late", "t"] {
        let mut a = engine.read(name, None).expect("read").rows;
        let mut b = single.read(name, None).expect("read").rows;
        a.sort();
        b.sort();
        assert_eq!(a, b, "read {name}");
    }
    follow(&sub.events, &mut state, last);
    assert_eq!(as_rows(&state), rows(&single, "SELECT * FROM j"));
    drop(sub);
    assert!(engine.healthy());

    engine.shutdown();
    for p in others {
        p.wait(Duration::from_secs(20))
            .expect("worker processes stop cleanly with process 0");
    }
    single.shutdown();
}

#[test]
fn two_processes_of_one_worker() {
    same_as_single_process(2, 1);
}

#[test]
fn three_processes_of_two_workers() {
    same_as_single_process(3, 2);
}
