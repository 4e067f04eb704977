//! Bad input: the right status and error shape, nothing half-applied, and never a crash.

mod common;

use common::{multiset, Server};
use serde_json::json;

/// The server process is still up and answers /healthz.
fn still_alive(server: &mut Server) {
    assert!(server.alive(), "the server process died");
    server.assert_healthy();
}

#[test]
fn malformed_requests_to_sql() {
    let mut server = Server::start(&[]);
    for body in [
        "not json",
        "{\"sql\": 5}",
        "{}",
        "",
        "{\"sql\": \"SELECT 1\"",
    ] {
        let r = server.post("/v1/sql", "application/json", body.as_bytes());
        r.expect_error(400, "invalid_json");
    }
    // Bytes that are not UTF-8.
    server
        .post("/v1/sql", "application/json", b"{\"sql\": \"SELECT \xff\"}")
        .expect_error(400, "invalid_json");
    // Empty and comment-only SQL is not a crash either.
    for sql in ["", ";", "-- nothing"] {
        let r = server.sql(sql);
        assert!(
            r.status == 200 || r.status == 400,
            "{sql:?}: {} {}",
            r.status,
            r.text
        );
    }
    still_alive(&mut server);
}

#[test]
fn unknown_and_existing_items() {
    let mut server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (x bigint); CREATE VIEW v AS SELECT x FROM t");
    server
        .ingest("nope", "application/x-ndjson", "{\"x\": 1}\n")
        .expect_error(404, "not_found");
    server
        .ingest("nope", "text/csv", "x\n1\n")
        .expect_error(404, "not_found");
    server.get("/v1/views/nope").expect_error(404, "not_found");
    server
        .get("/v1/views/nope?as_of=1")
        .expect_error(404, "not_found");
    let err = server
        .sql("SELECT * FROM nope")
        .expect_error(404, "not_found");
    assert_eq!(err["statement_index"], 0);
    server
        .sql("INSERT INTO nope VALUES (1)")
        .expect_error(404, "not_found");
    server.sql("DROP TABLE nope").expect_error(404, "not_found");
    server.sql_ok("DROP TABLE IF EXISTS nope");
    match server.subscribe("view=nope", &[]) {
        Err(r) => {
            r.expect_error(404, "not_found");
        }
        Ok(_) => panic!("subscribing to a missing view succeeded"),
    }

    let err = server
        .sql("CREATE TABLE t (y text)")
        .expect_error(409, "already_exists");
    assert_eq!(err["statement_index"], 0);
    server
        .sql("CREATE VIEW t AS SELECT 1 AS one")
        .expect_error(409, "already_exists");
    server
        .sql("CREATE TABLE v (y text)")
        .expect_error(409, "already_exists");
    // Dropping a table a view depends on, without CASCADE.
    server
        .sql("DROP TABLE t")
        .expect_error(409, "dependent_objects");
    // The original table is untouched.
    assert_eq!(
        server.read("t")["columns"],
        json!([{"name": "x", "type": "bigint"}])
    );

    // Ingest into a view is refused.
    let r = server.ingest("v", "application/x-ndjson", "{\"x\": 1}\n");
    assert_eq!(r.status, 400, "{}", r.text);

    // Subscribe parameters.
    for (query, headers) in [
        ("", vec![]),
        ("view=t&sql=SELECT%201", vec![]),
        ("view=t", vec![("Last-Event-ID", "yesterday")]),
    ] {
        match server.subscribe(query, &headers) {
            Err(r) => {
                r.expect_error(400, "bad_request");
            }
            Ok(_) => panic!("subscribe {query:?} {headers:?} should fail"),
        }
    }
    match server.subscribe("sql=SELEC%201", &[]) {
        Err(r) => {
            let err = r.expect_error(400, "syntax_error");
            assert!(err["position"].is_object(), "{}", r.text);
        }
        Ok(_) => panic!("a subscription with bad SQL succeeded"),
    }
    still_alive(&mut server);
}

