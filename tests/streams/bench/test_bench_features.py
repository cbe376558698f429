"""The feature-drift bench runs end to end on a tiny configuration (no timing assertions)."""

from __future__ import annotations

import io

import numpy as np

from detectors.batch import NumericColumn
from streams.bench.features import (
    DRIFT_AT,
    SCENARIOS,
    SCHEMA,
    batches,
    drifted_features,
    run_feature_bench,
)


def test_tiny_bench_prints_a_row_per_scenario_and_returns_them() -> None:
    out = io.StringIO()
    rows = run_feature_bench(out=out, stationary_events=12_000, seeds=1, after=6_000)
    text = out.getvalue()
    by_name = {row["scenario"]: row for row in rows}
    assert [s.name for s in SCENARIOS] + ["stationary", "update cost"] == list(by_name)
    for scenario in SCENARIOS:
        assert scenario.name in text
        row = by_name[scenario.name]
        assert row["runs"] == 1
        if scenario.required:
            assert row["detected"] == 1, row
            assert 0 <= row["max_delay"] <= 6_000
    assert by_name["stationary"]["events"] == 12_000 - 5_000
    cost = by_name["update cost"]
    assert cost["runs"] == 1 and cost["events"] == 12_000 - 5_000
    assert 0 < cost["us_per_event_min"] <= cost["us_per_event"]
    assert cost["cpu_us_per_event"] > 0 and cost["sort_us_per_event"] > 0
    assert cost["sorts_per_update"] > 0
    # 7 post-reference batches, windows of 2,000: 3 closed a window, 4 only fed.
    assert 0 < cost["feeding_us_per_event_min"] <= cost["feeding_us_per_event"]
    assert cost["window_size"] == 2_000 and "evaluating each closed 2,000-event window" in text
    assert "µs/event" in text and "np.sort" in text


def test_streams_have_twenty_features_and_plant_only_their_change() -> None:
    assert len(SCHEMA) == 20
    mean_shift = SCENARIOS[1]
    (target,) = drifted_features(mean_shift, seed=0)
    stationary = list(batches(0, DRIFT_AT + 2_000, None))
    shifted = list(batches(0, DRIFT_AT + 2_000, mean_shift))
    assert len(stationary[0]) == 1000
    before, after = stationary[-1].columns, shifted[-1].columns
    for name in SCHEMA:
        if name != target:
            assert np.array_equal(np.asarray(before[name].values, dtype=object),
                                  np.asarray(after[name].values, dtype=object))
    moved = after[target]
    assert isinstance(moved, NumericColumn)
    assert np.mean(moved.values) > np.mean(before[target].values)
