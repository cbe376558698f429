"""ModelMonitor: batching independence, checkpoint/resume, missing columns, findings, config."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import orjson
import pytest

from detectors.batch import CategoricalColumn, ColumnBatch, NumericColumn
from detectors.errors import ConfigurationError, StateError
from detectors.monitor import (
    DATA_DRIFT,
    DATA_QUALITY,
    PREDICTION_DRIFT,
    STAGED_EVENTS,
    ModelMonitor,
    MonitorConfig,
    WindowReport,
)

EVENTS = 30_000
SCHEMA = {"x": "numeric", "c": "categorical"}
OUTPUTS = {"prediction": "categorical", "score": "numeric"}
CONFIG = MonitorConfig()  # reference 5000 events, windows of 2000
START = 1_700_000_000.0


def window_of(event: int) -> int:
    return (event - CONFIG.reference_size) // CONFIG.window_size


def planted_stream(seed: int = 0) -> ColumnBatch:
    """x shifts by 1σ at event 16k, category 'new' takes 10% at 22k, score rises at 26k."""
    rng = np.random.default_rng(seed)
    event = np.arange(EVENTS)
    ts = START + np.cumsum(rng.exponential(0.01, EVENTS))
    x = rng.normal(size=EVENTS) + (event >= 16_000)
    c = rng.choice(["a", "b", "c"], EVENTS, p=[0.6, 0.3, 0.1]).astype(object)
    c[(event >= 22_000) & (rng.random(EVENTS) < 0.1)] = "new"
    c[rng.random(EVENTS) < 0.03] = None
    score = rng.beta(2.0, 5.0, EVENTS) + 0.15 * (event >= 26_000)
    prediction = np.where(score > 0.5, "decline", "approve")
    return ColumnBatch(
        ts=ts,
        columns={"x": NumericColumn(x, rng.random(EVENTS) < 0.05),
                 "c": CategoricalColumn(c.tolist())},
        outputs={"prediction": CategoricalColumn(prediction.tolist()),
                 "score": NumericColumn(score, np.zeros(EVENTS, dtype=np.bool_))},
    )


STREAM = planted_stream()


def new_monitor() -> ModelMonitor:
    return ModelMonitor(SCHEMA, OUTPUTS, CONFIG)


def feed(monitor: ModelMonitor, batch: ColumnBatch, size: int, start: int = 0,
         stop: int | None = None) -> list[WindowReport]:
    stop = len(batch) if stop is None else stop
    reports = []
    for first in range(start, stop, size):
        reports += monitor.update_many(batch.slice(first, min(first + size, stop)))
    return reports


def summary(report: WindowReport) -> tuple[Any, ...]:
    drifted = sorted((f.kind, f.feature, f.check) for f in report.drifted)
    return report.index, report.start_ts, report.end_ts, report.events, drifted


def verdicts(report: WindowReport) -> list[dict[str, Any]]:
    """Every finding without its explanation (which quotes float sums, batching-dependent)."""
    out = []
    for finding in report.findings:
        result = finding.result.to_dict()
        del result["explanation"]
        out.append({"kind": finding.kind, "feature": finding.feature, "check": finding.check,
                    **result})
    return out


@pytest.fixture(scope="module")
def one_batch_reports() -> list[WindowReport]:
    return new_monitor().update_many(STREAM)


def closed(reports: list[WindowReport]) -> list[WindowReport]:
    """Only the reports of closed windows (no partial, sequential-alarm reports)."""
    return [r for r in reports if not r.partial]


def test_windows_are_cut_by_event_count(one_batch_reports: list[WindowReport]) -> None:
    windows = closed(one_batch_reports)
    assert [r.index for r in windows] == list(range(12))  # 25k events after reference
    for report in windows:
        first = CONFIG.reference_size + report.index * CONFIG.window_size
        assert report.start_ts == STREAM.ts[first]
        assert report.end_ts == STREAM.ts[first + CONFIG.window_size - 1]
        assert report.events == CONFIG.window_size
        assert report.reference == {"events": 5000.0, "start_ts": STREAM.ts[0],
                                    "end_ts": STREAM.ts[CONFIG.reference_size - 1]}


def test_golden_planted_drifts(one_batch_reports: list[WindowReport]) -> None:
    first: dict[tuple[str, str], int] = {}
    for report in one_batch_reports:
        for finding in report.drifted:
            first.setdefault((finding.kind, finding.feature), report.index)
    assert first == {
        (DATA_DRIFT, "x"): window_of(16_000),
        (DATA_DRIFT, "c"): window_of(22_000),
        (PREDICTION_DRIFT, "score"): window_of(26_000),
        (PREDICTION_DRIFT, "prediction"): window_of(26_000),
        # A 1σ shift also pushes 1.8% of x beyond the reference p99.9 (0.1% before): the
        # out-of-range check sees it in the first window entirely after the shift.
        (DATA_QUALITY, "x"): window_of(16_000) + 1,
    }


def test_sequential_alarms_come_back_at_once_as_partial_reports(
        one_batch_reports: list[WindowReport]) -> None:
    partial = [r for r in one_batch_reports if r.partial]
    assert partial, "the 1σ shift of x and the score shift should alarm inside a window"
    first: dict[str, int] = {}
    for report in partial:
        event = CONFIG.reference_size + report.index * CONFIG.window_size + report.events - 1
        assert STREAM.ts[event] == report.end_ts
        assert report.start_ts == STREAM.ts[CONFIG.reference_size
                                             + report.index * CONFIG.window_size]
        for finding in report.findings:
            assert finding.result.detector.startswith("cusum")
            first.setdefault(finding.feature, event)
    # Within a few hundred events of the change, long before the window closes.
    assert 16_000 <= first["x"] < 16_500
    assert 26_000 <= first["score"] < 26_500
    # At most one partial report per feature and window; the window's full report follows.
    keys = [(r.index, f.feature) for r in partial for f in r.findings]
    assert len(keys) == len(set(keys))
    windows = {r.index: r for r in closed(one_batch_reports)}
    for report in partial:
        if report.index not in windows:
            continue  # the stream ends half-way through its last window
        full = windows[report.index]
        for finding in report.findings:
            assert any(f.feature == finding.feature and f.check == finding.check
                       for f in full.drifted)


def test_findings_name_their_kind_feature_and_check(
        one_batch_reports: list[WindowReport]) -> None:
    expected = {(DATA_DRIFT, "x", "distribution"), (DATA_DRIFT, "c", "distribution"),
                (PREDICTION_DRIFT, "prediction", "distribution"),
                (PREDICTION_DRIFT, "score", "distribution"),
                (DATA_QUALITY, "x", "missing_rate"), (DATA_QUALITY, "c", "missing_rate"),
                (DATA_QUALITY, "x", "out_of_range_rate")}
    expected |= {(DATA_QUALITY, name, "rejected_values") for name in [*SCHEMA, *OUTPUTS]}
    for report in closed(one_batch_reports):
        assert sorted((f.kind, f.feature, f.check) for f in report.findings) == sorted(expected)
    for report in one_batch_reports:
        if report.partial:  # only the alarms, each about a numeric column's distribution
            assert report.findings == report.drifted
            assert {(f.kind, f.feature, f.check) for f in report.findings} <= expected
    last = closed(one_batch_reports)[-1]
    drifted = {(f.kind, f.feature): f.result for f in last.drifted}
    assert "mean" in drifted[DATA_DRIFT, "x"].explanation
    assert "'new'" in drifted[DATA_DRIFT, "c"].explanation


def test_reports_do_not_depend_on_batch_sizes(one_batch_reports: list[WindowReport]) -> None:
    in_777 = feed(new_monitor(), STREAM, 777)
    in_1 = feed(new_monitor(), STREAM, 1)
    expected = [summary(r) for r in one_batch_reports]
    assert [summary(r) for r in in_777] == expected
    assert [summary(r) for r in in_1] == expected
    assert [verdicts(r) for r in in_777] == [verdicts(r) for r in one_batch_reports]
    assert [verdicts(r) for r in in_1] == [verdicts(r) for r in one_batch_reports]


@pytest.mark.parametrize("cut", [50, 3333, 5000, 17_777, 21_000, 29_999])
def test_checkpoint_and_resume_matches_an_uninterrupted_run(cut: int) -> None:
    uninterrupted = new_monitor()
    expected = feed(uninterrupted, STREAM, 777, stop=cut) + feed(uninterrupted, STREAM, 777,
                                                                 start=cut)
    first_life = new_monitor()
    before = feed(first_life, STREAM, 777, stop=cut)
    checkpoint = orjson.dumps(first_life.to_state())
    del first_life  # killed
    second_life = ModelMonitor.from_state(orjson.loads(checkpoint))
    after = feed(second_life, STREAM, 777, start=cut)
    assert before + after == expected
    assert second_life.to_state() == uninterrupted.to_state()
    assert second_life.events == EVENTS


def test_to_state_is_a_snapshot() -> None:
    monitor = new_monitor()
    feed(monitor, STREAM, 1000, stop=12_345)
    state = monitor.to_state()
    frozen = orjson.loads(orjson.dumps(state))
    monitor.update_many(ColumnBatch(ts=np.empty(0), columns={}, rejected={"x": 4}))
    feed(monitor, STREAM, 1000, start=12_345, stop=20_000)
    assert state == frozen


def test_from_state_rejects_foreign_or_broken_state() -> None:
    state = new_monitor().to_state()
    for bad in ({**state, "version": state["version"] + 1}, {**state, "type": "numeric_drift"},
                {}):
        with pytest.raises(StateError, match="expected model_monitor"):
            ModelMonitor.from_state(bad)
    built = new_monitor()
    feed(built, STREAM, 1000, stop=STAGED_EVENTS)
    with_tests = built.to_state()
    for broken in ({**state, "state": {}},
                   {**state, "config": {**state["config"], "window_size": 0}},
                   {**with_tests, "tests": {**with_tests["tests"],
                                            "drift": {"x": {"type": "nope"}}}},
                   {**state, "staged": {"ts": [1.0], "outputs": {}, "columns": {
                       "x": {"values": [1.0, 2.0], "missing": [False, False]}}}},
                   {**state, "staged": {"ts": [1.0]}}):
        with pytest.raises(StateError):
            ModelMonitor.from_state(broken)


def test_tests_are_built_at_the_staged_events_th_event() -> None:
    """Until then the monitor keeps its events (and a checkpoint keeps them too)."""
    monitor = new_monitor()
    feed(monitor, STREAM, 7, stop=STAGED_EVENTS - 1)
    assert monitor.staged and monitor.events == STAGED_EVENTS - 1
    state = orjson.loads(orjson.dumps(monitor.to_state()))
    assert state["tests"] is None and len(state["staged"]["ts"]) == STAGED_EVENTS - 1
    restored = ModelMonitor.from_state(state)
    for m in (monitor, restored):
        feed(m, STREAM, 1, start=STAGED_EVENTS - 1, stop=STAGED_EVENTS)
        assert not m.staged and m.events == STAGED_EVENTS and m.to_state()["staged"] is None
    assert restored.to_state() == monitor.to_state()


def test_a_version_3_state_restores() -> None:
    """States written before staging always hold built tests and no ``staged`` key."""
    monitor = new_monitor()
    feed(monitor, STREAM, 1000, stop=3000)
    state = orjson.loads(orjson.dumps(monitor.to_state()))
    old = {key: value for key, value in state.items() if key != "staged"} | {"version": 3}
    restored = ModelMonitor.from_state(old)
    assert feed(restored, STREAM, 1000, start=3000) == feed(monitor, STREAM, 1000, start=3000)


def test_no_report_until_the_reference_is_complete() -> None:
    monitor = new_monitor()
    assert feed(monitor, STREAM, 1000, stop=CONFIG.reference_size + CONFIG.window_size - 1) == []
    assert monitor.reference_complete
    assert monitor.events == CONFIG.reference_size + CONFIG.window_size - 1
    (report,) = feed(monitor, STREAM, 1, start=monitor.events, stop=monitor.events + 1)
    assert report.index == 0


def without(batch: ColumnBatch, *names: str) -> ColumnBatch:
    return ColumnBatch(ts=batch.ts,
                       columns={n: c for n, c in batch.columns.items() if n not in names},
                       outputs={n: c for n, c in batch.outputs.items() if n not in names},
                       rejected=batch.rejected)


def findings_by_key(report: WindowReport) -> dict[tuple[str, str, str], Any]:
    return {(f.kind, f.feature, f.check): f.result for f in report.findings}


def test_a_column_absent_from_a_batch_counts_as_missing() -> None:
    monitor = new_monitor()
    monitor.update_many(STREAM.slice(0, CONFIG.reference_size))
    window = STREAM.slice(CONFIG.reference_size, CONFIG.reference_size + CONFIG.window_size)
    half = CONFIG.window_size // 2
    reports = monitor.update_many(window.slice(0, half))
    reports += monitor.update_many(without(window.slice(half, CONFIG.window_size), "x", "c"))
    (report,) = reports
    found = findings_by_key(report)
    for name in ("x", "c"):
        missing = found[DATA_QUALITY, name, "missing_rate"]
        assert missing.drift
        assert missing.window_events == CONFIG.window_size
        assert re.search(r"→ 5\d\.\d%", missing.explanation), missing.explanation
        distribution = found[DATA_DRIFT, name, "distribution"]
        assert not distribution.drift
        assert distribution.window_events < half  # only the present, non-missing values


@pytest.mark.parametrize("outputs", [{"prediction": "categorical"}, {"score": "numeric"}])
def test_an_absent_output_is_missing_not_a_value(outputs: dict[str, str]) -> None:
    monitor = ModelMonitor(SCHEMA, outputs, CONFIG)
    monitor.update_many(STREAM.slice(0, CONFIG.reference_size))
    reports = monitor.update_many(
        without(STREAM.slice(CONFIG.reference_size, CONFIG.reference_size + CONFIG.window_size),
                *OUTPUTS))
    (name,) = outputs
    result = findings_by_key(reports[0])[PREDICTION_DRIFT, name, "distribution"]
    assert not result.drift
    assert result.window_events == 0
    assert result.explanation.startswith("not tested")


def test_rejected_values_are_reported_in_the_window_they_fall_in() -> None:
    monitor = new_monitor()
    inside_3 = CONFIG.reference_size + 3 * CONFIG.window_size + 500
    inside_7 = CONFIG.reference_size + 7 * CONFIG.window_size + 1999
    reports = feed(monitor, STREAM, 777, stop=inside_3)
    flagged = STREAM.slice(inside_3, inside_3 + 300)
    reports += monitor.update_many(ColumnBatch(ts=flagged.ts, columns=flagged.columns,
                                               outputs=flagged.outputs,
                                               rejected={"x": 3, "c": 1}))
    reports += feed(monitor, STREAM, 777, start=inside_3 + 300, stop=inside_7)
    # Every event of a message was refused: an empty batch still carries the count.
    reports += monitor.update_many(ColumnBatch(ts=np.empty(0), columns={},
                                               rejected={"score": 2}))
    reports += feed(monitor, STREAM, 777, start=inside_7)
    counts = {}
    for report in reports:
        for f in report.findings:
            if f.check == "rejected_values":
                assert f.kind == DATA_QUALITY
                assert f.result.drift == (f.result.statistic > 0)
                if f.result.drift:
                    counts[report.index, f.feature] = f.result.statistic
    assert counts == {(3, "x"): 3.0, (3, "c"): 1.0, (7, "score"): 2.0}
    rejected = findings_by_key(reports[3])[DATA_QUALITY, "x", "rejected_values"]
    assert rejected.explanation.startswith("3 events")
    assert "'x'" in rejected.explanation


@pytest.mark.parametrize(("key", "value"), [
    ("reference_size", 99), ("reference_size", -1), ("window_size", 0), ("window_size", 99),
    ("alpha", 0.0), ("alpha", 1.0), ("alpha", math.nan), ("min_psi", -0.01),
    ("min_missing_increase", 0.0), ("min_missing_increase", 1.5),
    ("min_new_category_rate", -0.1), ("min_new_category_rate", 1.1),
])
def test_invalid_config_names_the_key_and_value(key: str, value: Any) -> None:
    message = rf"^{key}: expected .*, got {re.escape(repr(value))}$"
    with pytest.raises(ConfigurationError, match=message):
        MonitorConfig(**{key: value})


def test_invalid_schema_or_outputs_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"schema\['x'\].*'text'"):
        ModelMonitor({"x": "text"}, {}, CONFIG)
    with pytest.raises(ConfigurationError, match=r"^outputs: .*'label'"):
        ModelMonitor(SCHEMA, {"label": "numeric"}, CONFIG)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_numeric_columns_refuse_non_finite_values(bad: float) -> None:
    values = np.array([1.0, bad, 3.0])
    with pytest.raises(ConfigurationError, match="values"):
        NumericColumn(values, np.zeros(3, dtype=np.bool_))
    with pytest.raises(ConfigurationError, match="values"):  # even where flagged missing
        NumericColumn(values, np.array([False, True, False]))
    with pytest.raises(ConfigurationError):
        ColumnBatch.from_numeric(ts=[1.0, 2.0, 3.0], x=values.tolist())


def test_columns_must_match_in_length() -> None:
    with pytest.raises(ConfigurationError, match="missing"):
        NumericColumn(np.zeros(3), np.zeros(2, dtype=np.bool_))
    with pytest.raises(ConfigurationError, match=r"columns\['x'\]: expected 3 rows, got 2"):
        ColumnBatch.from_numeric(ts=[1.0, 2.0, 3.0], x=[1.0, 2.0])
    with pytest.raises(ConfigurationError, match=r"columns\['score'\]: expected 2 rows, got 1"):
        ColumnBatch(ts=np.array([1.0, 2.0]), columns={},
                    outputs={"score": NumericColumn(np.zeros(1), np.zeros(1, dtype=np.bool_))})
    with pytest.raises(ConfigurationError, match=r"columns\['c'\]"):
        ColumnBatch(ts=np.array([1.0, 2.0]), columns={"c": CategoricalColumn(["a"])})
