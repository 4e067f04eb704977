// console.js: the page at GET / — catalog, SQL editor, live table and chart.
//
// Everything goes through freshet.js, the same client any other page could use. Under
// --auth-token the first API call answers 401 and the page shows its login field; the token is
// posted once to /v1/session, which sets an HttpOnly cookie, and the field is cleared. The token
// is never put in a URL, in storage or in the page.

import { ApiError, catalog, login, sql, subscribe } from "./freshet.js";
import { LiveChart, LiveTable, cell } from "./live.js";

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const clock = (t) => (t == null ? "" : `${t} (${new Date(t).toISOString().replace("T", " ")})`);

// ---- login ----------------------------------------------------------------------------------

function showLogin(message) {
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#conn").textContent = "login required";
  $("#login-error").hidden = !message;
  $("#login-error").textContent = message ?? "";
  $("#token").focus();
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("#token");
  try {
    await login(input.value);
    input.value = "";
    $("#login").hidden = true;
    await start();
  } catch (err) {
    input.select();
    showLogin(err instanceof ApiError && err.status === 401 ? "wrong token" : String(err.message));
  }
});

// ---- catalog --------------------------------------------------------------------------------

const KNOWN = new Set(["name", "kind", "columns", "definition", "depends_on", "primary_key"]);
let catalogText = "";

function renderItem(item) {
  const div = el("div", { class: "item", "data-name": item.name, "data-kind": item.kind ?? "" });
  const head = el("div", { class: "item-head" });
  head.append(el("span", { class: "item-name" }, item.name));
  if (Array.isArray(item.columns) && item.kind !== "sink") {
    const watch = el("button", { class: "watch", title: `subscribe to ${item.name}` }, "watch");
    watch.addEventListener("click", () => watchLive({ view: item.name }, item.name));
    head.append(watch);
  }
  div.append(head);
  if (Array.isArray(item.columns)) {
    const ul = el("ul");
    for (const c of item.columns) ul.append(el("li", {}, `${c.name} ${c.type}${c.nullable === false ? " not null" : ""}`));
    div.append(ul);
  }
  if (item.primary_key?.length) div.append(el("div", { class: "field" }, `primary key (${item.primary_key.join(", ")})`));
  if (item.depends_on?.length) div.append(el("div", { class: "field" }, `depends on ${item.depends_on.join(", ")}`));
  // Whatever else an item carries (a source's status, backfill progress, errors, lag) is shown
  // as it comes, so that new kinds of items need no change here.
  for (const [k, v] of Object.entries(item)) {
    if (KNOWN.has(k) || v === null || v === undefined) continue;
    const bad = /error|fail/i.test(k) && !(Array.isArray(v) && v.length === 0);
    const text = typeof v === "object" ? JSON.stringify(v) : String(v);
    div.append(el("div", { class: `field${bad ? " bad" : ""}` }, `${k}: ${text}`));
  }
  if (item.definition) {
    const details = el("details");
    details.append(el("summary", { class: "muted" }, "definition"), el("pre", {}, item.definition));
    div.append(details);
  }
  return div;
}

function renderCatalog(cat) {
  $("#server-time").textContent = cat.timestamps?.latest ? `latest ${clock(cat.timestamps.latest)}` : "";
  const { timestamps, ...groups } = cat;
  const text = JSON.stringify(groups);
  if (text === catalogText) return; // unchanged: keep open <details> as they are
  catalogText = text;
  const box = $("#catalog-items");
  box.replaceChildren();
  const order = ["tables", "views", "sources", "sinks", "indexes"];
  const names = [...order, ...Object.keys(groups).filter((g) => !order.includes(g))];
  for (const group of names) {
    const items = groups[group];
    if (!Array.isArray(items)) continue;
    const section = el("section", { "data-group": group });
    section.append(el("h3", {}, `${group} (${items.length})`));
    for (const item of items) section.append(renderItem(item));
    box.append(section);
  }
}

async function refreshCatalog() {
  try {
    renderCatalog(await catalog());
    $("#conn").textContent = "connected";
    $("#conn").className = "badge live";
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showLogin();
      return false;
    }
    $("#conn").textContent = `unreachable: ${err.message}`;
    $("#conn").className = "badge failed";
    return true;
  }
}

// ---- SQL editor -----------------------------------------------------------------------------

