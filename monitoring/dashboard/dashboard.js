// The dashboard page: draws the panels of a Grafana 10 dashboard (timeseries with uPlot, stat)
// from Prometheus' HTTP API, through the zdm-deploy server that served this page.
//
// URL: /?d=<uid>&range=<seconds>&refresh=<seconds>&<variable>=<value>[&<variable>=...]
// Each panel element carries data-state (loading, ok, empty, error) and data-series (the number
// of series with at least one value): the browser test reads them.
"use strict";

const PALETTE = ["#73bf69", "#f2cc0c", "#5794f2", "#ff780a", "#f2495c", "#b877d9", "#8ab8ff",
  "#fade2a", "#96d98d", "#ffa6b0", "#c0d8ff", "#ca95e5", "#37872d", "#e0b400", "#1f60c4"];

const state = {
  config: null,      // /api/config
  dashboard: null,   // the Grafana JSON
  variables: {},     // name -> selected values (["$__all"] for All)
  panels: [],        // {spec, el, body, plot, key}
  timer: null,
  generation: 0,     // bumps on every refresh; late answers of older ones are dropped
};

// ---- units -------------------------------------------------------------------------------

function si(v, digits) {
  const a = Math.abs(v);
  const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [f, s] of units) if (a >= f) return (v / f).toFixed(digits) + s;
  if (a !== 0 && a < 0.01) return v.toExponential(1);
  return Number(v.toFixed(digits)).toString();
}

function bytes(v, suffix) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : Math.round(v)) + " " + units[i] + suffix;
}

function seconds(v) {
  const a = Math.abs(v);
  if (a === 0) return "0 s";
  if (a < 1e-3) return (v * 1e6).toFixed(0) + " µs";
  if (a < 1) return +(v * 1e3).toFixed(a < 0.01 ? 2 : 1) + " ms";
  if (a < 120) return +v.toFixed(2) + " s";
  if (a < 7200) return (v / 60).toFixed(1) + " min";
  if (a < 172800) return (v / 3600).toFixed(1) + " h";
  return (v / 86400).toFixed(1) + " d";
}

function format(unit, v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  switch (unit) {
    case "s": return seconds(v);
    case "reqps": return si(v, 2) + " req/s";
    case "percent": return v.toFixed(1) + " %";
    case "percentunit": return (v * 100).toFixed(v * 100 < 10 ? 2 : 1) + " %";
    case "bytes": return bytes(v, "");
    case "Bps": return bytes(v, "/s");
    default: return si(v, 2);
  }
}

// ---- queries -----------------------------------------------------------------------------

async function getJSON(url) {
  const r = await fetch(url);
  const body = await r.json().catch(() => null);
  if (!r.ok || !body || body.status === "error") {
    throw new Error(body && body.error ? body.error : `${r.status} ${r.statusText} for ${url}`);
  }
  return body;
}

function regexEscape(s) {
  // A Prometheus regex inside a PromQL string: escape for the regex, then for the string.
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/\\/g, "\\\\");
}

function variableValue(name) {
  const sel = state.variables[name] || ["$__all"];
  if (sel.includes("$__all") || sel.length === 0) {
    const v = state.dashboard.templating.list.find((x) => x.name === name);
    return v && v.allValue ? v.allValue : ".*";
  }
  return sel.length === 1 ? regexEscape(sel[0]) : "(" + sel.map(regexEscape).join("|") + ")";
}

// Grafana's $__rate_interval: max(4 × scrape interval, step + scrape interval).
function rateInterval(step) {
  const scrape = state.config.scrape_interval_seconds;
  return Math.max(4 * scrape, step + scrape) + "s";
}

function expand(expr, step) {
  let out = expr.replace(/\$__rate_interval/g, rateInterval(step));
  for (const v of state.dashboard.templating.list) {
    out = out.split("$" + v.name).join(variableValue(v.name));
  }
  return out;
}

function legend(format, metric) {
  if (!format) {
    const labels = Object.entries(metric).filter(([k]) => k !== "__name__").map(([k, v]) => `${k}="${v}"`);
    return (metric.__name__ || "") + "{" + labels.join(", ") + "}";
  }
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k) => (metric[k] !== undefined ? metric[k] : ""));
}

// ---- layout ------------------------------------------------------------------------------

function place(el, g) {
  el.style.gridColumn = `${g.x + 1} / span ${g.w}`;
  el.style.gridRow = `${g.y + 1} / span ${g.h}`;
}

