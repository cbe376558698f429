"""cusum_calibration's shortcuts give exactly the floats of the straightforward computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.drift import cusum_calibration


def plain_tilt(increments: np.ndarray) -> float:
    """The tilt's bisection evaluating the cumulant generating function at every point."""
    top = float(increments.max())
    if top <= 0.0:
        return math.inf
    below = increments - top

    def cgf(theta: float) -> float:
        return theta * top + math.log(float(np.add.reduce(np.exp(theta * below))) / below.size)

    high = 1.0
    while cgf(high) < 0.0:
        high *= 2.0
    low = 0.0
    for _ in range(40):
        middle = 0.5 * (low + high)
        if cgf(middle) < 0.0:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


INCREMENTS = {
    "normal": lambda rng: rng.normal(-0.15, 1.0, 5000),
    "small": lambda rng: rng.normal(-0.3, 1.0, 100),
    "chi2": lambda rng: rng.normal(size=3000) ** 2 - 1.2,
    "poisson": lambda rng: rng.poisson(3.0, 2000) / 3.0 - 1.1,
    "steep": lambda rng: rng.normal(-5.0, 0.1, 1000),
    "flat": lambda rng: rng.normal(-1e-4, 1.0, 1000),
    "one_positive": lambda rng: np.r_[rng.uniform(-2.0, -1.0, 999), 1e-3],
    "tiny": lambda rng: rng.normal(-0.2, 1.0, 500) * 1e-6,
    "none_positive": lambda rng: -rng.uniform(0.0, 1.0, 300),
}


@pytest.mark.parametrize("name", sorted(INCREMENTS))
def test_the_tilt_is_the_plain_bisections_to_the_bit(name: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(3):
        increments = INCREMENTS[name](rng)
        assert cusum_calibration._tilt(increments) == plain_tilt(increments)


def plain_threshold(increments: np.ndarray, drift: np.ndarray, block: int, rate: float) -> float:
    """The threshold's bisection on the false-alarm rate written out in full."""
    sd = float(increments.std())
    theta = cusum_calibration._tilt(increments)
    if sd == 0.0 or math.isinf(theta):
        return math.inf
    block_sd = math.sqrt(block) * sd
    base = -0.5 * theta * block_sd
    centre, spread = float(drift.mean()), 1.25 * float(drift.std())
    deltas = base + math.sqrt(block) * (centre + spread * cusum_calibration._NODES) / sd

    def false_alarm_rate(h: float) -> float:
        barrier = h / block_sd + 1.166
        y = -2.0 * deltas * barrier
        near_zero = np.abs(y) < 1e-4
        y_near, y_far = np.where(near_zero, y, 0.0), np.where(near_zero, 1.0, y)
        excess = np.expm1(np.minimum(y_far, 700.0)) - y_far
        rates = np.where(near_zero, 1.0 / (block * barrier * barrier * (1.0 + y_near / 3.0)),
                         2.0 * deltas * deltas / block / excess)
        return float(np.dot(cusum_calibration._WEIGHTS, rates))

    low, high = 0.0, block_sd
    while false_alarm_rate(high) > rate:
        low, high = high, 2.0 * high
        if high > 1e9:
            return math.inf
    for _ in range(40):
        middle = 0.5 * (low + high)
        if false_alarm_rate(middle) > rate:
            low = middle
        else:
            high = middle
    return high


@pytest.mark.parametrize("block", [10, 200])
@pytest.mark.parametrize("rate", [1e-3, 1e-9])
def test_the_threshold_is_the_plain_bisections_to_the_bit(block: int, rate: float) -> None:
    rng = np.random.default_rng(11)
    increments = rng.normal(-0.15, 1.0, 2000)
    sd, theta = float(increments.std()), cusum_calibration._tilt(increments)
    # A drift centred where the deltas cross 0, without and with spread, takes the rate's
    # near-zero branch for all nodes or for some.
    crossing = 0.5 * theta * sd * sd
    drifts = [rng.normal(0.0, 0.02, 64), rng.normal(-0.3, 0.1, 64), np.full(64, crossing),
              crossing + rng.normal(0.0, 1e-7, 64), crossing + rng.normal(0.0, 0.05, 64)]
    for drift in drifts:
        assert cusum_calibration._threshold(increments, drift, block, rate) == plain_threshold(
            increments, drift, block, rate)


def test_features_sharing_the_bootstraps_resamples_calibrate_as_alone() -> None:
    rng = np.random.default_rng(13)
    references = [np.sort(rng.normal(size=1000)), np.sort(rng.poisson(3.0, 1000) * 1.0),
                  np.sort(rng.normal(size=700)), np.sort(rng.exponential(size=1000))]
    shared = cusum_calibration.Resamples()
    for reference in references:
        together = cusum_calibration.calibrate(reference, 1e-7, 200, 0.15, 1.2, shared)
        alone = cusum_calibration.calibrate(reference, 1e-7, 200, 0.15, 1.2)
        assert together is not None and alone is not None
        assert together.thresholds == alone.thresholds and together.centres == alone.centres
        assert together.table.tobytes() == alone.table.tobytes()
