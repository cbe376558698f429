"""Columnar batches: the only input format the detectors accept.

The stream layer decodes and validates events, then hands each model's events
over as one :class:`ColumnBatch`: numpy arrays per feature, never per-event
dicts. Numeric values are always finite here; missing values are flagged in a
mask and filled with 0.0, so no NaN can reach a detector. The monitor stacks a
batch's numeric features into one :class:`NumericBlock`, so that a numeric
test covers all of them with a few numpy calls.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from detectors.errors import ConfigurationError

NUMERIC = "numeric"
CATEGORICAL = "categorical"
FEATURE_TYPES = (NUMERIC, CATEGORICAL)


@dataclass(frozen=True)
class NumericColumn:
    """Finite float values plus a missing-value mask of the same length."""

    values: NDArray[np.float64]
    missing: NDArray[np.bool_]

    def __post_init__(self) -> None:
        if self.values.shape != self.missing.shape:
            raise ConfigurationError(
                f"missing: expected shape {self.values.shape}, got {self.missing.shape}"
            )
        if not bool(np.isfinite(self.values).all()):
            raise ConfigurationError("values: expected only finite numbers, got NaN or inf")

    def slice(self, start: int, stop: int) -> NumericColumn:
        """Return rows ``start:stop`` (views, no copy)."""
        return NumericColumn(self.values[start:stop], self.missing[start:stop])

    def take(self, rows: NDArray[np.intp]) -> NumericColumn:
        """Return the given rows, in that order (copies)."""
        return NumericColumn(self.values[rows], self.missing[rows])


@dataclass(frozen=True)
class CategoricalColumn:
    """Category labels as strings; ``None`` marks a missing value."""

    values: list[str | None]

    def slice(self, start: int, stop: int) -> CategoricalColumn:
        """Return rows ``start:stop``."""
        return CategoricalColumn(self.values[start:stop])

    def take(self, rows: NDArray[np.intp]) -> CategoricalColumn:
        """Return the given rows, in that order."""
        values = self.values
        return CategoricalColumn([values[row] for row in rows.tolist()])

    @cached_property
    def tally(self) -> Counter[str | None]:
        """How often each category occurs (``None``: missing), counted once per column.

        The drift test and the missing-value check of a feature both read it.
        """
        return Counter(self.values)


Column = NumericColumn | CategoricalColumn


class Ranked(NamedTuple):
    """A block's values in ascending order, per feature (see :attr:`NumericBlock.ranked`)."""

    order: NDArray[np.intp]
    """Positions in the segment, ascending by value; missing positions come last."""
    ordered: NDArray[np.float64]
    """The values in that order; ``inf`` where missing."""
    present: NDArray[np.intp]
    """Non-missing values per feature: row ``i`` holds them in ``ordered[i, :present[i]]``."""


