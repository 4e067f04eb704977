//! Evaluation never panics on user data: random expressions over extreme values either give a
//! result or an error, and the engine keeps answering afterwards.

use freshet_dataflows::engine::{Engine, EngineConfig};
use rand::{Rng, SeedableRng};

const COLUMNS: [&str; 6] = ["i", "f", "s", "ts", "d", "b"];

fn leaf(rng: &mut impl Rng) -> String {
    match rng.random_range(0..14) {
        0..=5 => COLUMNS[rng.random_range(0..COLUMNS.len())].to_string(),
        6 => "9223372036854775807".into(),
        7 => "(-9223372036854775807 - 1)".into(),
        8 => "0".into(),
        9 => "'1e308'::float8 * 10".into(),
        10 => "''".into(),
        11 => "NULL".into(),
        12 => "INTERVAL '1000000000 days'".into(),
        _ => "DATE '2024-02-29'".into(),
    }
}

fn expr(rng: &mut impl Rng, depth: u32) -> String {
    if depth == 0 || rng.random_bool(0.3) {
        return leaf(rng);
    }
    let a = expr(rng, depth - 1);
    let b = expr(rng, depth - 1);
    match rng.random_range(0..24) {
        0 => format!("({a} + {b})"),
        1 => format!("({a} - {b})"),
        2 => format!("({a} * {b})"),
        3 => format!("({a} / {b})"),
        4 => format!("({a} % {b})"),
        5 => format!("({a} || {b})"),
        6 => format!("CAST({a} AS bigint)"),
        7 => format!("CAST({a} AS timestamp)"),
        8 => format!("CAST({a} AS date)"),
        9 => format!("abs({a})"),
        10 => format!("round({a}, {b})"),
        11 => format!("substr({a}, {b}, {b})"),
        12 => format!("lpad({a}, {b})"),
        13 => format!("left({a}, {b})"),
        14 => format!("split_part({a}, ',', {b})"),
        15 => format!("date_trunc('month', {a})"),
        16 => format!("extract(year FROM {a})"),
        17 => format!("tumble({a}, INTERVAL '7 days')"),
        18 => format!("power({a}, {b})"),
        19 => format!("({a} = {b})"),
        20 => format!("CASE WHEN {a} > {b} THEN {a} ELSE {b} END"),
        21 => format!("coalesce({a}, {b})"),
        22 => format!("-({a})"),
        _ => format!("repeat({a}, {b})"),
    }
}

/// An engine with table `x` holding extreme values.
fn engine_with_extremes() -> Engine {
    let engine = Engine::start(EngineConfig {
        workers: 2,
        ..Default::default()
    })
    .unwrap();
    engine
        .execute(
            "CREATE TABLE x (i bigint, f double precision, s text, ts timestamp, d date, b boolean);
             INSERT INTO x VALUES
               (9223372036854775807, 1e308, 'a,b,c', TIMESTAMP '2262-04-11 23:47:16', DATE '2024-02-29', true),
               (-9223372036854775807 - 1, -1e308, '', TIMESTAMP '1677-09-21 00:12:44', DATE '0001-01-01', false),
               (0, 0, 'ünïcödé', TIMESTAMP '1970-01-01 00:00:00', DATE '9999-12-31', NULL),
               (NULL, 'NaN'::float8, NULL, NULL, NULL, NULL)",
        )
        .unwrap();
    engine
}

fn rng() -> rand::rngs::StdRng {
    let seed = std::env::var("FRESHET_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(42);
    rand::rngs::StdRng::seed_from_u64(seed)
}

#[test]
fn random_expressions_over_extreme_values_never_panic() {
    let engine = engine_with_extremes();
    let mut rng = rng();
    let (mut ok, mut errors) = (0, 0);
    for i in 0..400 {
        let e = expr(&mut rng, 4);
        let sql = if i % 4 == 0 {
            format!("CREATE VIEW v{i} AS SELECT {e} AS r FROM x; SELECT * FROM v{i}")
        } else {
            format!("SELECT {e} FROM x")
        };
        match engine.execute(&sql) {
            Ok(_) => ok += 1,
            Err(err) => {
                errors += 1;
                assert_ne!(err.error.code(), "internal", "{sql}: {}", err.error);
            }
        }
        assert!(engine.healthy(), "a worker failed on: {sql}");
    }
    // Both outcomes occur, and the engine still answers plain queries.
    assert!(ok > 20 && errors > 20, "ok {ok}, errors {errors}");
    let rows = engine.execute("SELECT count(*) FROM x").unwrap()[0]
        .rows
        .clone()
        .unwrap();
    assert_eq!(rows[0].get(0), freshet_dataflows::Value::Int(4));
    engine.shutdown();
}

/// A random timestamp-valued expression (mostly: some are ill-typed on purpose).
fn ts_expr(rng: &mut impl Rng, depth: u32) -> String {
    if depth == 0 || rng.random_bool(0.25) {
        return match rng.random_range(0..7) {
            0 | 1 => "ts".into(),
            2 => "d".into(),
            3 => "TIMESTAMP '294000-01-01 00:00:00'".into(),
            4 => "TIMESTAMP '1970-01-01 00:00:00.000001'".into(),
            5 => "NULL".into(),
            _ => leaf(rng),
        };
    }
    let a = ts_expr(rng, depth - 1);
    match rng.random_range(0..8) {
        0 => format!("({a} + INTERVAL '1000000000 days')"),
        1 => format!("({a} - INTERVAL '100000000 days')"),
        2 => format!("({a} + i * INTERVAL '1 second')"),
        3 => format!("tumble({a}, INTERVAL '7 days')"),
        4 => format!("date_trunc('year', {a})"),
        5 => "CAST(s AS timestamp)".to_string(),
        6 => format!("coalesce({a}, {})", ts_expr(rng, depth - 1)),
        _ => format!("({a} + (f * INTERVAL '1 day'))"),
    }
}

/// Hopping windows and temporal filters over random (often extreme or ill-typed) timestamps.
#[test]
fn windows_and_temporal_filters_over_extreme_values_never_panic() {
    let engine = engine_with_extremes();
    let mut rng = rng();
    let (mut ok, mut errors) = (0, 0);
    for i in 0..160 {
        let e = ts_expr(&mut rng, 3);
        let sql = match i % 4 {
            0 => format!(
                "SELECT hop({e}, INTERVAL '2 days', INTERVAL '1 day') AS w, count(*) FROM x GROUP BY w"
            ),
            1 => format!("SELECT count(*) FROM x WHERE {e} > now()"),
            2 => format!(
                "CREATE VIEW t{i} AS SELECT i FROM x WHERE now() BETWEEN {e} AND {e} + INTERVAL '1 day'; \
                 SELECT * FROM t{i}"
            ),
            _ => format!("SELECT count(*) FROM x WHERE now() - {e} <= INTERVAL '1000000000 days'"),
        };
        match engine.execute(&sql) {
            Ok(_) => ok += 1,
            Err(err) => {
                errors += 1;
                assert_ne!(err.error.code(), "internal", "{sql}: {}", err.error);
            }
        }
        assert!(engine.healthy(), "a worker failed on: {sql}");
    }
    assert!(ok > 10 && errors > 10, "ok {ok}, errors {errors}");
    engine.shutdown();
}
