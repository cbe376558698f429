"""The run summary and the report page, without a browser (test_report_browser opens one)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from streams.errors import DriftlineError
from streams.offline.replay import replay
from streams.offline.report import read_alerts, render, write_report
from streams.offline.run_summary import MAX_WINDOWS, RunSummary, read_summary, write_summary
from streams.settings import load_settings


def write_events(path: Path) -> None:
    """Reference and two quiet windows, then a new category and a shifted number."""
    rng = np.random.default_rng(4)
    lines = []
    for i in range(13_000):
        late = i >= 9000
        channel = "kiosk" if late and i % 2 else ("web", "app", "app")[i % 3]
        lines.append(orjson.dumps({
            "model_id": "m", "model_version": "v1", "event_id": str(i), "ts": 1e9 + i,
            "features": {"amount": float(rng.normal(3.0 if late else 0.0)), "channel": channel},
            "prediction": int(i % 4 == 0)}))
    path.write_bytes(b"\n".join(lines) + b"\n")


def run(tmp_path: Path, name: str) -> tuple[list[dict[str, Any]], dict[str, Any], bytes, str]:
    predictions, alerts = tmp_path / "p.jsonl", tmp_path / f"{name}.jsonl"
    if not predictions.exists():
        write_events(predictions)
    settings = load_settings(environ={})
    summary = RunSummary({"predictions": "p.jsonl", "labels": None}, settings)
    stats = replay(settings, predictions, alerts, progress=None, summary=summary)
    written = summary.to_dict(stats.counts())
    write_summary(written, tmp_path / f"{name}.json")
    write_report(read_alerts(alerts), written, tmp_path / f"{name}.html")
    return (read_alerts(alerts), read_summary(tmp_path / f"{name}.json"),
            (tmp_path / f"{name}.json").read_bytes(), (tmp_path / f"{name}.html").read_text())


def test_summary_keeps_the_histograms_of_each_alerted_feature_and_the_page_draws_them(
        tmp_path: Path) -> None:
    alerts, summary, summary_bytes, html = run(tmp_path, "first")
    _, _, again_bytes, again_html = run(tmp_path, "second")
    assert (summary_bytes, html) == (again_bytes, again_html), "a run's summary and page vary"

    firing = {a["feature"]: a for a in alerts if a["status"] == "firing"
              and a["kind"] == "data_drift"}
    assert {"amount", "channel"} <= set(firing), sorted(firing)
    channel = summary["distributions"][firing["channel"]["alert_id"]]["channel"]
    assert channel["type"] == "categorical" and channel["new"] == {"kiosk": 1000}
    assert channel["categories"][-1] == "(other)" and channel["window"][-1] == 1000
    amount = summary["distributions"][firing["amount"]["alert_id"]]["amount"]
    assert amount["type"] == "numeric" and sum(amount["window"]) == 2000
    (model,) = summary["models"]
    assert (model["events"], model["windows_closed"], len(model["windows"])) == (13_000, 4, 4)
    assert summary["totals"]["events"] == 13_000 and "seconds" not in summary["totals"]

    for alert in firing.values():
        assert f'data-alert-id="{alert["alert_id"]}"' in html
    assert html.count('data-chart="distribution" data-type="categorical"') == 1
    assert 'data-chart="distribution" data-type="numeric"' in html
    assert "new categories: kiosk (1,000)" in html


def test_the_alerts_alone_make_a_page_that_says_what_is_missing(tmp_path: Path) -> None:
    alerts, _, _, _ = run(tmp_path, "run")
    html = render(alerts, None)
    assert alerts and all(escape(a["explanation"]) in html for a in alerts)
    assert "need the run summary" in html and "data-chart" not in html


def test_windows_are_thinned_evenly_to_a_bound() -> None:
    summary = RunSummary({"predictions": "-", "labels": None}, load_settings(environ={}))
    series = summary._version("m", "v")
    for index in range(5 * MAX_WINDOWS):
        series.windows.add(index, {"index": index})
    indices = [p["index"] for p in series.windows.points]
    assert MAX_WINDOWS // 2 < len(indices) <= MAX_WINDOWS and indices[0] == 0
    assert len({b - a for a, b in zip(indices, indices[1:], strict=False)}) == 1


def test_a_file_that_is_not_a_summary_is_refused_by_name(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_bytes(b'{"summary_version": 99}')
    with pytest.raises(DriftlineError, match="not a driftline run summary"):
        read_summary(other)
