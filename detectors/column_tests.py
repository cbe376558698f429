"""The per-column tests of one set of a model's columns: its features, or its outputs.

Numeric columns share one test of each kind (distribution, sequential and,
for features, missing values and range), fed one
:class:`~detectors.batch.NumericBlock` per segment so that a segment costs a
few numpy calls whatever the number of columns. The sequential test locates
every value among its knots to score it; the histogram and range tests then
take their counts from those locations (:class:`~detectors.drift.row_bins.RowBins`)
instead of sorting the values again. Each categorical column has its own
distribution (and missing-value) test, fed the column itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.base import TestResult
from detectors.batch import (
    NUMERIC,
    CategoricalColumn,
    Column,
    NumericBlock,
)
from detectors.config import TESTED_CATEGORIES, MonitorConfig
from detectors.drift.categorical import CategoricalDrift
from detectors.drift.cusum import NumericCusum
from detectors.drift.numeric import NumericDrift
from detectors.drift.row_bins import RowBins
from detectors.errors import ConfigurationError
from detectors.quality.missing import MissingRate
from detectors.quality.range import OutOfRangeRate


class ColumnTests:
    """Distribution tests (and, with ``quality``, data-quality checks) of a set of columns.

    Parameters
    ----------
    schema
        Column name → ``"numeric"`` or ``"categorical"``, in report order.
    alpha
        False-alarm probability of one window's test of one column.
    rate
        False-alarm rate per event of each numeric column's sequential detector.
    settings
        The monitor's settings (reference size, effect floors, …).
    quality
        Whether the columns also get missing-value and out-of-range checks.

    """

    def __init__(self, schema: Mapping[str, str], alpha: float, rate: float,
                 settings: MonitorConfig, quality: bool) -> None:
        self.numeric = [name for name, kind in schema.items() if kind == NUMERIC]
        self.categorical = [name for name, kind in schema.items() if kind != NUMERIC]
        self.quality = quality
        numeric, size = self.numeric, settings.reference_size
        self.drift = (NumericDrift(alpha, size, settings.min_psi, columns=numeric)
                      if numeric else None)
        self.sequential = (NumericCusum(rate, size, min_shift=settings.min_shift,
                                        min_variance_ratio=settings.min_variance_ratio,
                                        columns=numeric) if numeric else None)
        self.missing = (MissingRate(alpha, settings.min_missing_increase, columns=numeric)
                        if numeric and quality else None)
        self.range = (OutOfRangeRate(alpha, size,
                                     min_increase=settings.min_out_of_range_increase,
                                     columns=numeric) if numeric and quality else None)
        self.categories = {name: CategoricalDrift(alpha, max_categories=TESTED_CATEGORIES,
                                                  max_known=settings.max_tracked_categories,
                                                  min_psi=settings.min_psi,
                                                  min_new_rate=settings.min_new_category_rate)
                           for name in self.categorical}
        self.category_missing = ({name: MissingRate(alpha, settings.min_missing_increase)
                                  for name in self.categorical} if quality else {})
        self._bins: RowBins | None = None

    def block(self, columns: Mapping[str, Column], events: int) -> NumericBlock | None:
        """The numeric columns of a batch, stacked (absent ones missing throughout)."""
        return NumericBlock.from_columns(columns, self.numeric, events) if self.numeric else None

    def update(self, block: NumericBlock | None, columns: Mapping[str, Column], start: int,
               stop: int, whole: bool) -> list[tuple[int, str, TestResult]]:
        """Feed rows ``start:stop`` of a batch's ``columns`` (``block`` holds just those rows).

        ``whole`` says the rows are the whole batch. Returns the sequential alarms
        as ``(row in the batch, column, result)``.
        """
        for name, test in self.categories.items():
            column = columns.get(name)
            if column is None:  # absent: missing throughout
                column = CategoricalColumn([None] * (stop - start))
            elif not isinstance(column, CategoricalColumn):
                raise ConfigurationError(f"columns[{name!r}]: expected a CategoricalColumn, "
                                         f"got {type(column).__name__}")
            elif not whole:
                column = column.slice(start, stop)
            test.update_many(column)
            if name in self.category_missing:
                self.category_missing[name].update_many(column)
        if block is None or self.drift is None or self.sequential is None:
            return []
        if self.missing is not None:
            self.missing.update_many(block)
        self.sequential.update_many(block)
        rows = self.sequential.last_rows
        if self._bins is not None and rows is not None:
            # The sequential test located every value: the histogram and range counts follow
            # from where, without sorting.
            counts = self._bins.count(block, rows)
            self.drift.add_counts(block, counts.histograms)
            if self.range is not None:
                self.range.add_counts(block, counts.below, counts.above)
        else:
            self.drift.update_many(block)
            if self.range is not None:
                self.range.update_many(block)
        return [(start + alarm.row, self.numeric[alarm.feature], alarm.result)
                for alarm in self.sequential.last_alarms]

    @property
    def scores(self) -> NDArray[np.int64] | None:
        """The last segment's normal scores of the numeric columns (None: none computed).

        Those of the sequential test (see ``NumericCusum.last_scores``), for a joint
        test over the same columns to reuse.
        """
        return None if self.sequential is None else self.sequential.last_scores

    def scores_of(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        """Normal scores of the first ``len(values)`` numeric columns' values, a row each."""
        if self.sequential is None:
            raise ConfigurationError("scores_of: no numeric columns")
        full = np.zeros((self.sequential.width, values.shape[1]), dtype=np.float64)
        full[:values.shape[0]] = values
        return self.sequential.scores_of(full)[:values.shape[0]]

    def end_reference(self) -> None:
        """Close the reference of every test."""
        for test in self._tests():
            test.end_reference()
        self._derive()

    def _derive(self) -> None:
        """Count the histogram and range from the sequential test's rows (derived, not state)."""
        self._bins = None
        if self.drift is not None and self.sequential is not None and self.drift.reference_ready:
            self._bins = RowBins(
                self.sequential.lookup, self.drift.edges,
                self.range.search_bounds if self.range is not None else None)

    def end_window(self) -> dict[str, dict[str, TestResult]]:
        """Close every test's window; verdicts by check, then column, in schema order.

        A numeric column's ``distribution`` verdict is its windowed test's,
        unless only its sequential detector found drift in the window.
        """
        distribution = {name: test.end_window() for name, test in self.categories.items()}
        if self.drift is not None and self.sequential is not None:
            alarmed = self.sequential.end_alarmed_windows()
            for feature, (name, windowed) in enumerate(zip(self.numeric, self.drift.end_windows(),
                                                           strict=True)):
                sequential = alarmed.get(feature)
                if sequential is not None and not windowed.drift:
                    # The alarm speaks for the window; the histograms still show what moved.
                    windowed = replace(sequential, distribution=partial(
                        getattr, windowed, "distribution"))
                distribution[name] = windowed
        verdicts = {"distribution": distribution}
        if self.quality:
            missing = {name: test.end_window() for name, test in self.category_missing.items()}
            if self.missing is not None and self.range is not None:
                missing.update(zip(self.numeric, self.missing.end_windows(), strict=True))
                verdicts["out_of_range_rate"] = dict(
                    zip(self.numeric, self.range.end_windows(), strict=True))
            verdicts["missing_rate"] = missing
        return verdicts

    def _tests(self) -> list[Any]:
        banks = [self.drift, self.sequential, self.missing, self.range]
        return [*(bank for bank in banks if bank is not None), *self.categories.values(),
                *self.category_missing.values()]

    def to_state(self) -> dict[str, Any]:
        """Plain-dict state of every test (categorical ones by column name)."""
        return {
            "drift": {name: test.to_state() for name, test in self.categories.items()},
            "missing": {name: test.to_state() for name, test in self.category_missing.items()},
            "numeric_drift": None if self.drift is None else self.drift.to_state(),
            "sequential": None if self.sequential is None else self.sequential.to_state(),
            "numeric_missing": None if self.missing is None else self.missing.to_state(),
            "range": None if self.range is None else self.range.to_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Replace every test with its counterpart in :meth:`to_state` output.

        Raises ``KeyError`` or :class:`~detectors.errors.StateError` when a test is
        missing or does not fit these columns.
        """
        self.categories = {name: CategoricalDrift.from_state(state["drift"][name])
                           for name in self.categorical}
        self.category_missing = {name: MissingRate.from_state(state["missing"][name])
                                 for name in self.category_missing}
        if self.drift is not None:
            self.drift = NumericDrift.from_state(state["numeric_drift"])
            self.sequential = NumericCusum.from_state(state["sequential"])
            _check_columns(self.drift.columns, self.numeric)
            _check_columns(self.sequential.columns, self.numeric)
        if self.missing is not None and self.range is not None:
            self.missing = MissingRate.from_state(state["numeric_missing"])
            self.range = OutOfRangeRate.from_state(state["range"])
            _check_columns(self.missing.columns, self.numeric)
            _check_columns(self.range.columns, self.numeric)
        self._derive()


def _check_columns(restored: list[str] | None, expected: list[str]) -> None:
    if restored != expected:
        raise KeyError(f"columns: expected {expected}, got {restored}")
