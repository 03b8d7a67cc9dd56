// atlasd dashboard: renders every page from the JSON API; no framework, no build step.
// Data is only ever put in the page as text (never as HTML), and charts are drawn as SVG.
"use strict";

const CSRF = document.querySelector('meta[name="atlasd-csrf"]').content;
const SVG_NS = "http://www.w3.org/2000/svg";
const PAGE_SIZE = 50;
const main = document.getElementById("main");

// ---------------------------------------------------------------- helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  const text = await response.text();
  let body = null;
  try { body = JSON.parse(text); } catch (e) { body = null; }
  if (!response.ok) {
    const message = body && body.error ? `${body.error.code}: ${body.error.message}` : text;
    throw new Error(message || `HTTP ${response.status}`);
  }
  return body;
}

function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

const pad = (n) => String(n).padStart(2, "0");
function fmtTime(ms) {
  if (typeof ms !== "number") return "—";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function fmtDuration(ms) {
  if (typeof ms !== "number" || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 1 : 0)} s`;
  const min = Math.floor(sec / 60);
  if (min < 60) return `${min}m ${pad(Math.floor(sec % 60))}s`;
  const hours = Math.floor(min / 60);
  if (hours < 48) return `${hours}h ${pad(min % 60)}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}
function fmtAge(ms) { return typeof ms === "number" ? fmtDuration(Date.now() - ms) : "—"; }
function truncate(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }

const TIME_COLUMN = /(_at|_ms)$/;
function cell(column, value) {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "—");
  if (typeof value === "number" && TIME_COLUMN.test(column) && value > 1e11 && column !== "duration_ms") {
    return h("span", { title: String(value) }, fmtTime(value));
  }
  if (column === "duration_ms" && typeof value === "number") return fmtDuration(value);
  if (column === "status" && typeof value === "string") return pill(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value) && value.every((v) => typeof v !== "object")) {
    return value.length ? value.join(", ") : h("span", { class: "muted" }, "[]");
  }
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  return text.length > 80 ? h("span", { title: truncate(text, 2000) }, truncate(text, 80)) : text;
}

function pill(status) { return h("span", { class: `pill s-${status}` }, status); }

function progress(build) {
  const total = build.tasks_total || 0;
  const done = build.tasks_done || 0;
  const failed = build.tasks_failed || 0;
  const bar = h("span", { class: "progress", title: `${done} done, ${failed} failed, ${total} tasks` });
  const d = h("span", { class: "done" });
  const f = h("span", { class: "failed" });
  d.style.width = total ? `${(100 * done) / total}%` : "0";
  f.style.width = total ? `${(100 * failed) / total}%` : "0";
  bar.append(d, f);
  return h("span", { class: "progress-cell" }, bar, `${done}/${failed}/${total}`);
}

function buildDuration(build) {
  if (typeof build.started_at !== "number") return h("span", { class: "muted" }, "—");
  if (typeof build.completed_at === "number") return fmtDuration(build.completed_at - build.started_at);
  return h("span", { "data-running-since": build.started_at }, fmtDuration(Date.now() - build.started_at));
}

// Durations of running builds tick without a refetch.
setInterval(() => {
  for (const el of document.querySelectorAll("[data-running-since]")) {
    const text = fmtDuration(Date.now() - Number(el.getAttribute("data-running-since")));
    if (el.textContent !== text) el.textContent = text;  // no layout when nothing moved
  }
}, 1000);

function errorBox(error) { return h("div", { class: "errorbox", role: "alert" }, String(error.message || error)); }

// ---------------------------------------------------------------- paged tables

// A cursor pager: `after` is only sent as the server gave it (the previous page's `next`).
class Pager {
  constructor() { this.stack = [null]; this.index = 0; this.next = null; }
  get after() { return this.stack[this.index]; }
  reset() { this.stack = [null]; this.index = 0; this.next = null; }
  forward() { if (this.next) { this.stack = this.stack.slice(0, this.index + 1); this.stack.push(this.next); this.index += 1; } }
  back() { if (this.index > 0) this.index -= 1; }
}

