"""OutOfRangeRate: golden index, false alarms, calibration, one-sidedness, the effect floor."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from detectors.base import CRITICAL, WARNING
from detectors.quality.range import OutOfRangeRate, _beta_binomial_survival
from tests.detectors.helpers import ALPHA, REFERENCE, WINDOW, first_drift, numeric, run

Draw = Callable[[np.random.Generator, int], np.ndarray]

STATIONARY: dict[str, Draw] = {
    "normal": lambda rng, n: rng.normal(size=n),
    "lognormal": lambda rng, n: rng.lognormal(0.0, 1.5, n),
    "poisson": lambda rng, n: rng.poisson(2.0, n).astype(np.float64),
}


def windows_of(stream: np.ndarray, size: int = WINDOW) -> list:
    return [numeric(stream[i:i + size]) for i in range(0, stream.size, size)]


def test_golden_unit_change_in_a_few_percent_of_events() -> None:
    rng = np.random.default_rng(20261211)
    reference = rng.lognormal(3.0, 0.5, REFERENCE)
    stream = rng.lognormal(3.0, 0.5, 10 * WINDOW)
    # From window 5 on, one service in 40 sends the amount in cents.
    changed = (np.arange(stream.size) >= 5 * WINDOW) & (rng.random(stream.size) < 0.025)
    stream[changed] *= 100.0
    results = run(OutOfRangeRate(ALPHA), numeric(reference), windows_of(stream))
    assert first_drift(results) == 5
    assert all(r.drift for r in results[5:])
    assert results[5].severity == WARNING
    assert results[5].effect_size == pytest.approx(0.025, abs=0.01)


@pytest.mark.parametrize("tail", [0.001, 0.0], ids=["p0.1-p99.9", "min-max"])
@pytest.mark.parametrize("distribution", STATIONARY)
def test_no_false_alarm_on_600_stationary_windows(distribution: str, tail: float) -> None:
    draw = STATIONARY[distribution]
    rng = np.random.default_rng(sorted(STATIONARY).index(distribution))
    alarms = 0
    for _ in range(6):
        results = run(OutOfRangeRate(ALPHA, tail=tail), numeric(draw(rng, REFERENCE)),
                      (numeric(draw(rng, WINDOW)) for _ in range(100)))
        alarms += sum(r.drift for r in results)
        assert all(r.window_events == WINDOW and r.p_value is not None for r in results)
    assert alarms == 0


def test_false_alarm_rate_matches_alpha() -> None:
    """With the effect floor out of the way, at most about alpha of stationary windows alarm."""
    rng = np.random.default_rng(5)
    alarms = windows = 0
    for _ in range(40):
        results = run(OutOfRangeRate(0.01, min_increase=1e-9), numeric(rng.normal(size=REFERENCE)),
                      (numeric(rng.normal(size=WINDOW)) for _ in range(25)))
        alarms += sum(r.drift for r in results)
        windows += len(results)
    assert alarms / windows <= 0.02


@pytest.mark.parametrize("seed", range(5))
def test_a_five_point_rise_is_caught_in_one_window(seed: int) -> None:
    rng = np.random.default_rng(seed)
    window = rng.normal(size=WINDOW)
    window[:100] = rng.normal(-20.0, 1.0, 100)
    before, after = run(OutOfRangeRate(ALPHA), numeric(rng.normal(size=REFERENCE)),
                        [numeric(rng.normal(size=WINDOW)), numeric(window)])
    assert not before.drift
    assert after.drift


def test_a_fall_never_alerts() -> None:
    rng = np.random.default_rng(6)
    (result,) = run(OutOfRangeRate(ALPHA), numeric(rng.normal(size=REFERENCE)),
                    [numeric(np.zeros(WINDOW))])
    assert not result.drift
    assert result.statistic == 0.0
    assert result.p_value == 1.0


def test_min_increase_floor_silences_a_significant_but_small_rise() -> None:
    rng = np.random.default_rng(7)
    size = 200_000
    window = rng.normal(size=size)
    window[:1000] = 50.0  # 0.5% beyond the range: certain, but too small to matter
    (result,) = run(OutOfRangeRate(ALPHA, reference_size=size), numeric(rng.normal(size=size)),
                    [numeric(window)])
    assert result.statistic > result.threshold
    assert result.p_value is not None and result.p_value < 1e-100
    assert result.effect_size < 0.01
    assert not result.drift


def test_missing_values_are_not_counted() -> None:
    rng = np.random.default_rng(8)
    window = rng.normal(size=WINDOW)
    gaps = np.zeros(WINDOW, dtype=bool)
    gaps[:500] = True
    window[:500] = 1e9  # placeholders behind the mask never count as out of range
    (result,) = run(OutOfRangeRate(ALPHA), numeric(rng.normal(size=REFERENCE)),
                    [numeric(window, gaps)])
    assert result.window_events == WINDOW - 500
    assert not result.drift


def test_explanation_reports_range_shares_and_window_range() -> None:
    reference = np.linspace(0.0, 100.0, REFERENCE)
    window = np.r_[np.full(150, 250.0), np.full(50, -10.0), np.full(WINDOW - 200, 50.0)]
    (result,) = run(OutOfRangeRate(ALPHA, tail=0.0), numeric(reference), [numeric(window)])
    assert result.drift
    assert result.severity == CRITICAL
    assert result.explanation == (
        "10.0% of the window outside the reference range [0, 100] (reference 0.0%): "
        "7.5% above, 2.5% below; window range [-10, 250]")
    assert result.reference == {"events": REFERENCE, "low": 0.0, "high": 100.0,
                                "out_of_range_rate": 0.0}
    assert result.effect_size == pytest.approx(0.1)
    assert result.detector == "out_of_range_rate"


def test_too_small_a_reference_is_not_tested() -> None:
    (result,) = run(OutOfRangeRate(ALPHA), numeric(np.arange(10.0)), [numeric(np.arange(1e3))])
    assert not result.drift
    assert result.window_events == 1000
    assert result.explanation == "not tested: 10 reference values (need 50)"


def test_beta_binomial_tail_matches_direct_summation() -> None:
    from math import comb, exp, lgamma

    def log_beta(a: float, b: float) -> float:
        return lgamma(a) + lgamma(b) - lgamma(a + b)

    n, a, b = 300, 4.0, 997.0
    pmf = [comb(n, x) * exp(log_beta(x + a, n - x + b) - log_beta(a, b)) for x in range(n + 1)]
    direct = np.cumsum(pmf[::-1])[::-1]
    computed = _beta_binomial_survival(n, a, b)
    for x in (1, 5, 10, 20, 30):
        assert computed[x] == pytest.approx(direct[x], rel=1e-9)
