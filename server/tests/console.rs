//! The web console and freshet.js in a real browser, against the real `freshet` binary.
//!
//! Headless Chromium (Debian's `chromium` package) is driven over the DevTools protocol by
//! `headless_chrome`. Each test starts `freshet serve` on a free port, loads the console from
//! it, and acts as a person would: types SQL into the editor, clicks buttons, logs in. Rows are
//! written through the HTTP API, and the expected contents come from a model of those writes,
//! never from the page itself. There are no mocks: the page talks to the server over real SSE.
//!
//! A failing test saves a screenshot of the page (its path is printed). The screenshot in
//! docs/console.md is made by `console_shows_live_table_and_chart`; regenerate it with
//! `FRESHET_UPDATE_SCREENSHOT=1 cargo test -p freshet-server --test console`.
//!
//! Chromium must be installed (`apt-get install -y chromium`; `.ci/run` does it). Without it
//! these tests fail, loudly, rather than skip: a console nobody tested is not a console.
//! `js_client_unit_tests` runs freshet.js's own unit tests with `node --test`.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{encode, Server};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// The Chromium binary: `$FRESHET_CHROMIUM`, else the first of the usual names on PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("FRESHET_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "the console tests need headless Chromium, and none is on PATH.\n\
         Install it with:  apt-get install -y chromium\n\
         (or set FRESHET_CHROMIUM to a Chromium binary). .ci/run installs it."
    );
}

/// Flags for a headless browser on a machine without a network: nothing phones home.
const FLAGS: &[&str] = &[
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-sync",
    "--no-default-browser-check",
    "--no-first-run",
    "--no-pings",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
    "--disable-client-side-phishing-detection",
    "--disable-features=TranslateUI,BlinkGenPropertyTrees,OptimizationHints,MediaRouter,\
     DialMediaRouteProvider,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
    "--password-store=basic",
    "--use-mock-keychain",
    "--hide-scrollbars",
    "--lang=en-US",
];

/// A browser tab on the console; saves a screenshot if the test fails while it is open.
struct Page {
    _browser: Browser,
    tab: Arc<Tab>,
    name: &'static str,
}

impl Page {
    fn open(server: &Server, name: &'static str) -> Page {
        let path = chromium();
        let mut args: Vec<&OsStr> = FLAGS.iter().map(OsStr::new).collect();
        args.push(OsStr::new("--disable-gpu"));
        let options = LaunchOptions::default_builder()
            .path(Some(path.clone()))
            .headless(true)
            .sandbox(false)
            .window_size(Some((1360, 660)))
            .idle_browser_timeout(Duration::from_secs(300))
            .args(args)
            .build()
            .expect("launch options");
        let browser = Browser::new(options).unwrap_or_else(|e| {
            panic!(
                "could not start Chromium at {}: {e:#}\n\
                 Install it with:  apt-get install -y chromium",
                path.display()
            )
        });
        let tab = browser.new_tab().expect("a tab");
        tab.set_default_timeout(WAIT);
        let page = Page {
            _browser: browser,
            tab,
            name,
        };
        page.tab
            .navigate_to(&server.url("/"))
            .and_then(|t| t.wait_until_navigated())
            .unwrap_or_else(|e| panic!("loading the console failed: {e:#}"));
        page
    }