function pagerBar(pager, page, rerender) {
  const bar = h("div", { class: "pager" });
  const prev = h("button", { onclick: () => { pager.back(); rerender(); } }, "← Previous");
  const next = h("button", { onclick: () => { pager.forward(); rerender(); } }, "Next →");
  prev.disabled = pager.index === 0;
  next.disabled = !page.next;
  const from = pager.index * page.limit + 1;
  const summary = page.rows.length
    ? `rows ${from}–${from + page.rows.length - 1}`
    : "no rows";
  bar.append(prev, next, h("span", { "data-testid": "page-summary" }, summary));
  if (page.paging === "limit" && page.more) {
    bar.append(h("span", { class: "muted" },
      `· showing the first ${page.rows.length}; this daemon pages no further (newer atlasd pages on)`));
  }
  return bar;
}

function columnsOf(rows) {
  const columns = [];
  for (const row of rows) for (const k of Object.keys(row)) if (!columns.includes(k)) columns.push(k);
  return columns;
}

// A sortable, paged table of any view: columns are the rows' keys.
function viewTable(container, view, options) {
  const pager = new Pager();
  const state = { orderBy: options.orderBy || null, order: options.order || "desc" };
  let generation = 0;
  let lastShown = null;
  let rowCache = new Map();
  let rowColumns = null;
  async function refresh() {
    const params = Object.assign({ limit: PAGE_SIZE, order: state.order, order_by: state.orderBy, after: pager.after }, options.params ? options.params() : {});
    // A live refresh and a click may overlap: only the latest request's answer is shown.
    const mine = ++generation;
    let page;
    try {
      page = await api(`/api/query/${encodeURIComponent(view)}${qs(params)}`);
    } catch (e) {
      if (mine === generation) container.replaceChildren(errorBox(e));
      return;
    }
    if (mine !== generation) return;
    page.limit = PAGE_SIZE;
    pager.next = page.next;
    const columns = options.columns || columnsOf(page.rows);
    // Live refreshes often bring the same page, or a few changed rows: redraw only those.
    const shownKey = JSON.stringify([page, columns, state, pager.index]);
    if (shownKey === lastShown && container.isConnected && container.firstChild) return;
    lastShown = shownKey;
    const columnsKey = JSON.stringify(columns);
    if (columnsKey !== rowColumns) { rowCache = new Map(); rowColumns = columnsKey; }
    const nextCache = new Map();
    const head = h("tr", {}, columns.map((c) => {
      const arrow = state.orderBy === c ? (state.order === "asc" ? "▲" : "▼") : "";
      // Only the view's own columns sort (not those the page computes, like progress).
      if (page.rows.length && !(c in page.rows[0])) return h("th", {}, c);
      return h("th", {
        class: "sortable", "data-column": c,
        onclick: () => {
          if (state.orderBy === c) state.order = state.order === "asc" ? "desc" : "asc";
          else { state.orderBy = c; state.order = "asc"; }
          pager.reset(); refresh();
        },
      }, c, arrow ? h("span", { class: "arrow" }, arrow) : null);
    }));
    const body = h("tbody", {}, page.rows.map((row) => {
      const key = JSON.stringify(row);
      const tr = (!nextCache.has(key) && rowCache.get(key)) || h("tr", {}, columns.map((c) => {
        const render = options.render && options.render[c];
        return h("td", { class: c === "error" || c === "insight" || c === "description" ? "wrap" : null },
          render ? render(row[c], row) : cell(c, row[c]));
      }));
      nextCache.set(key, tr);
      return tr;
    }));
    rowCache = nextCache;
    const parts = [];
    if (page.sorted_here && !(options.quietSort && state.orderBy === options.orderBy)) {
      parts.push(h("div", { class: "notice" }, `Sorted by ${state.orderBy} within this page: the daemon sorts this view by its key and time columns only.`));
    }
    parts.push(page.rows.length
      ? h("div", { class: "tablewrap" }, h("table", { "data-view": view }, h("thead", {}, head), body))
      : h("div", { class: "panel muted" }, "No rows."));
    parts.push(pagerBar(pager, page, refresh));
    container.replaceChildren(...parts);
  }
  return { refresh, reset: () => pager.reset() };
}

// ---------------------------------------------------------------- pages

function hashParams() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  return { path: path || "/builds", params: new URLSearchParams(query || "") };
}

function setHashParams(path, values) {
  location.hash = `#${path}${qs(values)}`;
}

