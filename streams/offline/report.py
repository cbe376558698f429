"""The run report: one self-contained HTML page from a run's alerts and its summary.

``driftline replay --report report.html`` writes it at the end of a replay;
``driftline report --alerts alerts.jsonl --summary summary.json --out report.html``
writes the same page later from the files a replay left (``replay --out`` and
``--summary``). The alerts alone make a page too: models, windows and every
alert with its explanation; the histograms and the lines over time need the
summary (:mod:`streams.offline.run_summary`).

The page is one file: the stylesheet (a package asset) is inlined, charts are
inline SVG (:mod:`streams.offline.report_svg`), there is no script and no
URL, so it opens offline and can be mailed or attached to a ticket. It holds
event time only: the same run gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import Any

import orjson

from streams.errors import DriftlineError
from streams.offline import report_svg as svg
from streams.offline.report_svg import utc

MAX_CHARTS_PER_ALERT = 12
MAX_LINES = 6     # features drawn in a drift-over-time chart: the nearest to their thresholds


def read_alerts(path: Path) -> list[dict[str, Any]]:
    """Alert events from a JSON-lines file (what ``replay --out`` or ``tail`` wrote)."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise DriftlineError(f"cannot read the alerts {path}: {exc}") from exc
    alerts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            alert = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DriftlineError(f"{path}:{number}: not a JSON alert event ({exc})") from exc
        if not isinstance(alert, dict) or "alert_id" not in alert:
            raise DriftlineError(f"{path}:{number}: not an alert event (no alert_id)")
        alerts.append(alert)
    return alerts


def render(alerts: list[dict[str, Any]], summary: dict[str, Any] | None,
           title: str = "driftline run report") -> str:
    """The report page of ``alerts`` and the run's ``summary`` (None: alerts only)."""
    models = _models(alerts, summary)
    distributions: dict[str, dict[str, Any]] = (summary or {}).get("distributions", {})
    body = [_overview(alerts, summary, models)]
    body += [_model_section(model, alerts) for model in models]
    body.append('<section id="alerts"><h2>Alerts</h2>')
    if not alerts:
        body.append('<p class="note">No alert: every window stayed within its thresholds.</p>')
    body += [_alert(alert, distributions.get(alert["alert_id"], {}), summary is not None)
             for alert in alerts]
    body.append("</section>")
    template = Template((files("streams.offline") / "assets" / "report.html").read_text())
    css = (files("streams.offline") / "assets" / "report.css").read_text()
    return template.substitute(title=escape(title), css=css, body="\n".join(body))


def write_report(alerts: list[dict[str, Any]], summary: dict[str, Any] | None,
                 out: Path) -> None:
    """Render the page and write it to ``out``."""
    out.write_text(render(alerts, summary), encoding="utf-8")


def _models(alerts: list[dict[str, Any]], summary: dict[str, Any] | None) -> list[dict[str, Any]]:
    if summary is not None:
        return list(summary["models"])
    seen = dict.fromkeys((a["model_id"], a["model_version"]) for a in alerts)
    return [{"model_id": m, "model_version": v} for m, v in seen]