function build() {
  const grid = document.getElementById("grid");
  grid.replaceChildren();
  state.panels = [];
  for (const spec of state.dashboard.panels) {
    if (spec.type === "row") {
      const h = document.createElement("h2");
      h.className = "row-title";
      h.textContent = spec.title;
      place(h, spec.gridPos);
      grid.append(h);
      continue;
    }
    const el = document.createElement("section");
    el.className = "panel";
    el.dataset.type = spec.type;
    el.dataset.title = spec.title;
    el.dataset.state = "loading";
    el.dataset.series = "0";
    place(el, spec.gridPos);
    const title = document.createElement("h3");
    title.textContent = spec.title;
    title.title = spec.description || "";
    const body = document.createElement("div");
    body.className = "body";
    el.append(title, body);
    grid.append(el);
    state.panels.push({ spec, el, body, plot: null, key: "" });
  }
}

function note(p, text, st) {
  if (p.plot) { p.plot.destroy(); p.plot = null; p.key = ""; }
  const n = document.createElement("div");
  n.className = "note";
  n.textContent = text;
  p.body.replaceChildren(n);
  p.el.dataset.state = st;
  p.el.dataset.series = "0";
}

// ---- panels ------------------------------------------------------------------------------

async function drawTimeseries(p, start, end, step, generation) {
  const unit = (p.spec.fieldConfig.defaults || {}).unit || "short";
  const results = await Promise.all(p.spec.targets.map((t) => {
    const q = new URLSearchParams({ query: expand(t.expr, step), start, end, step });
    return getJSON("/api/v1/query_range?" + q).then((r) => ({ t, r }));
  }));
  if (generation !== state.generation) return;
  const n = Math.floor((end - start) / step) + 1;
  const xs = Array.from({ length: n }, (_, i) => start + i * step);
  const series = [];
  for (const { t, r } of results) {
    for (const s of r.data.result) {
      const ys = new Array(n).fill(null);
      let any = false;
      for (const [ts, v] of s.values) {
        const i = Math.round((ts - start) / step);
        const y = parseFloat(v);
        if (i >= 0 && i < n && Number.isFinite(y)) { ys[i] = y; any = true; }
      }
      if (any) series.push({ label: legend(t.legendFormat, s.metric), ys });
    }
  }
  series.sort((a, b) => a.label.localeCompare(b.label, undefined, { numeric: true }));
  if (series.length === 0) { note(p, "No data", "empty"); return; }
  const data = [xs, ...series.map((s) => s.ys)];
  const key = unit + "|" + series.map((s) => s.label).join("\n");
  const width = p.body.clientWidth, height = Math.max(60, p.body.clientHeight);
  if (p.plot && p.key === key) {
    p.plot.setData(data);
  } else {
    if (p.plot) p.plot.destroy();
    p.body.replaceChildren();
    const legendRows = Math.min(series.length, 4);
    const opts = {
      width, height: Math.max(40, height - 18 * Math.ceil(legendRows / 2) - 8),
      cursor: { points: { size: 5 } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: "#8e8e8e", grid: { stroke: "#2c3235", width: 1 }, ticks: { stroke: "#2c3235" } },
        { stroke: "#8e8e8e", grid: { stroke: "#2c3235", width: 1 }, ticks: { stroke: "#2c3235" },
          values: (u, vals) => vals.map((v) => format(unit, v)),
          // Wide enough for the longest label ("97.7 KiB/s").
          size: (u, vals) => 16 + 7 * Math.max(3, ...(vals || []).map((v) => String(v).length)) },
      ],
      series: [{}, ...series.map((s, i) => ({
        label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5,
        fill: PALETTE[i % PALETTE.length] + "1a", value: (u, v) => format(unit, v),
      }))],
      legend: { live: true },
    };
    p.plot = new uPlot(opts, data, p.body);
    p.key = key;
  }
  p.el.dataset.state = "ok";
  p.el.dataset.series = String(series.length);
}

async function drawStat(p, end, step, generation) {
  const unit = (p.spec.fieldConfig.defaults || {}).unit || "short";
  const mode = (p.spec.options || {}).textMode || "value_and_name";
  const results = await Promise.all(p.spec.targets.map((t) => {
    const q = new URLSearchParams({ query: expand(t.expr, step), time: end });
    return getJSON("/api/v1/query?" + q).then((r) => ({ t, r }));
  }));
  if (generation !== state.generation) return;
  const items = [];
  for (const { t, r } of results) {
    const rows = r.data.resultType === "vector" ? r.data.result : [];
    for (const s of rows) {
      const v = parseFloat(s.value[1]);
      if (Number.isFinite(v)) items.push({ name: legend(t.legendFormat, s.metric), v });
    }
  }
  if (items.length === 0) { note(p, "No data", "empty"); return; }
  items.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  const box = document.createElement("div");
  box.className = "stat" + (mode === "name" ? " names" : "");
  for (const it of items) {
    const d = document.createElement("div");
    d.className = "item";
    if (mode !== "name") {
      const v = document.createElement("div");
      v.className = "value";
      v.textContent = format(unit, it.v);
      d.append(v);
    }
    const n = document.createElement("div");
    n.className = "name";
    n.textContent = it.name;
    d.append(n);
    box.append(d);
  }
  p.body.replaceChildren(box);
  p.el.dataset.state = "ok";
  p.el.dataset.series = String(items.length);
}

