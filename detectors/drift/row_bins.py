"""Histogram and out-of-range counts of many features from rows already located: no sort.

On its own, the histogram test (:class:`~detectors.drift.numeric.NumericDrift`)
counts a segment's values between its edges by sorting each feature's values
and searching the edges in them, and the range check
(:class:`~detectors.quality.range.OutOfRangeRate`) searches its two bounds in
the same sorted values. In the monitor, the sequential test has already located
every value among its feature's knots (:meth:`ScoreLookup.rows
<detectors.drift.score_lookup.ScoreLookup.rows>`), and the interval between two
knots rarely holds more than one edge of either test: the knots are reference
values 1/128 of the reference apart, the edges quantiles at least 0.9 % apart.
A value's bin is then the number of edges at or below its interval's first
knot, plus one if it reaches the edge inside the interval; one ``bincount``
counts every feature at once. A feature whose intervals do not allow it (two
edges between the same knots, or no knots to locate by) is counted by sorting,
as before, so the counts are always exactly those of the tests' own searches.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from detectors.batch import NumericBlock
from detectors.drift.score_lookup import ScoreLookup

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


class BinCounts(NamedTuple):
    """One segment's counts, per feature."""

    histograms: Floats
    """Values in each histogram bin: a row per feature, as wide as the widest feature's."""
    below: Ints
    """Values below the range's low bound (0 for a feature without a range)."""
    above: Ints
    """Values at or above the range's search bound (the next float above its high bound)."""


class RowBins:
    """Counts between each feature's histogram edges and range bounds, from located rows.

    Parameters
    ----------
    lookup
        The score lookup that locates the values (its features are the block's rows).
    edges
        Per feature, the histogram's ascending, distinct edges. Bin ``j`` holds
        the values with ``j`` edges at or below them.
    bounds
        Per feature, the range's low bound and the bound its "above" count starts
        from (both NaN for a feature without a range); None without range counts.

    A value is first counted in its *point-count bin*: how many of its
    feature's points (the edges and bounds together) are at or below it. The
    histogram bins and the counts below and above the range are sums of those.

    Examples
    --------
    >>> knots = np.array([0.0, 1.0, 2.0, 3.0])
    >>> lookup = ScoreLookup([knots], [knots])
    >>> bins = RowBins(lookup, [np.array([0.5, 2.0])], np.array([[0.2, 2.5]]))
    >>> block = NumericBlock(("x",), np.array([[-1.0, 0.5, 1.9, 2.0, 2.7]]),
    ...                      np.zeros((1, 5), dtype=bool))
    >>> counts = bins.count(block, lookup.rows(block.values))
    >>> counts.histograms.tolist(), counts.below.tolist(), counts.above.tolist()
    ([[1.0, 2.0, 2.0]], [1], [1])

    """

    def __init__(self, lookup: ScoreLookup, edges: list[Floats], bounds: Floats | None) -> None:
        d = len(edges)
        self._edges = edges
        self.width = max((feature_edges.size for feature_edges in edges), default=0) + 1
        # Each feature's search points: its histogram edges and its range bounds together.
        points = [np.unique(np.concatenate((feature_edges, bound[bound == bound])))
                  for feature_edges, bound in zip(
                      edges, bounds if bounds is not None else np.full((d, 0), np.nan),
                      strict=True)]
        span = max((feature_points.size for feature_points in points), default=0) + 1
        self._span = span
        self._trash = d * span  # where missing values are counted, then dropped
        self._base = np.full(lookup.row_count, self._trash, dtype=np.intp)
        self._inside = np.full(lookup.row_count, np.inf, dtype=np.float64)
        self.sorted_features: list[int] = []
        """Features counted by sorting: no located rows, or two points between two knots."""
        for feature, feature_points in enumerate(points):
            if not self._locate(lookup, feature, feature_points):
                self.sorted_features.append(feature)
        self._points = points
        # A point-count bin's histogram bin, as an index into the flattened histograms.
        self._histogram_bin = np.zeros((d, span), dtype=np.intp)
        # The last point-count bin below the range, and the last one below its search bound.
        self._range_ends = np.zeros((d, 2), dtype=np.intp)
        for feature, (feature_edges, feature_points) in enumerate(zip(edges, points,
                                                                      strict=True)):
            lower = np.r_[-np.inf, feature_points]  # each bin's lowest value
            self._histogram_bin[feature, :lower.size] = (
                feature * self.width + np.searchsorted(feature_edges, lower, side="right"))
            self._histogram_bin[feature, lower.size:] = feature * self.width
            if bounds is not None and bounds[feature, 0] == bounds[feature, 0]:
                self._range_ends[feature] = np.searchsorted(feature_points, bounds[feature])
        self._ranged = (None if bounds is None else
                        np.asarray(bounds[:, 0] == bounds[:, 0], dtype=np.bool_))

    def _locate(self, lookup: ScoreLookup, feature: int, points: Floats) -> bool:
        """Fill the feature's rows' base bins and inside points; False if it cannot be."""
        if not lookup.located[feature]:
            return False
        knots = lookup.knots[feature]
        # Row r holds the values from knot r - 1 (-inf for row 0) up to knot r (inf last).
        lowest, highest = np.r_[-np.inf, knots], np.r_[knots, np.inf]
        at_or_below = np.searchsorted(points, lowest, side="right")
        inside = np.searchsorted(points, highest, side="left") - at_or_below
        if inside.max(initial=0) > 1:
            return False
        rows = slice(lookup.row_offsets[feature], lookup.row_offsets[feature] + knots.size + 1)
        self._base[rows] = feature * self._span + at_or_below
        self._inside[rows] = np.where(inside == 1, np.r_[points, np.inf][at_or_below], np.inf)
        return True

    def count(self, block: NumericBlock, rows: NDArray[np.int32]) -> BinCounts:
        """Count the block's present values; ``rows`` are their rows in the lookup."""
        d = len(self._edges)
        bins = self._base.take(rows)
        bins += block.values >= self._inside.take(rows)
        if block.any_missing:
            bins[block.missing] = self._trash
        counts = np.bincount(bins.reshape(-1), minlength=self._trash + 1)[:self._trash]
        counts = counts.reshape(d, self._span)
        for feature in self.sorted_features:
            counts[feature] = self._sorted_counts(block, feature)
        histograms = np.bincount(self._histogram_bin.reshape(-1), weights=counts.reshape(-1),
                                 minlength=d * self.width).astype(np.float64, copy=False)
        below = np.zeros(d, dtype=np.int64)
        above = np.zeros(d, dtype=np.int64)
        if self._ranged is not None:
            cumulative = counts.cumsum(axis=1)
            features = np.arange(d)
            below = np.where(self._ranged, cumulative[features, self._range_ends[:, 0]], 0)
            above = np.where(self._ranged, block.present - cumulative[
                features, self._range_ends[:, 1]], 0)
        return BinCounts(histograms.reshape(d, self.width), below, above)

    def _sorted_counts(self, block: NumericBlock, feature: int) -> Ints:
        """One feature's counts by its point-count bins, by sorting its present values."""
        values = block.values[feature]
        if block.any_missing:
            values = values[~block.missing[feature]]
        ordered = np.sort(values)
        points = self._points[feature]
        cumulative = np.r_[0, ordered.searchsorted(points), ordered.size]
        counts = np.zeros(self._span, dtype=np.int64)
        counts[:points.size + 1] = np.diff(cumulative)
        return counts
