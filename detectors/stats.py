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
# Histograms up to this many bins are cheaper in plain Python than through numpy's
# per-call overhead (a window closes every few batches, for every feature).
_SMALL = 64


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
    if reference.size <= _SMALL:
        ref, win = reference.tolist(), window.tolist()
        scale_ref, scale_win = 1.0 / max(sum(ref), _EPS), 1.0 / max(sum(win), _EPS)
        gap = largest = 0.0
        for r, w in zip(ref, win, strict=True):
            gap += r * scale_ref - w * scale_win
            largest = max(largest, abs(gap))
        return largest
    gap_array = np.cumsum(reference * (1.0 / max(float(reference.sum()), _EPS))
                          - window * (1.0 / max(float(window.sum()), _EPS)))
    return float(np.abs(gap_array).max())


def chi2_homogeneity(
    reference: NDArray[np.float64], window: NDArray[np.float64]
) -> tuple[float, int]:
    """Chi-square test of homogeneity of two count vectors; returns (statistic, df).

    Bins empty in both samples do not count towards the degrees of freedom.

    >>> chi2_homogeneity(np.array([50.0, 50.0]), np.array([50.0, 50.0]))
    (0.0, 1)
    """
    if reference.size <= _SMALL:
        return _chi2_homogeneity_small(reference.tolist(), window.tolist())
    col = reference + window
    used = col > 0
    bins = int(np.count_nonzero(used))
    n_ref = float(reference.sum())
    n_win = float(window.sum())
    if n_ref == 0 or n_win == 0 or bins < 2:
        return 0.0, max(bins - 1, 1)
    if bins < col.size:
        reference, col = reference[used], col[used]
    # Both samples' terms in one: sum (ref - E_ref)^2 / col * total^2 / (n_ref * n_win).
    total = n_ref + n_win
    excess = reference - col * (n_ref / total)
    statistic = float(np.dot(excess, excess / col)) * total * total / (n_ref * n_win)
    return statistic, bins - 1


def _chi2_homogeneity_small(ref: list[float], win: list[float]) -> tuple[float, int]:
    n_ref, n_win = sum(ref), sum(win)
    total = n_ref + n_win
    bins, statistic = 0, 0.0
    share_ref = n_ref / total if total else 0.0
    for r, w in zip(ref, win, strict=True):
        col = r + w
        if col > 0:
            bins += 1
            excess = r - col * share_ref
            statistic += excess * excess / col
    if n_ref == 0 or n_win == 0 or bins < 2:
        return 0.0, max(bins - 1, 1)
    return statistic * total * total / (n_ref * n_win), bins - 1


def psi(reference: NDArray[np.float64], window: NDArray[np.float64]) -> float:
    """Return the population stability index of two count vectors (0.5 pseudo-count a bin).

    >>> psi(np.array([10.0, 10.0]), np.array([10.0, 10.0]))
    0.0
    """
    if reference.size <= _SMALL:
        ref_list, win_list = reference.tolist(), window.tolist()
        scale_ref = 1.0 / (sum(ref_list) + 0.5 * len(ref_list))
        scale_win = 1.0 / (sum(win_list) + 0.5 * len(win_list))
        total = 0.0
        for r, w in zip(ref_list, win_list, strict=True):
            p, q = (r + 0.5) * scale_ref, (w + 0.5) * scale_win
            total += (q - p) * math.log(q / p)
        return total
    ref = (reference + 0.5) * (1.0 / float(reference.sum() + 0.5 * reference.size))
    win = (window + 0.5) * (1.0 / float(window.sum() + 0.5 * window.size))
    return float(np.dot(win - ref, np.log(win / ref)))


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


# Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
_ACKLAM_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
             1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_ACKLAM_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
             6.680131188771972e01, -1.328068155288572e01)
_ACKLAM_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
             -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_ACKLAM_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
             3.754408661907416e00)


def normal_quantiles(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Standard normal quantiles of probabilities strictly inside (0, 1), vectorized.

    >>> normal_quantiles(np.array([0.025, 0.5, 0.975])).round(3).tolist()
    [-1.96, 0.0, 1.96]
    """
    p = np.asarray(p, dtype=np.float64)
    a, b, c, d = _ACKLAM_A, _ACKLAM_B, _ACKLAM_C, _ACKLAM_D
    low = np.minimum(p, 1.0 - p)
    tail = low < 0.02425
    out = np.empty_like(p)
    q = p[~tail] - 0.5
    r = q * q
    out[~tail] = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (
        ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
    t = np.sqrt(-2.0 * np.log(low[tail]))
    value = (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) / (
        (((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1.0)
    out[tail] = np.where(p[tail] < 0.5, value, -value)
    return out


def binned_wasserstein(reference: NDArray[np.float64], window: NDArray[np.float64],
                       edges: NDArray[np.float64]) -> float:
    """Wasserstein-1 distance of two histograms on shared ``edges``.

    Bin ``i`` of ``len(edges) + 1`` holds the values in ``[edges[i-1], edges[i])``
    (bin 0 everything below ``edges[0]``, the last bin everything from
    ``edges[-1]`` on); each bin's mass sits at its lower edge (the first bin's at
    ``edges[0]``), so the open-ended tail bins add no guessed width. Divide by a
    reference scale (IQR or sd) to compare features.

    >>> binned_wasserstein(np.array([10.0, 0.0, 0.0]), np.array([0.0, 0.0, 10.0]),
    ...                    np.array([1.0, 3.0]))
    2.0
    """
    if edges.size < 2:
        return 0.0
    gap = np.cumsum(reference * (1.0 / max(float(reference.sum()), _EPS))
                    - window * (1.0 / max(float(window.sum()), _EPS)))
    return float(np.dot(np.abs(gap[1:-1]), np.diff(edges)))


def jensen_shannon(reference: NDArray[np.float64], window: NDArray[np.float64]) -> float:
    """Jensen–Shannon distance (base 2, so in [0, 1]) between two count vectors.

    >>> jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    1.0
    >>> jensen_shannon(np.array([3.0, 1.0]), np.array([6.0, 2.0]))
    0.0
    """
    p = reference / max(float(reference.sum()), _EPS)
    q = window / max(float(window.sum()), _EPS)
    m = 0.5 * (p + q)

    def kl_to_m(x: NDArray[np.float64]) -> float:
        used = x > 0
        return float(np.sum(x[used] * np.log2(x[used] / m[used])))

    return math.sqrt(max(0.5 * (kl_to_m(p) + kl_to_m(q)), 0.0))
