"""Columnar batches: the only input format the detectors accept.

The stream layer decodes and validates events, then hands each model's events
over as one :class:`ColumnBatch`: numpy arrays per feature, never per-event
dicts. Numeric values are always finite here; missing values are flagged in a
mask and filled with 0.0, so no NaN can reach a detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class CategoricalColumn:
    """Category labels as strings; ``None`` marks a missing value."""

    values: list[str | None]

    def slice(self, start: int, stop: int) -> CategoricalColumn:
        """Return rows ``start:stop``."""
        return CategoricalColumn(self.values[start:stop])


Column = NumericColumn | CategoricalColumn


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

    @classmethod
    def from_numeric(cls, ts: list[float], **features: list[float]) -> ColumnBatch:
        """Build a batch of complete numeric columns (handy in tests and docs)."""
        columns: dict[str, Column] = {}
        for name, values in features.items():
            array = np.asarray(values, dtype=np.float64)
            columns[name] = NumericColumn(array, np.zeros(array.shape, dtype=np.bool_))
        return cls(ts=np.asarray(ts, dtype=np.float64), columns=columns)
