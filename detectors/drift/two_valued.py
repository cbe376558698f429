"""Words for a numeric column that takes two values, such as a 0/1 prediction.

A mean, a standard deviation and quantiles describe a continuous feature well,
but for a binary output "typical value ≈0 (reference median 0), a shift of
+0.41 reference sd" says nothing a reader can use: what moved is the share of
one of the two values. The drift tests recognise such a column from the summary
they already keep: values confined to ``[low, high]`` have a variance of at most
``(mean - low) * (high - mean)``, with equality exactly when every value is
``low`` or ``high``, so no extra state is needed (and references built before
this module existed are recognised too).
"""

from __future__ import annotations

import math

# Summaries are float sums over up to millions of values: compare with a relative tolerance.
_TOLERANCE = 1e-6


def two_values(mean: float, sd: float, low: float, high: float) -> bool:
    """Whether a column with this mean and sd, within ``[low, high]``, holds only those two values.

    Examples
    --------
    >>> two_values(0.3, math.sqrt(0.3 * 0.7), 0.0, 1.0)      # a 0/1 column, 30% ones
    True
    >>> two_values(0.5, 0.29, 0.0, 1.0)                      # uniform on [0, 1]
    False
    >>> two_values(0.0, 0.0, 0.0, 1.0)                       # only zeros: one of the two
    True
    >>> two_values(1.0, 0.0, 1.0, 1.0)                       # a constant: no second value
    False
    """
    width = high - low
    if not (math.isfinite(width) and width > 0.0 and low <= mean <= high):
        return False
    bound = (mean - low) * (high - mean)
    return abs(sd * sd - bound) <= _TOLERANCE * width * width


def share_of_high(mean: float, low: float, high: float) -> float:
    """Share of ``high`` in a column of ``low`` and ``high`` values with this mean, in [0, 1].

    >>> share_of_high(0.25, 0.0, 1.0), share_of_high(3.5, 2.0, 5.0)
    (0.25, 0.5)
    """
    return min(max((mean - low) / (high - low), 0.0), 1.0)


def describe_shares(low: float, high: float, before: float, after: float) -> str:
    """How the share of ``high`` moved, e.g. ``share of 1 32.0% → 55.0%``.

    The other value is named unless it is 0, the usual case of a flag or a class.

    >>> describe_shares(0.0, 1.0, 0.32, 0.55)
    'share of 1 32.0% → 55.0%'
    >>> describe_shares(-1.0, 1.0, 0.5, 0.25)
    'share of 1 (vs -1) 50.0% → 25.0%'
    """
    other = "" if low == 0.0 else f" (vs {low:.4g})"
    return f"share of {high:.4g}{other} {before:.1%} → {after:.1%}"