function toolbarSelect(label, value, choices, onchange) {
  const select = h("select", { "aria-label": label, onchange: (e) => onchange(e.target.value) },
    choices.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
  return h("label", {}, `${label} `, select);
}

function toolbarInput(label, value, onchange) {
  const input = h("input", { value, "aria-label": label, placeholder: label,
    onchange: (e) => onchange(e.target.value.trim()) });
  return h("label", {}, `${label} `, input);
}

const pages = {};

// The queries a page shows, watched live by the dashboard (see connectLive).
let currentSpecs = [];
function follow(specs) { currentSpecs = specs; }
function given(filter) {
  const kept = {};
  for (const [k, v] of Object.entries(filter)) if (v !== "" && v !== null && v !== undefined) kept[k] = v;
  return Object.keys(kept).length ? kept : null;
}
let pollTimer = null;

pages.builds = (root, params) => {
  const status = params.get("status") || "";
  const prd = params.get("prd") || "";
  const update = (patch) => setHashParams("/builds", Object.assign({ status, prd }, patch));
  const content = h("div");
  root.append(
    h("h1", {}, "Builds"),
    h("div", { class: "toolbar" },
      toolbarSelect("Status", status, [["", "all"], ["running", "running"], ["completed", "completed"], ["failed", "failed"]], (v) => update({ status: v })),
      toolbarInput("PRD id", prd, (v) => update({ prd: v }))),
    content);
  follow([{ view: "builds", filter: given({ status, prd_id: prd }), limit: PAGE_SIZE, order: "desc" }]);
  const table = viewTable(content, "builds", {
    // Newest first whatever the view's key; a daemon that cannot sort by it returns its
    // newest rows, and this page sorts them (no need to say so).
    orderBy: "started_at",
    order: "desc",
    quietSort: true,
    params: () => ({ "f.status": status, "f.prd_id": prd }),
    columns: ["build_id", "prd_name", "status", "progress", "duration", "started_at"],
    render: {
      build_id: (v) => h("a", { href: `#/build/${encodeURIComponent(v)}`, class: "mono" }, v),
      prd_name: (v, row) => h("span", {}, v || "—", " ", h("span", { class: "muted mono" }, row.prd_id || "")),
      progress: (v, row) => progress(row),
      duration: (v, row) => buildDuration(row),
    },
  });
  return table.refresh;
};

function taskGraph(tasks) {
  const phases = [...new Set(tasks.map((t) => t.phase))].sort((a, b) => (a ?? 0) - (b ?? 0));
  const NODE_W = 210, NODE_H = 62, GAP_X = 70, GAP_Y = 14, TOP = 34, LEFT = 16;
  const pos = new Map();
  let maxRows = 0;
  phases.forEach((phase, i) => {
    const lane = tasks.filter((t) => t.phase === phase).sort((a, b) => String(a.task_id).localeCompare(String(b.task_id)));
    maxRows = Math.max(maxRows, lane.length);
    lane.forEach((t, j) => pos.set(t.task_id, { x: LEFT + i * (NODE_W + GAP_X), y: TOP + j * (NODE_H + GAP_Y), t }));
  });
  const width = LEFT * 2 + phases.length * (NODE_W + GAP_X) - GAP_X;
  const height = TOP + maxRows * (NODE_H + GAP_Y) + 8;
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "task graph" });
  phases.forEach((phase, i) => {
    const x = LEFT + i * (NODE_W + GAP_X);
    svg.append(s("rect", { class: "lane", x: x - 8, y: 4, width: NODE_W + 16, height: height - 8, rx: 8 }));
    svg.append(s("text", { class: "lane-title", x: x, y: 22 }, `phase ${phase ?? "—"}`));
  });
  for (const { x, y, t } of pos.values()) {
    for (const dep of t.dependencies || []) {
      const from = pos.get(dep);
      if (!from) continue;
      const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = x, y2 = y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      svg.append(s("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 4},${y2}`, "marker-end": "url(#arrow)" }));
    }
  }
  svg.prepend(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto" },
    s("path", { d: "M0,0 L8,4 L0,8 z", fill: "#9aa5b1" }))));
  for (const { x, y, t } of pos.values()) {
    const g = s("g", { class: `node n-${t.status}`, "data-task": t.task_id, transform: `translate(${x},${y})` });
    g.append(s("title", {}, `${t.task_id}: ${t.title || ""}\n${t.status}, ${t.attempts} attempt(s)` + (t.error ? `\nerror: ${t.error}` : "")));
    g.append(s("rect", { width: NODE_W, height: NODE_H, rx: 7 }));
    g.append(s("text", { x: 10, y: 18 }, truncate(t.title || t.task_id, 28)));
    g.append(s("text", { class: "sub", x: 10, y: 34 }, truncate(`${t.task_id} · ${t.agent || "—"}`, 32)));
    const line3 = t.error ? truncate(`✗ ${t.error}`, 32) : `${t.status} · ${t.attempts} attempt${t.attempts === 1 ? "" : "s"}`;
    g.append(s("text", { class: t.error ? "errtext" : "sub", x: 10, y: 51 }, line3));
    svg.append(g);
  }
  return h("div", { class: "graph", "data-testid": "task-graph" }, svg);
}

