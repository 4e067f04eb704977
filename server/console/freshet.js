// freshet.js: a small client for freshet's HTTP API that keeps a live copy of a view.
//
// A subscription streams (row, time, diff) updates and, now and then, a progress message T
// meaning "every change before T has been sent". This client holds updates back until such a
// progress arrives, so what it exposes is always the result as of one complete timestamp,
// never half of one. It remembers the last progress, so after a dropped connection it resumes
// from exactly there (`resume_from`): no change is missed and none is applied twice. When the
// server says the client fell behind (`lagged`) or that the resumption point is gone
// (`compacted`), it takes a fresh snapshot instead, and swaps it in whole at its first progress.
//
// It uses fetch() rather than EventSource so that it sees HTTP errors (a bad query, a missing
// view, a missing login) with their messages, and decides itself when to resume and when to
// re-snapshot. In a browser, authenticate once with login(token): the server answers with an
// HttpOnly cookie that fetch sends from then on, so the token never appears in a URL. Outside a
// browser (node), pass { token } and it is sent as an Authorization header instead.
//
//   import { login, subscribe } from "/console/freshet.js";
//   await login(token);                       // only if the server runs with --auth-token
//   const live = subscribe({ view: "totals" }, {
//     onChange: (c) => console.log(c.time, live.rows()),  // at each complete timestamp
//     onStatus: (s) => console.log(s.state, s.error?.message ?? ""),
//   });
//   live.close();

