"""Missing-value rate of features against their reference rates."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from detectors import stats
from detectors.base import CRITICAL, WARNING, FeatureTest, TestResult
from detectors.batch import CategoricalColumn, NumericBlock, NumericColumn
from detectors.errors import require

Counts = NDArray[np.int64]


class MissingRate(FeatureTest[NumericColumn | CategoricalColumn | NumericBlock]):
    """One-sided two-proportion z-test of a rise in the missing-value rate, per feature.

    Parameters
    ----------
    alpha
        False-alarm probability of one window's test of one feature.
    min_increase
        Smallest absolute rise of the missing rate worth an alert.
    columns
        The numeric features watched together (see :class:`~detectors.base.FeatureTest`);
        ``None`` for one feature fed as a column, numeric or categorical.

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
    STATE_VERSION: ClassVar[int] = 2
    config_keys: ClassVar[tuple[str, ...]] = ("alpha", "min_increase", "columns")
    state_keys: ClassVar[tuple[str, ...]] = (
        "reference_ready", "drift", "reference_events", "reference_missing", "events", "missing")

    def __init__(self, alpha: float, min_increase: float = 0.05,
                 columns: list[str] | None = None) -> None:
        require(0.0 < min_increase <= 1.0, "min_increase", "a share in (0, 1]", min_increase)
        self.min_increase = min_increase
        super().__init__(alpha, columns)

    def _reset(self) -> None:
        d = self.width
        self._reference_ready = False
        self._drift = False
        self._reference_events: Counts = np.zeros(d, dtype=np.int64)
        self._reference_missing: Counts = np.zeros(d, dtype=np.int64)
        self._events: Counts = np.zeros(d, dtype=np.int64)
        self._missing: Counts = np.zeros(d, dtype=np.int64)
        # Derived, not state: each feature's last verdict and the counts it was given. A
        # feature without gaps gets the same verdict window after window.
        self._last: list[tuple[tuple[int, ...], TestResult] | None] = [None] * d

    def update_many(self, segment: NumericColumn | CategoricalColumn | NumericBlock) -> None:
        """Count rows and missing rows of a segment."""
        totals, missing_totals = ((self._events, self._missing) if self._reference_ready
                                  else (self._reference_events, self._reference_missing))
        if isinstance(segment, CategoricalColumn):
            self._require_one_feature(segment)
            # One feature: an item update (adding a Python int to an array costs 6 times more).
            totals[0] += len(segment.values)
            missing_totals[0] += segment.tally.get(None, 0)
            return
        block = self._block(segment)
        totals += block.events
        missing_totals += block.missing_counts

    def end_reference(self) -> None:
        """Freeze the reference missing rates."""
        self._reference_ready = True

    def _close_windows(self) -> list[TestResult]:
        """Test each feature's missing rate; reset the windows."""
        threshold = stats.normal_upper_quantile(self.alpha)
        # A few scalars per feature: plain Python beats numpy's per-call overhead here.
        results = []
        for feature, counts in enumerate(zip(
                self._reference_events.tolist(), self._reference_missing.tolist(),
                self._events.tolist(), self._missing.tolist(), strict=True)):
            last = self._last[feature]
            if last is None or last[0] != counts:
                last = counts, self._evaluate(*counts, threshold)
                self._last[feature] = last
            results.append(last[1])
        self._events[:] = 0
        self._missing[:] = 0
        return results

    def _evaluate(self, n_ref: int, k_ref: int, n_win: int, k_win: int,
                  threshold: float) -> TestResult:
        # Half-count smoothing keeps the z-score finite when the reference had no gaps.
        ref_rate = (k_ref + 0.5) / (n_ref + 1.0)
        win_rate = k_win / n_win if n_win else 0.0
        pooled = (k_ref + k_win + 0.5) / (n_ref + n_win + 1.0)
        se = math.sqrt(pooled * (1 - pooled) * (1 / max(n_ref, 1) + 1 / max(n_win, 1)))
        z = (win_rate - ref_rate) / se if n_win else 0.0
        increase = win_rate - k_ref / max(n_ref, 1)
        drift = n_win > 0 and z > threshold and increase >= self.min_increase
        return TestResult(
            detector="missing_rate", drift=drift, statistic=z, threshold=threshold,
            p_value=0.5 * math.erfc(z / math.sqrt(2.0)), effect_size=increase,
            severity=CRITICAL if increase >= 0.2 else WARNING, window_events=n_win,
            explanation=f"missing values {k_ref / max(n_ref, 1):.1%} → {win_rate:.1%} "
            f"({k_win} of {n_win} events)",
            reference={"events": int(n_ref), "missing_rate": k_ref / max(n_ref, 1)})

    def _restore(self, key: str, value: Any) -> Any:
        if key in ("reference_events", "reference_missing", "events", "missing"):
            return np.asarray(value, dtype=np.int64).reshape(self.width)
        return value
