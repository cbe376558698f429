"""Calibration of :class:`~detectors.drift.cusum.NumericCusum` from one feature's reference.

The reference's empirical CDF (mid-ranks at fine quantiles, linear in
between) turns values into normal scores, standardized on the reference. Each
of the four CUSUM sides gets a reference value (``min_shift`` sd, or a
variance ratio of ``min_variance_ratio``) and a threshold: the increments'
exponential tilt in Siegmund's corrected approximation of the run length,
averaged over a bootstrap of the reference's own estimation error (see the
module docstring of :mod:`detectors.drift.cusum`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from detectors import stats

SCALE_BITS = 20
SCALE = 1 << SCALE_BITS
MIN_EVENTS = 100
# "No threshold" must still fit orjson's 64-bit integers (checkpoints): 2**62 / SCALE is
# ~4e12 in score units, which a CUSUM adding at most ~1e9 per block needs ~1e12 events to reach.
NEVER = 1 << 62
_KNOTS = 129
_BOOTSTRAP = 64
_BOOTSTRAP_SEED = 20261123
# Siegmund's overshoot correction for normal increments (2 × 0.583 sd).
_OVERSHOOT = 1.166
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
# Checked by simulation at run lengths of 1e5–1e6 events: the approximation is within
# ±30% on continuous data but up to 3.7 times optimistic on one side of small counts
# (Poisson(3), spread down), and the bootstrap understates the spread of a continuous
# reference's error by about a fifth (resamples carry ties). Hence a third of the rate
# and a quarter more spread.
_SAFETY = 1.0 / 3.0
_DRIFT_INFLATION = 1.25
_ULP = 2.0 ** -52


class Calibration(NamedTuple):
    """What one feature's CUSUMs learn from its reference."""

    knots: NDArray[np.float64]
    """Reference values at fine quantiles."""
    table: NDArray[np.float64]
    """Standardized normal score of each knot, in ``SCALE`` units."""
    summary: dict[str, float]
    """Size, mean, sd and quantiles of the reference (for explanations)."""
    centres: list[int]
    """Per side, the integer block sum subtracted (location) or compared with (spread)."""
    thresholds: list[int]
    """Per side, the integer CUSUM threshold (``NEVER``: the side cannot fire)."""


