"""The numerical pieces of :class:`~detectors.multivariate.pca.PCADrift`.

Normal-score tables, the principal components of a second-moment matrix,
correlations from window sums, and the scaled chi-square the statistics are
read against.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from detectors import stats
from detectors.drift.cusum_calibration import SCALE

Array = NDArray[np.float64]
MIN_EVENTS = 50
# Scores lie within ±5.4 (the normal quantile of 1/(2n) for a reference of 10**7 events); on
# a 2**-10 grid their products are integers times 2**-20, and sums of those stay exact in
# float64 up to about 2**53 / (30 * 2**20) = 2.8e8 events a window.
GRID = 1024.0
# Above this many degrees of freedom the Wilson–Hilferty chi-square quantile is accurate
# (and slightly conservative) where the exact series would cost milliseconds per window.
EXACT_DF = 100
TINY = 1e-12
# Finer in the tails, where a change of dependence shows first.
_KNOT_PROBABILITIES = np.array(
    [0.001, 0.005, 0.01, 0.025] + [i / 20 for i in range(1, 20)] + [0.975, 0.99, 0.995, 0.999])
_STANDARD_NORMAL = NormalDist()


class Check(NamedTuple):
    """One statistic of a window against its reference (for the verdict and explanation)."""

    detector: str
    label: str
    mean: float
    expected: float
    threshold: float
    p_value: Callable[[], float]
    """Computed when read (see :class:`~detectors.base.TestResult`)."""
    effect: float
    drift: bool


@functools.lru_cache(maxsize=8)
def pairs(features: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Rows and columns of the upper triangle of a features × features matrix, row by row."""
    first, second = np.triu_indices(features, 1)
    first.flags.writeable = second.flags.writeable = False  # shared by every caller
    return first, second


def on_grid(z: Array) -> Array:
    """Round scores to the 1/1024 grid, in place (so that window sums are exact)."""
    z *= GRID
    np.rint(z, out=z)
    z /= GRID
    return z


def grid_scores(scores: NDArray[np.int64]) -> Array:
    """Fixed-point scores (``SCALE`` units, a NumericCusum's) on the 1/1024 grid, as floats."""
    z: Array = np.multiply(scores, GRID / SCALE, dtype=np.float64)  # a power of two: exact
    np.rint(z, out=z)
    z /= GRID
    return z


def min_reference(features: int) -> int:
    """Complete reference events needed to fit components over ``features`` features."""
    return max(MIN_EVENTS, 2 * features)


def score_table(values: Array) -> tuple[Array, Array]:
    """Knots of one feature's reference distribution and the normal score of each.

    A knot's score is the normal quantile of its mid-rank, so tied values (counts,
    flags) get one score, the average of their ranks; values between knots are
    interpolated and values beyond the reference's range take the extreme scores.
    """
    ordered = np.sort(values)
    n = ordered.size
    knots = np.unique(np.r_[ordered[0], np.quantile(ordered, _KNOT_PROBABILITIES), ordered[-1]])
    below = np.searchsorted(ordered, knots, side="left")
    up_to = np.searchsorted(ordered, knots, side="right")
    mid_ranks = (below + up_to) / (2.0 * n)
    scores = np.array([_STANDARD_NORMAL.inv_cdf(p) for p in mid_ranks.tolist()])
    return knots, scores


def fit_components(second_moment: Array, active: NDArray[np.intp], variance_kept: float,
         components: int | None) -> tuple[int, float, Array, Array]:
    """Principal components of the active features.

    Returns how many are kept, the share of variance they explain, the projector on
    the residual space and the kept components scaled by their inverse variances.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(second_moment[np.ix_(active, active)])
    eigenvalues = np.clip(eigenvalues[::-1], 0.0, None)
    eigenvectors = eigenvectors[:, ::-1]
    total = max(float(eigenvalues.sum()), TINY)
    if components is None:
        share = np.cumsum(eigenvalues) / total
        components = int(np.searchsorted(share, variance_kept)) + 1
    components = min(max(components, 1), active.size - 1)
    kept = eigenvectors[:, :components]
    inverse = 1.0 / np.maximum(eigenvalues[:components], TINY)
    residual = np.zeros_like(second_moment)
    residual[np.ix_(active, active)] = np.eye(active.size) - kept @ kept.T
    hotelling = np.zeros_like(second_moment)
    hotelling[np.ix_(active, active)] = (kept * inverse) @ kept.T
    return components, float(eigenvalues[:components].sum()) / total, residual, hotelling


def moments(values: Array) -> tuple[float, float]:
    """Mean and (unbiased) variance."""
    return float(values.mean()), float(values.var(ddof=1))


def correlation(n: int, sums: Array, products: Array) -> Array:
    """Correlation matrix from sums; 0 where a feature does not vary (its diagonal too)."""
    mean = sums / n
    covariance = products / n - mean[:, None] * mean[None, :]
    sd = np.sqrt(np.maximum(covariance.diagonal(), 0.0))
    varying = sd > TINY
    scale = np.where(varying, sd, 1.0)
    correlation: Array = np.minimum(np.maximum(covariance / (scale[:, None] * scale[None, :]),
                                               -1.0), 1.0)
    correlation[~varying, :] = 0.0
    correlation[:, ~varying] = 0.0
    np.fill_diagonal(correlation, varying.astype(np.float64))
    return correlation


def chi2_quantile(df: float, alpha: float) -> float:
    """Upper ``alpha`` quantile of chi-square(df); Wilson–Hilferty above ``EXACT_DF``."""
    if df <= EXACT_DF:
        return stats.chi2_upper_quantile(int(df), alpha)
    c = 2.0 / (9.0 * df)
    return df * (1.0 - c + stats.normal_upper_quantile(alpha) * math.sqrt(c)) ** 3


def chi2_survival(statistic: float, df: float) -> float:
    """P(X >= statistic) for X ~ chi-square(df); Wilson–Hilferty above ``EXACT_DF``."""
    if df <= EXACT_DF:
        return stats.chi2_survival(statistic, int(df))
    c = 2.0 / (9.0 * df)
    z = ((max(statistic, 0.0) / df) ** (1.0 / 3.0) - (1.0 - c)) / math.sqrt(c)
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def signed(value: float) -> str:
    """A correlation with a true minus sign.

    >>> signed(-0.5)
    '−0.50'
    """
    return f"{value:.2f}".replace("-", "−")
