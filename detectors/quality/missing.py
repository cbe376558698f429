"""Missing-value rate of one feature against its reference rate."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from detectors import stats
from detectors.base import CRITICAL, WARNING, TestResult, WindowedTest
from detectors.batch import CategoricalColumn, NumericColumn
from detectors.errors import require


class MissingRate(WindowedTest[NumericColumn | CategoricalColumn]):
    """One-sided two-proportion z-test of a rise in the missing-value rate.

    Parameters
    ----------
    alpha
        False-alarm probability of one window's test.
    min_increase
        Smallest absolute rise of the missing rate worth an alert.

    Examples
    --------
    >>> test = MissingRate(alpha=1e-6)
    >>> test.update_many(CategoricalColumn(["a"] * 990 + [None] * 10))
    >>> test.end_reference()
    >>> test.update_many(CategoricalColumn(["a"] * 700 + [None] * 300))
    >>> test.end_window().drift
    True

    """

    name: ClassVar[str] = "missing_rate"
    config_keys: ClassVar[tuple[str, ...]] = ("alpha", "min_increase")
    state_keys: ClassVar[tuple[str, ...]] = (
        "reference_ready", "drift", "reference_events", "reference_missing", "events", "missing")

    def __init__(self, alpha: float, min_increase: float = 0.05) -> None:
        require(0.0 < min_increase <= 1.0, "min_increase", "a share in (0, 1]", min_increase)
        self.min_increase = min_increase
        super().__init__(alpha)

    def _reset(self) -> None:
        self._reference_ready = False
        self._drift = False
        self._reference_events = 0
        self._reference_missing = 0
        self._events = 0
        self._missing = 0

    def update_many(self, column: NumericColumn | CategoricalColumn) -> None:
        """Count rows and missing rows of a segment."""
        if isinstance(column, NumericColumn):
            missing = int(np.count_nonzero(column.missing))
        else:
            missing = column.values.count(None)
        if self._reference_ready:
            self._events += len(column.values)
            self._missing += missing
        else:
            self._reference_events += len(column.values)
            self._reference_missing += missing

    def end_reference(self) -> None:
        """Freeze the reference missing rate."""
        self._reference_ready = True

    def end_window(self) -> TestResult:
        """Test the window's missing rate; reset the window."""
        n_ref, k_ref = self._reference_events, self._reference_missing
        n_win, k_win = self._events, self._missing
        self._events = 0
        self._missing = 0
        # Half-count smoothing keeps the z-score finite when the reference had no gaps.
        ref_rate = (k_ref + 0.5) / (n_ref + 1.0)
        win_rate = k_win / n_win if n_win else 0.0
        pooled = (k_ref + k_win + 0.5) / (n_ref + n_win + 1.0)
        se = math.sqrt(pooled * (1 - pooled) * (1 / max(n_ref, 1) + 1 / max(n_win, 1)))
        z = (win_rate - ref_rate) / se if n_win else 0.0
        threshold = stats.normal_upper_quantile(self.alpha)
        increase = win_rate - k_ref / max(n_ref, 1)
        drift = n_win > 0 and z > threshold and increase >= self.min_increase
        self._drift = drift
        return TestResult(
            detector="missing_rate", drift=drift, statistic=z, threshold=threshold,
            p_value=0.5 * math.erfc(z / math.sqrt(2.0)), effect_size=increase,
            severity=CRITICAL if increase >= 0.2 else WARNING, window_events=n_win,
            explanation=f"missing values {k_ref / max(n_ref, 1):.1%} → {win_rate:.1%} "
            f"({k_win} of {n_win} events)",
            reference={"events": float(n_ref), "missing_rate": k_ref / max(n_ref, 1)})
