"""A model version's first events, kept as one compact batch until its tests are built.

Most model versions a partition sees may never send more than a handful of
events, and a full set of tests (sketches, calibration tables, sequential
state per column) costs tens of kilobytes each. A
:class:`~detectors.monitor.ModelMonitor` therefore keeps its first events
here, appended into one :class:`~detectors.batch.ColumnBatch`, and builds its
tests only once enough have arrived; the tests then see exactly the events
they would have seen, in the same order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.batch import CategoricalColumn, Column, ColumnBatch, NumericColumn
from detectors.errors import StateError


def append(first: ColumnBatch | None, second: ColumnBatch) -> ColumnBatch:
    """The events of ``first`` then ``second``, as one batch (``rejected`` counts are not kept).

    A column absent from one of them is missing throughout its rows there.

    Examples
    --------
    >>> a = ColumnBatch.from_numeric(ts=[1.0], x=[0.5])
    >>> b = ColumnBatch(np.array([2.0]), {"c": CategoricalColumn(["u"])})
    >>> both = append(a, b)
    >>> both.ts.tolist(), both.columns["x"].missing.tolist(), both.columns["c"].values
    ([1.0, 2.0], [False, True], [None, 'u'])
    """
    if first is None:
        return ColumnBatch(second.ts, second.columns, second.outputs)
    sizes = (len(first), len(second))
    return ColumnBatch(np.concatenate([first.ts, second.ts]),
                       _columns(first.columns, second.columns, sizes),
                       _columns(first.outputs, second.outputs, sizes))


def _columns(first: dict[str, Column], second: dict[str, Column],
             sizes: tuple[int, int]) -> dict[str, Column]:
    joined: dict[str, Column] = {}
    for name in [*first, *(n for n in second if n not in first)]:
        parts = (first.get(name), second.get(name))
        kind = next(type(p) for p in parts if p is not None)
        if kind is NumericColumn:
            numeric = [p if isinstance(p, NumericColumn) else
                       NumericColumn(np.zeros(n), np.ones(n, dtype=np.bool_))
                       for p, n in zip(parts, sizes, strict=True)]
            joined[name] = NumericColumn(np.concatenate([p.values for p in numeric]),
                                         np.concatenate([p.missing for p in numeric]))
        else:
            joined[name] = CategoricalColumn([
                value for p, n in zip(parts, sizes, strict=True)
                for value in (p.values if isinstance(p, CategoricalColumn) else [None] * n)])
    return joined


def to_plain(batch: ColumnBatch) -> dict[str, Any]:
    """Plain-dict form of a staged batch (for a monitor's state).

    >>> batch = ColumnBatch.from_numeric(ts=[1.0, 2.0], x=[0.5, 1.5])
    >>> plain = to_plain(batch)
    >>> plain["columns"]["x"]
    {'values': [0.5, 1.5], 'missing': [False, False]}
    >>> from_plain(plain).columns["x"].values.tolist()
    [0.5, 1.5]
    """
    return {"ts": batch.ts.tolist(), "columns": _plain_columns(batch.columns),
            "outputs": _plain_columns(batch.outputs)}


def from_plain(plain: dict[str, Any]) -> ColumnBatch:
    """Rebuild a batch from :func:`to_plain` output."""
    try:
        return ColumnBatch(np.asarray(plain["ts"], dtype=np.float64),
                           _restore_columns(plain["columns"]),
                           _restore_columns(plain["outputs"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"state: cannot restore the staged events: {exc}") from exc


def _plain_columns(columns: dict[str, Column]) -> dict[str, dict[str, Any]]:
    return {name: ({"values": column.values.tolist(), "missing": column.missing.tolist()}
                   if isinstance(column, NumericColumn) else {"categories": column.values})
            for name, column in columns.items()}


def _restore_columns(plain: dict[str, dict[str, Any]]) -> dict[str, Column]:
    return {name: (CategoricalColumn(list(column["categories"])) if "categories" in column
                   else NumericColumn(np.asarray(column["values"], dtype=np.float64),
                                      np.asarray(column["missing"], dtype=np.bool_)))
            for name, column in plain.items()}
