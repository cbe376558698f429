"""What a :class:`~detectors.drift.cusum.NumericCusum` alarm says, in the feature's own units.

The CUSUMs run on normal scores, so an alarm knows the mean score (location)
or mean squared score (spread) over its run, in reference standard deviations
of the scores. For a continuous feature that maps back to a typical value
through the score table; for a two-valued column (a 0/1 prediction, a flag)
the scores take two values, which makes the map exact and linear: the mean
score ``u`` of a run where ``high`` has share ``q``, against a reference share
``p``, is ``(q - p) / sqrt(p (1 - p))``, and its mean squared score is
``1 + (q - p) (1 - 2p) / (p (1 - p))``. So a binary output's alarm says how
the share of one value moved, not where a "typical value" between 0 and 1 went.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from detectors.drift.cusum_calibration import SCALE
from detectors.drift.two_valued import describe_shares, share_of_high, two_values

SIDES = ("location_up", "location_down", "spread_up", "spread_down")


def explain_location(reference: dict[str, float], knots: NDArray[np.float64],
                     table: NDArray[np.float64], shift: float, run: int, up: bool) -> str:
    """A location alarm: the run's mean score ``shift`` (reference sd), in the feature's terms.

    Examples
    --------
    >>> flags = {"mean": 0.32, "sd": math.sqrt(0.32 * 0.68), "min": 0.0, "max": 1.0,
    ...          "p01": 0.0, "p50": 0.0, "p99": 1.0}
    >>> explain_location(flags, np.array([0.0, 1.0]), np.array([-0.7, 1.5]) * SCALE,
    ...                  0.49, 400, up=True)
    'share of 1 32.0% → 54.9% over the last 400 events'
    """
    binary = _two_values(reference)
    if binary is not None:
        low, high, p = binary
        q = min(max(p + shift * math.sqrt(p * (1.0 - p)), 0.0), 1.0)
        return f"{describe_shares(low, high, p, q)} over the last {run:,} events"
    median = float(np.interp(reference["p50"], knots, table))
    typical = float(np.interp(median + shift * SCALE, table, knots))
    return (f"values {'higher' if up else 'lower'} than in the reference: over the last "
            f"{run:,} events the typical value is ≈{typical:.4g} (reference median "
            f"{reference['p50']:.4g}), a shift of {shift:+.2f} reference sd")


def explain_spread(reference: dict[str, float], ratio: float, run: int, up: bool) -> str:
    """A spread alarm: the run's mean squared score ``ratio`` (× the reference's variance).

    >>> flags = {"mean": 0.1, "sd": 0.3, "min": 0.0, "max": 1.0, "p01": 0.0, "p99": 1.0}
    >>> explain_spread(flags, 1.8, 600, up=True)
    'share of 1 10.0% → 19.0% over the last 600 events'
    """
    binary = _two_values(reference)
    if binary is not None and abs(1.0 - 2.0 * binary[2]) > 0.05:
        # A two-valued column's spread is its share: say that. Near p = 1/2 the squared
        # score hardly depends on the share, and the general words are kept.
        low, high, p = binary
        q = min(max(p + (ratio - 1.0) * p * (1.0 - p) / (1.0 - 2.0 * p), 0.0), 1.0)
        return f"{describe_shares(low, high, p, q)} over the last {run:,} events"
    return (f"values {'more' if up else 'less'} spread out than in the reference: over the "
            f"last {run:,} events the variance is ≈{ratio:.2f}× the reference's (reference sd "
            f"{reference['sd']:.4g}, p01–p99 {reference['p01']:.4g} to {reference['p99']:.4g})")


def explain_quiet(side: int, statistic: int, threshold: int) -> str:
    """A window without an alarm: how near the closest CUSUM came.

    >>> explain_quiet(2, 30, 40)
    'no alarm; the closest CUSUM (spread up) is at 75% of its threshold'
    """
    return (f"no alarm; the closest CUSUM ({SIDES[side].replace('_', ' ')}) is at "
            f"{statistic / threshold:.0%} of its threshold")


def _two_values(reference: dict[str, float]) -> tuple[float, float, float] | None:
    """``(low, high, share of high)`` of a two-valued reference, else None.

    References calibrated before ``min``/``max`` were kept have p01 and p99,
    the two values themselves unless one of them is rarer than 1%.
    """
    low = reference.get("min", reference["p01"])
    high = reference.get("max", reference["p99"])
    if not two_values(reference["mean"], reference["sd"], low, high):
        return None
    return low, high, share_of_high(reference["mean"], low, high)