#[test]
fn body_over_the_limit_is_413() {
    let mut server = Server::start(&["--max-body-bytes", "4096"]);
    server.sql_ok("CREATE TABLE t (x bigint, s text)");
    let big_sql = json!({"sql": format!("SELECT '{}'", "a".repeat(10_000))}).to_string();
    server
        .post("/v1/sql", "application/json", big_sql.as_bytes())
        .expect_error(413, "payload_too_large");
    let mut big_rows = String::new();
    for i in 0..500 {
        big_rows.push_str(&format!("{{\"x\": {i}, \"s\": \"abcdefgh\"}}\n"));
    }
    assert!(big_rows.len() > 4096);
    server
        .ingest("t", "application/x-ndjson", &big_rows)
        .expect_error(413, "payload_too_large");
    server
        .ingest("t", "text/csv", &format!("x\n{}", "1\n".repeat(5000)))
        .expect_error(413, "payload_too_large");
    assert_eq!(
        server.read("t")["rows"],
        json!([]),
        "nothing of a refused body is applied"
    );
    // Just under the limit is fine.
    let ok = json!({"sql": format!("SELECT '{}' AS s", "a".repeat(3000))}).to_string();
    assert!(ok.len() < 4096);
    let r = server.post("/v1/sql", "application/json", ok.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text);
    still_alive(&mut server);
}

#[test]
fn sql_syntax_errors_carry_a_position() {
    let mut server = Server::start(&[]);
    let err = server.sql("SELEC 1").expect_error(400, "syntax_error");
    assert_eq!(err["position"], json!({"line": 1, "column": 1}));
    assert_eq!(err["statement_index"], 0);

    let r = server.sql("CREATE TABLE ok1 (x bigint);\nSELECT (1 +\n  ) FROM ok1");
    let err = r.expect_error(400, "syntax_error");
    assert_eq!(
        err["position"],
        json!({"line": 3, "column": 3}),
        "{}",
        r.text
    );
    assert_eq!(err["statement_index"], 1);
    // The first statement stayed applied.
    assert_eq!(server.read("ok1")["rows"], json!([]));

    for sql in [
        "SELECT FROM WHERE",
        "CREATE TABLE (x bigint)",
        "SELECT 'unterminated",
        "SELECT 1 +",
        "INSERT INTO ok1 VALUES (1",
    ] {
        let r = server.sql(sql);
        let err = r.expect_error(400, "syntax_error");
        let pos = &err["position"];
        assert!(
            pos["line"].as_u64().is_some_and(|l| l >= 1)
                && pos["column"].as_u64().is_some_and(|c| c >= 1),
            "{sql:?}: {}",
            r.text
        );
    }
    still_alive(&mut server);
}

