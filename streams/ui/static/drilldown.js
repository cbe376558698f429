// The drill-down and the audit trail. A click on an alert (any element with
// data-alert-id) or a feature button (data-drill-model + data-drill-feature) opens
// the #drilldown card from /api/drilldown; the audit panels read /api/audit.
// Texts go through textContent (el() of app.js). The charts are the run report's
// SVG, drawn by the server (streams/offline/report_svg.py escapes every text in them)
// and parsed here as XML, never as HTML.
"use strict";

const Drill = (() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  let current = null;        // the query of the open drill-down, to refresh it

  async function getJSON(path, query) {
    const response = await fetch(path + "?" + new URLSearchParams(query));
    if (!response.ok) throw new Error(await response.text());
    return response.json();
  }

  function svgNode(text) {
    const source = text.replace("<svg ", `<svg xmlns="${SVG_NS}" `);
    const doc = new DOMParser().parseFromString(source, "image/svg+xml");
    if (doc.querySelector("parsererror")) return el("p", { class: "empty" }, "chart unreadable");
    return document.importNode(doc.documentElement, true);
  }

  function figure(svgText, caption, role) {
    const node = el("figure", { "data-role": role });
    node.append(svgText ? svgNode(svgText) : el("p", { class: "empty" }, "no histograms"));
    node.append(el("figcaption", {}, caption));
    return node;
  }

  function featureBlock(view) {
    const verdict = view.verdict;
    const window = view.window;
    const values = (side) => (view.distribution ? view.distribution[side] : [])
      .reduce((a, b) => a + b, 0).toLocaleString("en-US");
    const facts = `${view.kind} · ${verdict.detector} ${Charts.formatNumber(verdict.statistic ?? 0)}` +
      ` vs threshold ${Charts.formatNumber(verdict.threshold ?? 0)}` +
      (verdict.p_value !== null && verdict.p_value !== undefined
        ? ` · p = ${verdict.p_value.toPrecision(2)}` : "") +
      ` · ${verdict.drift ? "drift" : "no drift"} in window #${window.index}` +
      ` (${window.events.toLocaleString("en-US")} events, ${dateTime(window.start_ts)} – ` +
      `${dateTime(window.end_ts)})`;
    const block = el("div", { class: "drill-feature", "data-feature": view.feature,
                              "data-window": window.index },
      el("h4", {}, `${view.feature} `, el("span", { class: "badge " + (verdict.drift ? "firing"
        : "resolved") }, verdict.drift ? "drifted" : "within threshold")),
      el("p", { class: "drill-facts" }, facts),
      el("p", { class: "drill-explanation" }, verdict.explanation || ""));
    if (view.note) block.append(el("p", { class: "drill-note" }, view.note));
    block.append(el("div", { class: "drill-figures" },
      figure(view.charts.distribution, `reference (${values("reference")} values) vs window ` +
             `#${window.index} (${values("window")} values)` +
             (view.type === "categorical" ? ": category shares" : ": quantile bins of the " +
              "reference, side by side"), "distribution"),
      figure(view.charts.over_time, `${view.over_time.length} closed windows; dashed line: ` +
             "the threshold; red: alerts", "over-time")));
    return block;
  }

  function auditRows(body, records, withModel) {
    body.replaceChildren();
    for (const record of records) {
      const cells = [el("td", {}, dateTime(record.ts)), el("td", {}, record.kind)];
      if (withModel) cells.push(el("td", {}, record.model_id));
      cells.push(el("td", {}, record.model_version || "*"), el("td", {}, record.summary));
      const attrs = { "data-kind": record.kind, "data-audit-id": record.audit_id };
      if (record.model_id !== "*" && record.model_version) {
        attrs["data-model"] = record.model_id + "|" + record.model_version;
      }
      body.append(el("tr", attrs, ...cells));
    }
  }

  async function open(query) {
    current = query;
    const card = document.getElementById("drilldown");
    const body = document.getElementById("drill-body");
    card.hidden = false;
    let features, title, modelId, version;
    try {
      if (query.alert_id) {
        const view = await getJSON("api/drilldown", query);
        const alert = view.alert;
        [modelId, version] = [alert.model_id, alert.model_version];
        title = `${alert.status} ${alert.kind} · ${modelId} ${version}`;
        features = view.features;
        body.replaceChildren(el("p", { class: "drill-explanation" }, alert.explanation));
        if (view.note) body.append(el("p", { class: "drill-note" }, view.note));
      } else {
        const view = await getJSON("api/drilldown", query);
        [modelId, version] = [view.model_id, view.model_version];
        title = `${view.feature} · ${modelId} ${version}`;
        features = [view];
        body.replaceChildren();
      }
    } catch (error) {
      body.replaceChildren(el("p", { class: "drill-note" }, String(error.message || error)));
      return;
    }
    document.getElementById("drill-title").textContent = "Drill-down: " + title;
    for (const view of features) body.append(featureBlock(view));
    card.dataset.loaded = String(Date.now());
    const records = await getJSON("api/audit", { model_id: modelId, model_version: version });
    auditRows(document.querySelector("#drill-audit tbody"), records, false);
    card.scrollIntoView({ block: "start" });
  }

  async function refreshAudit() {
    try {
      const records = await getJSON("api/audit", { limit: 50 });
      auditRows(document.querySelector("#audit-table tbody"), records, true);
      document.getElementById("audit-empty").hidden = records.length > 0;
    } catch (error) {
      // The connection pill reports a lost live view; the next refresh tries again.
    }
  }

  document.addEventListener("click", (event) => {
    const target = event.target.closest("[data-alert-id], [data-drill-feature], " +
                                        ".audit-table tr[data-model]");
    if (!target) return;
    if (target.dataset.drillFeature) {
      const [modelId, version] = target.dataset.drillModel.split("|");
      open({ model_id: modelId, model_version: version, feature: target.dataset.drillFeature });
    } else if (target.dataset.alertId) {
      open({ alert_id: target.dataset.alertId });
    } else if (target.dataset.kind === "alert") {
      open({ alert_id: target.dataset.auditId });
    }
  });
  document.getElementById("drill-close").addEventListener("click", () => {
    current = null;
    document.getElementById("drilldown").hidden = true;
  });

  refreshAudit();
  setInterval(refreshAudit, 3000);
  return { open, refreshAudit, current: () => current };
})();