    /// Evaluates a JavaScript expression (awaiting it if it is a promise); its value as JSON.
    fn eval(&self, expr: &str) -> Value {
        let js = format!("(async () => JSON.stringify(await ({expr})))()");
        let result = self
            .tab
            .evaluate(&js, true)
            .unwrap_or_else(|e| panic!("evaluating {expr} failed: {e:#}"));
        match result.value {
            Some(Value::String(s)) => serde_json::from_str(&s).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Polls `expr` until `done` accepts its value; the value.
    fn wait_for(&self, what: &str, expr: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.eval(expr);
            if done(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; last saw {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn visible(&self, selector: &str) {
        let expr = format!("!document.querySelector({})?.hidden", json!(selector));
        self.wait_for(&format!("{selector} to show"), &expr, |v| *v == json!(true));
    }

    fn click(&self, selector: &str) {
        self.tab
            .wait_for_element(selector)
            .and_then(|e| e.click().map(|_| ()))
            .unwrap_or_else(|e| panic!("clicking {selector} failed: {e:#}"));
    }

    /// Clears a text field, clicks into it and enters `text` as one input (as a paste or an
    /// input method does; key-by-key typing costs a round trip per key and adds nothing here).
    fn type_into(&self, selector: &str, text: &str) {
        self.eval(&format!(
            "document.querySelector({}).value = ''",
            json!(selector)
        ));
        self.click(selector);
        self.tab
            .send_character(text)
            .unwrap_or_else(|e| panic!("typing into {selector} failed: {e:#}"));
    }

    fn screenshot(&self, path: &Path) {
        match self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        {
            Ok(png) => match std::fs::write(path, png) {
                Ok(()) => eprintln!("screenshot: {}", path.display()),
                Err(e) => eprintln!("could not write {}: {e}", path.display()),
            },
            Err(e) => eprintln!("could not take a screenshot: {e:#}"),
        }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("console-failure-{}.png", self.name));
            self.screenshot(&path);
            if let Ok(text) = self
                .tab
                .evaluate("document.body.innerText.slice(0, 3000)", false)
            {
                let text = text.value.unwrap_or_default();
                eprintln!("--- page text ---\n{}", text.as_str().unwrap_or_default());
            }
        }
    }
}

/// The live table as `{time, rows: [[cell text…]], changed_at: [time…]}`, read at once so the
/// rows and the timestamp belong together. `changed_at[i]` is the complete timestamp at which
/// row i last changed (and was highlighted).
const LIVE: &str = r#"(() => {
  const t = document.querySelector('#live-time').dataset.time;
  const trs = [...document.querySelectorAll('#live-table tbody tr')];
  return {
    time: t === undefined ? null : Number(t),
    rows: trs.map((tr) => [...tr.cells].map((td) => td.textContent)),
    changed_at: trs.map((tr) => Number(tr.dataset.changedAt)),
  };
})()"#;

/// The chart: `{samples, series: {name: last value}, points: {name: number of points}}`.
const CHART: &str = r#"(() => {
  const svg = document.querySelector('#chart');
  const series = {}, points = {};
  for (const l of svg.querySelectorAll('polyline')) {
    series[l.dataset.series] = l.dataset.last === undefined ? null : Number(l.dataset.last);
    points[l.dataset.series] = l.getAttribute('points').trim().split(/\s+/).filter(Boolean).length;
  }
  return { samples: Number(svg.dataset.samples ?? 0), series, points };
})()"#;

/// Waits until the live table is complete at or after `ts`; the table then.
fn live_at(page: &Page, ts: u64) -> Value {
    page.wait_for(&format!("the live table to reach {ts}"), LIVE, |v| {
        v["time"].as_u64().is_some_and(|t| t >= ts)
    })
}

/// Rows as the table shows them: each cell's text, then the multiplicity.
fn shown(rows: impl IntoIterator<Item = Vec<String>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|mut r| {
            r.push("1".into());
            r
        })
        .collect()
}

fn as_rows(v: &Value) -> Vec<Vec<String>> {
    serde_json::from_value(v.clone()).expect("rows of strings")
}

/// A small deterministic stream of readings.
fn readings(n: usize, seed: u64) -> Vec<(String, i64)> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let sensor = ["alpha", "beta", "gamma"][(x >> 33) as usize % 3];
            (sensor.to_string(), ((x >> 40) % 50) as i64 + 1)
        })
        .collect()
}

