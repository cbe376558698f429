// The driftline dashboard: one EventSource on /events keeps `state` current; render()
// redraws from it. Every text from the server goes through textContent, never HTML.
"use strict";

const MAX_POINTS = 360;
const MAX_ALERTS = 200;
const COLORED_TESTS = 8;

const state = { models: [], labels: {}, series: {}, alerts: [], throughput: [],
                groupId: "", updated: null };
const knownAlerts = new Set();

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

function addAlerts(alerts, receivedMs) {
  for (const alert of alerts) {
    if (knownAlerts.has(alert.alert_id)) continue;
    knownAlerts.add(alert.alert_id);
    alert._received = receivedMs;
    state.alerts.unshift(alert);
  }
  state.alerts.sort((a, b) => b.ts - a.ts);
  for (const dropped of state.alerts.splice(MAX_ALERTS)) knownAlerts.delete(dropped.alert_id);
}

function onSnapshot(payload) {
  const now = Date.now();
  state.groupId = payload.group_id;
  state.models = payload.models;
  state.labels = payload.labels || {};
  state.series = payload.series;
  state.throughput = payload.throughput;
  state.alerts = [];
  knownAlerts.clear();
  addAlerts(payload.alerts.slice().reverse(), now);
  for (const alert of state.alerts) alert._fresh = false;
  state.updated = now;
  scheduleRender();
}

function onUpdate(payload) {
  const now = Date.now();
  state.models = payload.models;
  state.labels = payload.labels || {};
  for (const name of payload.reset) state.series[name] = [];
  for (const [name, points] of Object.entries(payload.series)) {
    const series = (state.series[name] || []).concat(points);
    state.series[name] = series.slice(-MAX_POINTS);
  }
  state.throughput = state.throughput.concat(payload.throughput).slice(-MAX_POINTS);
  for (const alert of payload.alerts) alert._fresh = true;
  addAlerts(payload.alerts, now);
  state.updated = now;
  scheduleRender();
}

let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  setTimeout(() => { renderPending = false; render(); }, 20);
}

function setConnection(text, kind) {
  const pill = document.getElementById("connection");
  pill.textContent = text;
  pill.className = "pill pill-" + kind;
}

// The newest event per condition (dedup_key) decides whether it is open.
function openAlerts() {
  const latest = new Map();
  for (const alert of state.alerts.slice().reverse()) latest.set(alert.dedup_key, alert);
  return [...latest.values()].filter((a) => a.status === "firing").sort((a, b) => b.ts - a.ts);
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString("en-GB");
}

