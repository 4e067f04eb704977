//! Shared helpers for the end-to-end tests: start the real `freshet` binary on a free port,
//! speak HTTP to it as a client would, and read subscription streams (SSE or NDJSON).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A response's headers, names in lower case.
fn headers_of<B>(response: &ureq::http::Response<B>) -> Vec<(String, String)> {
    response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A running `freshet serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// `host:port`
    pub addr: String,
    /// `http://host:port`
    pub base: String,
    agent: ureq::Agent,
    log: PathBuf,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A client without connection reuse: the server may close a keep-alive connection after
/// answering early (401, 413) without reading the body, and a pooled connection would then
/// fail the next request for reasons that are not the server's fault.
fn agent(read_timeout: Option<Duration>) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_per_read(read_timeout)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0);
    ureq::Agent::new_with_config(config.build())
}

impl Server {
    /// Starts `freshet serve --listen 127.0.0.1:0 ARGS…` and waits for its `listening on` line.
    pub fn start(args: &[&str]) -> Server {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("freshet-{}-{n}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("create server log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_freshet"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            // Durable only where a test asks for a data directory.
            .args(if args.contains(&"--data-dir") {
                &[][..]
            } else {
                &["--ephemeral"][..]
            })
            .args(args)
            .env_remove("FRESHET_AUTH_TOKEN")
            .env_remove("FRESHET_LISTEN")
            .env_remove("FRESHET_WORKERS")
            .env_remove("FRESHET_DATA_DIR")
            .env_remove("FRESHET_EPHEMERAL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("spawn freshet");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the server never blocks on a full pipe.
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "freshet did not print its address within 60 s; log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let addr = match line.trim().strip_prefix("listening on http://") {
            Some(a) => a.to_string(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "unexpected first stdout line {line:?}; log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Server {
            child,
            base: format!("http://{addr}"),
            addr,
            agent: agent(Some(Duration::from_secs(60))),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log (stderr) so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `within` for the process to exit by itself; its exit status, if it did.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the process to exit; its exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Any request; `body` None sends none. Panics if the server does not answer.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Any request; Err when the connection failed (e.g. the server died).
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Resp, String> {
        let url = self.url(path);
        let result = match (method, body) {
            ("GET", None) => {
                let mut req = self.agent.get(&url);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.call()
            }
            ("POST", body) => {
                let mut req = self.agent.post(&url);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.send(body.unwrap_or(b""))
            }
            (method, body) => {
                let req = ureq::http::Request::builder().method(method).uri(&url);
                let req = headers.iter().fold(req, |r, (k, v)| r.header(*k, *v));
                let req = req.body(body.unwrap_or(b"").to_vec()).expect("request");
                self.agent.run(req)
            }
        };
        let mut response = result.map_err(|e| format!("{method} {path} failed: {e}"))?;
        let status = response.status().as_u16();
        let headers = headers_of(&response);
        let text = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .map_err(|e| format!("{method} {path}: reading the body failed: {e}"))?;
        Ok(Resp {
            status,
            headers,
            text,
        })
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], None)
    }

    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Resp {
        self.request("POST", path, &[("Content-Type", content_type)], Some(body))
    }

    /// `POST /v1/sql`.
    pub fn sql(&self, sql: &str) -> Resp {
        self.post(
            "/v1/sql",
            "application/json",
            json!({ "sql": sql }).to_string().as_bytes(),
        )
    }

    /// `POST /v1/sql`, asserting 200; the `results` array.
    pub fn sql_ok(&self, sql: &str) -> Vec<Value> {
        let r = self.sql(sql);
        assert_eq!(r.status, 200, "SQL {sql:?} failed: {}", r.text);
        r.json()["results"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("no results in {}", r.text))
    }

    /// `POST /v1/tables/{table}/rows`.
    pub fn ingest(&self, table: &str, content_type: &str, body: &str) -> Resp {
        self.post(
            &format!("/v1/tables/{table}/rows"),
            content_type,
            body.as_bytes(),
        )
    }

    /// NDJSON ingest asserting 200; the write's timestamp.
    pub fn ingest_ok(&self, table: &str, ndjson: &str) -> u64 {
        let r = self.ingest(table, "application/x-ndjson", ndjson);
        assert_eq!(r.status, 200, "ingest into {table} failed: {}", r.text);
        r.json()["timestamp"]
            .as_u64()
            .unwrap_or_else(|| panic!("no timestamp in {}", r.text))
    }

    /// `GET /v1/views/{name}` asserting 200.
    pub fn read(&self, name: &str) -> Value {
        let r = self.get(&format!("/v1/views/{name}"));
        assert_eq!(r.status, 200, "read {name} failed: {}", r.text);
        r.json()
    }

    /// The rows of a view or table, as a multiset.
    pub fn rows(&self, name: &str) -> Multiset {
        multiset(self.read(name)["rows"].as_array().expect("rows"))
    }

    /// `(latest, earliest_retained)` from the catalog.
    pub fn frontiers(&self) -> (u64, u64) {
        let c = self.get("/v1/catalog");
        assert_eq!(c.status, 200, "{}", c.text);
        let c = c.json();
        (
            c["timestamps"]["latest"].as_u64().expect("latest"),
            c["timestamps"]["earliest_retained"]
                .as_u64()
                .expect("earliest"),
        )
    }

    /// Polls until the earliest retained time is past `ts` (compaction caught up).
    pub fn wait_compacted_past(&self, ts: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (_, since) = self.frontiers();
            if since > ts {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "earliest retained time {since} did not pass {ts} within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn assert_healthy(&self) {
        let r = self.get("/healthz");
        assert_eq!(r.status, 200, "healthz: {}", r.text);
        assert_eq!(r.json()["status"], "ok");
    }

    /// `GET /v1/subscribe?QUERY` with extra headers: the open stream, or the error response.
    pub fn subscribe(&self, query: &str, headers: &[(&str, &str)]) -> Result<Stream, Resp> {
        let url = self.url(&format!("/v1/subscribe?{query}"));
        let mut req = agent(Some(Duration::from_secs(30))).get(&url);
        let mut ndjson = false;
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("accept") && v.contains("application/x-ndjson") {
                ndjson = true;
            }
            req = req.header(*k, *v);
        }
        let mut response = req
            .call()
            .unwrap_or_else(|e| panic!("subscribe {query} failed: {e}"));
        let status = response.status().as_u16();
        let resp_headers = headers_of(&response);
        if status != 200 {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            return Err(Resp {
                status,
                headers: resp_headers,
                text,
            });
        }
        let content_type = resp_headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let reader = BufReader::with_capacity(64 << 10, response.into_body().into_reader());
        Ok(Stream {
            reader,
            ndjson,
            content_type,
        })
    }

    /// Like `subscribe`, panicking on an error response.
    pub fn subscribe_ok(&self, query: &str, headers: &[(&str, &str)]) -> Stream {
        match self.subscribe(query, headers) {
            Ok(s) => s,
            Err(r) => panic!("subscribe {query} failed with {}: {}", r.status, r.text),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "--- last lines of the server log {} ---",
                self.log.display()
            );
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// A finished HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "response (status {}) is not JSON ({e}): {:?}",
                self.status, self.text
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Checks the error shape `{"error": {"code", "message", …}}` and the status; the error object.
    pub fn expect_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status, status,
            "expected {status} {code}, got {}: {}",
            self.status, self.text
        );
        let body = self.json();
        let err = body
            .get("error")
            .unwrap_or_else(|| panic!("no \"error\" object in {}", self.text))
            .clone();
        assert_eq!(err["code"], code, "wrong error code in {}", self.text);
        let message = err["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {}", self.text));
        assert!(!message.is_empty(), "empty message in {}", self.text);
        err
    }
}

