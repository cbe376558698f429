"""MissingRate: golden index, false alarms, one-sidedness, the min_increase floor."""

from __future__ import annotations

import re

import numpy as np
import pytest

from detectors.base import CRITICAL, WARNING
from detectors.batch import CategoricalColumn, NumericColumn
from detectors.quality.missing import MissingRate
from tests.detectors.helpers import ALPHA, REFERENCE, WINDOW, first_drift, numeric, run


def gaps(mask: np.ndarray) -> NumericColumn:
    return numeric(np.zeros(mask.size), mask)


def gaps_as_categories(mask: np.ndarray) -> CategoricalColumn:
    return CategoricalColumn([None if gap else "x" for gap in mask.tolist()])


def test_golden_missing_surge() -> None:
    rng = np.random.default_rng(20261127)
    reference = rng.random(REFERENCE) < 0.02
    rate = np.where(np.arange(12 * WINDOW) >= 5 * WINDOW + 1000, 0.10, 0.02)
    stream = rng.random(rate.size) < rate
    results = run(MissingRate(ALPHA), gaps(reference),
                  [gaps(stream[i:i + WINDOW]) for i in range(0, stream.size, WINDOW)])
    # Window 5 is half surged: significant, but its rise stays under min_increase.
    assert results[5].statistic > results[5].threshold
    assert results[5].effect_size < 0.05
    assert first_drift(results) == 6
    assert all(r.drift for r in results[6:])


@pytest.mark.parametrize("column", [gaps, gaps_as_categories], ids=["numeric", "categorical"])
@pytest.mark.parametrize("rate", [0.0, 0.05, 0.3])
def test_no_false_alarm_on_600_stationary_windows(column, rate: float) -> None:
    rng = np.random.default_rng(int(rate * 100))
    alarms = 0
    for _ in range(6):
        results = run(MissingRate(ALPHA), column(rng.random(REFERENCE) < rate),
                      (column(rng.random(WINDOW) < rate) for _ in range(100)))
        alarms += sum(r.drift for r in results)
        assert all(np.isfinite(r.statistic) for r in results)
    assert alarms == 0


@pytest.mark.parametrize("seed", range(10))
def test_a_ten_point_rise_is_caught_in_one_window(seed: int) -> None:
    rng = np.random.default_rng(seed)
    before, after = run(MissingRate(ALPHA), gaps(rng.random(REFERENCE) < 0.05),
                        [gaps(rng.random(WINDOW) < 0.05), gaps(rng.random(WINDOW) < 0.15)])
    assert not before.drift
    assert after.drift
    assert after.severity == WARNING


def test_a_rise_from_no_gaps_at_all_is_caught() -> None:
    rng = np.random.default_rng(1)
    (result,) = run(MissingRate(ALPHA), gaps(np.zeros(REFERENCE, dtype=bool)),
                    [gaps(rng.random(WINDOW) < 0.3)])
    assert result.drift
    assert result.severity == CRITICAL
    assert np.isfinite(result.statistic)


def test_a_fall_never_alerts() -> None:
    rng = np.random.default_rng(2)
    (result,) = run(MissingRate(ALPHA), gaps(rng.random(REFERENCE) < 0.4),
                    [gaps(np.zeros(WINDOW, dtype=bool))])
    assert not result.drift
    assert result.statistic < 0


def test_min_increase_floor_silences_a_significant_but_small_rise() -> None:
    rng = np.random.default_rng(3)
    size = 1_000_000
    (result,) = run(MissingRate(ALPHA), gaps(rng.random(size) < 0.05),
                    [gaps(rng.random(size) < 0.06)])
    assert result.statistic > result.threshold
    assert result.effect_size == pytest.approx(0.01, abs=2e-3)
    assert not result.drift


def test_explanation_reports_both_rates() -> None:
    reference = np.r_[np.ones(100, dtype=bool), np.zeros(REFERENCE - 100, dtype=bool)]
    window = np.r_[np.ones(500, dtype=bool), np.zeros(WINDOW - 500, dtype=bool)]
    (result,) = run(MissingRate(ALPHA), gaps(reference), [gaps(window)])
    assert result.drift
    assert re.search(r"2\.0% → 25\.0% \(500 of 2000 events\)", result.explanation)
    assert result.reference == {"events": REFERENCE, "missing_rate": 0.02}
    assert result.effect_size == pytest.approx(0.23)
