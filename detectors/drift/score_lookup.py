"""Piecewise-linear score transforms of many features, applied in event order without sorting.

:class:`~detectors.drift.cusum.NumericCusum` turns every value into a score by
linear interpolation between its feature's knots. ``np.interp`` finds each
value's knot interval by binary search, which is only fast on sorted values,
and sorting a batch (then putting the scores back in event order) costs more
than the rest of the transform. A :class:`ScoreLookup` finds the interval with
a table instead: each feature's knot range is cut into equal cells, and a
cell knows how many knots lie in the cells before it and holds at most one
knot itself, so one comparison (with the next knot) settles the interval. The interpolation is
then ``np.interp``'s own formula, so scores are the same to the last bit.

Why one comparison is exact whatever the rounding: a value's cell is
computed by monotone floating-point steps, so a knot in an earlier cell is
below the value and a knot in a later cell above it; only a knot in the same
cell must be compared. The knots' own cells are computed by the very same
steps.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
# Cells per feature: the fewest (a power of two) that leave at most one knot in a cell.
_MIN_CELLS = 256
_MAX_CELLS = 1 << 14


class ScoreLookup:
    """Every feature's ``np.interp(x, knots, table)`` at once, for values in any order.

    A feature without knots scores 0. A feature whose knots crowd together so
    that even ``2**14`` cells leave two in one cell (a few extreme values far
    from the rest) is interpolated with ``np.interp`` on its own.

    Examples
    --------
    >>> knots = [np.array([0.0, 1.0, 3.0]), np.array([])]
    >>> lookup = ScoreLookup(knots, [np.array([-10.0, 0.0, 10.0]), np.array([])])
    >>> lookup.scores(np.array([[-1.0, 0.5, 2.0, 9.0], [1.0, 2.0, 3.0, 4.0]])).tolist()
    [[-10, -5, 5, 10], [0, 0, 0, 0]]

    """

    def __init__(self, knots: list[Floats], tables: list[Floats]) -> None:
        self.knots, self._tables = knots, tables
        d = len(knots)
        self._fallback: list[int] = []
        self.row_offsets: list[int] = []
        """Each feature's first row: its rows are ``row_offsets[i] + (0 … knots[i].size)``."""
        self.located: list[bool] = []
        """Per feature, whether :meth:`rows` gives its values' rows (else it has no table)."""
        starts, scales, tops, offsets = (np.zeros((d, 1)) for _ in range(4))
        bases: list[NDArray[np.intp]] = []
        rows: list[Floats] = []  # per feature: its knots, slopes and table values, row-wise
        row_offset = cell_offset = 0
        for feature, (x, y) in enumerate(zip(knots, tables, strict=True)):
            # Row 0 scores values below the first knot: slope 0 at the first knot's value.
            # Row r > 0 scores values from knot r - 1 on; a last row, never chosen, holds
            # the "next knot" (inf) of the row before.
            knot_rows = np.zeros((4, x.size + 2), dtype=np.float64)
            if x.size:
                knot_rows[0, 0], knot_rows[2, 0] = x[0], y[0]
                knot_rows[0, 1:-1], knot_rows[2, 1:-1] = x, y
                # np.interp's slopes; the last knot's row (slope 0) scores values beyond it.
                knot_rows[1, 1:-2] = (y[1:] - y[:-1]) / (x[1:] - x[:-1])
            knot_rows[3, :-1] = knot_rows[0, 1:]  # each row's next knot
            knot_rows[3, x.size:] = np.inf
            cells = _cells(x) if np.isfinite(knot_rows[1]).all() else None
            if cells is None:  # scored apart: its rows score 0
                self._fallback.append(feature)
                cells = (0, 0.0, np.zeros(2, dtype=np.intp))
                knot_rows[:3] = 0.0
                knot_rows[3] = np.inf
            count, scale, base = cells
            self.row_offsets.append(row_offset)
            self.located.append(count > 0)
            starts[feature] = x[0] if x.size else 0.0
            scales[feature], tops[feature] = scale, count
            offsets[feature] = cell_offset + 1  # cell -1 (below the first knot) is row 0
            bases.append(base + row_offset)
            rows.append(knot_rows)
            row_offset += x.size + 2
            cell_offset += count + 2
        self.row_count = row_offset
        """Rows of all features together."""
        self._starts, self._scales, self._tops = starts, scales, tops
        self._offsets = offsets.astype(np.intp)
        # int32 halves the largest table (a cache matter); rows stay far below 2**31.
        self._bases = (np.concatenate(bases) if bases else np.zeros(0, dtype=np.intp)
                       ).astype(np.int32)
        table = np.concatenate(rows, axis=1) if rows else np.zeros((4, 0))
        self._at, self._slope, self._value, self._next = (np.ascontiguousarray(row)
                                                          for row in table)

    def rows(self, values: Floats) -> NDArray[np.int32]:
        """Each value's row: its feature's first row plus how many of its knots are <= it.

        Only meaningful for the features marked :attr:`located`.
        """
        cell = _cell_positions(values, self._starts, self._scales, self._tops)
        cell += self._offsets
        row: NDArray[np.int32] = self._bases.take(cell)
        row += values >= self._next.take(row)
        return row

    def scores(self, values: Floats, rows: NDArray[np.int32] | None = None) -> Ints:
        """Scores of ``values`` (a row per feature), truncated to integers as ``int64``.

        ``rows``, when given, are the values' :meth:`rows`, already found.
        """
        if values.shape[0] == 0:
            return np.zeros(values.shape, dtype=np.int64)
        row = self.rows(values) if rows is None else rows
        scores = self._slope.take(row)
        scores *= values - self._at.take(row)
        scores += self._value.take(row)
        out = scores.astype(np.int64)
        for feature in self._fallback:
            out[feature] = np.interp(values[feature], self.knots[feature],
                                     self._tables[feature])
        return out


def _cell_positions(values: Floats, starts: Floats, scales: Floats, tops: Floats,
                    ) -> NDArray[np.intp]:
    """Each value's cell, -1 to ``top``: monotone in the value (the exactness rests on it)."""
    position = values - starts
    position *= scales
    np.clip(position, -1.0, tops, out=position)
    cells: NDArray[np.intp] = position.astype(np.intp)
    return cells


def _cells(knots: Floats) -> tuple[int, float, NDArray[np.intp]] | None:
    """Cells of one feature: count, scale, and the number of knots before each cell.

    Cells run from -1 (below the first knot) to ``count`` (at the last knot
    and beyond); None if every allowed count leaves two knots in some cell.
    """
    if knots.size < 2:
        return 0, 0.0, np.zeros(2, dtype=np.intp) + knots.size
    count = _MIN_CELLS
    while count <= _MAX_CELLS:
        scale = count / (knots[-1] - knots[0])
        cell_of_knot = _cell_positions(knots[None, :], np.array([[knots[0]]]),
                                       np.array([[scale]]), np.array([[float(count)]]))[0]
        every = np.arange(-1, count + 1)
        before = np.searchsorted(cell_of_knot, every, side="left")
        inside = np.searchsorted(cell_of_knot, every, side="right") - before
        if inside.max() <= 1:
            # A value's row: the knots before its cell, plus one if it reaches the next knot
            # (the one in its cell, if any: later ones are above it).
            return count, float(scale), before.astype(np.intp)
        count *= 2
    return None