#[test]
fn deeply_nested_input_is_refused_not_a_crash() {
    let mut server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (x bigint NOT NULL)");
    let deep = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let r = server.sql(&deep);
    assert_eq!(r.status, 400, "{}", &r.text[..r.text.len().min(300)]);
    assert!(r.json()["error"]["code"].is_string());
    still_alive(&mut server);

    let deep_view = format!(
        "CREATE VIEW dv AS SELECT {}x{} AS y FROM t",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert_eq!(server.sql(&deep_view).status, 400);
    let deep_not = format!("SELECT {}true", "NOT ".repeat(10_000));
    assert_eq!(server.sql(&deep_not).status, 400);
    let deep_sub = format!(
        "SELECT * FROM {}t{}",
        "(SELECT * FROM ".repeat(2_000),
        ")".repeat(2_000)
    );
    assert_eq!(server.sql(&deep_sub).status, 400);
    still_alive(&mut server);

    // Deeply nested JSON in an ingest line.
    let deep_json = format!("{{\"x\": {}1{}}}\n", "[".repeat(10_000), "]".repeat(10_000));
    let err = server
        .ingest("t", "application/x-ndjson", &deep_json)
        .expect_error(400, "invalid_data");
    assert_eq!(err["line"], 1);
    let deep_json = format!(
        "{{\"x\": 1}}\n{}{}\n",
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    );
    let err = server
        .ingest("t", "application/x-ndjson", &deep_json)
        .expect_error(400, "invalid_data");
    assert_eq!(err["line"], 2);
    assert_eq!(server.read("t")["rows"], json!([]));
    still_alive(&mut server);
}

/// The response, or a panic that says whether the server process died.
fn answered(server: &mut Server, r: Result<common::Resp, String>, name: &str) -> common::Resp {
    match r {
        Ok(r) => r,
        Err(e) => {
            for _ in 0..100 {
                if !server.alive() {
                    panic!("{name}: the server process died ({e})");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            panic!("{name}: no answer: {e}");
        }
    }
}

/// Long flat chains of binary operators (`1 + 1 + … + 1`) are ordinary SQL that generated
/// queries produce. docs/api.md: "expressions deeper than 128 levels get a 400, never a stack
/// overflow" — so a 100-term chain must be answered, longer ones answered or refused with 400,
/// and the server must never die.
#[test]
fn long_operator_chains_do_not_crash_the_server() {
    for (name, expr, answer) in [
        (
            "plus_100",
            format!("1{}", " + 1".repeat(100)),
            Some(json!([[101]])),
        ),
        (
            "concat_100",
            format!("'a'{}", " || 'a'".repeat(100)),
            Some(json!([["a".repeat(101)]])),
        ),
        (
            "and_100",
            format!("true{}", " AND true".repeat(100)),
            Some(json!([[true]])),
        ),
        ("plus_200", format!("1{}", " + 1".repeat(200)), None),
        ("plus_10000", format!("1{}", " + 1".repeat(10_000)), None),
    ] {
        let mut server = Server::start(&[]);
        server.sql_ok("CREATE TABLE t (x bigint)");
        let r = server.try_request(
            "POST",
            "/v1/sql",
            &[("Content-Type", "application/json")],
            Some(
                json!({ "sql": format!("SELECT {expr}") })
                    .to_string()
                    .as_bytes(),
            ),
        );
        let r = answered(&mut server, r, name);
        match answer {
            Some(rows) => {
                assert_eq!(r.status, 200, "{name}: {}", r.text);
                assert_eq!(r.json()["results"][0]["rows"], rows, "{name}");
            }
            None => assert!(
                r.status == 200 || r.status == 400,
                "{name}: {} {}",
                r.status,
                r.text
            ),
        }
        // The same inside a view definition.
        let r = server.try_request(
            "POST",
            "/v1/sql",
            &[("Content-Type", "application/json")],
            Some(
                json!({ "sql": format!("CREATE VIEW v AS SELECT {expr} AS e FROM t") })
                    .to_string()
                    .as_bytes(),
            ),
        );
        let r = answered(&mut server, r, name);
        assert!(
            r.status == 200 || r.status == 400,
            "{name}: {} {}",
            r.status,
            r.text
        );
        still_alive(&mut server);
    }
}

/// Every error, including those raised before a handler runs (query-string parsing, wrong
/// method), has the documented `{"error": {"code", "message"}}` shape.
#[test]
fn framework_rejections_have_the_error_shape() {
    let mut server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (x bigint)");
    let shaped = |r: &common::Resp, status: u16| {
        assert_eq!(r.status, status, "{}", r.text);
        let body: serde_json::Value = serde_json::from_str(&r.text)
            .unwrap_or_else(|_| panic!("{status} without the error shape: {:?}", r.text));
        assert!(
            body["error"]["code"].is_string() && body["error"]["message"].is_string(),
            "{status} without the error shape: {:?}",
            r.text
        );
    };
    shaped(&server.get("/v1/views/t?as_of=abc"), 400);
    shaped(&server.get("/v1/views/t?as_of=-1"), 400);
    match server.subscribe("view=t&snapshot=maybe", &[]) {
        Err(r) => shaped(&r, 400),
        Ok(_) => panic!("?snapshot=maybe was accepted"),
    }
    shaped(&server.get("/v1/sql"), 405);
    shaped(&server.get("/v1/tables/t/rows"), 405);
    still_alive(&mut server);
}

#[test]
fn ingest_bad_line_rejects_the_whole_request() {
    let mut server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (id bigint NOT NULL, name text, score double precision)");
    server.ingest_ok(
        "t",
        "{\"id\": 1, \"name\": \"a\"}\n{\"id\": 2, \"name\": \"b\", \"score\": 0.5}\n",
    );
    let before = server.rows("t");
    let ok = |i: i64| format!("{{\"id\": {}, \"name\": \"n{i}\"}}", 100 + i);
    let ndjson_cases: Vec<(String, u64, &str)> = vec![
        (
            format!("{}\n{}\n{{\"id\": 3,\n{}\n", ok(1), ok(2), ok(3)),
            3,
            "malformed",
        ),
        (format!("{}\n{{\"id\": \"abc\"}}\n", ok(1)), 2, "id"),
        (
            format!("{}\n{}\n{}\n{{\"name\": \"x\"}}\n", ok(1), ok(2), ok(3)),
            4,
            "id",
        ),
        ("{\"id\": 1, \"nope\": 2}\n".to_string(), 1, "nope"),
        (format!("{}\n[1, 2]\n", ok(1)), 2, ""),
        (format!("\n\n{}\n\n{{oops}}\n", ok(1)), 5, ""),
        (
            format!("{}\n{{\"id\": 9223372036854775808}}\n", ok(1)),
            2,
            "",
        ),
        (format!("{}\n{{\"id\": 1.5}}\n", ok(1)), 2, ""),
        (
            format!("{}\n{{\"id\": 3, \"score\": \"high\"}}\n", ok(1)),
            2,
            "score",
        ),
        (format!("{}\n{{\"insert\": 5}}\n", ok(1)), 2, ""),
        (
            format!("{}\n{{\"delete\": {{\"id\": null}}}}\n", ok(1)),
            2,
            "",
        ),
        (format!("{}\n{{\"id\": null}}\n", ok(1)), 2, ""),
    ];
    for (body, line, mentions) in &ndjson_cases {
        let r = server.ingest("t", "application/x-ndjson", body);
        let err = r.expect_error(400, "invalid_data");
        assert_eq!(err["line"], *line, "body {body:?}: {}", r.text);
        assert!(
            err["message"].as_str().unwrap().contains(mentions),
            "message should mention {mentions:?}: {}",
            r.text
        );
        assert_eq!(
            server.rows("t"),
            before,
            "a rejected request must leave the table unchanged ({body:?})"
        );
    }
    let csv_cases: Vec<(&str, u64)> = vec![
        ("id,name\n5,a\nxx,b\n", 3),
        ("id,nope\n5,a\n", 1),
        ("id,name\n5,a\n6,b\n,c\n", 4),
        ("id,name\n5,a\n6,b,extra\n", 3),
        ("id,score\n5,0.5\n6,lots\n", 3),
        // A quoted field spanning lines: the bad record starts on line 4.
        ("id,name\n1,\"a\nb\"\nxx,c\n", 4),
    ];
    for (body, line) in &csv_cases {
        let r = server.ingest("t", "text/csv", body);
        let err = r.expect_error(400, "invalid_data");
        assert_eq!(err["line"], *line, "CSV {body:?}: {}", r.text);
        assert_eq!(
            server.rows("t"),
            before,
            "a rejected CSV request must leave the table unchanged ({body:?})"
        );
    }
    // Deleting a row that does not exist rejects the whole request too.
    let r = server.ingest(
        "t",
        "application/x-ndjson",
        &format!("{}\n{{\"delete\": {{\"id\": 77}}}}\n", ok(1)),
    );
    r.expect_error(400, "invalid_data");
    assert_eq!(server.rows("t"), before);
    // Deleting the same existing row twice in one request, too.
    let r = server.ingest(
        "t",
        "application/x-ndjson",
        "{\"delete\": {\"id\": 1, \"name\": \"a\"}}\n{\"delete\": {\"id\": 1, \"name\": \"a\"}}\n",
    );
    r.expect_error(400, "invalid_data");
    assert_eq!(server.rows("t"), before);
    // Not UTF-8.
    let r = server.post(
        "/v1/tables/t/rows",
        "application/x-ndjson",
        b"{\"id\": 5, \"name\": \"\xff\"}\n",
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(server.rows("t"), before);
    // Unsupported Content-Type: 415.
    for ct in ["application/xml", "text/plain", "application/octet-stream"] {
        server
            .ingest("t", ct, "{\"id\": 9}\n")
            .expect_error(415, "unsupported_media_type");
    }
    assert_eq!(server.rows("t"), before);
    still_alive(&mut server);
}

#[test]
fn sql_type_and_constraint_errors() {
    let mut server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (id bigint NOT NULL, name text); INSERT INTO t VALUES (1, 'a')");
    let before = server.rows("t");
    let cases = [
        ("INSERT INTO t VALUES ('abc', 'x')", "invalid_data"),
        ("INSERT INTO t (name) VALUES ('x')", "invalid_data"),
        ("INSERT INTO t VALUES (NULL, 'x')", "invalid_data"),
        ("INSERT INTO t (nope) VALUES (1)", "invalid_query"),
        ("INSERT INTO t VALUES (1, 'a', 'extra')", "invalid_query"),
        ("UPDATE t SET id = NULL", "invalid_data"),
        ("UPDATE t SET nope = 1", "invalid_query"),
        ("SELECT nope FROM t", "invalid_query"),
        ("SELECT id + name FROM t", "invalid_query"),
        (
            "INSERT INTO t VALUES (2, 'b'), (3, 'c'), (1 / 0, 'd')",
            "evaluation_error",
        ),
    ];
    for (sql, code) in cases {
        let r = server.sql(sql);
        assert_eq!(r.status, 400, "{sql}: {}", r.text);
        let err = r.expect_error(400, code);
        assert_eq!(err["statement_index"], 0, "{sql}");
        assert_eq!(server.rows("t"), before, "{sql} must not change the table");
    }
    still_alive(&mut server);
}

#[test]
fn division_by_zero_in_a_view_surfaces_on_read() {
    let mut server = Server::start(&[]);
    server
        .sql_ok("CREATE TABLE d (x bigint NOT NULL); CREATE VIEW q AS SELECT 100 / x AS r FROM d");
    server.ingest_ok("d", "{\"x\": 5}\n");
    assert_eq!(server.read("q")["rows"], json!([[20]]));
    // The write itself is fine: the table takes the row.
    server.ingest_ok("d", "{\"x\": 0}\n");
    assert_eq!(server.rows("d"), multiset(&[json!([5]), json!([0])]));
    let r = server.get("/v1/views/q");
    let err = r.expect_error(400, "evaluation_error");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("division by zero"),
        "{}",
        r.text
    );
    let r = server.sql("SELECT * FROM q");
    r.expect_error(400, "evaluation_error");
    // A subscription reports the error instead of wrong rows.
    match server.subscribe("view=q", &[]) {
        Err(r) => {
            r.expect_error(400, "evaluation_error");
        }
        Ok(mut s) => {
            let cols = s.expect();
            assert_eq!(cols.kind, "columns");
            let m = s.expect();
            assert_eq!(m.kind, "error", "{m:?}");
            assert_eq!(m.data["code"], "evaluation_error", "{}", m.data);
            assert!(s.next().is_none(), "the stream ends after the error");
        }
    }
    // Retracting the bad row retracts the error.
    server.ingest_ok("d", "{\"delete\": {\"x\": 0}}\n");
    assert_eq!(server.read("q")["rows"], json!([[20]]));
    still_alive(&mut server);
}

/// Malformed CSV quoting is a malformed line (PostgreSQL's COPY: "unterminated CSV quoted
/// field"), not data: a truncated upload must not be half-applied silently.
#[test]
fn malformed_csv_quoting_is_rejected() {
    let mut server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (id bigint NOT NULL, name text)");
    for (body, line) in [
        ("id,name\n1,a\n2,\"unterminated\n", 3),
        ("id,name\n1,\"ab\"c\n", 2),
    ] {
        let r = server.ingest("t", "text/csv", body);
        let err = r.expect_error(400, "invalid_data");
        assert_eq!(err["line"], line, "{body:?}: {}", r.text);
        assert_eq!(server.read("t")["rows"], json!([]));
    }
    still_alive(&mut server);
}