function dateTime(seconds) {
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function coverageText(entry) {
  return entry && entry.coverage !== null && entry.coverage !== undefined
    ? (100 * entry.coverage).toFixed(1) + " %" : "–";
}

function renderModels(open) {
  const body = document.querySelector("#models-table tbody");
  body.replaceChildren();
  for (const model of state.models) {
    const openCount = open.filter((a) => a.model_id === model.model_id &&
                                         a.model_version === model.model_version).length;
    const drifting = el("td");
    for (const test of model.drifted) drifting.append(el("span", { class: "chip" }, test));
    if (!model.drifted.length) drifting.append("–");
    body.append(el("tr", { "data-model": model.model_id + "|" + model.model_version },
      el("td", {}, model.model_id), el("td", {}, model.model_version),
      el("td", { class: "num" }, model.events.toLocaleString("en-US")),
      el("td", { class: "num" }, model.windows.toLocaleString("en-US")),
      el("td", {}, dateTime(model.last_window_end_ts)),
      el("td", { class: "num" }, openCount), drifting,
      el("td", { class: "num" }, coverageText(state.labels[model.model_id]))));
  }
  document.getElementById("models-empty").hidden = state.models.length > 0;
}

function renderAlerts(open) {
  const list = document.getElementById("open-alerts");
  list.replaceChildren();
  for (const alert of open) {
    list.append(el("li", { "data-alert-id": alert.alert_id },
      el("span", { class: "badge " + alert.severity }, alert.severity), " ",
      el("span", { class: "what" }, `${alert.model_id} ${alert.kind} ${alert.feature || ""}` +
         (alert.segment ? ` [${alert.segment}]` : "")),
      el("div", { class: "since" }, "firing since " + clock(alert.ts) + " · " +
         alert.detector + " " + Charts.formatNumber(alert.statistic))));
  }
  document.getElementById("open-count").textContent = String(open.length);
  document.getElementById("open-empty").hidden = open.length > 0;

  const body = document.querySelector("#recent-alerts tbody");
  const rendered = new Map([...body.children].map((row) => [row.dataset.alertId, row]));
  body.replaceChildren();
  for (const alert of state.alerts.slice(0, 50)) {
    let row = rendered.get(alert.alert_id);
    if (!row) {
      row = el("tr", { "data-alert-id": alert.alert_id, "data-received-ms": alert._received,
                       "data-rendered-ms": Date.now(), class: alert._fresh ? "fresh" : "" },
        el("td", {}, clock(alert.ts)),
        el("td", {}, el("span", { class: "badge " + alert.status }, alert.status)),
        el("td", {}, el("span", { class: "badge " + alert.severity }, alert.severity)),
        el("td", {}, `${alert.model_id} ${alert.model_version}`),
        el("td", {}, alert.kind),
        el("td", {}, (alert.feature || "–") + (alert.segment ? ` [${alert.segment}]` : "")),
        el("td", {}, `${alert.detector} ${Charts.formatNumber(alert.statistic)} / ` +
                     Charts.formatNumber(alert.threshold)),
        el("td", { class: "explanation" }, alert.explanation));
    }
    body.append(row);
  }
  document.getElementById("alerts-empty").hidden = state.alerts.length > 0;
}

// One chart per model version: the tests that came closest to firing get colors.
function renderDrift() {
  const container = document.getElementById("drift-charts");
  const names = state.models.map((m) => m.model_id + "|" + m.model_version);
  for (const card of [...container.children]) {
    if (!names.includes(card.dataset.model)) card.remove();
  }
  for (const name of names) {
    let card = container.querySelector(`[data-model="${CSS.escape(name)}"]`);
    if (!card) {
      card = el("div", { class: "model-chart", "data-model": name },
        el("h4"), el("canvas", { class: "chart", "data-role": "drift-chart",
                                 "data-points": "0" }), el("div", { class: "legend" }));
      container.append(card);
    }
    const points = state.series[name] || [];
    const tests = new Map();
    for (const point of points) {
      for (const [test, score] of Object.entries(point.scores)) {
        if (!tests.has(test)) tests.set(test, []);
        tests.get(test).push([point.end_ts, score]);
      }
    }
    const peak = (values) => Math.max(...values.map((p) => p[1]));
    const ranked = [...tests.entries()].sort((a, b) => peak(b[1]) - peak(a[1]));
    const colored = ranked.slice(0, COLORED_TESTS);
    const series = ranked.slice(COLORED_TESTS).map(([test, values]) =>
      ({ name: test, color: Charts.MUTED, width: 1, points: values }));
    colored.forEach(([test, values], i) => series.push(
      { name: test, color: Charts.PALETTE[i % Charts.PALETTE.length], width: 2, points: values }));
    const [modelId, version] = name.split("|");
    card.querySelector("h4").replaceChildren(modelId + " ", el("span", { class: "meta" },
      `${version} · ${points.length} windows · ${tests.size} tests`));
    Charts.lineChart(card.querySelector("canvas"), series,
                     { threshold: 1, yMinTop: 1.2, empty: "no closed window yet" });
    const legend = card.querySelector(".legend");
    legend.replaceChildren();
    colored.forEach(([test, values], i) => {
      const last = values[values.length - 1][1];
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = Charts.PALETTE[i % Charts.PALETTE.length];
      legend.append(el("span", { class: last >= 1 ? "over" : "" }, swatch,
                       `${test} ${last.toFixed(2)}`));
    });
    if (ranked.length > COLORED_TESTS) {
      legend.append(el("span", {}, `+ ${ranked.length - COLORED_TESTS} more (gray)`));
    }
    // Every feature with a distribution test opens its drill-down (drilldown.js).
    const features = [...new Set([...tests.keys()].map((test) => test.split(":"))
      .filter((p) => p.length === 2 && p[1] !== "(joint)" &&
                     (p[0] === "data_drift" || p[0] === "prediction_drift"))
      .map((p) => p[1]))].sort();
    let links = card.querySelector(".features");
    if (!links) { links = el("div", { class: "features" }); card.append(links); }
    if (links.dataset.features !== features.join("\n")) {   // kept while unchanged
      links.dataset.features = features.join("\n");
      links.replaceChildren("drill down: ", ...features.map((feature) => el("button", {
        type: "button", "data-drill-model": name, "data-drill-feature": feature }, feature)));
    }
  }
  document.getElementById("drift-empty").hidden = names.length > 0;
}

function renderThroughput() {
  const points = state.throughput;
  const rates = points.map((p) => [p.ts, p.events_per_s]);
  Charts.lineChart(document.getElementById("throughput-chart"),
                   [{ name: "events/s", color: Charts.PALETTE[0], width: 2, points: rates }],
                   { yMinTop: 10, empty: "no throughput sample yet" });
  const last = points[points.length - 1];
  const set = (id, text) => { document.getElementById(id).textContent = text; };
  set("kpi-rate", last ? Charts.formatNumber(last.events_per_s) : "–");
  set("kpi-peak", last ? Charts.formatNumber(Math.max(...rates.map((r) => r[1]))) : "–");
  set("kpi-dead", last ? Charts.formatNumber(last.dead_letters_per_s) : "–");
  set("kpi-partitions", last ? String(last.partitions) : "–");
}

// The last closed window's accuracy (or MAE) and the label-free estimate, when known.
function performanceText(entry) {
  const window = (entry.performance || {}).window || {};
  const estimate = (entry.estimate || {}).estimated_accuracy;
  const parts = [];
  if (window.accuracy !== null && window.accuracy !== undefined) {
    parts.push(`last window accuracy ${window.accuracy.toFixed(3)}`);
  } else if (window.mae !== null && window.mae !== undefined) {
    parts.push(`last window MAE ${Charts.formatNumber(window.mae)}`);
  }
  if (estimate !== null && estimate !== undefined) {
    parts.push(`label-free estimate ${estimate.toFixed(3)}`);
  }
  return parts.length ? parts.join(" · ") : "no performance window closed yet";
}

// One line per segment value, weakest last-window accuracy (highest MAE) first.
function segmentRows(segments) {
  const score = ([, s]) => {
    const w = s.window || {};
    if (w.accuracy !== null && w.accuracy !== undefined) return w.accuracy;
    if (w.mae !== null && w.mae !== undefined) return -w.mae;
    return Infinity;
  };
  return Object.entries(segments || {}).sort((a, b) => score(a) - score(b)).slice(0, 8)
    .map(([name, s]) => {
      const w = s.window || {};
      const metric = w.accuracy !== null && w.accuracy !== undefined
        ? `accuracy ${w.accuracy.toFixed(3)}`
        : w.mae !== null && w.mae !== undefined ? `MAE ${Charts.formatNumber(w.mae)}`
          : "reference still filling";
      return el("div", { class: "segment", "data-segment": name },
        `${name}: ${s.labelled_events.toLocaleString("en-US")} labelled · ${metric}`);
    });
}

function renderLabels() {
  const box = document.getElementById("labels");
  box.replaceChildren();
  const entries = Object.values(state.labels).filter((e) => e.predictions > 0);
  for (const entry of entries) {
    const share = Math.min(1, entry.coverage || 0);
    const bar = el("div", { class: "bar" }, el("div"));
    bar.firstChild.style.width = (100 * share).toFixed(1) + "%";
    const delay = entry.delay_p50_s !== null && entry.delay_p50_s !== undefined
      ? ` · label delay p50 ${Charts.formatNumber(entry.delay_p50_s)} s` : "";
    box.append(el("div", { class: "coverage", "data-model": entry.model_id },
      el("strong", {}, `${entry.model_id} ${coverageText(entry)}`), bar,
      el("div", { class: "detail" }, `${entry.joined.toLocaleString("en-US")} joined of ` +
         `${entry.predictions.toLocaleString("en-US")} predictions · ` +
         `${entry.waiting.toLocaleString("en-US")} waiting${delay}`),
      el("div", { class: "detail" }, performanceText(entry)),
      ...segmentRows(entry.segments)));
  }
  document.getElementById("labels-empty").hidden = entries.length > 0;
}

function render() {
  const open = openAlerts();
  renderModels(open);
  renderAlerts(open);
  renderDrift();
  renderThroughput();
  renderLabels();
  document.getElementById("group").textContent = state.groupId ? "group " + state.groupId : "";
  document.getElementById("updated").textContent =
    state.updated ? "updated " + new Date(state.updated).toLocaleTimeString("en-GB") : "";
  document.body.dataset.rendered = String(Date.now());
}

function connect() {
  const source = new EventSource("events");
  source.onopen = () => setConnection("live", "live");
  source.onerror = () => setConnection("reconnecting…", "down");
  source.addEventListener("snapshot", (e) => { setConnection("live", "live"); onSnapshot(JSON.parse(e.data)); });
  source.addEventListener("update", (e) => onUpdate(JSON.parse(e.data)));
  source.addEventListener("problem", (e) => setConnection(JSON.parse(e.data).error, "down"));
}

window.addEventListener("resize", scheduleRender);
connect();