function timeline(executions) {
  if (!executions.length) return h("div", { class: "panel muted" }, "No executions yet.");
  const spans = executions.map((e) => ({ e, end: e.recorded_at, start: e.recorded_at - (e.duration_ms || 0) }));
  const t0 = Math.min(...spans.map((x) => x.start));
  const t1 = Math.max(...spans.map((x) => x.end));
  const LABEL = 260, W = 980, ROW = 22;
  const scale = (t) => LABEL + ((t - t0) / Math.max(1, t1 - t0)) * (W - LABEL - 110);
  const height = spans.length * ROW + 10;
  const svg = s("svg", { class: "timeline", width: "100%", viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": "execution timeline" });
  spans.forEach(({ e, start, end }, i) => {
    const y = 4 + i * ROW;
    const cls = e.error ? "tl-bar fail" : e.gates_passed ? "tl-bar pass" : "tl-bar";
    svg.append(s("text", { x: 4, y: y + 14 }, truncate(`${e.task_id} · ${e.agent}/${e.model}`, 40)));
    const x = scale(start);
    const bar = s("rect", { class: cls, x, y: y + 3, width: Math.max(3, scale(end) - x), height: ROW - 8, rx: 3 });
    bar.append(s("title", {}, `${fmtDuration(e.duration_ms)}, gates ${e.gates_passed ? "passed" : "not passed"}${e.error ? `, error: ${e.error}` : ""}`));
    svg.append(bar);
    svg.append(s("text", { class: "val", x: Math.max(3, scale(end) - x) + x + 6, y: y + 14 },
      `${fmtDuration(e.duration_ms)} ${e.gates_passed ? "✓ gates" : "✗ gates"}`));
  });
  return h("div", { class: "panel" }, svg,
    h("div", { class: "legend" }, h("span", {}, h("i", { class: "lg-pass" }), "gates passed"),
      h("span", {}, h("i", { class: "lg-nopass" }), "gates not passed"), h("span", {}, h("i", { class: "lg-fail" }), "error")));
}

pages.build = (root, params, id) => {
  const content = h("div");
  root.append(h("div", { class: "muted" }, h("a", { href: "#/builds" }, "← Builds")), content);
  follow([
    { view: "builds", filter: { build_id: id }, limit: 1 },
    { view: "tasks", filter: { build_id: id }, limit: 1000, order: "asc" },
    { view: "executions", filter: { build_id: id }, limit: 1, order: "desc" },
  ]);
  return async () => {
    let data;
    try { data = await api(`/api/build/${encodeURIComponent(id)}`); } catch (e) { content.replaceChildren(errorBox(e)); return; }
    const b = data.build;
    if (!b) { content.replaceChildren(h("h1", {}, id), h("div", { class: "panel muted" }, "No such build (yet).")); return; }
    const card = (k, v, small) => h("div", { class: "card" }, h("div", { class: "k" }, k), h("div", { class: small ? "v small" : "v" }, v));
    const parts = [
      h("h1", {}, b.prd_name || b.build_id, " ", pill(b.status)),
      h("div", { class: "cards" },
        card("Build", h("span", { class: "mono" }, b.build_id), true),
        card("PRD", `${b.prd_name || "—"} (${b.prd_id || "—"})`, true),
        card("Progress", progress(b)),
        card("Duration", buildDuration(b)),
        card("Started", fmtTime(b.started_at), true),
        card("Completed", fmtTime(b.completed_at), true)),
    ];
    if (b.error) parts.push(h("div", { class: "errorbox" }, `Build error: ${b.error}`));
    parts.push(h("h2", {}, "Tasks by phase"));
    parts.push(data.tasks.length ? h("div", { class: "panel" }, taskGraph(data.tasks)) : h("div", { class: "panel muted" }, "No tasks yet."));
    const columns = ["task_id", "title", "phase", "agent", "status", "attempts", "dependencies", "error", "updated_at"];
    parts.push(h("div", { class: "tablewrap" }, h("table", { "data-view": "tasks" },
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))),
      h("tbody", {}, data.tasks.map((t) => h("tr", { "data-task": t.task_id }, columns.map((c) =>
        h("td", { class: c === "error" ? "wrap err" : c === "title" ? "wrap" : null }, cell(c, t[c])))))))));
    parts.push(h("h2", {}, `Executions (${data.executions.length})`));
    parts.push(timeline(data.executions));
    if (data.tasks_truncated || data.executions_truncated) parts.push(h("div", { class: "notice" }, "Only the first rows of this build are shown."));
    content.replaceChildren(...parts);
  };
};

