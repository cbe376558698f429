"""Share of numeric features' values outside their reference range, against the reference's own.

The reference range is [p0.1, p99.9] of the reference values by default
(``tail=0`` makes it [min, max]). Values beyond a range estimated from n
reference values are expected now and then: for continuous data the probability
mass outside two order statistics follows a Beta distribution, Beta(k + 2,
n − k − 1) when k reference values lie outside them. A window's count outside is
then beta-binomial, and its exact upper tail is the test, so the reference's own
rate, sampling noise included, is the null (a z-test would be far off at the
1e-8 level and the handful of events a window has out there). A drift also needs
``min_increase``: the window's share outside must exceed the reference's by that
much, so that a large window does not flag a few stray values.

One test watches every feature of a :class:`~detectors.batch.NumericBlock`;
counting a segment's values outside each range takes a few numpy calls for
all of them, in the values the block has already sorted (in the monitor, the counts come
from where the sequential test located each value: see :mod:`detectors.drift.row_bins`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from detectors.base import CRITICAL, WARNING, FeatureTest, TestResult
from detectors.batch import NumericBlock, NumericColumn
from detectors.buffers import buffer_rows, collect, empty_buffer, restore_buffer
from detectors.errors import ConfigurationError, require

_MIN_EVENTS = 50
Floats = NDArray[np.float64]


class OutOfRangeRate(FeatureTest[NumericColumn | NumericBlock]):
    """One-sided exact test of a rise in the share of values outside the reference range.

    Parameters
    ----------
    alpha
        False-alarm probability of one window's test of one feature.
    reference_size
        Capacity of each feature's reference buffer (values); extra reference values
        are ignored.
    tail
        Share cut from each end of the reference for the range: [p(tail), p(1 − tail)].
    min_increase
        Smallest absolute rise of the share outside the range worth an alert.
    critical_increase
        Rise from which a drift is ``critical`` rather than ``warning``.
    columns
        The features watched (see :class:`~detectors.base.FeatureTest`); ``None``
        for one feature fed as a :class:`~detectors.batch.NumericColumn`.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> test = OutOfRangeRate(alpha=1e-6)
    >>> test.update_many(NumericColumn(rng.normal(size=5000), np.zeros(5000, bool)))
    >>> test.end_reference()
    >>> window = np.r_[rng.normal(size=1900), rng.normal(1000.0, 1.0, 100)]
    >>> test.update_many(NumericColumn(window, np.zeros(2000, bool)))
    >>> result = test.end_window()
    >>> result.drift, result.explanation.split(":")[0]
    (True, '5.2% of the window outside the reference range [-3.058, 3.051] (reference 0.2%)')

    """

    name: ClassVar[str] = "out_of_range_rate"
    STATE_VERSION: ClassVar[int] = 2
    config_keys: ClassVar[tuple[str, ...]] = (
        "alpha", "reference_size", "tail", "min_increase", "critical_increase", "columns")
    state_keys: ClassVar[tuple[str, ...]] = (
        "reference_ready", "drift", "buffer", "buffer_used", "low", "high",
        "reference_events", "reference_outside", "events", "below", "above", "window_min",
        "window_max",
    )

    def __init__(
        self,
        alpha: float,
        reference_size: int = 5000,
        tail: float = 0.001,
        min_increase: float = 0.01,
        critical_increase: float = 0.1,
        columns: list[str] | None = None,
    ) -> None:
        require(reference_size >= _MIN_EVENTS, "reference_size", f"an integer >= {_MIN_EVENTS}",
                reference_size)
        require(0.0 <= tail <= 0.05, "tail", "a share in [0, 0.05]", tail)
        require(0.0 < min_increase <= 1.0, "min_increase", "a share in (0, 1]", min_increase)
        require(critical_increase >= min_increase, "critical_increase",
                f"a share >= min_increase ({min_increase})", critical_increase)
        self.reference_size = reference_size
        self.tail = tail
        self.min_increase = min_increase
        self.critical_increase = critical_increase
        super().__init__(alpha, columns)

    def _reset(self) -> None:
        d = self.width
        self._reference_ready = False
        self._drift = False
        self._buffer = empty_buffer(d, self.reference_size)
        self._buffer_used = np.zeros(d, dtype=np.int64)
        # The range per feature; NaN for a feature whose reference was too small to test.
        self._low: Floats = np.full(d, np.nan)
        self._high: Floats = np.full(d, np.nan)
        self._reference_events = np.zeros(d, dtype=np.int64)
        self._reference_outside = np.zeros(d, dtype=np.int64)
        self._events = np.zeros(d, dtype=np.int64)
        self._below = np.zeros(d, dtype=np.int64)
        self._above = np.zeros(d, dtype=np.int64)
        # The window's smallest and largest values (inf and -inf before the first one).
        self._window_min: Floats = np.full(d, np.inf)
        self._window_max: Floats = np.full(d, -np.inf)
        # Derived, not state: the last null distribution computed, per feature, by window size.
        self._survival: dict[int, tuple[int, Floats, float]] = {}
        # Derived, not state: per feature, low and the next float above high (see update_many).
        self._bounds: Floats = np.full((d, 2), np.nan)
        self._references: list[dict[str, float]] = [{} for _ in range(d)]

    def update_many(self, segment: NumericColumn | NumericBlock) -> None:
        """Add the non-missing values of a segment to the references or windows."""
        block = self._block(segment)
        if block.events == 0:
            return
        if not self._reference_ready:
            self._buffer = collect(self._buffer, self._buffer_used, block, self.reference_size)
            return
        present = block.present
        if not present.any():
            return
        self._events += present
        ordered = block.ordered
        # One binary search per bound in the sorted values: x <= high is x < the next float
        # above high, so both counts are of values below a bound. Missing values are inf:
        # never below a range, never at or under its top. Untested features (NaN bounds)
        # count nothing.
        within = np.empty((self.width, 2), dtype=np.intp)
        for feature, (values, bounds) in enumerate(zip(ordered, self._bounds, strict=True)):
            within[feature] = values.searchsorted(bounds)
        tested = self._high == self._high
        self._below += np.where(tested, within[:, 0], 0)
        self._above += np.where(tested, present - within[:, 1], 0)
        # A feature without values has inf first and last: neither moves its window range.
        np.minimum(self._window_min, ordered[:, 0], out=self._window_min)
        largest = ordered[np.arange(present.size), np.maximum(present - 1, 0)]
        np.maximum(self._window_max, np.where(present > 0, largest, -np.inf),
                   out=self._window_max)

    @property
    def search_bounds(self) -> Floats:
        """Per feature, the low bound and the next float above the high one (NaN: untested).

        A value is below the range if it is below the first, above it if it is at
        or above the second.
        """
        return self._bounds.copy()

    def add_counts(self, block: NumericBlock, below: NDArray[np.int64],
                   above: NDArray[np.int64]) -> None:
        """Add a segment whose values outside the range were counted elsewhere.

        ``below`` and ``above`` count, per feature, the present values below and
        at or above its :attr:`search_bounds` (0 for untested features; see
        :class:`~detectors.drift.row_bins.RowBins`). Only once the reference is closed.
        """
        if not self._reference_ready:
            raise ConfigurationError("add_counts: the reference is not closed yet")
        present = block.present
        if not present.any():
            return
        self._events += present
        self._below += below
        self._above += above
        if block.any_missing:
            smallest = np.where(block.missing, np.inf, block.values).min(axis=1)
            largest = np.where(block.missing, -np.inf, block.values).max(axis=1)
        else:
            smallest, largest = block.values.min(axis=1), block.values.max(axis=1)
        np.minimum(self._window_min, smallest, out=self._window_min)
        np.maximum(self._window_max, largest, out=self._window_max)

    def end_reference(self) -> None:
        """Fix each feature's range and its own share outside; free the buffer."""
        for feature in range(self.width):
            reference = self._buffer[feature, :int(self._buffer_used[feature])]
            if reference.size >= _MIN_EVENTS:
                low, high = np.quantile(reference, [self.tail, 1.0 - self.tail])
                self._low[feature], self._high[feature] = low, high
                self._reference_outside[feature] = (np.count_nonzero(reference < low)
                                                    + np.count_nonzero(reference > high))
            self._reference_events[feature] = reference.size
        self._derive()
        self._buffer = empty_buffer(self.width, 0)
        self._buffer_used[:] = 0
        self._reference_ready = True

    def _derive(self) -> None:
        """The bounds that update_many searches for: low, and the next float above high."""
        self._bounds = np.column_stack([self._low, np.nextafter(self._high, np.inf)])
        # Each tested feature's reference, as its verdicts quote it: the same every window.
        self._references = [
            {"events": int(n_ref), "low": low, "high": high,
             "out_of_range_rate": k_ref / n_ref} if low == low and n_ref else {}
            for n_ref, k_ref, low, high in zip(
                self._reference_events.tolist(), self._reference_outside.tolist(),
                self._low.tolist(), self._high.tolist(), strict=True)]

    def _close_windows(self) -> list[TestResult]:
        """Test each feature's share outside its range; reset the windows."""
        results = [self._evaluate(feature, *counts) for feature, counts in enumerate(zip(
            self._reference_events.tolist(), self._reference_outside.tolist(),
            self._events.tolist(), self._below.tolist(), self._above.tolist(),
            self._low.tolist(), self._high.tolist(), self._window_min.tolist(),
            self._window_max.tolist(), strict=True))]
        self._events[:] = 0
        self._below[:] = 0
        self._above[:] = 0
        self._window_min[:] = np.inf
        self._window_max[:] = -np.inf
        return results

    def _evaluate(self, feature: int, n_ref: int, k_ref: int, n: int, below: int, above: int,
                  low: float, high: float, window_low: float, window_high: float) -> TestResult:
        k = below + above
        if math.isnan(low) or n == 0:
            reason = (f"{n_ref} reference values (need {_MIN_EVENTS})" if math.isnan(low)
                      else "no values in the window")
            return TestResult(
                detector="out_of_range_rate", drift=False, statistic=0.0, threshold=math.inf,
                p_value=None, effect_size=0.0, severity=WARNING, window_events=n,
                explanation=f"not tested: {reason}", reference={"events": int(n_ref)})
        survival, threshold = self._null(feature, n, n_ref, k_ref)
        reference = self._references[feature]
        rate, reference_rate = k / n, reference["out_of_range_rate"]
        effect = rate - reference_rate
        p_value = float(survival[k])
        drift = p_value <= self.alpha and effect >= self.min_increase

        def explain() -> str:
            return (f"{rate:.1%} of the window outside the reference range "
                    f"[{low:.4g}, {high:.4g}] (reference {reference_rate:.1%}): "
                    f"{above / n:.1%} above, {below / n:.1%} below; window range "
                    f"[{window_low:.4g}, {window_high:.4g}]")

        return TestResult(
            detector="out_of_range_rate", drift=drift, statistic=rate, threshold=threshold,
            p_value=p_value, effect_size=effect,
            severity=CRITICAL if effect >= self.critical_increase else WARNING,
            window_events=n, explanation=explain, reference=reference)

    def _null(self, feature: int, n: int, n_ref: int, k_ref: int) -> tuple[Floats, float]:
        """The null survival function of the count outside for ``n`` values, and the threshold.

        The threshold is the smallest share outside whose probability is at most
        ``alpha``. Windows of a feature usually hold the same number of values, so
        the last pair computed is kept: an O(n) sum per feature and window otherwise.
        """
        cached = self._survival.get(feature)
        if cached is not None and cached[0] == n:
            return cached[1], cached[2]
        survival = _beta_binomial_survival(n, k_ref + 2.0, max(n_ref - k_ref - 1.0, 1.0))
        beyond = np.flatnonzero(survival <= self.alpha)
        threshold = float(beyond[0]) / n if beyond.size else math.inf
        self._survival[feature] = (n, survival, threshold)
        return survival, threshold

    def _restore(self, key: str, value: Any) -> Any:
        d = self.width
        if key == "buffer":
            return restore_buffer(value, self.reference_size, self._reference_ready)
        if key in ("low", "high", "window_min", "window_max"):
            # State holds None for "no value" (JSON has no NaN or inf).
            empty = {"low": np.nan, "high": np.nan, "window_min": np.inf,
                     "window_max": -np.inf}[key]
            return np.array([empty if item is None else item for item in value],
                            dtype=np.float64).reshape(d)
        return np.asarray(value, dtype=np.int64).reshape(d) if key not in (
            "reference_ready", "drift") else value

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state; only the used part of the reference buffer is kept."""
        state = super().to_state()
        learned = state["state"]
        learned["buffer"] = buffer_rows(self._buffer, self._buffer_used)
        for key in ("low", "high", "window_min", "window_max"):
            learned[key] = [None if not math.isfinite(item) else item
                            for item in getattr(self, "_" + key).tolist()]
        return state


def _beta_binomial_survival(n: int, a: float, b: float) -> NDArray[np.float64]:
    """P(K >= x) for x = 0..n, K ~ BetaBinomial(n, a, b), from the pmf's ratio recurrence.

    >>> [round(p, 4) for p in _beta_binomial_survival(2, 1.0, 1.0).tolist()]
    [1.0, 0.6667, 0.3333]
    """
    x = np.arange(n, dtype=np.float64)
    log_ratio = np.log((n - x) * (x + a)) - np.log((x + 1.0) * (n - x - 1.0 + b))
    log_pmf = np.r_[0.0, np.cumsum(log_ratio)]
    pmf = np.exp(log_pmf - log_pmf.max())
    # Summed from the far tail inwards, so the smallest probabilities keep their precision.
    tail = np.cumsum(pmf[::-1])[::-1]
    survival: NDArray[np.float64] = tail / tail[0]
    return survival