/** An error answered by the API: `{"error": {"code", "message", …}}` plus the HTTP status. */
export class ApiError extends Error {
  constructor(status, body) {
    const e = body?.error ?? {};
    super(e.message ?? `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = e.code ?? "http_error";
    this.position = e.position; // {line, column} of a SQL syntax error, 1-based
    this.statementIndex = e.statement_index; // which statement of a POST /v1/sql failed
    this.line = e.line; // the bad line of an ingest request
    this.details = e;
  }

  static async from(response) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON (a proxy's page, a cut connection): the status alone must do.
    }
    return new ApiError(response.status, body);
  }
}

function headers(opts, extra = {}) {
  const h = { ...extra };
  if (opts.token) h.authorization = `Bearer ${opts.token}`;
  return h;
}

async function call(path, opts = {}, init = {}) {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const response = await doFetch(`${opts.base ?? ""}${path}`, {
    credentials: "same-origin",
    cache: "no-store",
    ...init,
    headers: headers(opts, init.headers),
  });
  if (!response.ok) throw await ApiError.from(response);
  return response.json();
}

/** Exchanges the token for the session cookie (`POST /v1/session`). */
export function login(token, opts = {}) {
  return call("/v1/session", opts, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
}

/** Runs statements (`POST /v1/sql`); resolves to the `results` array, rejects with ApiError. */
export async function sql(text, opts = {}) {
  const body = await call("/v1/sql", opts, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ sql: text }),
  });
  return body.results;
}

/** `GET /v1/catalog`. */
export function catalog(opts = {}) {
  return call("/v1/catalog", opts);
}

/** The identity of a row: its JSON text (rows are arrays of JSON values). */
export const rowKey = (row) => JSON.stringify(row);

/**
 * A view's contents as of its last complete timestamp, fed one subscription message at a time.
 * Pure bookkeeping, no I/O: the transport below and the unit tests drive it alike.
 */
export class LiveRows {
  constructor() {
    this.columns = [];
    /** key -> {row, count}: the result as of `frontier - 1`. */
    this.rows = new Map();
    /** Every change before this time is in `rows`; 0 before the first progress. */
    this.frontier = 0;
    /** Update messages received but not yet complete. */
    this.pending = [];
    /** A new snapshot is arriving: its first progress replaces `rows` whole. */
    this.replacing = true;
  }

  /** Before a fresh subscription (with a snapshot). What is shown stays until it completes. */
  snapshot() {
    this.pending = [];
    this.replacing = true;
  }

  /**
   * Before a resumption from `frontier`: the server re-sends every change at or after it, so
   * the incomplete updates of the dropped connection are dropped here, not applied twice.
   */
  resume() {
    this.pending = [];
  }

  /** The time that `rows` is exact at, or null before the first complete timestamp. */
  get time() {
    return this.frontier > 0 ? this.frontier - 1 : null;
  }

  /**
   * Takes one message (`columns`, `update`, `progress`). Returns a change record when a
   * progress message completed a timestamp, otherwise null.
   */
  apply(msg) {
    switch (msg.type) {
      case "columns":
        this.columns = msg.columns;
        return null;
      case "update":
        // Already applied before a reconnection: never twice.
        if (!this.replacing && msg.time < this.frontier) return null;
        this.pending.push(msg);
        return null;
      case "progress":
        return this.complete(msg.time);
      default:
        return null;
    }
  }

  /** Applies the pending updates before `upper`; the change record. */
  complete(upper) {
    if (!this.replacing && upper <= this.frontier) return null;
    const before = this.rows;
    const next = this.replacing ? new Map() : this.rows;
    const touched = new Map(); // key -> count before
    if (this.replacing) for (const [k, v] of before) touched.set(k, v.count);
    const later = [];
    for (const msg of this.pending) {
      if (msg.time >= upper) {
        later.push(msg);
        continue;
      }
      for (const { row, diff } of msg.updates) {
        const key = rowKey(row);
        const entry = next.get(key);
        if (!touched.has(key)) touched.set(key, entry?.count ?? 0);
        const count = (entry?.count ?? 0) + diff;
        if (count === 0) next.delete(key);
        else if (entry) entry.count = count;
        else next.set(key, { row, count });
      }
    }
    this.pending = later;
    this.rows = next;
    this.frontier = upper;
    const wasReplacing = this.replacing;
    this.replacing = false;
    const inserted = [];
    const deleted = [];
    const changed = [];
    for (const [key, was] of touched) {
      const now = next.get(key)?.count ?? 0;
      if (now === was) continue;
      changed.push(key);
      if (was === 0) inserted.push(key);
      else if (now === 0) deleted.push(key);
    }
    return { time: upper - 1, snapshot: wasReplacing, inserted, deleted, changed };
  }

  /** The rows, each repeated by its multiplicity. */
  list() {
    const out = [];
    for (const { row, count } of this.rows.values()) {
      for (let i = 0; i < count; i++) out.push(row);
    }
    return out;
  }
}

/** Parses a text/event-stream body into `{event, data, id}` messages. */
export async function* sseEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "message";
  let data = [];
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      let line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (data.length) yield { event, data: data.join("\n"), id };
        event = "message";
        data = [];
        id = null;
        continue;
      }
      if (line.startsWith(":")) continue; // keep-alive comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? "" : line.slice(colon + 1);
      if (val.startsWith(" ")) val = val.slice(1);
      if (field === "event") event = val;
      else if (field === "data") data.push(val);
      else if (field === "id") id = val;
    }
  }
}

/** Errors after which the same request cannot succeed: report them and stop. */
const FATAL_CODES = new Set(["closed", "evaluation_error", "not_found", "unauthorized"]);

/**
 * A live subscription to `{view: NAME}` or `{sql: "SELECT …"}` that keeps `LiveRows` current,
 * reconnecting as needed until close().
 *
 * Callbacks: onChange(change) at each complete timestamp (see LiveRows.complete),
 * onStatus({state, error}) where state is "connecting", "live", "resuming", "resnapshot",
 * "retrying" or "failed" (error set), "closed".
 * Options: base (URL prefix), token (Authorization header), fetch, retryMs (first backoff).
 */
export class Subscription {
  constructor(target, opts = {}) {
    this.target = target;
    this.opts = opts;
    this.state = new LiveRows();
    this.status = "connecting";
    this.error = null;
    /** How many snapshots and resumptions were requested (the first subscription counts). */
    this.stats = { snapshots: 0, resumes: 0, errors: [] };
    this.closed = false;
    this.controller = null;
    this.done = this.#run();
  }

  get columns() {
    return this.state.columns;
  }

  /** The rows as of `time`, each repeated by its multiplicity. */
  rows() {
    return this.state.list();
  }

  /** The timestamp the rows are exact at (null until the first progress). */
  get time() {
    return this.state.time;
  }

  /** Stops for good. */
  close() {
    this.closed = true;
    this.controller?.abort();
    this.#setStatus("closed");
  }

  /** Cuts the current connection as a network failure would; the subscription resumes. */
  drop() {
    this.controller?.abort();
  }

  #setStatus(state, error = null) {
    this.status = state;
    this.error = error;
    this.opts.onStatus?.({ state, error });
  }

  #sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  async #run() {
    const doFetch = this.opts.fetch ?? globalThis.fetch.bind(globalThis);
    const firstBackoff = this.opts.retryMs ?? 250;
    let backoff = firstBackoff;
    let resumeFrom = null; // null: take a snapshot
    while (!this.closed) {
      const params = new URLSearchParams(this.target);
      if (resumeFrom === null) {
        this.state.snapshot();
        this.stats.snapshots++;
      } else {
        this.state.resume();
        this.stats.resumes++;
        params.set("resume_from", String(resumeFrom));
      }
      this.controller = new AbortController();
      // What to do when this connection ends, unless a message below decides otherwise.
      let next = "resume";
      try {
        const response = await doFetch(`${this.opts.base ?? ""}/v1/subscribe?${params}`, {
          headers: headers(this.opts, { accept: "text/event-stream" }),
          credentials: "same-origin",
          cache: "no-store",
          signal: this.controller.signal,
        });
        if (!response.ok) {
          const err = await ApiError.from(response);
          this.stats.errors.push(err.code);
          if (response.status === 410) {
            next = "resnapshot";
          } else if (response.status >= 500) {
            next = "retry";
            this.#setStatus("retrying", err);
          } else {
            this.#setStatus("failed", err);
            return;
          }
        } else {
          for await (const ev of sseEvents(response.body)) {
            const msg = JSON.parse(ev.data);
            if (msg.type === "error") {
              this.stats.errors.push(msg.code);
              const err = new ApiError(200, { error: msg });
              if (FATAL_CODES.has(msg.code)) {
                this.#setStatus("failed", err);
                return;
              }
              // lagged or compacted: start over from a snapshot. shutting_down: resume.
              next = msg.code === "shutting_down" ? "resume" : "resnapshot";
              this.#setStatus(next === "resume" ? "resuming" : "resnapshot", err);
              break;
            }
            const change = this.state.apply(msg);
            if (change) {
              backoff = firstBackoff;
              if (this.status !== "live") this.#setStatus("live");
              this.opts.onChange?.(change);
            }
          }
        }
      } catch (e) {
        if (this.closed) return;
        // A network failure or drop(): resume below.
        if (e?.name !== "AbortError") this.stats.errors.push(String(e?.message ?? e));
      } finally {
        this.controller.abort();
      }
      if (this.closed) return;
      if (next === "resnapshot" || this.state.frontier === 0) {
        // Before the first progress there is nothing to resume from.
        resumeFrom = null;
      } else {
        resumeFrom = this.state.frontier;
      }
      if (this.status === "live") this.#setStatus(resumeFrom === null ? "resnapshot" : "resuming");
      await this.#sleep(backoff);
      backoff = Math.min(backoff * 2, 5000);
    }
  }
}

/** Subscribes to `{view}` or `{sql}`; see Subscription. */
export function subscribe(target, opts = {}) {
  return new Subscription(target, opts);
}