@dataclass(frozen=True, eq=False)
class NumericBlock:
    """Several numeric features of one segment, stacked: row ``i`` is feature ``names[i]``.

    The numeric detectors watch many features at once; a block lets one numpy
    call cover all of them instead of one call per feature.

    Examples
    --------
    >>> batch = ColumnBatch.from_numeric(ts=[1.0, 2.0, 3.0], x=[3.0, 1.0, 2.0], y=[0.0, 5.0, 4.0])
    >>> block = NumericBlock.from_columns(batch.columns, ["x", "y"], len(batch))
    >>> block.values.shape, block.ranked.order.tolist()
    ((2, 3), [[1, 2, 0], [0, 2, 1]])

    """

    names: tuple[str, ...]
    values: NDArray[np.float64]
    missing: NDArray[np.bool_]

    def __post_init__(self) -> None:
        expected = (len(self.names), self.values.shape[-1] if self.values.ndim == 2 else -1)
        if self.values.shape != expected:
            raise ConfigurationError(f"values: expected shape {expected} (features, events), "
                                     f"got {self.values.shape}")
        if self.missing.shape != self.values.shape:
            raise ConfigurationError(
                f"missing: expected shape {self.values.shape}, got {self.missing.shape}")
        if not bool(np.isfinite(self.values).all()):
            raise ConfigurationError("values: expected only finite numbers, got NaN or inf")

    @property
    def events(self) -> int:
        """Events (columns of the arrays) in the segment."""
        return int(self.values.shape[1])

    @classmethod
    def from_columns(cls, columns: Mapping[str, Column], names: Sequence[str],
                     events: int) -> NumericBlock:
        """Stack ``names`` from ``columns``; a feature absent from them is missing throughout."""
        values: list[NDArray[np.float64]] = []
        missing: list[NDArray[np.bool_]] = []
        for name in names:
            column = columns.get(name)
            if column is None:
                values.append(np.zeros(events, dtype=np.float64))
                missing.append(np.ones(events, dtype=np.bool_))
                continue
            if not isinstance(column, NumericColumn):
                raise ConfigurationError(f"columns[{name!r}]: expected a NumericColumn, got "
                                         f"{type(column).__name__}")
            if column.values.shape[0] != events:
                raise ConfigurationError(f"columns[{name!r}]: expected {events} rows, got "
                                         f"{column.values.shape[0]}")
            values.append(column.values)
            missing.append(column.missing)
        if not names:
            return cls((), np.empty((0, events)), np.empty((0, events), dtype=np.bool_))
        # np.array of equal-length rows stacks them, without np.stack's Python-level checks.
        return cls(tuple(names), np.array(values), np.array(missing))

    @classmethod
    def of(cls, column: NumericColumn, name: str = "value") -> NumericBlock:
        """A block of one feature (views of the column's arrays, no copy)."""
        return cls((name,), column.values.reshape(1, -1), column.missing.reshape(1, -1))

    def slice(self, start: int, stop: int) -> NumericBlock:
        """Events ``start:stop`` of every feature (views, no copy)."""
        return NumericBlock(self.names, self.values[:, start:stop], self.missing[:, start:stop])

    def select(self, names: Sequence[str]) -> NumericBlock:
        """The rows of ``names``, in that order (this block itself when it already is)."""
        if tuple(names) == self.names:
            return self
        rows = self.rows(names)
        selected = NumericBlock(tuple(names), self.values[rows], self.missing[rows])
        if "ranked" in self.__dict__:  # already sorted: the rows' orders carry over
            order, ordered, present = self.ranked
            selected.__dict__["ranked"] = Ranked(order[rows], ordered[rows], present[rows])
        elif "ordered" in self.__dict__:
            selected.__dict__["ordered"] = self.ordered[rows]
        return selected

    def rows(self, names: Sequence[str]) -> list[int]:
        """The row of each of ``names``; refuses a name the block does not hold."""
        index = {name: row for row, name in enumerate(self.names)}
        if any(name not in index for name in names):
            raise ConfigurationError(f"block: expected features {list(names)}, "
                                     f"got {list(self.names)}")
        return [index[name] for name in names]

    @cached_property
    def any_missing(self) -> bool:
        """Whether any value of the block is missing."""
        return bool(self.missing.any())

    @cached_property
    def missing_counts(self) -> NDArray[np.intp]:
        """Missing values per feature."""
        counts: NDArray[np.intp] = (np.count_nonzero(self.missing, axis=1) if self.any_missing
                                    else np.zeros(self.values.shape[0], dtype=np.intp))
        return counts

    @cached_property
    def present(self) -> NDArray[np.intp]:
        """Non-missing values per feature."""
        present: NDArray[np.intp] = self.events - self.missing_counts
        return present

    def _sort_keys(self) -> NDArray[np.float64]:
        """The values, with missing ones as ``inf`` so that they sort last."""
        return np.where(self.missing, np.inf, self.values) if self.any_missing else self.values

    @cached_property
    def ordered(self) -> NDArray[np.float64]:
        """Every feature's values in ascending order, missing ones last (as ``inf``).

        Row ``i`` holds its present values in ``ordered[i, :present[i]]``. A plain
        sort: the tests that need only the order statistics do not pay for
        :attr:`ranked`'s positions.
        """
        if "ranked" in self.__dict__:
            return self.ranked.ordered
        ordered: NDArray[np.float64] = np.sort(self._sort_keys(), axis=1)
        return ordered

    @cached_property
    def ranked(self) -> Ranked:
        """Every feature's values in ascending order, with where each came from.

        Sorted once for every detector that needs to put per-value results back in
        event order (those that need only the sorted values read :attr:`ordered`).
        """
        keyed = self._sort_keys()
        order = np.argsort(keyed, axis=1)
        # One flat gather: take_along_axis builds broadcast index arrays, several times slower.
        ordered = np.take(keyed, order + self.row_starts[:, None])
        return Ranked(order, ordered, self.present)

    @cached_property
    def positions(self) -> NDArray[np.intp]:
        """Where each value of :attr:`ranked` sits in the flattened (C-order) arrays."""
        positions: NDArray[np.intp] = self.ranked.order + self.row_starts[:, None]
        return positions

    @cached_property
    def row_starts(self) -> NDArray[np.intp]:
        """Index of each row's first value in the flattened (C-order) arrays."""
        return np.arange(self.values.shape[0], dtype=np.intp) * self.events


