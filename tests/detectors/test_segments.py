"""Drift monitors per segment value (detectors.segments): routing, budget, cap, state."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from detectors.batch import CategoricalColumn, ColumnBatch, NumericColumn
from detectors.config import MonitorConfig
from detectors.errors import ConfigurationError, StateError
from detectors.monitor import DATA_DRIFT, ModelMonitor, WindowReport
from detectors.segments import SEGMENT_KINDS, SegmentMonitors

SEGMENTS = 20
CONFIG = MonitorConfig(reference_size=1000, window_size=1000)
CHANGE = 30_000


def stream(seed: int, events: int, shifted: int | None = 3, shift: float = 1.0,
           ) -> tuple[ColumnBatch, dict[str, np.ndarray]]:
    """``events`` of a 20-region model; region ``shifted`` moves by ``shift`` sd after CHANGE."""
    rng = np.random.default_rng(seed)
    region = rng.integers(0, SEGMENTS, events)
    x = rng.normal(0.0, 1.0, events)
    y = rng.normal(5.0, 2.0, events)
    if shifted is not None:
        x[(region == shifted) & (np.arange(events) >= CHANGE)] += shift
    missing = np.zeros(events, dtype=np.bool_)
    colour = np.array(["red", "green", "blue"], dtype=object)[rng.integers(0, 3, events)]
    batch = ColumnBatch(np.arange(events, dtype=np.float64), {
        "x": NumericColumn(x, missing), "y": NumericColumn(y, missing.copy()),
        "colour": CategoricalColumn(colour.tolist())})
    rows = {f"region=r{r}": np.flatnonzero(region == r) for r in range(SEGMENTS)}
    return batch, rows


SCHEMA = {"x": "numeric", "y": "numeric", "colour": "categorical"}


def feed(segments: SegmentMonitors, batch: ColumnBatch, rows: dict[str, np.ndarray],
         start: int, stop: int, step: int = 1000) -> list[WindowReport]:
    """Feed events ``start:stop`` in batches of ``step``, as the engine would."""
    reports: list[WindowReport] = []
    for first in range(start, stop, step):
        last = min(first + step, stop)
        part = batch.slice(first, last)
        part_rows = {label: r[(r >= first) & (r < last)] - first for label, r in rows.items()}
        reports += segments.update_many(part, {k: v for k, v in part_rows.items() if len(v)})
    return reports


def test_the_split_keeps_the_version_s_total_budget() -> None:
    config = MonitorConfig()
    whole, each = config.split_budget(SEGMENTS)
    # Every event fed to the whole version and to all 20 segments: still one budget.
    assert math.isclose(whole.alpha + SEGMENTS * each.alpha, config.alpha)
    assert math.isclose(1 / whole.false_alarm_events + SEGMENTS / each.false_alarm_events,
                        1 / config.false_alarm_events)
    assert math.isclose(whole.sequential_rate + SEGMENTS * each.sequential_rate,
                        config.sequential_rate)
    assert each.window_size == config.window_size
    with pytest.raises(ConfigurationError, match="segments"):
        config.split_budget(0)


def test_a_shift_in_one_segment_fires_there_while_the_whole_version_stays_quiet() -> None:
    batch, rows = stream(seed=1, events=60_000)
    whole_config, each = CONFIG.split_budget(SEGMENTS)
    whole = ModelMonitor(SCHEMA, {}, whole_config)
    segments = SegmentMonitors(SCHEMA, {}, each, max_segments=SEGMENTS)
    reports = feed(segments, batch, rows, 0, 60_000)
    whole_reports = [r for first in range(0, 60_000, 1000)
                     for r in whole.update_many(batch.slice(first, first + 1000))]
    assert not [f for r in whole_reports for f in r.drifted if f.kind == DATA_DRIFT]
    drifted = [(r, f) for r in reports for f in r.drifted]
    assert {(r.segment, f.feature) for r, f in drifted} == {("region=r3", "x")}
    first, finding = drifted[0]
    assert first.end_ts >= CHANGE
    assert finding.segment == "region=r3" and finding.kind == DATA_DRIFT
    assert finding.result.explanation.startswith("segment region=r3: ")
    # Segments report drift only: data quality is the whole version's.
    assert {f.kind for r in reports for f in r.findings} <= set(SEGMENT_KINDS)
    assert all(f.segment == r.segment for r in reports for f in r.findings)
    assert len(segments) == SEGMENTS and segments.take_overflow() == 0


def test_segment_values_past_the_cap_are_counted_not_monitored() -> None:
    batch, rows = stream(seed=2, events=3000, shifted=None)
    segments = SegmentMonitors(SCHEMA, {}, CONFIG, max_segments=3)
    feed(segments, batch, rows, 0, 3000)
    assert segments.segments == ["region=r0", "region=r1", "region=r2"]
    monitored = sum(len(rows[label]) for label in segments.segments)
    assert segments.take_overflow() == 3000 - monitored
    assert segments.take_overflow() == 0


def test_state_round_trip_resumes_as_if_uninterrupted() -> None:
    batch, rows = stream(seed=3, events=50_000)
    _, each = CONFIG.split_budget(SEGMENTS)

    def run(restart_at: int | None) -> list[tuple[str | None, int, bool, int, list[str]]]:
        segments = SegmentMonitors(SCHEMA, {}, each, max_segments=SEGMENTS)
        reports = []
        for start, stop in ((0, restart_at or 50_000), (restart_at or 50_000, 50_000)):
            reports += feed(segments, batch, rows, start, stop, step=700)
            state = orjson.loads(orjson.dumps(segments.to_state()))
            segments = SegmentMonitors.from_state(state)
        return [(r.segment, r.index, r.partial, r.events, sorted(f.feature for f in r.drifted))
                for r in reports]

    uninterrupted = run(None)
    assert any(drifted for *_, drifted in uninterrupted)
    # The same batches, restored in between: mid-reference for most segments, with events
    # waiting to be fed, and mid-window after the change.
    assert run(700 * 18) == uninterrupted
    assert run(700 * 59) == uninterrupted


def fed_events(segments: SegmentMonitors) -> dict[str, int]:
    return {s: m.events for s in segments.segments if (m := segments.monitor(s)) is not None}


def test_events_wait_until_enough_have_come_for_their_segment() -> None:
    batch, rows = stream(seed=4, events=40_000, shifted=None)
    segments = SegmentMonitors(SCHEMA, {}, CONFIG, max_segments=SEGMENTS, feed_events=500)
    feed(segments, batch, rows, 0, 4000)
    # ~200 events per region so far: every one still waits, none has reached a monitor.
    assert set(fed_events(segments).values()) == {0}
    feed(segments, batch, rows, 4000, 40_000)
    fed = fed_events(segments)
    waiting = {s: len(rows[s]) - fed[s] for s in fed}
    assert all(0 <= count < 500 + 1000 for count in waiting.values())
    assert sum(fed.values()) >= 40_000 - 20 * 1500
    # A rare segment is not held back for long: MAX_WAIT × feed_events events of the version.
    rare = SegmentMonitors(SCHEMA, {}, CONFIG, max_segments=2, feed_events=500)
    feed(rare, batch, {"region=r0": rows["region=r0"][:3]}, 0, 9000)
    monitor = rare.monitor("region=r0")
    assert monitor is not None and monitor.events == 0
    feed(rare, batch, {}, 9000, 11_000)
    assert monitor.events == 3


def test_a_state_of_another_kind_is_refused_by_name() -> None:
    with pytest.raises(StateError, match="segment_monitors"):
        SegmentMonitors.from_state({"type": "model_monitor", "version": 4})
    state = SegmentMonitors(SCHEMA, {}, CONFIG, max_segments=2).to_state()
    del state["monitors"]
    with pytest.raises(StateError, match="monitors"):
        SegmentMonitors.from_state(state)
