"""ModelMonitor.close_window: an idle model's window closes early with the events it has."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from detectors.batch import ColumnBatch
from detectors.errors import ConfigurationError
from detectors.monitor import ModelMonitor, MonitorConfig, WindowReport

CONFIG = MonitorConfig(reference_size=1000, window_size=500)
SCHEMA = {"x": "numeric", "y": "numeric"}


def batch(rng: np.random.Generator, n: int, start: float, shift: float = 0.0) -> ColumnBatch:
    return ColumnBatch.from_numeric(ts=start + np.arange(n, dtype=np.float64),
                                    x=rng.normal(shift, 1.0, n), y=rng.normal(size=n))


def fed(rng: np.random.Generator, events: int) -> ModelMonitor:
    monitor = ModelMonitor(SCHEMA, {}, CONFIG)
    monitor.update_many(batch(rng, events, 0.0))
    return monitor


def test_a_short_window_is_tested_on_the_events_it_has() -> None:
    rng = np.random.default_rng(5)
    monitor = fed(rng, 1000)
    monitor.update_many(batch(rng, 300, 1000.0, shift=2.0))
    report = monitor.close_window(min_events=200)
    assert report is not None and not report.partial
    assert (report.index, report.events, report.start_ts, report.end_ts) == (0, 300, 1000, 1299)
    drifted = {(f.feature, f.check) for f in report.drifted}
    assert ("x", "distribution") in drifted and ("y", "distribution") not in drifted
    assert all(f.result.window_events == 300 for f in report.findings
               if f.check == "distribution")


def test_the_next_window_starts_afresh_and_counts_full_size() -> None:
    rng = np.random.default_rng(6)
    monitor = fed(rng, 1000)
    monitor.update_many(batch(rng, 300, 1000.0))
    assert monitor.close_window(min_events=200) is not None
    assert monitor.window_events == 0
    reports = [r for r in monitor.update_many(batch(rng, 1000, 5000.0)) if not r.partial]
    assert [(r.index, r.events, r.start_ts) for r in reports] == [(1, 500, 5000), (2, 500, 5500)]


def test_a_window_below_the_minimum_is_dropped_untested() -> None:
    rng = np.random.default_rng(7)
    monitor = fed(rng, 1000)
    monitor.update_many(batch(rng, 120, 1000.0))
    assert monitor.window_events == 120
    assert monitor.close_window(min_events=200) is None
    assert monitor.window_events == 0 and monitor.events == 1120
    # The dropped window's index is not reused, and its events do not join the next window.
    reports = [r for r in monitor.update_many(batch(rng, 500, 2000.0)) if not r.partial]
    assert [(r.index, r.events, r.start_ts) for r in reports] == [(1, 500, 2000)]
    assert {f.result.window_events for f in reports[0].findings if f.check == "distribution"} \
        == {500}


def test_nothing_closes_during_the_reference_or_without_events() -> None:
    rng = np.random.default_rng(8)
    monitor = fed(rng, 600)            # reference half collected
    assert monitor.window_events == 0
    assert monitor.close_window(min_events=1) is None
    assert monitor.events == 600 and not monitor.reference_complete
    staged = ModelMonitor(SCHEMA, {}, CONFIG)
    staged.update_many(batch(rng, 10, 0.0))
    assert staged.close_window(min_events=1) is None and staged.events == 10


def test_state_round_trip_keeps_the_open_window() -> None:
    rng = np.random.default_rng(9)
    monitor = fed(rng, 1300)
    copy = ModelMonitor.from_state(orjson.loads(orjson.dumps(monitor.to_state())))
    assert copy.window_events == 300
    first, second = monitor.close_window(200), copy.close_window(200)
    assert isinstance(first, WindowReport) and isinstance(second, WindowReport)
    assert [(f.feature, f.check, f.result.statistic) for f in first.findings] == \
        [(f.feature, f.check, f.result.statistic) for f in second.findings]


def test_the_minimum_is_validated() -> None:
    monitor = fed(np.random.default_rng(10), 1100)
    with pytest.raises(ConfigurationError, match="min_events: expected an integer >= 1"):
        monitor.close_window(min_events=0)


def test_short_stationary_windows_raise_no_false_alarm() -> None:
    """200-event windows (the default minimum) of a stationary stream: no drift reported."""
    rng = np.random.default_rng(11)
    monitor = ModelMonitor(SCHEMA, {}, MonitorConfig(reference_size=5000, window_size=2000))
    monitor.update_many(batch(rng, 5000, 0.0))
    drifted = 0
    for window in range(150):
        monitor.update_many(batch(rng, 200, 10_000.0 + 1000 * window))
        report = monitor.close_window(min_events=200)
        assert report is not None and report.events == 200
        drifted += len(report.drifted)
    assert drifted == 0
