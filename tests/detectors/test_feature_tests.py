"""Tests over several features at once: each feature's verdict is its own test's, exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from detectors.base import FeatureTest
from detectors.batch import ColumnBatch, NumericBlock, NumericColumn
from detectors.drift.cusum import NumericCusum
from detectors.drift.numeric import NumericDrift
from detectors.errors import ConfigurationError
from detectors.quality.missing import MissingRate
from detectors.quality.range import OutOfRangeRate

NAMES = ("normal", "counts", "heavy")
KINDS: dict[str, tuple[type[FeatureTest[Any]], dict[str, Any]]] = {
    "numeric_drift": (NumericDrift, {"alpha": 1e-6, "reference_size": 2000}),
    "numeric_cusum": (NumericCusum, {"alpha": 1e-8, "reference_size": 2000, "block_size": 100}),
    "missing_rate": (MissingRate, {"alpha": 1e-6}),
    "out_of_range_rate": (OutOfRangeRate, {"alpha": 1e-6, "reference_size": 2000}),
}


def stream(seed: int, n: int = 20_000) -> NumericBlock:
    """Three features with their own gaps; from event 12,000 the counts shift and gap more,
    and a few heavy-tailed values come in another unit."""
    rng = np.random.default_rng(seed)
    changed = np.arange(n) >= 12_000
    values = np.stack([rng.normal(size=n),
                       rng.poisson(np.where(changed, 4.0, 3.0)).astype(np.float64),
                       rng.standard_t(2.0, n)])
    values[2, changed & (rng.random(n) < 0.03)] *= 100.0
    missing = rng.random((3, n)) < np.array([[0.0], [0.05], [0.2]])
    missing[1] |= changed & (rng.random(n) < 0.2)
    values[missing] = 0.0
    return NumericBlock(NAMES, values, missing)


def column(block: NumericBlock, row: int, start: int, stop: int) -> NumericColumn:
    return NumericColumn(block.values[row, start:stop], block.missing[row, start:stop])


@pytest.mark.parametrize("kind", KINDS)
def test_each_feature_gets_exactly_the_verdicts_and_alarms_of_its_own_test(kind: str) -> None:
    cls, kwargs = KINDS[kind]
    data = stream(1)
    together = cls(**kwargs, columns=list(NAMES))
    alone = [cls(**kwargs) for _ in NAMES]
    cuts = [0, 777, 2000, 2001, 3500, *range(4000, 20_001, 1000)]
    closes = {2000} | set(range(4000, 20_001, 2000))
    windows = drifts = 0
    for start, stop in zip(cuts, cuts[1:], strict=False):
        together.update_many(data.slice(start, stop))
        alarms = []
        for row, test in enumerate(alone):
            test.update_many(column(data, row, start, stop))
            alarms += [(alarm.row, row, alarm.result)
                       for alarm in getattr(test, "last_alarms", [])]
        if kind == "numeric_cusum":
            assert [tuple(alarm) for alarm in together.last_alarms] == sorted(
                alarms, key=lambda alarm: alarm[:2])
        if stop == 2000:
            together.end_reference()
            for test in alone:
                test.end_reference()
        elif stop in closes:
            lead = together.end_window()
            expected = [test.end_window() for test in alone]
            assert together.window_results == expected
            assert together.drift_detected == any(result.drift for result in expected)
            assert lead.explanation.split(": ", 1)[1] in [r.explanation for r in expected]
            windows += 1
            drifts += together.drift_detected
    assert windows == 9
    assert drifts >= 3  # the counts' change shows in the later windows
    assert together.to_state()["state"].keys() == alone[0].to_state()["state"].keys()


def test_the_lead_verdict_is_a_drifting_feature_named_in_the_explanation() -> None:
    data = stream(2)
    test = NumericDrift(1e-6, 2000, columns=list(NAMES))
    test.update_many(data.slice(0, 2000))
    test.end_reference()
    test.update_many(data.slice(14_000, 16_000))
    lead = test.end_window()
    assert lead.drift
    assert lead.explanation.startswith("counts: mean ")
    assert [result.drift for result in test.window_results] == [False, True, False]


def test_a_wider_block_is_narrowed_to_the_test_features() -> None:
    data = stream(3)
    wider = NumericBlock(("extra", *reversed(NAMES)),
                         np.vstack([np.ones((1, data.events)), data.values[::-1]]),
                         np.vstack([np.zeros((1, data.events), bool), data.missing[::-1]]))
    exact, narrowed = (OutOfRangeRate(1e-6, 2000, columns=list(NAMES)) for _ in range(2))
    for test, block in ((exact, data), (narrowed, wider)):
        test.update_many(block.slice(0, 2000))
        test.end_reference()
        test.update_many(block.slice(12_000, 14_000))
    assert narrowed.end_window() == exact.end_window()
    assert narrowed.window_results == exact.window_results


def test_a_segment_must_fit_the_features() -> None:
    data = stream(4)
    with pytest.raises(ConfigurationError, match="got one NumericColumn"):
        NumericCusum(1e-8, columns=list(NAMES)).update_many(column(data, 0, 0, 10))
    with pytest.raises(ConfigurationError, match="expected a block of one feature"):
        NumericDrift(1e-6).update_many(data)
    with pytest.raises(ConfigurationError, match=r"block: expected features"):
        MissingRate(1e-6, columns=["normal", "absent"]).update_many(data)


def test_a_block_stacks_columns_and_sorts_each_feature_once() -> None:
    batch = ColumnBatch.from_numeric(ts=[1.0, 2.0, 3.0, 4.0], x=[3.0, 1.0, 2.0, 0.5])
    x = batch.columns["x"]
    assert isinstance(x, NumericColumn)
    batch.columns["x"] = NumericColumn(x.values, np.array([False, False, True, False]))
    block = NumericBlock.from_columns(batch.columns, ["x", "absent"], len(batch))
    assert block.missing.tolist() == [[False, False, True, False], [True] * 4]
    order, ordered, present = block.ranked
    assert order[0].tolist() == [3, 1, 0, 2]  # the missing value last
    assert ordered[0].tolist() == [0.5, 1.0, 3.0, np.inf]
    assert present.tolist() == [3, 0]
    assert block.ranked is block.ranked
    assert block.select(["absent", "x"]).ranked.present.tolist() == [0, 3]
    with pytest.raises(ConfigurationError, match="finite"):
        NumericBlock(("x",), np.array([[np.nan]]), np.array([[True]]))
