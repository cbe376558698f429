"""The live view's write of a whole step: many windows of a version in one pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.batch import ColumnBatch
from detectors.config import MonitorConfig
from detectors.monitor import ModelMonitor, WindowReport
from streams.settings import Settings
from streams.state.hotview import HotView

pytestmark = pytest.mark.integration


def window_reports(seed: int, stationary: int, shifted: int, shift: float) -> list[WindowReport]:
    """Reports of a one-feature monitor (reference 1,000, windows of 500).

    Its feature's mean moves by ``shift`` sd after ``stationary`` events.
    """
    rng = np.random.default_rng(seed)
    monitor = ModelMonitor({"x": "numeric"}, {}, MonitorConfig(reference_size=1000,
                                                               window_size=500))
    x = np.r_[rng.normal(size=stationary), rng.normal(shift, 1.0, shifted)]
    return monitor.update_many(ColumnBatch.from_numeric(ts=np.arange(float(x.size)), x=x))


def test_one_write_of_many_windows_keeps_each_point_and_the_newest_detail(
        settings: Settings) -> None:
    reports = window_reports(seed=3, stationary=2500, shifted=1000, shift=2.0)
    closed = [r for r in reports if not r.partial]
    assert [r.index for r in closed] == [0, 1, 2, 3, 4]
    drifted = [r.index for r in closed if r.drifted]
    assert drifted == [3, 4]
    hot = HotView(settings.redis_url, settings.group_id)
    other = [("m2", "v1", closed[0], 1500)]
    alerts = [{"alert_id": str(n)} for n in range(3)]
    hot.write([("m1", "v1", r, 1000 + 500 * (r.index + 1)) for r in reports] + other, alerts)

    assert [p["index"] for p in hot.series("m1", "v1")] == [0, 1, 2, 3, 4]   # oldest first
    assert [p["index"] for p in hot.series("m2", "v1")] == [0]
    # The detail hash holds the last window; every drifted window is in the drifted list.
    assert hot.details("m1", "v1")["x"]["window"]["index"] == 4
    assert hot.details("m2", "v1")["x"]["window"]["index"] == 0
    assert [d["window"]["index"] for d in hot.drifted("m1", "v1")] == [4, 3]
    summary = {(m["model_id"], m["model_version"]): m for m in hot.models()}
    assert summary["m1", "v1"]["windows"] == 5 and summary["m1", "v1"]["events"] == 3500
    assert summary["m2", "v1"]["windows"] == 1
    assert [a["alert_id"] for a in hot.alerts()] == ["2", "1", "0"]   # newest first


def test_a_retired_version_leaves_the_live_view_after_that_writes_own_points(
        settings: Settings) -> None:
    closed = [r for r in window_reports(seed=5, stationary=2000, shifted=500, shift=3.0)
              if not r.partial]
    assert closed[-1].drifted
    hot = HotView(settings.redis_url, settings.group_id + "-retired")
    hot.write([("m", "v1", r, 2500) for r in closed] + [("m", "v2", closed[0], 1500)],
              [{"alert_id": "a1", "model_version": "v1"}])
    assert hot.series("m", "v1") and hot.details("m", "v1") and hot.drifted("m", "v1")
    # v1's last windows and its retirement in one write: the retirement wins.
    hot.write([("m", "v1", closed[-1], 3000)], [], retired=[("m", "v1")])
    assert [(m["model_id"], m["model_version"]) for m in hot.models()] == [("m", "v2")]
    assert (hot.series("m", "v1"), hot.details("m", "v1"), hot.drifted("m", "v1")) == (
        [], {}, [])
    assert [p["index"] for p in hot.series("m", "v2")] == [0] and hot.details("m", "v2")
    assert [a["alert_id"] for a in hot.alerts()] == ["a1"]     # alerts stay
    # A retirement alone is a write too.
    hot.write([], [], retired=[("m", "v2")])
    assert hot.models() == [] and hot.series("m", "v2") == []