@dataclass(frozen=True)
class ColumnBatch:
    """Events of one model version, column by column, in arrival order.

    Parameters
    ----------
    ts
        Event times, Unix epoch seconds.
    columns
        One column per monitored feature.
    outputs
        The model's ``prediction`` and ``score`` columns, when present.
    rejected
        Per feature, how many values were refused upstream (non-finite numbers,
        wrong types) in the events this batch covers; those events never reach
        a detector but the data-quality checks count them.

    Examples
    --------
    >>> batch = ColumnBatch.from_numeric(ts=[1.0, 2.0], x=[0.5, 1.5])
    >>> len(batch), batch.columns["x"].values.tolist()
    (2, [0.5, 1.5])

    """

    ts: NDArray[np.float64]
    columns: dict[str, Column]
    outputs: dict[str, Column] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.ts.shape[0]
        for name, column in [*self.columns.items(), *self.outputs.items()]:
            length = len(column.values)
            if length != n:
                raise ConfigurationError(f"columns[{name!r}]: expected {n} rows, got {length}")

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def slice(self, start: int, stop: int) -> ColumnBatch:
        """Rows ``start:stop``; rejected counts stay with the first slice."""
        return ColumnBatch(
            ts=self.ts[start:stop],
            columns={name: col.slice(start, stop) for name, col in self.columns.items()},
            outputs={name: col.slice(start, stop) for name, col in self.outputs.items()},
            rejected=self.rejected if start == 0 else {},
        )

    def take(self, rows: NDArray[np.intp]) -> ColumnBatch:
        """The events at ``rows`` (ascending), e.g. those of one segment; no rejected counts.

        >>> batch = ColumnBatch.from_numeric(ts=[1.0, 2.0, 3.0], x=[0.5, 1.5, 2.5])
        >>> batch.take(np.array([0, 2])).columns["x"].values.tolist()
        [0.5, 2.5]
        """
        return ColumnBatch(
            ts=self.ts[rows],
            columns={name: col.take(rows) for name, col in self.columns.items()},
            outputs={name: col.take(rows) for name, col in self.outputs.items()})

    @classmethod
    def from_numeric(cls, ts: list[float], **features: list[float]) -> ColumnBatch:
        """Build a batch of complete numeric columns (handy in tests and docs)."""
        columns: dict[str, Column] = {}
        for name, values in features.items():
            array = np.asarray(values, dtype=np.float64)
            columns[name] = NumericColumn(array, np.zeros(array.shape, dtype=np.bool_))
        return cls(ts=np.asarray(ts, dtype=np.float64), columns=columns)
