//! Every endpoint of the HTTP contract, driven through the real binary.

mod common;

use std::time::Duration;

use common::{multiset, Server};
use serde_json::{json, Value};

#[test]
fn sql_multi_statement_results_have_the_documented_shape() {
    let server = Server::start(&[]);
    let results = server.sql_ok(
        "CREATE TABLE t (id bigint NOT NULL, name text, PRIMARY KEY (id)); \
         INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, NULL); \
         SELECT id, name FROM t WHERE id < 3 ORDER BY id",
    );
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], json!({"tag": "CREATE TABLE"}));
    let insert = results[1].as_object().expect("object");
    assert_eq!(
        insert.len(),
        2,
        "INSERT result has exactly tag and timestamp: {insert:?}"
    );
    assert_eq!(insert["tag"], "INSERT 3");
    let t_insert = insert["timestamp"].as_u64().expect("INSERT timestamp");
    let select = results[2].as_object().expect("object");
    assert_eq!(
        select.len(),
        4,
        "SELECT result has tag, timestamp, columns, rows: {select:?}"
    );
    assert_eq!(select["tag"], "SELECT 2");
    assert!(
        select["timestamp"].as_u64().expect("SELECT timestamp") >= t_insert,
        "a SELECT after an INSERT reads at or after its timestamp"
    );
    assert_eq!(
        select["columns"],
        json!([{"name": "id", "type": "bigint"}, {"name": "name", "type": "text"}])
    );
    assert_eq!(select["rows"], json!([[1, "a"], [2, "b"]]));

    // Timestamps are milliseconds since the epoch, and strictly increase with every write.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        t_insert.abs_diff(now) < 600_000,
        "timestamp {t_insert} is not close to the wall clock {now}"
    );
    let mut last = t_insert;
    for i in 10..15 {
        let r = server.sql_ok(&format!("INSERT INTO t VALUES ({i}, 'x')"));
        let ts = r[0]["timestamp"].as_u64().expect("timestamp");
        assert!(ts > last, "write timestamp {ts} not after {last}");
        last = ts;
    }

    // More statement kinds in one request.
    let results = server.sql_ok(
        "UPDATE t SET name = 'B' WHERE id = 2; DELETE FROM t WHERE id >= 10; \
         CREATE VIEW v AS SELECT count(*) AS n, count(name) AS named FROM t; SELECT * FROM v; \
         SHOW TABLES; SHOW VIEWS; EXPLAIN SELECT * FROM v",
    );
    let tags: Vec<&str> = results
        .iter()
        .map(|r| r["tag"].as_str().expect("tag"))
        .collect();
    assert_eq!(tags[0], "UPDATE 1");
    assert_eq!(tags[1], "DELETE 5");
    assert_eq!(tags[2], "CREATE VIEW");
    assert_eq!(results[3]["rows"], json!([[3, 2]]));
    assert_eq!(results[4]["rows"], json!([["t"]]));
    assert_eq!(results[5]["rows"], json!([["v"]]));
    assert!(
        results[6]["rows"].as_array().is_some_and(|r| !r.is_empty()),
        "EXPLAIN returns a plan: {}",
        results[6]
    );
    assert_eq!(
        server.rows("t"),
        multiset(&[json!([1, "a"]), json!([2, "B"]), json!([3, null])])
    );

    // RETURNING: the written rows beside the tag and timestamp.
    let results = server.sql_ok(
        "UPDATE t SET name = upper(name) WHERE id = 1 RETURNING id, name; \
         DELETE FROM t WHERE id IN (SELECT id FROM t WHERE name IS NULL) RETURNING *",
    );
    assert_eq!(results[0]["tag"], "UPDATE 1");
    assert!(results[0]["timestamp"].as_u64().is_some());
    assert_eq!(
        results[0]["columns"],
        json!([{"name": "id", "type": "bigint"}, {"name": "name", "type": "text"}])
    );
    assert_eq!(results[0]["rows"], json!([[1, "A"]]));
    assert_eq!(results[1]["tag"], "DELETE 1");
    assert_eq!(results[1]["rows"], json!([[3, null]]));
    assert_eq!(
        server.rows("t"),
        multiset(&[json!([1, "A"]), json!([2, "B"])])
    );
}

