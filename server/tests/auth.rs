//! `--auth-token`: /v1 needs the token (header or session cookie); health stays open.

mod common;

use common::Server;
use serde_json::json;

const TOKEN: &str = "s3cret-token";

#[test]
fn v1_requires_the_token_and_health_stays_open() {
    let server = Server::start(&["--auth-token", TOKEN]);
    let bearer = format!("Bearer {TOKEN}");
    let sql_body = json!({"sql": "CREATE TABLE t (x bigint)"}).to_string();

    // Without a token, or with a wrong one: 401 in the error shape, and nothing happens.
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", "Basic czNjcmV0LXRva2Vu")],
        vec![("Cookie", "freshet_session=wrong")],
    ] {
        let mut h = headers.clone();
        h.push(("Content-Type", "application/json"));
        server
            .request("POST", "/v1/sql", &h, Some(sql_body.as_bytes()))
            .expect_error(401, "unauthorized");
        server
            .request("GET", "/v1/catalog", &headers, None)
            .expect_error(401, "unauthorized");
        server
            .request("GET", "/v1/views/t", &headers, None)
            .expect_error(401, "unauthorized");
        server
            .request("GET", "/v1/subscribe?view=t", &headers, None)
            .expect_error(401, "unauthorized");
        let mut h = headers.clone();
        h.push(("Content-Type", "application/x-ndjson"));
        server
            .request("POST", "/v1/tables/t/rows", &h, Some(b"{\"x\": 1}\n"))
            .expect_error(401, "unauthorized");
    }
    // The token is a prefix or extension of the right one: still refused.
    let near = format!("Bearer {TOKEN}x");
    server
        .request("GET", "/v1/catalog", &[("Authorization", &near)], None)
        .expect_error(401, "unauthorized");
    let near = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    server
        .request("GET", "/v1/catalog", &[("Authorization", &near)], None)
        .expect_error(401, "unauthorized");

    // With the token everything works.
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    let r = server.request("POST", "/v1/sql", &auth, Some(sql_body.as_bytes()));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = server.request(
        "POST",
        "/v1/tables/t/rows",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/x-ndjson"),
        ],
        Some(b"{\"x\": 1}\n"),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = server.request("GET", "/v1/views/t", &[("Authorization", &bearer)], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["rows"], json!([[1]]));
    let r = server.request("GET", "/v1/catalog", &[("Authorization", &bearer)], None);
    assert_eq!(r.status, 200, "{}", r.text);
    let mut s = server.subscribe_ok("view=t", &[("Authorization", &bearer)]);
    assert_eq!(s.expect().kind, "columns");
    drop(s);

    // Health, readiness and metrics stay open.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            server.get(path).status,
            200,
            "{path} must not need the token"
        );
    }
}

#[test]
fn session_cookie_works_for_event_source() {
    let server = Server::start(&["--auth-token", TOKEN]);
    let bearer = format!("Bearer {TOKEN}");
    let r = server.request(
        "POST",
        "/v1/sql",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        Some(
            json!({"sql": "CREATE TABLE t (x bigint); INSERT INTO t VALUES (7)"})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    // A wrong token gets no cookie.
    let r = server.request(
        "POST",
        "/v1/session",
        &[("Content-Type", "application/json")],
        Some(br#"{"token": "wrong"}"#),
    );
    r.expect_error(401, "unauthorized");
    assert!(r.header("set-cookie").is_none());
    let r = server.request("POST", "/v1/session", &[], None);
    r.expect_error(401, "unauthorized");

    // The right token (in the body, or in the header) gets an HttpOnly cookie.
    for r in [
        server.request(
            "POST",
            "/v1/session",
            &[("Content-Type", "application/json")],
            Some(json!({"token": TOKEN}).to_string().as_bytes()),
        ),
        server.request("POST", "/v1/session", &[("Authorization", &bearer)], None),
    ] {
        assert_eq!(r.status, 200, "{}", r.text);
        let set_cookie = r
            .header("set-cookie")
            .unwrap_or_else(|| panic!("no Set-Cookie: {:?}", r.headers))
            .to_string();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite"), "{set_cookie}");
        let pair = set_cookie.split(';').next().unwrap().trim().to_string();
        assert!(pair.starts_with("freshet_session="), "{set_cookie}");

        // EventSource sends cookies, not headers: the cookie alone opens a subscription.
        let mut s = server.subscribe_ok("view=t", &[("Cookie", &pair)]);
        let cols = s.expect();
        assert_eq!(cols.kind, "columns");
        let snap = s.expect();
        assert_eq!(snap.kind, "update");
        assert_eq!(snap.data["updates"], json!([{"row": [7], "diff": 1}]));
        drop(s);
        // And other /v1 reads, among other cookies.
        let both = format!("theme=dark; {pair}; other=1");
        let r = server.request("GET", "/v1/views/t", &[("Cookie", &both)], None);
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // Without the cookie the subscription is refused.
    match server.subscribe("view=t", &[]) {
        Err(r) => {
            r.expect_error(401, "unauthorized");
        }
        Ok(_) => panic!("subscription without credentials was accepted"),
    }
    server.assert_healthy();
}