function resultTable(columns, rows) {
  const table = el("table");
  const head = el("tr");
  for (const c of columns) head.append(el("th", {}, c.name));
  table.createTHead().append(head);
  const body = table.createTBody();
  for (const row of rows) {
    const tr = el("tr");
    for (const v of row) tr.append(cell(v));
    body.append(tr);
  }
  return table;
}

/** The offset in `text` of a 1-based line and column (columns count characters). */
function offsetOf(text, { line, column }) {
  const lines = text.split("\n");
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  return offset + column - 1;
}

function renderError(err, text) {
  const div = el("div", { class: "result error-result" });
  let where = "";
  if (err.statementIndex !== undefined) where += `statement ${err.statementIndex + 1}`;
  if (err.position) where += `${where ? ", " : ""}line ${err.position.line}, column ${err.position.column}`;
  div.append(el("div", { class: "error" }, `${err.code}: ${err.message}${where ? ` (${where})` : ""}`));
  if (err.position) {
    const line = text.split("\n")[err.position.line - 1] ?? "";
    div.append(el("pre", { class: "caret" }, `${line}\n${" ".repeat(Math.max(0, err.position.column - 1))}^`));
    const editor = $("#sql");
    const at = offsetOf(text, err.position);
    editor.focus();
    editor.setSelectionRange(at, at);
  }
  return div;
}

async function runSql() {
  const text = $("#sql").value;
  const out = $("#results");
  out.replaceChildren(el("div", { class: "muted" }, "running…"));
  try {
    const results = await sql(text);
    out.replaceChildren();
    for (const r of results) {
      const div = el("div", { class: "result" });
      div.append(el("span", { class: "tag" }, r.tag));
      if (r.timestamp !== undefined) div.append(el("span", { class: "muted" }, ` at ${r.timestamp}`));
      if (r.columns) div.append(resultTable(r.columns, r.rows ?? []));
      out.append(div);
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showLogin();
    out.replaceChildren(renderError(err, text));
  }
  refreshCatalog();
}

$("#run").addEventListener("click", runSql);
$("#sql").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    runSql();
  }
});
$("#watch-query").addEventListener("click", () => {
  const text = $("#sql").value.trim().replace(/;\s*$/, "");
  if (text) watchLive({ sql: text }, text);
});

// ---- live table and chart -------------------------------------------------------------------

let live = null;
const table = new LiveTable($("#live-table"));
const chart = new LiveChart($("#chart"), $("#chart-y"), $("#chart-series"), $("#chart-legend"));

function watchLive(target, title) {
  live?.close();
  $("#live").hidden = false;
  $("#live-title").textContent = title;
  $("#live-time").textContent = "";
  $("#live-count").textContent = "";
  let columnsShown = null;
  const sub = subscribe(target, {
    onChange(change) {
      if (sub !== live) return;
      // A resumption announces the columns again; only a real change of shape starts over.
      const shape = JSON.stringify(sub.columns);
      if (columnsShown !== shape) {
        columnsShown = shape;
        table.reset(sub.columns);
        chart.reset(sub.columns);
        change = { ...change, snapshot: true };
      }
      table.update(sub.state.rows, change);
      chart.sample(sub.state.rows, change.time);
      $("#live-time").textContent = `as of ${clock(change.time)}`;
      $("#live-time").dataset.time = String(change.time);
      $("#live-count").textContent = `${sub.rows().length} rows`;
    },
    onStatus({ state, error }) {
      if (sub !== live) return;
      $("#live-status").textContent = state;
      $("#live-status").className = `badge ${state}`;
      $("#live-error").hidden = !error;
      $("#live-error").textContent = error ? `${error.code}: ${error.message}` : "";
      if (error?.status === 401) showLogin();
    },
  });
  live = sub;
  // For debugging from the browser's console (and for the browser test): the open subscription.
  window.freshetLive = sub;
  $("#live-status").textContent = "connecting";
  $("#live-status").className = "badge";
}

$("#live-close").addEventListener("click", () => {
  live?.close();
  live = null;
  $("#live").hidden = true;
});

// ---- start ----------------------------------------------------------------------------------

let polling = null;

async function start() {
  if (!(await refreshCatalog())) return;
  $("#app").hidden = false;
  if (!polling) polling = setInterval(() => $("#app").hidden || refreshCatalog(), 2000);
}

start();
