"""One stretch of a Bernoulli CUSUM's update, vectorised over the values and the CUSUMs.

Between two of its discrete events (a baseline fold, a crossing) the
coefficients of :class:`~detectors.concept.bernoulli_cusum.BernoulliCusum`
stay fixed, so its CUSUMs follow Lindley's recursion
``S_t = max(0, S_{t-1} + d_t)``, which has the closed form
``S_t = C_t - min(-S_0, C_1, ..., C_t)`` with ``C_t`` the cumulative sum of the
increments ``d``. This module computes that form for a segment with numpy.

It is bit-for-bit the per-value loop: the detector rounds its values to
multiples of 2⁻⁸ and its coefficients to multiples of 2⁻²⁰, so every
increment, every partial sum and every stretch count is a float that is exact
(at most 2²⁴ in magnitude on a 2⁻²⁸ grid), and the order of the additions
cannot change a result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Values are multiples of 2**-8, coefficients of 2**-20 (see the module docstring).
VALUE_STEP = 2.0**-8
COEFFICIENT_STEP = 2.0**-20


@dataclass(frozen=True)
class SegmentResult:
    """What one segment did to the CUSUMs.

    Attributes
    ----------
    events
        Values consumed: the whole segment, or up to and including the first crossing.
    crossing
        Index of the CUSUM whose stretch decides the crossing (the longest of those
        that crossed, the first of equals), or ``-1`` when nothing crossed.
    statistics, stretch_values, stretch_errors
        Each CUSUM's statistic and stretch after the last consumed value.
    baseline_values, baseline_errors
        Values (and their sum) that go to the baseline: those before the crossing
        that came while no CUSUM was half way to the threshold (all of them when
        ``freeze`` is off).
    """

    events: int
    crossing: int
    statistics: list[float]
    stretch_values: list[int]
    stretch_errors: list[float]
    baseline_values: int
    baseline_errors: float


def cusum_segment(errors: NDArray[np.float64], coefficients: Sequence[tuple[float, float]],
                  statistics: Sequence[float], stretch_values: Sequence[int],
                  stretch_errors: Sequence[float], thresholds: Sequence[float],
                  freeze: bool) -> SegmentResult:
    """Run the CUSUMs over ``errors`` with fixed coefficients, stopping at the first crossing.

    Parameters
    ----------
    errors
        Values on the detector's grid, in ``[0, 1]``.
    coefficients
        Per CUSUM, the increment on an error and on a success.
    statistics, stretch_values, stretch_errors
        The CUSUMs' state before the segment.
    thresholds
        Per CUSUM, the level its statistic crosses when it is above it.
    freeze
        Whether a CUSUM at least half way to its threshold keeps a value out of the baseline.

    Examples
    --------
    >>> import numpy as np
    >>> r = cusum_segment(np.array([1.0, 1.0, 0.0, 1.0]), [(1.0, -0.5)], [0.0], [0], [0.0],
    ...                   thresholds=[2.0], freeze=False)
    >>> r.events, r.crossing, r.statistics, r.stretch_values, r.baseline_values
    (4, 0, [2.5], [4], 3)

    """
    on_success = np.array([pair[1] for pair in coefficients])[:, None]
    step = np.array([pair[0] - pair[1] for pair in coefficients])[:, None]
    increments = errors * step + on_success
    level = np.cumsum(increments, axis=1)
    start = np.array(statistics, dtype=np.float64)[:, None]
    cusums = level - np.minimum.accumulate(np.minimum(level, -start), axis=1)
    limits = np.array(thresholds, dtype=np.float64)[:, None]
    crossed = (cusums > limits).any(axis=0)
    crossing_at = int(crossed.argmax()) if crossed.any() else -1
    end = errors.size if crossing_at < 0 else crossing_at + 1

    zero = cusums[:, end - 1::-1] == 0.0
    restarted = zero.any(axis=1)
    since_zero = zero.argmax(axis=1)   # values after each CUSUM's last zero
    cumulative_errors = np.cumsum(errors[:end])
    total = cumulative_errors[-1]
    values = np.where(restarted, since_zero, np.array(stretch_values, dtype=np.int64) + end)
    errors_since = np.where(
        restarted, total - cumulative_errors[end - 1 - since_zero],
        np.array(stretch_errors, dtype=np.float64) + total)
    crossing = -1
    if crossing_at >= 0:
        over = cusums[:, crossing_at] > limits[:, 0]
        crossing = int(np.where(over, values, -1).argmax())

    counted = end if crossing_at < 0 else crossing_at
    kept: NDArray[np.bool_] = np.ones(counted, dtype=bool)
    if freeze:
        kept = np.logical_not((cusums[:, :counted] >= 0.5 * limits).any(axis=0))
    return SegmentResult(
        events=end, crossing=crossing, statistics=cusums[:, end - 1].tolist(),
        stretch_values=values.tolist(), stretch_errors=errors_since.tolist(),
        baseline_values=int(np.count_nonzero(kept)),
        baseline_errors=float(errors[:counted][kept].sum()))
