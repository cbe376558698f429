"""NumericDrift: golden detection indices, false alarms, detection power, PSI floor."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from detectors.base import CRITICAL, WARNING
from detectors.drift.numeric import NumericDrift
from tests.detectors.helpers import ALPHA, REFERENCE, WINDOW, first_drift, numeric, run

Draw = Callable[[np.random.Generator, int], np.ndarray]

STATIONARY: dict[str, Draw] = {
    "normal": lambda rng, n: rng.normal(size=n),
    "lognormal": lambda rng, n: rng.lognormal(0.0, 1.5, n),
    "poisson": lambda rng, n: rng.poisson(2.0, n).astype(np.float64),
}


def windows_of(stream: np.ndarray, size: int = WINDOW) -> list:
    return [numeric(stream[i:i + size]) for i in range(0, stream.size, size)]


def test_golden_mean_shift() -> None:
    rng = np.random.default_rng(20261123)
    reference = rng.normal(size=REFERENCE)
    stream = rng.normal(size=12 * WINDOW)
    stream[6 * WINDOW + 800:] += 0.5  # 60% of window 6 is shifted
    results = run(NumericDrift(ALPHA), numeric(reference), windows_of(stream))
    assert first_drift(results) == 6
    assert all(r.drift for r in results[6:])


def test_golden_variance_change() -> None:
    rng = np.random.default_rng(20261124)
    reference = rng.normal(size=REFERENCE)
    stream = rng.normal(size=12 * WINDOW)
    stream[4 * WINDOW + 1000:] *= np.sqrt(2.0)  # half of window 4 has twice the variance
    results = run(NumericDrift(ALPHA), numeric(reference), windows_of(stream))
    assert first_drift(results) == 4
    assert all(r.drift for r in results[4:])


@pytest.mark.parametrize("distribution", STATIONARY)
def test_no_false_alarm_on_600_stationary_windows(distribution: str) -> None:
    draw = STATIONARY[distribution]
    rng = np.random.default_rng(sorted(STATIONARY).index(distribution))
    alarms, largest_psi = 0, 0.0
    for _ in range(6):  # six references, so one lucky reference cannot carry the test
        test = NumericDrift(ALPHA)
        results = run(test, numeric(draw(rng, REFERENCE)),
                      (numeric(draw(rng, WINDOW)) for _ in range(100)))
        alarms += sum(r.drift for r in results)
        largest_psi = max(largest_psi, *(r.effect_size for r in results))
        assert all(r.window_events == WINDOW and r.p_value is not None for r in results)
    assert alarms == 0
    assert largest_psi < 0.05


@pytest.mark.parametrize("distribution", ["normal", "poisson"])
def test_false_alarm_rate_without_psi_floor_stays_near_alpha(distribution: str) -> None:
    # Without the PSI floor the significance tests alone decide: 3000 windows at
    # alpha = 2e-3 should raise about 6 alarms; allow three times that.
    draw = STATIONARY[distribution]
    rng = np.random.default_rng(11)
    alpha, alarms = 2e-3, 0
    for _ in range(30):
        results = run(NumericDrift(alpha, min_psi=0.0), numeric(draw(rng, REFERENCE)),
                      (numeric(draw(rng, WINDOW)) for _ in range(100)))
        alarms += sum(r.drift for r in results)
    assert alarms <= 3 * alpha * 3000


@pytest.mark.parametrize("shift", [0.5, 1.0])
def test_mean_shift_is_caught_in_the_first_window(shift: float) -> None:
    rng = np.random.default_rng(int(shift * 10))
    for _ in range(20):
        test = NumericDrift(ALPHA)
        before, after = run(test, numeric(rng.normal(size=REFERENCE)),
                            [numeric(rng.normal(size=WINDOW)),
                             numeric(rng.normal(shift, 1.0, WINDOW))])
        assert not before.drift
        assert after.drift
        assert after.severity == (CRITICAL if after.effect_size >= 0.25 else WARNING)


def test_doubled_variance_is_caught_within_two_windows() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        results = run(NumericDrift(ALPHA), numeric(rng.normal(size=REFERENCE)),
                      [numeric(rng.normal(0.0, np.sqrt(2.0), WINDOW)) for _ in range(2)])
        assert first_drift(results) in (0, 1)


def test_psi_floor_silences_a_significant_but_trivial_shift() -> None:
    rng = np.random.default_rng(3)
    size = 1_000_000
    test = NumericDrift(ALPHA, reference_size=size)
    (result,) = run(test, numeric(rng.normal(size=size)), [numeric(rng.normal(0.02, 1.0, size))])
    assert result.statistic > result.threshold  # a million events make 0.02σ significant…
    assert result.effect_size < test.min_psi  # …but the shift is too small to matter
    assert not result.drift


def test_explanation_reports_the_mean_change() -> None:
    rng = np.random.default_rng(4)
    reference = rng.normal(10.0, 2.0, REFERENCE)
    window = rng.normal(11.0, 2.0, WINDOW)
    (result,) = run(NumericDrift(ALPHA), numeric(reference), [numeric(window)])
    assert result.drift
    match = re.search(r"mean (\S+) → (\S+), sd (\S+) → (\S+);", result.explanation)
    assert match, result.explanation
    ref_mean, win_mean, ref_sd, win_sd = map(float, match.groups())
    assert ref_mean == pytest.approx(reference.mean(), rel=1e-3)
    assert win_mean == pytest.approx(window.mean(), rel=1e-3)
    assert ref_sd == pytest.approx(reference.std(), rel=1e-3)
    assert win_sd == pytest.approx(window.std(), rel=1e-3)
    assert f"PSI {result.effect_size:.3f}" in result.explanation
    assert result.reference["mean"] == pytest.approx(reference.mean())
    assert result.reference["events"] == REFERENCE


def test_explanation_points_at_the_tail_that_moved() -> None:
    rng = np.random.default_rng(5)
    reference = rng.normal(size=REFERENCE)
    (up,) = run(NumericDrift(ALPHA), numeric(reference), [numeric(rng.normal(1.0, 1.0, WINDOW))])
    (down,) = run(NumericDrift(ALPHA), numeric(reference),
                  [numeric(rng.normal(-1.0, 1.0, WINDOW))])
    assert "above the reference p99" in up.explanation
    assert "below the reference p01" in down.explanation


def test_missing_values_are_skipped() -> None:
    rng = np.random.default_rng(6)
    test = NumericDrift(ALPHA)
    # Missing rows carry a filler value far from the data: it must not reach the histogram.
    values = np.where(rng.random(WINDOW) < 0.5, 1e6, rng.normal(size=WINDOW))
    (result,) = run(test, numeric(rng.normal(size=REFERENCE)),
                    [numeric(values, values == 1e6)])
    assert not result.drift
    assert result.window_events == int(np.count_nonzero(values != 1e6))


def test_windows_too_small_are_not_tested() -> None:
    rng = np.random.default_rng(7)
    (result,) = run(NumericDrift(ALPHA), numeric(rng.normal(size=REFERENCE)),
                    [numeric(rng.normal(5.0, 1.0, 49))])
    assert not result.drift
    assert result.p_value is None
    assert result.explanation.startswith("not tested")


def test_reference_keeps_only_its_first_reference_size_values() -> None:
    rng = np.random.default_rng(8)
    test = NumericDrift(ALPHA, reference_size=1000)
    test.update_many(numeric(rng.normal(size=1000)))
    test.update_many(numeric(rng.normal(50.0, 1.0, 1000)))  # beyond capacity: ignored
    test.end_reference()
    test.update_many(numeric(rng.normal(size=WINDOW)))
    result = test.end_window()
    assert result.reference["events"] == 1000
    assert result.reference["max"] < 10
    assert not result.drift


def test_explanation_of_a_drift_quotes_wasserstein_and_jensen_shannon() -> None:
    rng = np.random.default_rng(10)
    reference = rng.normal(10.0, 2.0, REFERENCE)
    (result,) = run(NumericDrift(ALPHA), numeric(reference),
                    [numeric(rng.normal(12.0, 2.0, WINDOW))])
    assert result.drift
    match = re.search(r"Wasserstein (\S+) reference IQR, Jensen–Shannon (\S+)$",
                      result.explanation)
    assert match, result.explanation
    wasserstein, js = map(float, match.groups())
    iqr = result.reference["p75"] - result.reference["p25"]
    assert iqr == pytest.approx(2.0 * 1.349, rel=0.05)
    # Mass beyond the outer edges sits at them, so a 2-unit shift reads a little short.
    assert 0.8 * 2.0 / iqr < wasserstein <= 2.0 / iqr
    assert 0.2 < js < 0.6
