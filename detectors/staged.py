"""A model version's first events, kept compact until its tests are built.

Most model versions a partition sees may never send more than a handful of
events, and a full set of tests (sketches, calibration tables, sequential
state per column) costs tens of kilobytes each. A
:class:`~detectors.monitor.ModelMonitor` therefore keeps its first events as
:class:`StagedEvents` and builds its tests only once enough have arrived; the
tests then see exactly the events they would have seen, in the same order.

The staged form is small on purpose: event times and every numeric column in
one 2-D array (``NaN`` marks a missing value; the detectors never see it, as
:meth:`StagedEvents.batch` turns it back into a mask), and each categorical
column a list whose repeated categories are one string object.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.batch import CategoricalColumn, Column, ColumnBatch, NumericColumn
from detectors.errors import StateError

# Where a column lives in a ColumnBatch: its features (``columns``) or its ``outputs``.
_PARTS = ("columns", "outputs")


class StagedEvents:
    """Events of one model version, appended batch by batch.

    Examples
    --------
    >>> a = ColumnBatch.from_numeric(ts=[1.0], x=[0.5])
    >>> b = ColumnBatch(np.array([2.0]), {"c": CategoricalColumn(["u"])})
    >>> both = StagedEvents.append(StagedEvents.append(None, a), b).batch()
    >>> both.ts.tolist(), both.columns["x"].missing.tolist(), both.columns["c"].values
    ([1.0, 2.0], [False, True], [None, 'u'])
    """

    __slots__ = ("categorical", "numeric", "numeric_names")

    def __init__(self, numeric: NDArray[np.float64], numeric_names: tuple[tuple[str, str], ...],
                 categorical: dict[tuple[str, str], list[str | None]]) -> None:
        self.numeric = numeric
        """Event times (row 0), then one row per numeric column; ``NaN`` where missing."""
        self.numeric_names = numeric_names
        """(part, name) of each numeric row after the first."""
        self.categorical = categorical
        """(part, name) → the column's values."""

    def __len__(self) -> int:
        return int(self.numeric.shape[1])

    @classmethod
    def append(cls, staged: StagedEvents | None, batch: ColumnBatch,
               share: bool = True) -> StagedEvents:
        """``staged`` (may be ``None``) followed by ``batch``'s events (its ``rejected``: not kept).

        A column absent from either side is missing throughout its rows there.
        Repeated categories become one string object each, unless ``share`` is
        false and ``staged`` is ``None`` (a short-lived copy: not worth the pass).
        """
        rows, categorical = [batch.ts], {}
        names: list[tuple[str, str]] = []
        for part in _PARTS:
            for name, column in getattr(batch, part).items():
                if isinstance(column, NumericColumn):
                    names.append((part, name))
                    rows.append(np.where(column.missing, np.nan, column.values))
                else:
                    categorical[(part, name)] = column.values
        if staged is None:
            return cls(np.array(rows, dtype=np.float64), tuple(names),
                       {key: _shared(values) if share else values
                        for key, values in categorical.items()})
        before, after = len(staged), len(batch)
        all_names = (*staged.numeric_names,
                     *(key for key in names if key not in staged.numeric_names))
        mine, theirs = dict(zip(staged.numeric_names, staged.numeric[1:], strict=True)), dict(
            zip(names, rows[1:], strict=True))
        gap_before, gap_after = np.full(before, np.nan), np.full(after, np.nan)
        numeric = np.array([np.concatenate([staged.numeric[0], batch.ts])] + [
            np.concatenate([mine.get(key, gap_before), theirs.get(key, gap_after)])
            for key in all_names], dtype=np.float64)
        joined = {key: _shared([*staged.categorical.get(key, [None] * before),
                                *categorical.get(key, [None] * after)])
                  for key in [*staged.categorical, *categorical]}
        return cls(numeric, all_names, joined)

    def take(self, rows: NDArray[np.intp]) -> StagedEvents:
        """The events at ``rows`` (e.g. one segment's), in that order.

        >>> staged = StagedEvents.append(None, ColumnBatch.from_numeric(ts=[1.0, 2.0, 3.0],
        ...                                                            x=[0.5, 1.5, 2.5]))
        >>> staged.take(np.array([0, 2])).batch().columns["x"].values.tolist()
        [0.5, 2.5]
        """
        picked = rows.tolist()
        return StagedEvents(self.numeric[:, rows], self.numeric_names,
                            {key: [values[row] for row in picked]
                             for key, values in self.categorical.items()})

    def extend(self, more: StagedEvents) -> StagedEvents:
        """These events followed by ``more``'s (one concatenation when the columns agree)."""
        if (more.numeric_names == self.numeric_names
                and more.categorical.keys() == self.categorical.keys()):
            return StagedEvents(np.concatenate([self.numeric, more.numeric], axis=1),
                                self.numeric_names,
                                {key: values + more.categorical[key]
                                 for key, values in self.categorical.items()})
        return StagedEvents.append(self, more.batch())

    def batch(self) -> ColumnBatch:
        """The staged events as one batch (no ``rejected`` counts: the monitor kept them)."""
        parts: dict[str, dict[str, Column]] = {part: {} for part in _PARTS}
        for (part, name), row in zip(self.numeric_names, self.numeric[1:], strict=True):
            missing = np.isnan(row)
            parts[part][name] = NumericColumn(np.where(missing, 0.0, row), missing)
        for (part, name), values in self.categorical.items():
            parts[part][name] = CategoricalColumn(list(values))
        return ColumnBatch(self.numeric[0].copy(), parts["columns"], parts["outputs"])

    def to_plain(self) -> dict[str, Any]:
        """Plain-dict form (for a monitor's state).

        >>> staged = StagedEvents.append(None, ColumnBatch.from_numeric(ts=[1.0, 2.0],
        ...                                                            x=[0.5, 1.5]))
        >>> plain = staged.to_plain()
        >>> plain["columns"]["x"]
        {'values': [0.5, 1.5], 'missing': [False, False]}
        >>> StagedEvents.from_plain(plain).batch().columns["x"].values.tolist()
        [0.5, 1.5]
        """
        batch = self.batch()
        return {"ts": batch.ts.tolist(), "columns": _plain_columns(batch.columns),
                "outputs": _plain_columns(batch.outputs)}

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> StagedEvents:
        """Rebuild from :meth:`to_plain` output."""
        try:
            batch = ColumnBatch(np.asarray(plain["ts"], dtype=np.float64),
                                _restore_columns(plain["columns"]),
                                _restore_columns(plain["outputs"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"state: cannot restore the staged events: {exc}") from exc
        return cls.append(None, batch)


def _shared(values: list[str | None]) -> list[str | None]:
    """``values`` with each repeated category one string object (a few per column)."""
    seen: dict[str | None, str | None] = {}
    return [seen.setdefault(value, value) for value in values]


def _plain_columns(columns: dict[str, Column]) -> dict[str, dict[str, Any]]:
    return {name: ({"values": column.values.tolist(), "missing": column.missing.tolist()}
                   if isinstance(column, NumericColumn) else {"categories": column.values})
            for name, column in columns.items()}


def _restore_columns(plain: dict[str, dict[str, Any]]) -> dict[str, Column]:
    return {name: (CategoricalColumn(list(column["categories"])) if "categories" in column
                   else NumericColumn(np.asarray(column["values"], dtype=np.float64),
                                      np.asarray(column["missing"], dtype=np.bool_)))
            for name, column in plain.items()}