/// One message of a subscription: its type, its JSON, and (SSE) its event id.
#[derive(Debug, Clone)]
pub struct Msg {
    pub kind: String,
    pub data: Value,
    pub id: Option<String>,
}

impl Msg {
    pub fn time(&self) -> u64 {
        self.data["time"]
            .as_u64()
            .unwrap_or_else(|| panic!("no time in {}", self.data))
    }
}

/// A streaming subscription body, parsed into messages.
pub struct Stream {
    reader: BufReader<ureq::BodyReader<'static>>,
    ndjson: bool,
    pub content_type: String,
}

impl Stream {
    /// The next message; None when the server closed the stream.
    pub fn next(&mut self) -> Option<Msg> {
        if self.ndjson {
            self.next_ndjson()
        } else {
            self.next_sse()
        }
    }

    /// Like `next`, panicking at the end of the stream.
    pub fn expect(&mut self) -> Msg {
        self.next()
            .expect("the subscription stream ended unexpectedly")
    }

    fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line),
            Err(e) => panic!("reading the subscription stream failed: {e}"),
        }
    }

    fn next_ndjson(&mut self) -> Option<Msg> {
        loop {
            let line = self.read_line()?;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let data: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("bad NDJSON line ({e}): {line:?}"));
            let kind = data["type"]
                .as_str()
                .unwrap_or_else(|| panic!("no type in {line}"))
                .to_string();
            return Some(Msg {
                kind,
                data,
                id: None,
            });
        }
    }

    fn next_sse(&mut self) -> Option<Msg> {
        let mut event: Option<String> = None;
        let mut data: Vec<String> = Vec::new();
        let mut id: Option<String> = None;
        loop {
            let line = self.read_line()?;
            let line = line.strip_suffix('\n').unwrap_or(&line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                if data.is_empty() {
                    // A comment-only block (keep-alive) or stray blank line.
                    event = None;
                    id = None;
                    continue;
                }
                let text = data.join("\n");
                let value: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("bad SSE data ({e}): {text:?}"));
                let kind = event.unwrap_or_else(|| "message".to_string());
                assert_eq!(
                    value["type"].as_str(),
                    Some(kind.as_str()),
                    "SSE event name and data type differ: {text}"
                );
                return Some(Msg {
                    kind,
                    data: value,
                    id,
                });
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => event = Some(value.to_string()),
                "data" => data.push(value.to_string()),
                "id" => id = Some(value.to_string()),
                "retry" => {}
                other => panic!("unknown SSE field {other:?} in line {line:?}"),
            }
        }
    }

    /// Reads until a progress message with time > `ts`, applying updates to `acc`; returns
    /// that progress time and every message read.
    pub fn read_past(&mut self, ts: u64, acc: &mut Multiset) -> (u64, Vec<Msg>) {
        let mut seen = Vec::new();
        loop {
            let m = self.expect();
            match m.kind.as_str() {
                "update" => apply(acc, &m.data["updates"]),
                "progress" => {
                    let t = m.time();
                    seen.push(m);
                    if t > ts {
                        return (t, seen);
                    }
                    continue;
                }
                "error" => panic!("subscription error: {}", m.data),
                _ => {}
            }
            seen.push(m);
        }
    }
}

