// Unit tests of freshet.js's bookkeeping and reconnection logic, run by `node --test` (from the
// Rust test server/tests/console.rs, so `cargo test --workspace` runs them). The transport tests
// script the server's side of each connection, message by message, to reach the cases a real
// server produces only under load or at a bad moment: a drop between an update and its progress,
// `lagged`, `compacted`, a failed query. The browser test drives the same code against the real
// server.

import assert from "node:assert/strict";
import { test } from "node:test";

import { LiveRows, sseEvents, subscribe } from "../freshet.js";

const update = (time, ...updates) => ({ type: "update", time, updates: updates.map(([row, diff]) => ({ row, diff })) });
const progress = (time) => ({ type: "progress", time });
const columns = { type: "columns", columns: [{ name: "k", type: "text" }, { name: "n", type: "bigint" }] };
const contents = (live) => [...live.rows.values()].map(({ row, count }) => [row, count]).sort();

test("updates become visible only at a progress, and only those before it", () => {
  const live = new LiveRows();
  live.apply(columns);
  live.apply(update(10, [["a", 1], 1], [["b", 2], 1]));
  assert.deepEqual(contents(live), []);
  assert.equal(live.time, null);
  const c = live.apply(progress(11));
  assert.deepEqual(contents(live), [[["a", 1], 1], [["b", 2], 1]]);
  assert.equal(live.time, 10);
  assert.deepEqual(c.inserted.sort(), ['["a",1]', '["b",2]']);
  assert.equal(c.snapshot, true);

  // An update of a (a −1 and a +1 at one time) and a later change not yet complete.
  live.apply(update(15, [["a", 1], -1], [["a", 5], 1]));
  live.apply(update(20, [["b", 2], -1]));
  const c2 = live.apply(progress(16));
  assert.deepEqual(contents(live), [[["a", 5], 1], [["b", 2], 1]]);
  assert.deepEqual(c2.inserted, ['["a",5]']);
  assert.deepEqual(c2.deleted, ['["a",1]']);
  assert.equal(c2.time, 15);
  assert.equal(c2.snapshot, false);
  const c3 = live.apply(progress(21));
  assert.deepEqual(contents(live), [[["a", 5], 1]]);
  assert.deepEqual(c3.deleted, ['["b",2]']);
});

test("multiplicities add up, and a progress with nothing new still completes a time", () => {
  const live = new LiveRows();
  live.apply(update(1, [["x", 0], 2]));
  live.apply(progress(2));
  live.apply(update(3, [["x", 0], 1]));
  const c = live.apply(progress(4));
  assert.deepEqual(c.changed, ['["x",0]']);
  assert.deepEqual(live.list(), [["x", 0], ["x", 0], ["x", 0]]);
  const idle = live.apply(progress(9));
  assert.deepEqual(idle.changed, []);
  assert.equal(live.time, 8);
  assert.equal(live.apply(progress(9)), null, "a repeated progress changes nothing");
});

test("after a resumption, changes already applied are not applied again", () => {
  const live = new LiveRows();
  live.apply(update(1, [["a", 1], 1]));
  live.apply(progress(5));
  live.apply(update(6, [["b", 1], 1])); // incomplete when the connection drops
  live.resume();
  live.apply(columns);
  live.apply(update(4, [["a", 1], 1])); // before the frontier: a duplicate
  live.apply(update(6, [["b", 1], 1])); // re-sent
  live.apply(progress(7));
  assert.deepEqual(contents(live), [[["a", 1], 1], [["b", 1], 1]]);
});

test("a new snapshot replaces the rows whole, at its first progress", () => {
  const live = new LiveRows();
  live.apply(update(1, [["a", 1], 1], [["b", 1], 1]));
  live.apply(progress(2));
  live.snapshot();
  live.apply(update(9, [["b", 1], 1], [["c", 1], 1]));
  assert.deepEqual(contents(live), [[["a", 1], 1], [["b", 1], 1]], "old rows until complete");
  const c = live.apply(progress(10));
  assert.deepEqual(contents(live), [[["b", 1], 1], [["c", 1], 1]]);
  assert.deepEqual(c.inserted, ['["c",1]']);
  assert.deepEqual(c.deleted, ['["a",1]']);
  assert.equal(c.snapshot, true);
});

/** A response body that delivers `chunks` of text, then ends (or errors, if `fail`). */
function body(chunks, fail = false) {
  const enc = new TextEncoder();
  const rest = [...chunks];
  return new ReadableStream({
    pull(controller) {
      if (rest.length) controller.enqueue(enc.encode(rest.shift()));
      else if (fail) controller.error(new TypeError("network error"));
      else controller.close();
    },
  });
}

const sse = (...msgs) =>
  msgs.map((m) => `event: ${m.type}\ndata: ${JSON.stringify(m)}\n${m.type === "progress" ? `id: ${m.time}\n` : ""}\n`);

