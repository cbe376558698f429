"""Small, dependency-free statistical functions shared by the drift tests.

Everything here works on histogram counts (numpy arrays), never on raw streams,
so the cost of a test is independent of how many events a window holds.
"""

from __future__ import annotations

import functools
import math
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

_STANDARD_NORMAL = NormalDist()
_EPS = 1e-12


def normal_upper_quantile(alpha: float) -> float:
    """Return z such that P(Z > z) = alpha for a standard normal Z.

    >>> round(normal_upper_quantile(0.025), 3)
    1.96
    """
    return _STANDARD_NORMAL.inv_cdf(1.0 - alpha) if alpha > 1e-15 else _tail_z(alpha)


def _tail_z(alpha: float) -> float:
    # inv_cdf loses precision near 1 - 1e-16; the asymptotic expansion is exact enough there.
    t = math.sqrt(-2.0 * math.log(alpha))
    return t - (math.log(t) + 0.5 * math.log(2 * math.pi) + math.log(1 + 1 / t**2)) / t


# Windows ask for the same (df, alpha) over and over; the bisection costs ~300 µs.
@functools.lru_cache(maxsize=1024)
def chi2_upper_quantile(df: int, alpha: float) -> float:
    """Return the upper ``alpha`` quantile of a chi-square(``df``) distribution.

    Inverts the exact :func:`chi2_survival` by bisection, starting from the
    Wilson–Hilferty approximation. Wilson–Hilferty alone overstates the quantile
    by up to a quarter at small ``df`` and small ``alpha`` (df 1, alpha 1e-9:
    48.9 instead of 37.3), which would cost power exactly where the monitor runs.

    >>> round(chi2_upper_quantile(10, 0.05), 1)
    18.3
    >>> round(chi2_upper_quantile(1, 1e-9), 2)
    37.32
    """
    k = max(int(df), 1)
    z = normal_upper_quantile(alpha)
    wilson_hilferty = k * (1.0 - 2.0 / (9.0 * k) + z * math.sqrt(2.0 / (9.0 * k))) ** 3
    low, high = 0.0, max(wilson_hilferty, 1.0)
    while chi2_survival(high, k) > alpha:
        low, high = high, 2.0 * high
    while high - low > 1e-12 * high:
        middle = 0.5 * (low + high)
        if chi2_survival(middle, k) > alpha:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def chi2_survival(statistic: float, df: int) -> float:
    """Return P(X >= statistic) for X ~ chi-square(df), exact for integer ``df``.

    Sums the closed-form series (a Poisson tail for even ``df``, erfc plus a
    half-integer series for odd ``df``) term by term in log space, so it neither
    overflows nor loses the far tail.

    >>> round(chi2_survival(18.307, 10), 3)
    0.05
    """
    k = max(int(df), 1)
    if statistic <= 0.0:
        return 1.0
    half = statistic / 2.0
    log_half = math.log(half)
    if k % 2 == 0:
        tail = sum(math.exp(i * log_half - half - math.lgamma(i + 1.0)) for i in range(k // 2))
    else:
        tail = math.erfc(math.sqrt(half)) + sum(
            math.exp((i - 0.5) * log_half - half - math.lgamma(i + 0.5))
            for i in range(1, k // 2 + 1)
        )
    return min(1.0, tail)


def ks_critical_value(alpha: float, n: int, m: int) -> float:
    """Two-sample Kolmogorov–Smirnov critical value for sample sizes ``n`` and ``m``.

    >>> round(ks_critical_value(0.05, 1000, 1000), 4)
    0.0607
    """
    c = math.sqrt(-0.5 * math.log(alpha / 2.0))
    return c * math.sqrt((n + m) / (n * m))


def ks_p_value(statistic: float, n: int, m: int) -> float:
    """Asymptotic two-sample KS p-value (first term of the Kolmogorov series, an upper bound)."""
    en = math.sqrt(n * m / (n + m))
    return min(1.0, 2.0 * math.exp(-2.0 * (statistic * en) ** 2))


def binned_ks(reference: NDArray[np.float64], window: NDArray[np.float64]) -> float:
    """Largest gap between the two empirical CDFs evaluated at the bin edges.

    Binning can only hide differences, so the statistic never exceeds the exact
    KS statistic and the test stays conservative.

    >>> binned_ks(np.array([5.0, 5.0]), np.array([10.0, 0.0]))
    0.5
    """
    ref_cdf = np.cumsum(reference) / max(float(reference.sum()), _EPS)
    win_cdf = np.cumsum(window) / max(float(window.sum()), _EPS)
    return float(np.max(np.abs(ref_cdf - win_cdf)))


def chi2_homogeneity(
    reference: NDArray[np.float64], window: NDArray[np.float64]
) -> tuple[float, int]:
    """Chi-square test of homogeneity of two count vectors; returns (statistic, df).

    Bins empty in both samples do not count towards the degrees of freedom.

    >>> chi2_homogeneity(np.array([50.0, 50.0]), np.array([50.0, 50.0]))
    (0.0, 1)
    """
    used = (reference + window) > 0
    ref = reference[used]
    win = window[used]
    n_ref = float(ref.sum())
    n_win = float(win.sum())
    total = n_ref + n_win
    if total == 0 or n_ref == 0 or n_win == 0 or ref.size < 2:
        return 0.0, max(int(ref.size) - 1, 1)
    col = ref + win
    exp_ref = col * (n_ref / total)
    exp_win = col * (n_win / total)
    statistic = float(
        np.sum((ref - exp_ref) ** 2 / exp_ref) + np.sum((win - exp_win) ** 2 / exp_win)
    )
    return statistic, int(ref.size) - 1


def psi(reference: NDArray[np.float64], window: NDArray[np.float64]) -> float:
    """Return the population stability index of two count vectors (0.5 pseudo-count a bin).

    >>> psi(np.array([10.0, 10.0]), np.array([10.0, 10.0]))
    0.0
    """
    ref = (reference + 0.5) / float(reference.sum() + 0.5 * reference.size)
    win = (window + 0.5) / float(window.sum() + 0.5 * window.size)
    return float(np.sum((win - ref) * np.log(win / ref)))


def binomial_survival(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed exactly in log space.

    >>> round(binomial_survival(8, 10, 0.5), 4)
    0.0547
    """
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p = math.log(p)
    log_q = math.log1p(-p)
    log_n = math.lgamma(n + 1)
    terms = [
        log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))
