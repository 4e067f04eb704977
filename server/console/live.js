// live.js: the console's live table and live chart, fed by a freshet.js Subscription.
//
// Both are redrawn only at complete timestamps (the Subscription's onChange), so neither ever
// shows half of a transaction. The table keeps one <tr> per distinct row and touches only the
// rows that changed, marking them (class "flash", attribute data-changed-at = the timestamp of
// the change) so the eye, and the browser test, can see what moved. The chart samples a numeric
// column at every complete timestamp, summed per value of a "per" column, and draws the
// samples as hand-written SVG: no chart library, nothing to download.

import { rowKey } from "./freshet.js";

const SVG = "http://www.w3.org/2000/svg";
const MAX_ROWS = 500; // rows drawn; the count in the header is always the full one
const MAX_SAMPLES = 300;
const COLORS = ["#1f6feb", "#d9480f", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#c2255c", "#5c940d"];

/** Whether a column of this SQL type holds numbers. */
export const isNumeric = (type) => /int|double|float|real|numeric|decimal/i.test(type ?? "");

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A table cell for one value. */
export function cell(value) {
  if (value === null) return el("td", { class: "null" }, "NULL");
  if (typeof value === "number") return el("td", { class: "num" }, String(value));
  if (typeof value === "object") return el("td", {}, JSON.stringify(value));
  return el("td", {}, String(value));
}

/** Orders rows column by column: NULL first, numbers by value, the rest as text. */
export function compareRows(a, b) {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (x === null) return -1;
    if (y === null) return 1;
    if (typeof x === "number" && typeof y === "number") return x - y;
    const c = String(x).localeCompare(String(y));
    if (c !== 0) return c;
  }
  return 0;
}

/** A <table> that mirrors a Subscription's rows, updated in place. */
export class LiveTable {
  constructor(table) {
    this.table = table;
    this.trs = new Map(); // row key -> <tr>
  }

  reset(columns) {
    const head = el("tr");
    for (const c of columns) {
      const th = el("th", {}, c.name + " ");
      th.append(el("span", { class: "type" }, c.type));
      head.append(th);
    }
    head.append(el("th", { title: "multiplicity" }, "×"));
    this.table.tHead.replaceChildren(head);
    this.table.tBodies[0].replaceChildren();
    this.trs.clear();
  }

  #row(entry) {
    const tr = el("tr", { "data-key": rowKey(entry.row) });
    for (const v of entry.row) tr.append(cell(v));
    tr.append(el("td", { class: "num count" }, String(entry.count)));
    return tr;
  }

  /** Applies one change record (see LiveRows.complete) from `rows` (key -> {row, count}). */
  update(rows, change) {
    const body = this.table.tBodies[0];
    for (const key of change.deleted) {
      this.trs.get(key)?.remove();
      this.trs.delete(key);
    }
    for (const key of change.changed) {
      const entry = rows.get(key);
      if (!entry) continue;
      let tr = this.trs.get(key);
      if (tr) {
        tr.lastChild.textContent = String(entry.count);
      } else {
        tr = this.#row(entry);
        this.trs.set(key, tr);
      }
      tr.dataset.changedAt = String(change.time);
      // Restart the highlight even if it is still running.
      tr.classList.remove("flash");
      void tr.offsetWidth;
      tr.classList.add("flash");
    }
    if (change.inserted.length || change.deleted.length || change.snapshot) {
      // Keep the rows sorted; appending an existing <tr> moves it without redrawing it.
      const sorted = [...rows.values()].sort((a, b) => compareRows(a.row, b.row));
      const shown = new Set();
      for (const entry of sorted.slice(0, MAX_ROWS)) {
        const key = rowKey(entry.row);
        let tr = this.trs.get(key);
        if (!tr) {
          tr = this.#row(entry);
          this.trs.set(key, tr);
        }
        shown.add(key);
        body.append(tr);
      }
      for (const [key, tr] of this.trs) {
        if (!shown.has(key)) {
          tr.remove();
          this.trs.delete(key);
        }
      }
    }
  }
}

/** A line chart of one numeric column over (logical) time, one line per value of another. */
export class LiveChart {
  constructor(svgEl, ySelect, seriesSelect, legend) {
    this.svg = svgEl;
    this.ySelect = ySelect;
    this.seriesSelect = seriesSelect;
    this.legend = legend;
    this.columns = [];
    this.samples = []; // {time, values: Map(series -> number)}
    this.lastRows = null;
    const restart = () => {
      this.samples = [];
      if (this.lastRows) this.sample(this.lastRows.rows, this.lastRows.time);
      else this.render();
    };
    ySelect.addEventListener("change", restart);
    seriesSelect.addEventListener("change", restart);
  }