#[test]
fn sql_error_names_statement_index_and_keeps_earlier_statements() {
    let server = Server::start(&[]);
    let r = server.sql("CREATE TABLE e (x bigint); INSERT INTO e VALUES (1); SELECT * FROM nope; INSERT INTO e VALUES (2)");
    let err = r.expect_error(404, "not_found");
    assert_eq!(err["statement_index"], 2, "{}", r.text);
    // The first two statements stay applied, the fourth never ran.
    assert_eq!(server.read("e")["rows"], json!([[1]]));
    let r = server.sql("INSERT INTO e VALUES (3); SELECT 1/0");
    let err = r.expect_error(400, "evaluation_error");
    assert_eq!(err["statement_index"], 1);
    assert_eq!(server.rows("e"), multiset(&[json!([1]), json!([3])]));
}

#[test]
fn ingest_ndjson_and_csv() {
    let server = Server::start(&[]);
    server.sql_ok(
        "CREATE TABLE p (id bigint NOT NULL, name text, score double precision, ok boolean)",
    );

    let body = concat!(
        "{\"id\": 1, \"name\": \"a\", \"score\": 1.5, \"ok\": true}\n",
        "{\"insert\": {\"id\": 2, \"name\": \"b\"}}\n",
        "\n",
        "{\"id\": 3, \"name\": \"c\", \"score\": 3, \"ok\": false}\n",
    );
    let r = server.ingest("p", "application/x-ndjson", body);
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["inserted"], 3);
    assert_eq!(j["deleted"], 0);
    let t1 = j["timestamp"].as_u64().expect("timestamp");
    assert_eq!(j.as_object().unwrap().len(), 3, "{j}");

    let r = server.ingest(
        "p",
        "application/x-ndjson",
        "{\"delete\": {\"id\": 2, \"name\": \"b\"}}\n{\"id\": 4}\n",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(
        (j["inserted"].as_u64(), j["deleted"].as_u64()),
        (Some(1), Some(1))
    );
    let t2 = j["timestamp"].as_u64().unwrap();
    assert!(t2 > t1);

    // CSV with a header in another column order; an empty field is NULL.
    let r = server.ingest("p", "text/csv", "name,id,ok,score\ne,5,true,2.25\n,6,,\n");
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(
        (j["inserted"].as_u64(), j["deleted"].as_u64()),
        (Some(2), Some(0))
    );
    assert!(j["timestamp"].as_u64().unwrap() > t2);

    let read = server.read("p");
    assert_eq!(
        read["columns"],
        json!([{"name": "id", "type": "bigint"}, {"name": "name", "type": "text"}, {"name": "score", "type": "double precision"}, {"name": "ok", "type": "boolean"}])
    );
    let rows = read["rows"].as_array().unwrap();
    assert_eq!(
        multiset(rows),
        multiset(&[
            json!([1, "a", 1.5, true]),
            json!([3, "c", 3.0, false]),
            json!([4, null, null, null]),
            json!([5, "e", 2.25, true]),
            json!([6, null, null, null]),
        ])
    );
    assert!(read["timestamp"].as_u64().unwrap() >= j["timestamp"].as_u64().unwrap());

    // CSV quoting: commas, quotes and newlines inside fields, CRLF line ends.
    let r = server.ingest(
        "p",
        "text/csv",
        "id,name\r\n10,\"x, y\"\r\n11,\"two\nlines\"\r\n12,\"say \"\"hi\"\"\"\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["inserted"], 3);
    let r = server.sql_ok("SELECT id, name FROM p WHERE id >= 10 ORDER BY id");
    assert_eq!(
        r[0]["rows"],
        json!([[10, "x, y"], [11, "two\nlines"], [12, "say \"hi\""]])
    );
    server.sql_ok("DELETE FROM p WHERE id >= 10");

    // The default Content-Type (none given) and charset parameters are accepted as NDJSON / CSV.
    let r = server.request("POST", "/v1/tables/p/rows", &[], Some(b"{\"id\": 7}\n"));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = server.ingest("p", "text/csv; charset=utf-8", "id\n8\n");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(server.read("p")["rows"].as_array().unwrap().len(), 7);
}

#[test]
fn read_views_and_tables_as_of_earlier_times() {
    let server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (k text NOT NULL, x bigint NOT NULL); CREATE VIEW totals AS SELECT k, sum(x) AS total FROM t GROUP BY k");
    let t1 = server.ingest_ok("t", "{\"k\": \"a\", \"x\": 1}\n{\"k\": \"b\", \"x\": 10}\n");
    let t2 = server.ingest_ok(
        "t",
        "{\"k\": \"a\", \"x\": 2}\n{\"delete\": {\"k\": \"b\", \"x\": 10}}\n",
    );
    let t3 = server.sql_ok("INSERT INTO t VALUES ('c', 100)")[0]["timestamp"]
        .as_u64()
        .unwrap();

    let now = server.read("totals");
    assert_eq!(
        now["columns"],
        json!([{"name": "k", "type": "text"}, {"name": "total", "type": "bigint"}])
    );
    assert_eq!(
        multiset(now["rows"].as_array().unwrap()),
        multiset(&[json!(["a", 3]), json!(["c", 100])])
    );
    assert!(now["timestamp"].as_u64().unwrap() >= t3);

    let at = |name: &str, ts: u64| {
        let r = server.get(&format!("/v1/views/{name}?as_of={ts}"));
        assert_eq!(r.status, 200, "as_of {ts}: {}", r.text);
        let j = r.json();
        assert_eq!(j["timestamp"], ts, "a read as of T is exact at T");
        multiset(j["rows"].as_array().unwrap())
    };
    assert_eq!(
        at("totals", t1),
        multiset(&[json!(["a", 1]), json!(["b", 10])])
    );
    assert_eq!(at("totals", t2), multiset(&[json!(["a", 3])]));
    assert_eq!(
        at("totals", t2 - 1),
        at("totals", t1),
        "between two writes the older state holds"
    );
    assert_eq!(
        at("totals", t3),
        multiset(&[json!(["a", 3]), json!(["c", 100])])
    );
    assert_eq!(at("t", t1), multiset(&[json!(["a", 1]), json!(["b", 10])]));
    assert_eq!(at("t", t2), multiset(&[json!(["a", 1]), json!(["a", 2])]));
    // AS OF in SQL agrees.
    let r = server.sql_ok(&format!(
        "SELECT k, total FROM totals ORDER BY k AS OF {t1}"
    ));
    assert_eq!(r[0]["rows"], json!([["a", 1], ["b", 10]]));

    // A time in the future is refused, not answered with a guess.
    let r = server.get(&format!("/v1/views/totals?as_of={}", u64::MAX / 2));
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.json()["error"]["code"].is_string());
}