/// A multiset of rows, keyed by the row's JSON text.
pub type Multiset = BTreeMap<String, i64>;

pub fn multiset(rows: &[Value]) -> Multiset {
    let mut m = Multiset::new();
    for r in rows {
        *m.entry(r.to_string()).or_default() += 1;
    }
    m
}

/// Applies an `updates` array (`[{"row": […], "diff": n}, …]`) to a multiset.
pub fn apply(acc: &mut Multiset, updates: &Value) {
    for u in updates
        .as_array()
        .unwrap_or_else(|| panic!("updates is not an array: {updates}"))
    {
        let diff = u["diff"]
            .as_i64()
            .unwrap_or_else(|| panic!("no diff in {u}"));
        assert_ne!(diff, 0, "an update with diff 0: {u}");
        let row = u["row"]
            .as_array()
            .unwrap_or_else(|| panic!("row is not an array in {u}"));
        let key = Value::Array(row.clone()).to_string();
        let e = acc.entry(key.clone()).or_default();
        *e += diff;
        assert!(*e >= 0, "multiplicity of {key} went negative ({e})");
        if *e == 0 {
            acc.remove(&key);
        }
    }
}

/// Percent-encodes a query-string value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Rows of a SQLite query as a multiset of JSON arrays.
pub fn sqlite_rows(db: &rusqlite::Connection, sql: &str) -> Multiset {
    let mut stmt = db.prepare(sql).expect("prepare");
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |row| {
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                out.push(match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(x) => json!(x),
                    rusqlite::types::ValueRef::Real(x) => json!(x),
                    rusqlite::types::ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                    rusqlite::types::ValueRef::Blob(_) => panic!("blob"),
                });
            }
            Ok(Value::Array(out))
        })
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    multiset(&rows)
}

/// Readable difference of two multisets, for assertion messages.
pub fn diff(expected: &Multiset, got: &Multiset) -> String {
    let mut out = String::new();
    for (k, v) in expected {
        let g = got.get(k).copied().unwrap_or(0);
        if g != *v {
            out.push_str(&format!("  {k}: expected ×{v}, got ×{g}\n"));
        }
    }
    for (k, v) in got {
        if !expected.contains_key(k) {
            out.push_str(&format!("  {k}: expected ×0, got ×{v}\n"));
        }
    }
    out
}

impl Server {
    /// Polls `/readyz` until it answers 200.
    pub fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let r = self.get("/readyz");
            if r.status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready within {within:?}: {}",
                r.text
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and wait until the process is gone.
    pub fn kill_hard(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alive() {
            assert!(Instant::now() < deadline, "SIGKILL did not stop the server");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The `status` of a source or sink in the catalog (`kind` is `sources` or `sinks`).
    pub fn connector_status(&self, kind: &str, name: &str) -> Value {
        let c = self.get("/v1/catalog").json();
        c[kind]
            .as_array()
            .unwrap_or_else(|| panic!("no {kind} in {c}"))
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {c}"))["status"]
            .clone()
    }
}

/// Polls `read` until it returns `expected`; fails with the difference when time is up.
pub fn eventually(
    what: &str,
    within: Duration,
    expected: &Multiset,
    read: impl FnMut() -> Multiset,
) {
    poll_until(what, within, expected, read, diff);
}

/// Polls `read` until it returns `expected` (any comparable value); fails showing the last one.
pub fn eventually_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    within: Duration,
    expected: &T,
    read: impl FnMut() -> T,
) {
    poll_until(what, within, expected, read, |e, g| {
        format!("expected {e:?}\ngot {g:?}")
    });
}

fn poll_until<T: PartialEq>(
    what: &str,
    within: Duration,
    expected: &T,
    mut read: impl FnMut() -> T,
    show: impl Fn(&T, &T) -> String,
) {
    let deadline = Instant::now() + within;
    loop {
        let got = read();
        if &got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not reach the expected state within {within:?}:\n{}",
            show(expected, &got)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port nobody listens on, below the kernel's ephemeral range (32768 and up on Linux): a
/// port the kernel hands out for `:0` can be taken by any outgoing connection of a test
/// running beside this one before it is bound again (a cluster test once waited 20 s for a
/// process whose port was gone). Ports are taken in turn from a start that depends on the
/// process, so two tests of one binary never get the same one.
pub fn free_port() -> u16 {
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