async function refresh() {
  const generation = ++state.generation;
  const range = Number(document.getElementById("range").value);
  const end = Math.floor(Date.now() / 1000);
  const scrape = state.config.scrape_interval_seconds;
  const step = Math.max(scrape, Math.ceil(range / 300));
  const start = end - range - ((end - range) % step);
  const status = document.getElementById("status");
  let failed = 0;
  await Promise.all(state.panels.map(async (p) => {
    try {
      if (p.spec.type === "stat") await drawStat(p, end, step, generation);
      else await drawTimeseries(p, start, end, step, generation);
    } catch (e) {
      if (generation !== state.generation) return;
      failed++;
      note(p, String(e.message || e), "error");
    }
  }));
  if (generation !== state.generation) return;
  status.className = failed ? "error" : "";
  status.textContent = (failed ? `${failed} panels failed · ` : "") +
    `updated ${new Date().toLocaleTimeString()} · ${state.config.prometheus}`;
  document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
}

function schedule() {
  clearInterval(state.timer);
  const every = Number(document.getElementById("refresh").value);
  if (every > 0) state.timer = setInterval(refresh, every * 1000);
}

function syncUrl() {
  const q = new URLSearchParams({ d: state.dashboard.uid,
    range: document.getElementById("range").value, refresh: document.getElementById("refresh").value });
  for (const [name, vals] of Object.entries(state.variables)) {
    for (const v of vals) if (v !== "$__all") q.append(name, v);
  }
  history.replaceState(null, "", "?" + q);
}

// ---- variables ---------------------------------------------------------------------------

async function buildVariables(params) {
  const box = document.getElementById("variables");
  box.replaceChildren();
  for (const v of state.dashboard.templating.list) {
    const query = (v.query && v.query.query) || v.definition || "";
    const m = /^label_values\((.*),\s*(\w+)\)\s*$/.exec(query);
    let values = [];
    if (m) {
      const q = new URLSearchParams();
      q.append("match[]", m[1]);
      const r = await getJSON(`/api/v1/label/${m[2]}/values?` + q).catch(() => ({ data: [] }));
      values = r.data;
    }
    const wanted = params.getAll(v.name);
    state.variables[v.name] = wanted.length ? wanted : ["$__all"];
    const label = document.createElement("label");
    label.textContent = (v.label || v.name) + " ";
    const sel = document.createElement("select");
    sel.multiple = !!v.multi;
    sel.id = "var-" + v.name;
    for (const value of (v.includeAll ? ["$__all"] : []).concat(values)) {
      const o = document.createElement("option");
      o.value = value;
      o.textContent = value === "$__all" ? "All" : value;
      o.selected = state.variables[v.name].includes(value);
      sel.append(o);
    }
    sel.addEventListener("change", () => {
      const chosen = Array.from(sel.selectedOptions).map((o) => o.value);
      state.variables[v.name] = chosen.length ? chosen : ["$__all"];
      syncUrl();
      refresh();
    });
    label.append(sel);
    box.append(label);
  }
}

// ---- start -------------------------------------------------------------------------------

async function main() {
  const params = new URLSearchParams(location.search);
  state.config = await getJSON("/api/config");
  const list = state.config.dashboards;
  const uid = params.get("d") || list[0].uid;
  const nav = document.getElementById("dashboards");
  for (const d of list) {
    const a = document.createElement("a");
    a.href = "?d=" + encodeURIComponent(d.uid);
    a.textContent = d.title;
    if (d.uid === uid) a.className = "current";
    nav.append(a);
  }
  state.dashboard = await getJSON("/api/dashboards/" + encodeURIComponent(uid));
  document.title = state.dashboard.title + " · zdm";
  document.getElementById("description").textContent = state.dashboard.description || "";
  for (const id of ["range", "refresh"]) {
    const el = document.getElementById(id);
    if (params.get(id)) el.value = params.get(id);
    el.addEventListener("change", () => { syncUrl(); schedule(); refresh(); });
  }
  await buildVariables(params);
  build();
  syncUrl();
  await refresh();
  schedule();
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const p of state.panels) {
        if (p.plot) { p.plot.destroy(); p.plot = null; p.key = ""; }
      }
      refresh();
    }, 200);
  });
}

main().catch((e) => {
  const status = document.getElementById("status");
  status.className = "error";
  status.textContent = String(e.message || e);
  document.body.dataset.error = String(e.message || e);
});