#[test]
fn read_before_retention_is_gone_410() {
    let server = Server::start(&["--retention-secs", "1"]);
    server.sql_ok("CREATE TABLE t (x bigint)");
    let t1 = server.ingest_ok("t", "{\"x\": 1}\n");
    // Readable right away…
    let r = server.get(&format!("/v1/views/t?as_of={t1}"));
    assert_eq!(r.status, 200, "{}", r.text);
    // …and gone once the retention window has moved past it.
    server.wait_compacted_past(t1, Duration::from_secs(15));
    let r = server.get(&format!("/v1/views/t?as_of={t1}"));
    let err = r.expect_error(410, "compacted");
    let earliest = err["earliest"]
        .as_u64()
        .unwrap_or_else(|| panic!("410 names the earliest retained time: {}", r.text));
    assert!(earliest > t1);
    // The earliest retained time itself is still readable (or, if the clock moved on, 410 again).
    let r = server.get(&format!("/v1/views/t?as_of={earliest}"));
    assert!(r.status == 200 || r.status == 410, "{}", r.text);
    if r.status == 200 {
        assert_eq!(r.json()["rows"], json!([[1]]));
    }
    // SQL AS OF says the same.
    let r = server.sql(&format!("SELECT * FROM t AS OF {t1}"));
    r.expect_error(410, "compacted");
}

