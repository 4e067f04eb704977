//! Basic end-to-end behaviour of the embedded engine.

use freshet_dataflows::engine::{Engine, EngineConfig};
use freshet_dataflows::Value;

fn rows(engine: &Engine, sql: &str) -> Vec<Vec<Value>> {
    let res = engine.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    res.last().unwrap().rows.clone().unwrap().into_iter().map(|r| r.into_values()).collect()
}

#[test]
fn tables_views_and_reads() {
    for workers in [1, 2] {
        let engine = Engine::start(EngineConfig { workers, ..Default::default() }).unwrap();
        engine
            .execute(
                "CREATE TABLE t (k bigint, v text); CREATE TABLE u (k bigint, w bigint);
                 INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');
                 INSERT INTO u VALUES (1, 10), (1, 11), (3, 30);
                 CREATE VIEW j AS SELECT t.k, v, sum(w) AS s FROM t JOIN u ON t.k = u.k GROUP BY t.k, v",
            )
            .unwrap();
        assert_eq!(
            rows(&engine, "SELECT * FROM j ORDER BY k"),
            vec![vec![Value::Int(1), Value::text("a"), Value::Int(21)], vec![Value::Int(3), Value::text("c"), Value::Int(30)]]
        );
        engine.execute("DELETE FROM u WHERE w = 30").unwrap();
        assert_eq!(rows(&engine, "SELECT k FROM j"), vec![vec![Value::Int(1)]]);
        assert_eq!(
            rows(&engine, "SELECT t.k, u.w FROM t LEFT JOIN u ON t.k = u.k ORDER BY 1, 2"),
            vec![
                vec![Value::Int(1), Value::Int(10)],
                vec![Value::Int(1), Value::Int(11)],
                vec![Value::Int(2), Value::Null],
                vec![Value::Int(3), Value::Null]
            ]
        );
        assert_eq!(rows(&engine, "SELECT count(*) FROM t WHERE k > 100"), vec![vec![Value::Int(0)]]);
        engine.shutdown();
    }
}