test("the SSE parser handles split chunks, CRLF, comments and multi-line data", async () => {
  const text = ': keep-alive\r\n\r\nevent: progress\r\ndata: {"type":"progress",\r\ndata: "time":5}\r\nid: 5\r\n\r\nevent: x\ndata: 1\n\n';
  const chunks = [];
  for (let i = 0; i < text.length; i += 7) chunks.push(text.slice(i, i + 7));
  const got = [];
  for await (const ev of sseEvents(body(chunks))) got.push(ev);
  assert.deepEqual(got, [
    { event: "progress", data: '{"type":"progress",\n"time":5}', id: "5" },
    { event: "x", data: "1", id: null },
  ]);
});

/**
 * A fetch that answers the n-th request with the n-th scripted response and records every URL;
 * once the script is exhausted, it holds the request open until it is aborted.
 */
function scripted(responses) {
  const urls = [];
  const fetch = (url, init) => {
    urls.push(new URL(url, "http://server"));
    const next = responses.shift();
    if (next) return Promise.resolve(next());
    return new Promise((_, reject) => init.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))));
  };
  return { fetch, urls };
}

const stream = (...msgs) => () => new Response(body(sse(...msgs)), { headers: { "content-type": "text/event-stream" } });
const failing = (...msgs) => () => new Response(body(sse(...msgs), true));
const httpError = (status, code) => () => new Response(JSON.stringify({ error: { code, message: code } }), { status });

/** Subscribes with a scripted fetch; resolves once `until(sub)` holds after a change or status. */
function run(script, until) {
  const { fetch, urls } = scripted(script);
  const seen = [];
  const statuses = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(seen)}`)), 5000);
    let done = false;
    const check = () => {
      if (!done && until(sub)) {
        done = true;
        clearTimeout(timer);
        sub.close();
        resolve({ sub, urls, seen, statuses });
      }
    };
    const sub = subscribe({ view: "v" }, {
      fetch,
      retryMs: 1,
      onChange: (c) => {
        seen.push({ time: c.time, rows: sub.rows().map((r) => r.join(":")).sort() });
        check();
      },
      onStatus: (s) => {
        statuses.push(s);
        check();
      },
    });
  });
}

test("a dropped connection resumes from the last progress: no gap, no duplicate", async () => {
  const { urls, seen } = await run(
    [
      failing(columns, update(10, [["a", 1], 1]), progress(11), update(12, [["b", 1], 1])),
      stream(columns, update(12, [["b", 1], 1]), progress(13), update(14, [["a", 1], -1]), progress(15)),
    ],
    (s) => s.time === 14,
  );
  assert.equal(urls[0].searchParams.get("view"), "v");
  assert.equal(urls[0].searchParams.get("resume_from"), null);
  assert.equal(urls[1].searchParams.get("resume_from"), "11");
  assert.deepEqual(seen, [
    { time: 10, rows: ["a:1"] },
    { time: 12, rows: ["a:1", "b:1"] },
    { time: 14, rows: ["b:1"] },
  ]);
});

test("lagged: the client re-snapshots, and shows the new snapshot only when complete", async () => {
  const lagged = { type: "error", code: "lagged", message: "too slow", resume_from: 11 };
  const { sub, urls, seen } = await run(
    [
      stream(columns, update(10, [["a", 1], 1]), progress(11), update(12, [["b", 1], 1]), lagged),
      stream(columns, update(20, [["a", 1], 1], [["b", 1], 1], [["c", 1], 1]), progress(21)),
    ],
    (s) => s.time === 20,
  );
  assert.equal(urls[1].searchParams.get("resume_from"), null, "a snapshot, not a resumption");
  assert.deepEqual(seen, [
    { time: 10, rows: ["a:1"] },
    { time: 20, rows: ["a:1", "b:1", "c:1"] },
  ]);
  assert.deepEqual(sub.stats.errors, ["lagged"]);
  assert.equal(sub.stats.snapshots, 2);
});

test("compacted, as a message or as 410: the client re-snapshots", async () => {
  const compacted = { type: "error", code: "compacted", message: "gone" };
  const { urls, seen } = await run(
    [
      failing(columns, update(10, [["a", 1], 1]), progress(11)),
      httpError(410, "compacted"),
      stream(columns, update(30, [["z", 1], 1]), progress(31), compacted),
      stream(columns, update(40, [["y", 1], 1]), progress(41)),
    ],
    (s) => s.time === 40,
  );
  assert.deepEqual(
    urls.map((u) => u.searchParams.get("resume_from")),
    [null, "11", null, null],
  );
  assert.deepEqual(seen.map((s) => s.rows), [["a:1"], ["z:1"], ["y:1"]]);
});

test("a query that cannot succeed fails once, with the server's error, and is not retried", async () => {
  const { urls, statuses } = await run([httpError(400, "syntax_error")], (s) => s.status === "failed");
  assert.equal(urls.length, 1);
  const { state, error } = statuses.find((s) => s.state === "failed");
  assert.equal(state, "failed");
  assert.equal(error.code, "syntax_error");
  assert.equal(error.status, 400);
});