class Resamples:
    """The bootstrap's resamples of references of each size, drawn once for several features.

    The draws depend only on a reference's size (a fixed seed), so the features of
    one monitor, whose references mostly have the same size, can share them: drawing
    them is about a third of a calibration. Hold one only while calibrating a set of
    features: it keeps 64 resamples per size (5 MB for 5,000 values).
    """

    def __init__(self) -> None:
        self._by_size: dict[int, tuple[NDArray[np.intp], NDArray[np.float64]]] = {}

    def of(self, n: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """The resamples of ``n`` values, a row per replicate.

        Each row of the first array is 0, then the running count of draws of each
        sorted reference value; of the second, each value's count (its weight).
        """
        drawn = self._by_size.get(n)
        if drawn is None:
            drawn = self._by_size[n] = _draw(n)
        return drawn


def _draw(n: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    rng = np.random.default_rng(_BOOTSTRAP_SEED)
    cumulative = np.zeros((_BOOTSTRAP, n + 1), dtype=np.intp)
    weights = np.empty((_BOOTSTRAP, n))
    for replicate in range(_BOOTSTRAP):
        # One replicate's draws at a time: the generator yields the same numbers as
        # all at once, and its arrays stay in cache.
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        np.cumsum(counts, out=cumulative[replicate, 1:])
        weights[replicate] = counts
    return cumulative, weights


def calibrate(reference: NDArray[np.float64], alpha: float, block_size: int, min_shift: float,
              min_variance_ratio: float, resamples: Resamples | None = None,
              ) -> Calibration | None:
    """Calibrate the four sides on a sorted reference; None if it is too small or constant.

    ``alpha`` is the false-alarm rate per event of the four sides together. Features
    calibrated one after the other may share ``resamples`` (the result is the same).

    >>> reference = np.sort(np.random.default_rng(0).normal(size=2000))
    >>> calibration = calibrate(reference, 1e-6, 200, 0.15, 1.2)
    >>> calibration.knots.size, len(calibration.thresholds)
    (129, 4)
    >>> calibrate(np.full(2000, 3.0), 1e-6, 200, 0.15, 1.2) is None
    True
    """
    if reference.size < MIN_EVENTS or reference[0] == reference[-1]:
        return None
    n = reference.size
    # z of every possible mid-rank probability k / 2n, looked up by integer k.
    z_of = stats.normal_quantiles(np.clip(np.arange(2 * n + 1), 1, 2 * n - 1) / (2.0 * n))
    knots, z = _transform(reference, z_of)
    z_reference = np.interp(reference, knots, z)
    mean, sd = float(z_reference.mean()), float(z_reference.std())
    table = (z - mean) / sd * SCALE
    scores = np.interp(reference, knots, table).astype(np.int64)
    u = scores / SCALE
    w = ((scores * scores) >> SCALE_BITS) / SCALE
    mean_u, mean_w = float(u.mean()), float(w.mean())
    variance = mean_w - mean_u * mean_u
    centres = (mean_u + min_shift, mean_u - min_shift, min_variance_ratio * variance,
               (1.0 / min_variance_ratio) * variance)
    increments = (u - centres[0], centres[1] - u, w - centres[2], centres[3] - w)
    drift_u, drift_w = _bootstrap_drift(reference, z_of, (resamples or Resamples()).of(n))
    drifts = (drift_u, -drift_u, drift_w, -drift_w)
    rate = alpha / 4.0 * _SAFETY
    thresholds = [_threshold(a, d, block_size, rate)
                  for a, d in zip(increments, drifts, strict=True)]
    # A side the reference cannot calibrate (e.g. no increment is ever positive) never fires.
    return Calibration(
        knots=knots, table=table, summary=_summary(reference),
        centres=[round(c * block_size * SCALE) for c in centres],
        thresholds=[NEVER if math.isinf(h) else round(h * SCALE) for h in thresholds])


def _transform(reference: NDArray[np.float64], z_of: NDArray[np.float64],
               ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Knots (values at fine quantiles) and their mid-rank normal scores."""
    knots = np.unique(reference[_positions(reference.size)])
    below = np.searchsorted(reference, knots, side="left")
    upto = np.searchsorted(reference, knots, side="right")
    # Mid-rank: half of the ties at a knot count below it, so counts and flags centre.
    return knots, z_of[below + upto]


def _positions(n: int) -> NDArray[np.intp]:
    """Ranks of the knots among ``n`` sorted values."""
    return np.round(np.linspace(0.0, n - 1.0, _KNOTS)).astype(np.intp)


def _bootstrap_drift(reference: NDArray[np.float64], z_of: NDArray[np.float64],
                     resamples: tuple[NDArray[np.intp], NDArray[np.float64]],
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """How far a reference's estimation error moves future scores, by bootstrap.

    Each replicate resamples the reference, rebuilds and standardizes the
    transform on the resample, then scores the original reference (standing in
    for the population): the mean score and the mean squared score minus one
    are the drifts a detector built on that resample would see in stationary data.
    """
    n = reference.size
    positions = _positions(n)
    # Where each value's ties start and end in the reference, so that a resample's
    # knots (values drawn at ``positions``) need neither np.unique nor a search.
    first = np.searchsorted(reference, reference, side="left")
    end = np.searchsorted(reference, reference, side="right")
    # Per replicate, 0 then the running count of draws of each sorted reference value
    # (the resample, described without materializing it), and the counts as weights.
    all_cumulative, all_weights = resamples
    square = np.empty(n)
    drift_u = np.empty(_BOOTSTRAP)
    drift_w = np.empty(_BOOTSTRAP)
    for replicate in range(_BOOTSTRAP):
        cumulative, weights = all_cumulative[replicate], all_weights[replicate]
        drawn = first[np.searchsorted(cumulative, positions, side="right") - 1]
        distinct = np.empty(drawn.size, dtype=np.bool_)
        distinct[0] = True
        np.not_equal(drawn[1:], drawn[:-1], out=distinct[1:])
        starts = drawn[distinct]
        # Mid-rank, as in _transform. A knot is the first of its ties, so it may differ
        # from np.unique's only in the sign of a zero, which np.interp does not see.
        scored = np.interp(reference, reference[starts],
                           z_of[cumulative[starts] + cumulative[end[starts]]])
        mean = float(weights @ scored) / n
        np.multiply(scored, scored, out=square)
        sd = math.sqrt(max(float(weights @ square) / n - mean * mean, 1e-300))
        # np.mean's pairwise sum over the count, without its Python overhead.
        drift_u[replicate] = (float(np.add.reduce(scored)) / n - mean) / sd
        np.subtract(scored, mean, out=square)
        np.square(square, out=square)
        drift_w[replicate] = float(np.add.reduce(square)) / n / (sd * sd) - 1.0
    return drift_u, drift_w


def _tilt(increments: NDArray[np.float64]) -> float:
    """Root θ > 0 of log E[exp(θ a)] = 0 over the empirical increments (inf if none)."""
    top = float(increments.max())
    if top <= 0.0:
        return math.inf
    # Shifted once, and the mean as np.mean computes it (a pairwise sum over the count):
    # the same bits as before, without re-shifting or np.mean's Python per evaluation.
    below = increments - top
    size = below.size
    scaled = np.empty_like(below)

    def cgf(theta: float) -> float:
        np.multiply(theta, below, out=scaled)
        np.exp(scaled, out=scaled)
        return theta * top + math.log(float(np.add.reduce(scaled)) / size)

    negative = _CgfSign(cgf, top, size).negative
    high = 1.0
    while negative(high):
        high *= 2.0
    low = 0.0
    for _ in range(40):
        middle = 0.5 * (low + high)
        if negative(middle):
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


class _CgfSign:
    """Whether the computed ``cgf(θ) < 0``, evaluating it only where convexity cannot tell.

    The bisection needs only signs, and the cumulant generating function
    K(θ) = θ top + log mean exp(θ b) (exact arithmetic on the shifted increments
    b <= 0, one of them 0) is convex with K(0) = 0. So chords between evaluated
    points bound K from above and secants extended beyond them bound it from
    below. The computed value differs from K by at most ``_margin``: the exponent
    products and exp (the product's error is relative, and terms below e^-745 are 0;
    libm's exp is within an ulp), the pairwise sum of positive terms (relative error
    about its depth), the division by the count, log (``|log mean| <= log size``) and
    the final product and sum. The margin is four times that bound, plus 8 ulps of
    each evaluated value for the bounds' own rounding; a sign that the bounds leave
    within it is evaluated. Every answer is therefore that of the evaluation, and the
    bisection's floats are those of evaluating every point.
    """

    def __init__(self, cgf: Callable[[float], float], top: float, size: int) -> None:
        self.cgf = cgf
        self.top = top
        # θ-independent part: ~750 ulps of exponent error, the sum's depth (generously,
        # as if summed in 8-wide blocks of 8,192), division, log and a safety factor.
        self.floor = 4.0 * _ULP * (1024.0 + size / 64.0 + 3.0 * math.log(size))
        # Evaluated points (K(0) = 0 exactly), ascending, with their values and margins.
        self.points = [0.0]
        self.values = [0.0]
        self.margins = [0.0]

    def _margin(self, theta: float) -> float:
        return self.floor + 8.0 * _ULP * theta * self.top

    def negative(self, theta: float) -> bool:
        """``cgf(theta) < 0.0`` for a ``theta`` > 0."""
        points, values, margins = self.points, self.values, self.margins
        at = bisect.bisect_left(points, theta)
        if at < len(points) and points[at] == theta:
            return values[at] < 0.0
        margin = self._margin(theta)
        # Comparisons are written so that a NaN bound decides nothing.
        if at < len(points):
            left, right = values[at - 1] + margins[at - 1], values[at] + margins[at]
            fraction = (theta - points[at - 1]) / (points[at] - points[at - 1])
            if left + (right - left) * fraction + margin < 0.0:
                return True
        lower = -math.inf
        if at >= 2:
            near, far = values[at - 1] - margins[at - 1], values[at - 2] + margins[at - 2]
            slope = (near - far) / (points[at - 1] - points[at - 2])
            lower = near + slope * (theta - points[at - 1])
        if at + 1 < len(points):
            near, far = values[at] - margins[at], values[at + 1] + margins[at + 1]
            slope = (far - near) / (points[at + 1] - points[at])
            lower = max(lower, near - slope * (points[at] - theta))
        if lower - margin >= 0.0:
            return False
        value = self.cgf(theta)
        points.insert(at, theta)
        values.insert(at, value)
        margins.insert(at, margin + 8.0 * _ULP * abs(value))
        return value < 0.0


def _threshold(increments: NDArray[np.float64], drift: NDArray[np.float64], block: int,
               rate: float) -> float:
    """Smallest threshold whose false-alarm rate per event is at most ``rate``.

    The rate is averaged over the bootstrap spread of ``drift`` (the reference's
    estimation error), with the increments' exponential tilt in Siegmund's
    corrected approximation of the run length.
    """
    sd = float(increments.std())
    theta = _tilt(increments)
    if sd == 0.0 or math.isinf(theta):
        return math.inf
    block_sd = math.sqrt(block) * sd
    # Normal-equivalent standardized drift per block with the same exponential tilt.
    base = -0.5 * theta * block_sd
    centre, spread = float(drift.mean()), _DRIFT_INFLATION * float(drift.std())
    deltas = base + math.sqrt(block) * (centre + spread * _NODES) / sd

    # The parts of the rates that do not depend on h, with the same operations as inline.
    minus_two_deltas = -2.0 * deltas
    inverse_run = 2.0 * deltas * deltas / block
    # |y| = |-2 delta| barrier and rounding is monotone, so this bounds every |y| exactly
    # (NaN takes the general path).
    closest = float(np.abs(minus_two_deltas).min())
    scratch = np.empty_like(deltas)

    def false_alarm_rate(h: float) -> float:
        # Siegmund: a run lasts (e^y - 1 - y) / (2 delta^2) blocks, y = -2 delta barrier;
        # near y = 0 that is barrier^2 (1 + y/3). The rate per event is the inverse over
        # the block size, computed as 2 delta^2 / block / excess: when the increments drift
        # far below zero (seen with references of a few hundred values) the run length
        # itself exceeds the largest float, while its inverse only underflows, harmlessly.
        barrier = h / block_sd + _OVERSHOOT
        y = minus_two_deltas * barrier
        if closest * barrier >= 1e-4:
            # No y near 0 (the usual case): the general path's far branch, in place.
            np.minimum(y, 700.0, out=scratch)
            np.expm1(scratch, out=scratch)
            np.subtract(scratch, y, out=scratch)
            return float(np.dot(_WEIGHTS, np.divide(inverse_run, scratch, out=scratch)))
        near_zero = np.abs(y) < 1e-4
        # Each branch sees only its own y (the other gets a harmless stand-in).
        y_near, y_far = np.where(near_zero, y, 0.0), np.where(near_zero, 1.0, y)
        excess = np.expm1(np.minimum(y_far, 700.0)) - y_far
        rates = np.where(near_zero, 1.0 / (block * barrier * barrier * (1.0 + y_near / 3.0)),
                         inverse_run / excess)
        return float(np.dot(_WEIGHTS, rates))

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


def _summary(reference: NDArray[np.float64]) -> dict[str, float]:
    p01, p50, p99 = np.quantile(reference, [0.01, 0.5, 0.99])
    # min and max (the reference is sorted) tell a two-valued column, such as a 0/1
    # output, from one whose p01 or p99 hides a rare value.
    return {"events": int(reference.size), "mean": float(reference.mean()),
            "sd": float(reference.std()), "min": float(reference[0]), "p01": float(p01),
            "p50": float(p50), "p99": float(p99), "max": float(reference[-1])}