#[test]
fn catalog_health_ready_and_metrics() {
    let server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (id bigint NOT NULL, name text); CREATE VIEW v AS SELECT id FROM t WHERE id > 1");
    server.ingest_ok("t", "{\"id\": 1}\n{\"id\": 2}\n");
    server.read("v");

    let r = server.get("/v1/catalog");
    assert_eq!(r.status, 200, "{}", r.text);
    let c = r.json();
    let tables = c["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0]["name"], "t");
    assert_eq!(
        tables[0]["columns"],
        json!([{"name": "id", "type": "bigint"}, {"name": "name", "type": "text"}])
    );
    assert!(
        tables[0]["definition"]
            .as_str()
            .is_some_and(|d| d.contains("CREATE TABLE t")),
        "{}",
        tables[0]
    );
    let views = c["views"].as_array().expect("views");
    assert_eq!(views.len(), 1);
    assert_eq!(views[0]["name"], "v");
    assert_eq!(
        views[0]["columns"],
        json!([{"name": "id", "type": "bigint"}])
    );
    assert!(
        views[0]["definition"]
            .as_str()
            .is_some_and(|d| d.contains("SELECT id FROM t WHERE id > 1")),
        "{}",
        views[0]
    );
    assert_eq!(c["sources"], json!([]));
    assert_eq!(c["sinks"], json!([]));

    // DROP shows in the catalog.
    server.sql_ok("DROP VIEW v");
    let c = server.get("/v1/catalog").json();
    assert_eq!(c["views"], json!([]));
    server.get("/v1/views/v").expect_error(404, "not_found");

    let r = server.get("/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    let r = server.get("/readyz");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["ready"], true);

    let r = server.get("/metrics");
    assert_eq!(r.status, 200);
    let ct = r.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("text/plain") || ct.starts_with("application/openmetrics-text"),
        "metrics content type {ct}"
    );
    assert!(
        r.text.contains("# TYPE freshet_"),
        "no freshet_ metric families:\n{}",
        r.text
    );
    assert!(
        r.text.contains("freshet_http_request_duration_seconds"),
        "{}",
        r.text
    );
    // Counters reflect what happened: 2 rows written, at least one SELECT/read.
    let value = |name: &str| -> f64 {
        r.text
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("no sample {name} in\n{}", r.text))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(value("freshet_rows_written_total") >= 2.0);
    assert!(value("freshet_writes_total") >= 1.0);
    assert!(value("freshet_latest_timestamp_ms") > 1.6e12);

    // Unknown paths answer 404 in the error shape.
    server.get("/v1/nope").expect_error(404, "not_found");
    server.get("/nope").expect_error(404, "not_found");
}

#[test]
fn read_your_writes() {
    let server = Server::start(&["--workers", "2"]);
    server.sql_ok("CREATE TABLE t (x bigint NOT NULL); CREATE VIEW c AS SELECT count(*) AS n, sum(x) AS s FROM t");
    let mut sum = 0i64;
    for i in 1..=150i64 {
        let ts = if i % 3 == 0 {
            server.sql_ok(&format!("INSERT INTO t VALUES ({i})"))[0]["timestamp"]
                .as_u64()
                .unwrap()
        } else if i % 3 == 1 {
            server.ingest_ok("t", &format!("{{\"x\": {i}}}\n"))
        } else {
            let r = server.ingest("t", "text/csv", &format!("x\n{i}\n"));
            assert_eq!(r.status, 200, "{}", r.text);
            r.json()["timestamp"].as_u64().unwrap()
        };
        sum += i;
        let read = server.read("c");
        assert_eq!(
            read["rows"],
            json!([[i, sum]]),
            "a read right after write {i} (at {ts}) must see it"
        );
        assert!(read["timestamp"].as_u64().unwrap() >= ts);
        if i % 10 == 0 {
            let r = server.sql_ok("SELECT count(*) FROM t");
            assert_eq!(r[0]["rows"], json!([[i]]));
            assert!(r[0]["timestamp"].as_u64().unwrap() >= ts);
            let t = server.read("t");
            assert_eq!(t["rows"].as_array().unwrap().len() as i64, i);
        }
    }
    let _: Value = server.read("c");
}

/// Quoted relation names: `"t"` and `t` name the same relation; a quoted name with spaces or
/// capitals is listed without quotes and reachable by that name in the HTTP API.
#[test]
fn quoted_relation_names() {
    let server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (x bigint); INSERT INTO t VALUES (1)");
    let r = server.sql_ok("SELECT * FROM \"t\"");
    assert_eq!(r[0]["rows"], json!([[1]]));
    server
        .sql("CREATE TABLE \"t\" (z text)")
        .expect_error(409, "already_exists");

    server.sql_ok("CREATE TABLE \"My Table\" (y bigint); INSERT INTO \"My Table\" VALUES (2)");
    let names: Vec<String> = server.get("/v1/catalog").json()["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"My Table".to_string()),
        "catalog names: {names:?}"
    );
    assert_eq!(server.read("My%20Table")["rows"], json!([[2]]));
    let r = server.ingest("My%20Table", "application/x-ndjson", "{\"y\": 3}\n");
    assert_eq!(r.status, 200, "{}", r.text);
    let mut s = server.subscribe_ok("view=My%20Table", &[]);
    assert_eq!(s.expect().kind, "columns");
    let snap = s.expect();
    assert_eq!(
        common::multiset(snap.data["updates"].as_array().unwrap()),
        common::multiset(&[
            json!({"row": [2], "diff": 1}),
            json!({"row": [3], "diff": 1})
        ])
    );
}

/// PostgreSQL: a quoted identifier keeps its case, so `"Abc"` and `abc` are two relations and
/// `"my table"` does not name `"My Table"`.
#[test]
fn quoted_identifiers_are_case_sensitive() {
    let server = Server::start(&[]);
    server.sql_ok("CREATE TABLE \"Abc\" (a bigint); CREATE TABLE abc (b bigint)");
    server.sql_ok("INSERT INTO \"Abc\" VALUES (1); INSERT INTO abc VALUES (2)");
    assert_eq!(
        server.sql_ok("SELECT * FROM \"Abc\"")[0]["rows"],
        json!([[1]])
    );
    assert_eq!(server.sql_ok("SELECT * FROM ABC")[0]["rows"], json!([[2]]));
    server.sql_ok("CREATE TABLE \"My Table\" (y bigint)");
    server
        .sql("SELECT * FROM \"my table\"")
        .expect_error(404, "not_found");
}

/// Indexes over HTTP: created and dropped through `/v1/sql`, listed in the catalog with the
/// columns they are keyed by and the relation they index, named as dependencies of a view whose
/// join reads one, and refused as a relation to read or subscribe to.
#[test]
fn indexes_in_the_catalog_and_refused_as_relations() {
    let server = Server::start(&[]);
    server.sql_ok(
        "CREATE TABLE orders (id bigint, customer bigint); CREATE TABLE customers (id bigint, name text);
         CREATE INDEX orders_by_customer ON orders (customer);
         CREATE VIEW named AS SELECT c.name, o.id FROM orders o JOIN customers c ON o.customer = c.id;
         INSERT INTO orders VALUES (1, 7), (2, 8); INSERT INTO customers VALUES (7, 'ann')",
    );
    let c = server.get("/v1/catalog").json();
    let indexes = c["indexes"].as_array().expect("indexes");
    assert_eq!(indexes.len(), 1, "{c}");
    assert_eq!(indexes[0]["name"], "orders_by_customer");
    assert_eq!(indexes[0]["kind"], "index");
    assert_eq!(indexes[0]["on"], "orders");
    assert_eq!(
        indexes[0]["columns"],
        json!([{"name": "customer", "type": "bigint"}])
    );
    let named = c["views"]
        .as_array()
        .expect("views")
        .iter()
        .find(|v| v["name"] == "named")
        .expect("the view")
        .clone();
    assert_eq!(
        named["depends_on"],
        json!(["orders", "customers", "orders_by_customer"]),
        "{named}"
    );
    assert_eq!(server.rows("named"), common::multiset(&[json!(["ann", 1])]));
    let err = server
        .get("/v1/views/orders_by_customer")
        .expect_error(400, "invalid_query");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .contains("is an index"),
        "{err}"
    );
    server
        .sql("DROP INDEX orders_by_customer")
        .expect_error(409, "dependent_objects");
    server.sql_ok("DROP VIEW named; DROP INDEX orders_by_customer");
    assert_eq!(server.get("/v1/catalog").json()["indexes"], json!([]));
}
