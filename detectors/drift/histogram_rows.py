"""Two-sample statistics of many pairs of histograms at once: one row per feature.

Row-wise forms of :func:`detectors.stats.binned_ks`,
:func:`detectors.stats.chi2_homogeneity` and :func:`detectors.stats.psi` for
the histograms of every feature a test watches, padded to a common width with
bins empty in both samples. Terms are summed left to right (``cumsum``), as
the scalar forms add them, so both forms agree to the last bit (PSI's
logarithm aside, which numpy may round one unit differently).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
_EPS = 1e-12


class Comparison(NamedTuple):
    """Per row: binned KS statistic, chi-square statistic and its df, PSI."""

    ks: Floats
    chi2: Floats
    df: NDArray[np.int64]
    psi: Floats


class Reference(NamedTuple):
    """The reference side of :func:`compare`, computed once per reference."""

    counts: Floats
    bins: NDArray[np.int64]
    total: Floats
    """Values per row."""
    share: Floats
    """Each bin's share of its row."""
    smoothed: Floats
    """Each bin's share with a 0.5 pseudo-count per real bin (PSI's p)."""
    real: NDArray[np.bool_]
    """Which bins are real (not padding)."""


def reference(counts: Floats, bins: NDArray[np.int64]) -> Reference:
    """Prepare reference histograms (a row each, ``bins`` real bins) for :func:`compare_to`."""
    total = counts.sum(axis=1)
    share = counts * (1.0 / np.maximum(total, _EPS))[:, None]
    smoothed = (counts + 0.5) * (1.0 / np.maximum(total + 0.5 * bins, _EPS))[:, None]
    return Reference(counts, bins, total, share, smoothed,
                     np.arange(counts.shape[1]) < bins[:, None])


def compare(reference_counts: Floats, window: Floats, bins: NDArray[np.int64]) -> Comparison:
    """Compare each row's first ``bins`` bins of ``reference_counts`` and ``window``.

    Bins past ``bins`` must be empty in both. Chi-square leaves out bins empty in
    both samples; PSI gives every real bin a 0.5 pseudo-count.

    >>> result = compare(np.array([[5.0, 5.0, 0.0]]), np.array([[10.0, 0.0, 0.0]]),
    ...                  np.array([2]))
    >>> result.ks.tolist(), result.chi2.round(3).tolist(), result.df.tolist()
    ([0.5], [6.667], [1])
    """
    return compare_to(reference(reference_counts, bins), window)


def compare_to(prepared: Reference, window: Floats) -> Comparison:
    """:func:`compare` with the reference side already computed."""
    counts, n_reference = prepared.counts, prepared.total
    if counts.shape[1] == 0:
        zero = np.zeros(counts.shape[0], dtype=np.float64)
        return Comparison(zero, zero, np.ones(counts.shape[0], dtype=np.int64), zero)
    # Counts are integers: their totals are exact in any order.
    n_window = window.sum(axis=1)
    gap = prepared.share - window * (1.0 / np.maximum(n_window, _EPS))[:, None]
    ks: Floats = np.abs(gap.cumsum(axis=1)).max(axis=1)
    total = n_reference + n_window
    column = counts + window
    # A bin empty in both samples has no excess: dividing its zero by 1 leaves it out.
    excess = counts - column * (n_reference / np.maximum(total, 1.0))[:, None]
    excess *= excess
    excess /= np.maximum(column, 1.0)
    df = np.count_nonzero(column, axis=1)
    testable = (n_reference > 0) & (n_window > 0) & (df >= 2)
    chi2 = excess.cumsum(axis=1)[:, -1] * total * total / np.maximum(n_reference * n_window, 1.0)
    chi2 *= testable
    p = prepared.smoothed
    q = (window + 0.5) * (1.0 / (n_window + 0.5 * prepared.bins))[:, None]
    psi_terms = (q - p) * np.log(q / p)
    psi_terms *= prepared.real
    psi: Floats = psi_terms.cumsum(axis=1)[:, -1]
    return Comparison(ks, chi2, np.maximum(df - 1, 1).astype(np.int64), psi)