function barChart(title, groups, value, format, cls) {
  const W = 520, ROW = 26, LABEL = 150;
  const values = groups.map(value).filter((v) => typeof v === "number");
  const max = Math.max(1e-9, ...values);
  const height = Math.max(1, groups.length) * ROW + 8;
  const svg = s("svg", { viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": title });
  groups.forEach((g, i) => {
    const v = value(g);
    const y = 4 + i * ROW;
    svg.append(s("text", { x: 0, y: y + 16 }, truncate(g.name, 20)));
    const w = typeof v === "number" ? Math.max(2, (v / max) * (W - LABEL - 140)) : 0;
    const bar = s("rect", { class: `bar ${cls || ""}`, x: LABEL, y: y + 4, width: w, height: ROW - 9, rx: 3, "data-value": v ?? "" });
    bar.append(s("title", {}, `${g.name}: ${format(v)} (${g.executions} executions)`));
    svg.append(bar);
    svg.append(s("text", { class: "val", x: LABEL + w + 6, y: y + 16 }, `${format(v)} · n=${g.executions}`));
  });
  return h("div", { class: "panel chart", "data-chart": title }, h("h2", {}, title),
    groups.length ? svg : h("div", { class: "muted" }, "No executions in this range."));
}

const RANGES = [["1h", 3600e3, "last hour"], ["24h", 86400e3, "last 24 hours"], ["7d", 7 * 86400e3, "last 7 days"], ["30d", 30 * 86400e3, "last 30 days"], ["all", null, "all time"]];

pages.executions = (root, params) => {
  const range = params.get("range") || "all";
  const content = h("div");
  root.append(h("h1", {}, "Executions"),
    h("div", { class: "toolbar" }, toolbarSelect("Time range", range, RANGES.map(([k, , text]) => [k, text]), (v) => setHashParams("/executions", { range: v }))),
    content);
  follow([{ view: "executions", limit: 1, order: "desc" }]);
  return async () => {
    const span = (RANGES.find(([k]) => k === range) || RANGES[4])[1];
    let data;
    try {
      data = await api(`/api/executions/stats${qs(span ? { since: Date.now() - span } : {})}`);
    } catch (e) { content.replaceChildren(errorBox(e)); return; }
    const pct = (v) => (typeof v === "number" ? `${Math.round(v * 100)}%` : "—");
    const parts = [h("div", { class: "muted summary" }, `${data.executions} executions${data.truncated ? " (the most recent ones)" : ""}`)];
    parts.push(h("div", { class: "charts" },
      barChart("Mean duration by agent", data.by_agent, (g) => g.mean_duration_ms, fmtDuration),
      barChart("Gate pass rate by agent", data.by_agent, (g) => g.gate_pass_rate, pct, "rate"),
      barChart("Mean duration by model", data.by_model, (g) => g.mean_duration_ms, fmtDuration),
      barChart("Gate pass rate by model", data.by_model, (g) => g.gate_pass_rate, pct, "rate")));
    content.replaceChildren(...parts);
  };
};

pages.patterns = (root, params) => {
  const language = params.get("language") || "";
  const tags = params.get("tags") || "";
  const update = (patch) => setHashParams("/patterns", Object.assign({ language, tags }, patch));
  const content = h("div");
  root.append(h("h1", {}, "Patterns"),
    h("div", { class: "toolbar" }, toolbarInput("Language", language, (v) => update({ language: v })),
      toolbarInput("Tags (comma separated)", tags, (v) => update({ tags: v }))),
    content);
  const tagList = tags.split(",").map((t) => t.trim()).filter(Boolean);
  follow([{ view: "patterns", filter: given({ language, tags: tagList.length ? tagList : null }), limit: PAGE_SIZE }]);
  return viewTable(content, "patterns", {
    params: () => ({ "f.language": language, "j.tags": tagList.length ? JSON.stringify(tagList) : "" }),
    columns: ["pattern_id", "name", "language", "tags", "description", "created_at"],
  }).refresh;
};

pages.learnings = (root, params) => {
  const category = params.get("category") || "";
  const content = h("div");
  root.append(h("h1", {}, "Learnings"),
    h("div", { class: "toolbar" }, toolbarInput("Category", category, (v) => setHashParams("/learnings", { category: v }))),
    content);
  follow([{ view: "learnings", filter: given({ category }), limit: PAGE_SIZE }]);
  return viewTable(content, "learnings", {
    params: () => ({ "f.category": category }),
    columns: ["learning_id", "category", "insight", "build_id", "task_id", "pattern_id", "recorded_at"],
    render: { build_id: (v) => (v ? h("a", { href: `#/build/${encodeURIComponent(v)}`, class: "mono" }, v) : cell("build_id", v)) },
  }).refresh;
};

pages.views = (root) => {
  const content = h("div", { class: "views-list" });
  root.append(h("h1", {}, "Views"), h("p", { class: "muted" }, "Every view the daemon projects, as sortable, paged tables."), content);
  return async () => {
    let data;
    try { data = await api("/api/status"); } catch (e) { content.replaceChildren(errorBox(e)); return; }
    content.replaceChildren(...data.views.map((v) => h("a", { href: `#/view/${encodeURIComponent(v)}`, "data-view-link": v }, v)));
  };
};

pages.view = (root, params, name) => {
  const content = h("div");
  root.append(h("div", { class: "muted" }, h("a", { href: "#/views" }, "← Views")), h("h1", {}, name), content);
  follow([{ view: name, limit: PAGE_SIZE }]);
  return viewTable(content, name, {}).refresh;
};

pages.sync = (root) => {
  const content = h("div");
  root.append(h("h1", {}, "Sync health"), content);
  // Sync figures move with every append and every round: read them each second.
  pollTimer = setInterval(() => runRefresh(), 1000);
  let message = null;
  const refresh = async () => {
    let data;
    try { data = await api("/api/status"); } catch (e) { content.replaceChildren(errorBox(e)); return; }
    const sync = data.status.sync || {};
    const card = (k, v, small) => h("div", { class: "card", "data-field": k }, h("div", { class: "k" }, k), h("div", { class: small ? "v small" : "v" }, v));
    const lastError = sync.last_error ? (typeof sync.last_error === "object" ? JSON.stringify(sync.last_error) : String(sync.last_error)) : "none";
    const parts = [h("div", { class: "cards" },
      card("state", pill(sync.state || "unknown")),
      card("pending", String(sync.pending ?? "—")),
      card("oldest pending", sync.oldest_pending_ms ? fmtAge(sync.oldest_pending_ms) : "—"),
      card("next attempt", sync.next_attempt_ms ? fmtTime(sync.next_attempt_ms) : "—", true),
      card("acked seq", String(sync.acked_seq ?? "—")),
      card("remote high water", String(sync.remote_high_water ?? "—")),
      card("local last seq", String(data.status.last_seq ?? "—")),
      card("quarantined", String(sync.rejected ?? 0))),
      h("div", { class: "panel" }, h("div", { class: "k muted" }, "Last error"), h("div", { class: sync.last_error ? "err" : "muted", "data-field": "last_error" }, lastError))];
    const quarantine = Array.isArray(sync.quarantine) ? sync.quarantine : [];
    parts.push(h("h2", {}, `Quarantine (${sync.rejected ?? 0})`));
    if (quarantine.length) {
      const cols = ["seq", "event_id", "code", "message"];
      parts.push(h("div", { class: "tablewrap" }, h("table", { "data-view": "quarantine" },
        h("thead", {}, h("tr", {}, cols.map((c) => h("th", {}, c)))),
        h("tbody", {}, quarantine.map((q) => h("tr", {}, cols.map((c) => h("td", { class: c === "message" ? "wrap" : "mono" }, cell(c, q[c])))))))));
    } else {
      parts.push(h("div", { class: "panel muted" }, sync.rejected ? "The daemon lists no reasons." : "Nothing is quarantined."));
    }
    const button = h("button", { class: "primary", id: "requeue", onclick: async () => {
      button.disabled = true;
      try {
        const result = await api("/api/sync/requeue", { method: "POST", headers: { "X-Atlasd-CSRF": CSRF } });
        message = result.triggered === false ? `Not sent: ${result.reason || "sync is disabled"}` :
          `Re-queued ${result.requeued ?? 0} event(s).`;
      } catch (e) { message = `Failed: ${e.message}`; }
      refresh();
    } }, "Re-queue quarantine");
    button.disabled = !sync.rejected;
    parts.push(h("div", { class: "toolbar" }, button, message ? h("span", { id: "requeue-result" }, message) : null));
    content.replaceChildren(...parts);
  };
  return refresh;
};

// ---------------------------------------------------------------- routing and live updates

let refreshCurrent = null;
let refreshing = false;
let refreshAgain = false;

let painted = false;

async function runRefresh() {
  if (!refreshCurrent) return;
  if (refreshing) { refreshAgain = true; return; }
  refreshing = true;
  try {
    await refreshCurrent();
    if (!painted) {
      painted = true;
      // The first page with its data on screen (measured by the benchmark).
      requestAnimationFrame(() => performance.mark("atlasd:painted"));
    }
  } finally {
    refreshing = false;
    if (refreshAgain) { refreshAgain = false; runRefresh(); }
  }
}

function route() {
  const { path, params } = hashParams();
  const [, name, ...rest] = path.split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : null;
  const page = pages[name] || pages.builds;
  for (const a of document.querySelectorAll("[data-nav]")) {
    const on = a.getAttribute("data-nav") === name || (name === "build" && a.getAttribute("data-nav") === "builds") || (name === "view" && a.getAttribute("data-nav") === "views");
    a.classList.toggle("on", on);
  }
  const root = h("div", { "data-page": name || "builds" });
  main.replaceChildren(root);
  currentSpecs = [];
  if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  refreshCurrent = page(root, params, arg);
  runRefresh();
  connectLive(currentSpecs);
}

async function refreshBadge() {
  const badge = document.getElementById("sync-badge");
  try {
    const data = await api("/api/status");
    const sync = data.status.sync || {};
    badge.textContent = `sync: ${sync.state}${sync.pending ? ` · ${sync.pending} pending` : ""}${sync.rejected ? ` · ${sync.rejected} quarantined` : ""}`;
    badge.className = `badge ${sync.state === "idle" ? "ok" : sync.state === "auth_error" || sync.rejected ? "bad" : sync.state === "backoff" ? "warn" : ""}`;
    document.getElementById("foot-seq").textContent = `log at seq ${data.status.last_seq} · ${data.status.events} events · ${data.views.length} views`;
  } catch (e) {
    badge.textContent = "daemon unreachable";
    badge.className = "badge bad";
  }
}

let badgeTimer = null;
function scheduleBadge() {
  if (badgeTimer) return;
  badgeTimer = setTimeout(() => { badgeTimer = null; refreshBadge(); }, 1000);
}

let liveSource = null;
let liveKey = null;

// One server-sent event stream per page: the dashboard watches the page's queries on the
// daemon and says when they changed; the page then fetches again what it shows.
function connectLive(specs) {
  const live = document.getElementById("live");
  const key = JSON.stringify(specs);
  if (key === liveKey && liveSource && liveSource.readyState !== EventSource.CLOSED) return;
  if (liveSource) liveSource.close();
  liveKey = key;
  live.removeAttribute("data-ready");
  if (!specs.length) {
    liveSource = null;
    live.textContent = pollTimer ? "live" : "static";
    live.className = pollTimer ? "live on" : "live off";
    if (pollTimer) live.setAttribute("data-ready", "1");
    return;
  }
  const source = new EventSource(`/api/live?watch=${encodeURIComponent(key)}`);
  liveSource = source;
  live.textContent = "connecting";
  live.className = "live off";
  source.onmessage = (message) => {
    const notice = JSON.parse(message.data);
    if (notice.ready) {
      live.textContent = "live";
      live.className = "live on";
      live.setAttribute("data-ready", "1");
    }
    if (notice.errors) console.warn("live:", notice.errors.join("; "));
    // Ready: catch up on anything that changed while the watches opened.
    if (notice.ready || notice.changed) {
      runRefresh();
      scheduleBadge();
    }
  };
  source.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
}

window.addEventListener("hashchange", route);
route();
refreshBadge();
setInterval(refreshBadge, 5000);
