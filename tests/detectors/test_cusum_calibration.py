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