  reset(columns) {
    this.columns = columns;
    this.samples = [];
    this.lastRows = null;
    const numeric = columns.map((c, i) => ({ ...c, i })).filter((c) => isNumeric(c.type));
    this.ySelect.replaceChildren(...numeric.map((c) => el("option", { value: c.i }, c.name)));
    // The last numeric column is usually the measure (count, sum) of a GROUP BY.
    if (numeric.length) this.ySelect.value = String(numeric[numeric.length - 1].i);
    const others = columns.map((c, i) => ({ ...c, i })).filter((c) => String(c.i) !== this.ySelect.value);
    this.seriesSelect.replaceChildren(
      el("option", { value: "" }, "(all rows)"),
      ...others.map((c) => el("option", { value: c.i }, c.name)),
    );
    // Default: one line per value of the first non-numeric column (the group key), if any.
    const key = others.find((c) => !isNumeric(c.type));
    this.seriesSelect.value = key ? String(key.i) : "";
    this.render();
  }

  /** Records the rows (key -> {row, count}) as of `time`. */
  sample(rows, time) {
    this.lastRows = { rows, time };
    if (this.ySelect.value === "") return this.render();
    const y = Number(this.ySelect.value);
    const by = this.seriesSelect.value === "" ? null : Number(this.seriesSelect.value);
    const values = new Map();
    for (const { row, count } of rows.values()) {
      // numeric values arrive as strings (exact); the chart plots them as numbers.
      const v = typeof row[y] === "string" ? Number(row[y]) : row[y];
      if (typeof v !== "number" || Number.isNaN(v)) continue;
      const name = by === null ? "total" : String(row[by]);
      values.set(name, (values.get(name) ?? 0) + v * count);
    }
    this.samples.push({ time, values });
    if (this.samples.length > MAX_SAMPLES) this.samples.shift();
    this.render();
  }

  render() {
    const W = 640;
    const H = 260;
    const pad = { l: 56, r: 12, t: 12, b: 28 };
    const s = this.samples;
    this.svg.replaceChildren();
    this.legend.replaceChildren();
    this.svg.dataset.samples = String(s.length);
    if (!s.length) {
      this.svg.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "waiting for data"));
      return;
    }
    const names = new Set();
    let lo = 0;
    let hi = 0;
    for (const { values } of s) {
      for (const [name, v] of values) {
        names.add(name);
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
    if (hi === lo) hi = lo + 1;
    const t0 = s[0].time;
    const t1 = Math.max(s[s.length - 1].time, t0 + 1);
    const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (W - pad.l - pad.r);
    const yOf = (v) => H - pad.b - ((v - lo) / (hi - lo)) * (H - pad.t - pad.b);
    for (const v of [lo, (lo + hi) / 2, hi]) {
      this.svg.append(svg("line", { class: "grid", x1: pad.l, x2: W - pad.r, y1: yOf(v), y2: yOf(v) }));
      this.svg.append(svg("text", { x: pad.l - 6, y: yOf(v) + 4, "text-anchor": "end" }, fmt(v)));
    }
    const clock = (t) => new Date(t).toLocaleTimeString();
    this.svg.append(svg("text", { x: pad.l, y: H - 8 }, clock(t0)));
    this.svg.append(svg("text", { x: W - pad.r, y: H - 8, "text-anchor": "end" }, clock(t1)));
    const last = s[s.length - 1].values;
    const ordered = [...names].sort().slice(0, COLORS.length);
    ordered.forEach((name, n) => {
      // A step line: a value holds until the timestamp that changed it.
      const points = [];
      let prev = null;
      for (const { time, values } of s) {
        if (!values.has(name)) continue;
        const v = values.get(name);
        const px = x(time).toFixed(1);
        if (prev !== null && prev !== v) points.push(`${px},${yOf(prev).toFixed(1)}`);
        points.push(`${px},${yOf(v).toFixed(1)}`);
        prev = v;
      }
      const line = svg("polyline", { points: points.join(" "), stroke: COLORS[n] });
      line.dataset.series = name;
      if (last.has(name)) line.dataset.last = String(last.get(name));
      this.svg.append(line);
      const item = el("span", {}, `${name}: ${last.has(name) ? fmt(last.get(name)) : "—"}`);
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = COLORS[n];
      item.prepend(swatch);
      this.legend.append(item);
    });
  }
}

function fmt(v) {
  return Number.isInteger(v) ? String(v) : v.toPrecision(4);
}