#[test]
fn console_shows_live_table_and_chart() {
    let server = Server::start(&[]);
    let page = Page::open(&server, "live");
    page.visible("#app");

    // A table and a view, through the editor.
    page.type_into(
        "#sql",
        "CREATE TABLE readings (sensor text NOT NULL, value bigint NOT NULL);\n\
         CREATE VIEW totals AS SELECT sensor, sum(value) AS total, count(*) AS n \
         FROM readings GROUP BY sensor",
    );
    page.click("#run");
    let tags = page.wait_for(
        "the editor's results",
        "[...document.querySelectorAll('#results .tag')].map((e) => e.textContent)",
        |v| v.as_array().is_some_and(|a| a.len() == 2),
    );
    assert_eq!(tags, json!(["CREATE TABLE", "CREATE VIEW"]));
    let catalog = server.get("/v1/catalog").json();
    assert_eq!(catalog["views"][0]["name"], "totals", "{catalog}");

    // The catalog lists them; watch the view.
    page.wait_for(
        "the catalog to list the view",
        "!!document.querySelector('#catalog .item[data-name=\"totals\"] button.watch')",
        |v| *v == json!(true),
    );
    page.click("#catalog .item[data-name=\"totals\"] button.watch");
    page.wait_for(
        "the live status",
        "document.querySelector('#live-status').textContent",
        |v| *v == json!("live"),
    );
    // Chart the total per sensor (a person picks it from the list).
    page.eval(
        "(() => { const s = document.querySelector('#chart-y');
                  s.value = [...s.options].find((o) => o.text === 'total').value;
                  s.dispatchEvent(new Event('change')); })()",
    );

    // Rows arrive through the HTTP API, in batches; a model says what the view must be.
    let mut model: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let all = readings(24, 7);
    let mut written: Vec<(String, i64)> = Vec::new();
    for (i, batch) in all.chunks(4).enumerate() {
        let mut ndjson = String::new();
        let before = model.clone();
        for (sensor, value) in batch {
            ndjson.push_str(&json!({"sensor": sensor, "value": value}).to_string());
            ndjson.push('\n');
            let e = model.entry(sensor.clone()).or_default();
            e.0 += value;
            e.1 += 1;
            written.push((sensor.clone(), *value));
        }
        // One batch also deletes an earlier reading: the view must retract, too.
        if i == 3 {
            let (sensor, value) = written.remove(0);
            ndjson.push_str(&json!({"delete": {"sensor": sensor, "value": value}}).to_string());
            let e = model.get_mut(&sensor).expect("a sensor seen before");
            e.0 -= value;
            e.1 -= 1;
            if e.1 == 0 {
                model.remove(&sensor);
            }
        }
        let ts = server.ingest_ok("readings", &ndjson);
        let live = live_at(&page, ts);
        let rows = |m: &BTreeMap<String, (i64, i64)>| {
            shown(
                m.iter()
                    .map(|(s, (t, n))| vec![s.clone(), t.to_string(), n.to_string()]),
            )
        };
        assert_eq!(as_rows(&live["rows"]), rows(&model), "after write at {ts}");
        // The rows this write changed, and only they, are marked as changed at or after it
        // (at the first complete timestamp that showed it).
        let changed: BTreeMap<_, _> = model
            .iter()
            .filter(|(s, v)| before.get(*s) != Some(*v))
            .map(|(s, v)| (s.clone(), *v))
            .collect();
        let marked: Vec<Vec<String>> = as_rows(&live["rows"])
            .into_iter()
            .zip(live["changed_at"].as_array().expect("changed_at"))
            .filter(|(_, at)| at.as_u64().is_some_and(|at| at >= ts))
            .map(|(r, _)| r)
            .collect();
        assert_eq!(
            marked,
            rows(&changed),
            "rows highlighted for the write at {ts}"
        );
        // The chart's last point per sensor is its total.
        let expected: BTreeMap<String, i64> =
            model.iter().map(|(s, (t, _))| (s.clone(), *t)).collect();
        page.wait_for(
            &format!("the chart to show the totals of {ts}"),
            CHART,
            |c| {
                expected
                    .iter()
                    .all(|(s, t)| c["series"][s].as_i64() == Some(*t))
            },
        );
        std::thread::sleep(Duration::from_millis(400));
    }
    let chart = page.eval(CHART);
    assert!(
        chart["samples"].as_u64().unwrap_or(0) >= 6,
        "a sample at least per write: {chart}"
    );
    for sensor in model.keys() {
        assert!(
            chart["points"][sensor].as_u64().unwrap_or(0) >= 2,
            "{sensor} drawn as a line: {chart}"
        );
    }
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    page.screenshot(&shot);
    if std::env::var_os("FRESHET_UPDATE_SCREENSHOT").is_some() {
        page.screenshot(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/console.png"));
    }

    // An ad-hoc query, live: the count of readings.
    page.type_into("#sql", "SELECT count(*) AS readings FROM readings");
    page.click("#watch-query");
    let ts = server.ingest_ok("readings", "{\"sensor\": \"delta\", \"value\": 1}");
    written.push(("delta".into(), 1));
    let live = live_at(&page, ts);
    assert_eq!(
        as_rows(&live["rows"]),
        shown([vec![written.len().to_string()]])
    );
    page.wait_for("the chart of the count", CHART, |c| {
        c["series"]["total"].as_u64() == Some(written.len() as u64)
    });

    // Errors in the editor: the code, the message, and where, as the server said.
    let bad = "SELECT 1;\nSELECT sensor FROM readings WHERE;";
    page.type_into("#sql", bad);
    page.click("#run");
    let err = server.sql(bad).expect_error(400, "syntax_error");
    let line = err["position"]["line"].as_u64().expect("line");
    let column = err["position"]["column"].as_u64().expect("column");
    let text = page.wait_for(
        "the error",
        "document.querySelector('#results .error')?.textContent ?? null",
        |v| v.is_string(),
    );
    let text = text.as_str().unwrap_or_default();
    assert!(text.starts_with("syntax_error: "), "{text}");
    assert!(
        text.contains(&format!("statement 2, line {line}, column {column}")),
        "{text} vs {err}"
    );
    let caret = page.eval("document.querySelector('#results pre.caret')?.textContent");
    let caret = caret.as_str().unwrap_or_default();
    let marked = caret.lines().nth(1).unwrap_or_default();
    assert_eq!(
        marked.len() as u64,
        column,
        "caret under column {column}: {caret:?}"
    );
}