def _overview(alerts: list[dict[str, Any]], summary: dict[str, Any] | None,
              models: list[dict[str, Any]]) -> str:
    firing = [a for a in alerts if a.get("status") == "firing"]
    windows = [w for m in models for w in m.get("windows", [])]
    parts = ['<section id="overview">']
    if summary is not None:
        inputs = summary["inputs"]
        totals = summary["totals"]
        sizes = summary["sizes"]
        parts.append(f'<p class="inputs">predictions <code>{escape(str(inputs["predictions"]))}'
                     f'</code>' + (f', labels <code>{escape(str(inputs["labels"]))}</code>'
                                   if inputs.get("labels") else ", no labels") + "</p>")
        cards = [("events", f"{totals['events']:,}"), ("models", f"{len(models):,}"),
                 ("windows", f"{totals['windows']:,}"), ("firing alerts", f"{len(firing):,}"),
                 ("labels joined", f"{totals['joined']:,}"),
                 ("dead letters", f"{totals['dead_letters']:,}")]
        parts.append('<div class="cards">' + "".join(
            f'<div class="card"><b>{value}</b><span>{name}</span></div>'
            for name, value in cards) + "</div>")
        starts = [m["reference"]["start_ts"] for m in models if m.get("reference")]
        if windows:
            parts.append(f'<p class="note">Event time {utc(min(starts))} to '
                         f'{utc(max(w["end_ts"] for w in windows))}. Each model version\'s '
                         f'first {sizes["reference_size"]:,} events are its reference; then every '
                         f'{sizes["window_size"]:,} events make a window that every test '
                         "compares with it.</p>")
    else:
        parts.append(f'<div class="cards"><div class="card"><b>{len(firing):,}</b>'
                     '<span>firing alerts</span></div></div><p class="note">Made from the alerts '
                     "alone: the reference and window histograms and the lines over time need "
                     "the run summary (<code>driftline replay --summary</code>).</p>")
    parts.append('<table id="models"><thead><tr><th>model</th><th>version</th><th>events</th>'
                 "<th>reference</th><th>windows</th><th>firing alerts</th>"
                 "<th>conditions open at the end</th>"
                 "<th>labels</th></tr></thead><tbody>")
    for model in models:
        own = [a for a in alerts if (a["model_id"], a["model_version"])
               == (model["model_id"], model["model_version"])]
        reference = model.get("reference") or {}
        labels = model.get("labels") or {}
        cells = [escape(model["model_id"]), escape(model["model_version"]),
                 _count(model.get("events")),
                 f'{reference["events"]:,.0f} events, {utc(reference["start_ts"])} to '
                 f'{utc(reference["end_ts"])}' if reference else "–",
                 _count(model.get("windows_closed")),
                 str(sum(a.get("status") == "firing" for a in own)), str(len(_open(own))),
                 f'{labels["joined"]:,} joined ({labels["coverage"]:.0%} coverage)'
                 if labels.get("labels") and labels.get("coverage") is not None else "–"]
        parts.append(f'<tr data-model="{escape(model["model_id"])}|'
                     f'{escape(model["model_version"])}">'
                     + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    parts.append("</tbody></table></section>")
    return "\n".join(parts)


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "–"


def _open(alerts: Iterable[dict[str, Any]]) -> set[str]:
    """Conditions (``dedup_key``) still firing after the last alert."""
    open_keys: set[str] = set()
    for alert in alerts:
        keys = [m["dedup_key"] for m in alert.get("features") or [alert]]
        if alert.get("status") == "firing":
            open_keys.update(keys)
        else:
            open_keys.difference_update(keys)
    return open_keys


def _model_section(model: dict[str, Any], alerts: list[dict[str, Any]]) -> str:
    name = f'{model["model_id"]} {model["model_version"]}'
    own = [a for a in alerts if (a["model_id"], a["model_version"])
           == (model["model_id"], model["model_version"]) and a.get("status") == "firing"]
    markers = [(float(a["ts"]), f'{a["kind"]} {a.get("feature") or ""}: {a["severity"]}')
               for a in own if isinstance(a.get("ts"), int | float)]
    parts = [f'<section class="model" data-model="{escape(model["model_id"])}|'
             f'{escape(model["model_version"])}"><h2>{escape(name)}</h2>']
    windows = model.get("windows")
    if windows is None:
        return parts[0] + "</section>"
    features = sorted({f for w in windows for f in w["scores"]},
                      key=lambda f: -max(w["scores"].get(f, 0.0) for w in windows))
    series = [(f, [(w["end_ts"], w["scores"][f]) for w in windows if f in w["scores"]])
              for f in features[:MAX_LINES]]
    parts.append("<h3>Drift over time</h3><p class=\"note\">Each distribution test's statistic "
                 "over its threshold, per closed window (drift above 1); the "
                 f"{min(len(features), MAX_LINES)} of {len(features)} columns that came nearest"
                 " to drifting. Red lines: firing alerts."
                 + (f' One window in {model["window_stride"]} shown.'
                    if model.get("window_stride", 1) > 1 else "") + "</p>")
    parts.append(svg.lines("drift", series, threshold=1.0, markers=markers,
                           y_label="statistic / threshold"))
    for key, heading in (("performance", "Performance over time (labelled windows)"),
                         ("estimate", "Estimated performance (label-free)")):
        points = model.get(key) or []
        if not points:
            continue
        metric = "accuracy" if any("accuracy" in p["metrics"] for p in points) \
            else next(iter(points[0]["metrics"]))
        line = [(p["end_ts"], p["metrics"][metric]["value"]) for p in points
                if metric in p["metrics"]]
        reference = next((p["metrics"][metric]["reference"] for p in points
                          if metric in p["metrics"]), None)
        parts.append(f"<h3>{heading}</h3>")
        parts.append(svg.lines("performance", [(metric, line)], reference=reference,
                               markers=markers, y_label=metric, from_zero=False))
    if model.get("labels") is None and "performance" in model:
        parts.append('<p class="note">No labels joined: no performance over time.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _alert(alert: dict[str, Any], distributions: dict[str, dict[str, Any]],
           summarised: bool) -> str:
    status, severity = alert.get("status", ""), alert.get("severity", "")
    window = alert.get("window") or {}
    head = " · ".join(escape(str(x)) for x in (
        alert.get("kind"), f'{alert["model_id"]} {alert["model_version"]}',
        alert.get("feature"), alert.get("segment")) if x)
    p_value = alert.get("p_value")
    facts = [f'{escape(str(alert.get("detector")))} {_stat(alert.get("statistic"))} vs '
             f'threshold {_stat(alert.get("threshold"))}'
             + (f", p = {p_value:.2g}" if isinstance(p_value, float) else "")]
    if "start_ts" in window:
        facts.append(f'window {"#" + str(window["index"]) + " " if "index" in window else ""}'
                     f'{utc(window["start_ts"])} to {utc(window["end_ts"])}, '
                     f'{window.get("events", 0):,} events')
    parts = [f'<article class="alert {escape(status)} {escape(severity)}" '
             f'data-alert-id="{escape(alert["alert_id"])}"><header><span class="status">'
             f'{escape(status)}</span><span class="severity">{escape(severity)}</span> '
             f"{head}</header>",
             f'<p class="facts">{" · ".join(facts)}</p>',
             f'<p class="explanation">{escape(str(alert.get("explanation", "")))}</p>']
    members = alert.get("features") or []
    if members:
        parts.append(f"<details><summary>{len(members)} conditions</summary><ul>" + "".join(
            f'<li><b>{escape(str(m.get("feature")))}</b> ({escape(str(m.get("check")))}): '
            f'{escape(str(m.get("explanation", "")))}</li>' for m in members) + "</ul></details>")
    charts = list(distributions.items())[:MAX_CHARTS_PER_ALERT]
    for feature, histograms in charts:
        at = histograms["at"]
        label = f'window #{at["index"]}'
        chart = (svg.histogram(histograms, label) if histograms["type"] == "numeric"
                 else svg.category_shares(histograms, label))
        new = histograms.get("new") or {}
        parts.append(
            f'<figure class="distribution" data-feature="{escape(feature)}">{chart}<figcaption>'
            f'<b>{escape(feature)}</b>: reference ({sum(histograms["reference"]):,.0f} values) '
            f'vs window #{at["index"]} ({sum(histograms["window"]):,.0f} values, '
            f'{utc(at["start_ts"])} to {utc(at["end_ts"])})'
            + (" · new categories: " + ", ".join(f"{escape(k)} ({v:,})" for k, v in new.items())
               if new else "") + "</figcaption></figure>")
    if status == "firing" and not charts and summarised and alert.get("kind") in (
            "data_drift", "prediction_drift") and alert.get("feature") != "(joint)":
        parts.append('<p class="note">No histograms: the input ended before this window '
                     "closed.</p>")
    parts.append("</article>")
    return "\n".join(parts)


def _stat(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "–"


__all__ = ["read_alerts", "render", "write_report"]