#[test]
fn console_login_with_auth_token() {
    let token = format!("console-test-{}", std::process::id());
    let server = Server::start(&["--auth-token", &token]);
    let page = Page::open(&server, "login");
    page.visible("#login");
    assert_eq!(
        page.eval("document.querySelector('#app').hidden"),
        json!(true)
    );

    // A wrong token is refused and the page says so.
    page.type_into("#token", "not-the-token");
    page.click("#login-button");
    page.wait_for(
        "the refusal",
        "document.querySelector('#login-error').textContent",
        |v| *v == json!("wrong token"),
    );

    page.type_into("#token", &token);
    page.click("#login-button");
    page.visible("#app");
    assert_eq!(
        page.eval("document.querySelector('#token').value"),
        json!("")
    );

    // Logged in: the editor works, and so does a live subscription, which rides the cookie.
    page.type_into("#sql", "CREATE TABLE secrets (id bigint NOT NULL)");
    page.click("#run");
    page.wait_for(
        "CREATE TABLE",
        "document.querySelector('#results .tag')?.textContent ?? null",
        |v| *v == json!("CREATE TABLE"),
    );
    page.wait_for(
        "the catalog to list the table",
        "!!document.querySelector('#catalog .item[data-name=\"secrets\"] button.watch')",
        |v| *v == json!(true),
    );
    page.click("#catalog .item[data-name=\"secrets\"] button.watch");
    let auth = format!("Bearer {token}");
    let r = server.request(
        "POST",
        "/v1/tables/secrets/rows",
        &[
            ("Content-Type", "application/x-ndjson"),
            ("Authorization", &auth),
        ],
        Some(b"{\"id\": 42}"),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let ts = r.json()["timestamp"].as_u64().expect("timestamp");
    let live = live_at(&page, ts);
    assert_eq!(as_rows(&live["rows"]), shown([vec!["42".to_string()]]));

    // The token is in no URL the page requested, and the cookie is out of the script's reach.
    let urls = page
        .eval("[location.href, ...performance.getEntriesByType('resource').map((e) => e.name)]");
    assert!(
        urls.as_array().is_some_and(|u| u.len() > 3),
        "requests: {urls}"
    );
    assert!(!urls.to_string().contains(&token), "token in a URL: {urls}");
    let cookie = page.eval("document.cookie");
    assert!(
        !cookie.to_string().contains(&token),
        "cookie readable: {cookie}"
    );
    // Without the cookie, the API still says no.
    server.get("/v1/catalog").expect_error(401, "unauthorized");
}

/// freshet.js in the browser, against the real server: after dropped connections it resumes
/// from the last progress, and every state it exposes is the table as of one write.
#[test]
fn js_client_resumes_without_gap_or_duplicate() {
    let server = Server::start(&[]);
    server.sql_ok("CREATE TABLE t (k bigint NOT NULL)");
    let page = Page::open(&server, "resume");
    page.eval(
        "import('/console/freshet.js').then((m) => {
           window.seen = [];
           window.sub = m.subscribe({ sql: 'SELECT k FROM t' }, {
             onChange: (c) => window.seen.push({ time: c.time, rows: window.sub.rows().map((r) => r[0]) }),
           });
           return true;
         })",
    );
    // Until the snapshot's progress arrives there is nothing to resume from (a drop then
    // takes a new snapshot), so the drops below start after it.
    page.wait_for("the snapshot", "window.sub.time", |v| v.as_u64().is_some());
    let mut writes: Vec<(u64, i64)> = Vec::new();
    let mut k = 0;
    for round in 0..4 {
        for i in 0..3 {
            k += 1;
            writes.push((server.ingest_ok("t", &format!("{{\"k\": {k}}}")), k));
            if i == 1 {
                // A drop right after a write may fall between its update and its progress.
                page.eval("window.sub.drop()");
            }
        }
        let last = writes.last().expect("a write").0;
        page.wait_for(
            &format!("round {round} to arrive"),
            "window.sub.time",
            |v| v.as_u64().is_some_and(|t| t >= last),
        );
        // Cut the connection; the next writes land while it is down or reconnecting.
        page.eval("window.sub.drop()");
    }
    k += 1;
    let ts = server.ingest_ok("t", &format!("{{\"k\": {k}}}"));
    writes.push((ts, k));
    page.wait_for("the last write", "window.sub.time", |v| {
        v.as_u64().is_some_and(|t| t >= ts)
    });
    let stats = page.eval("window.sub.stats");
    assert_eq!(stats["snapshots"], json!(1), "{stats}");
    assert!(stats["resumes"].as_u64().unwrap_or(0) >= 4, "{stats}");

    // Every state exposed equals the writes up to its time: no gap, no duplicate, no half.
    let seen = page.eval("window.seen");
    let seen = seen.as_array().expect("seen");
    assert!(seen.len() > writes.len() / 2, "{seen:?}");
    for s in seen {
        let time = s["time"].as_u64().expect("time");
        let mut rows: Vec<i64> = serde_json::from_value(s["rows"].clone()).expect("rows");
        rows.sort();
        let expected: Vec<i64> = writes
            .iter()
            .filter(|(t, _)| *t <= time)
            .map(|(_, k)| *k)
            .collect();
        assert_eq!(rows, expected, "as of {time}");
    }
    // A query the server rejects surfaces its error instead of retrying.
    let failed = page.eval(&format!(
        "import('/console/freshet.js').then((m) => new Promise((resolve) => {{
           m.subscribe({{ sql: {} }}, {{
             onStatus: (s) => s.state === 'failed' && resolve(s.error.code),
           }});
         }}))",
        json!("SELECT nope FROM t")
    ));
    let direct = server
        .subscribe(&format!("sql={}", encode("SELECT nope FROM t")), &[])
        .err()
        .expect("the server rejects the query");
    assert_eq!(failed, direct.json()["error"]["code"]);
}

/// freshet.js's unit tests (server/console/test), run with node's built-in test runner.
#[test]
fn js_client_unit_tests() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("console");
    let out = Command::new("node")
        .current_dir(&dir)
        .args(["--test", "--test-reporter=tap", "test/freshet.test.js"])
        .output()
        .unwrap_or_else(|e| {
            panic!("could not run node ({e}); install it with:  apt-get install -y nodejs")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
