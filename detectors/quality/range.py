"""Share of a numeric feature's values outside the reference range, against the reference's own.

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
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from detectors.base import CRITICAL, WARNING, TestResult, WindowedTest
from detectors.batch import NumericColumn
from detectors.errors import require

_MIN_EVENTS = 50


class OutOfRangeRate(WindowedTest[NumericColumn]):
    """One-sided exact test of a rise in the share of values outside the reference range.

    Parameters
    ----------
    alpha
        False-alarm probability of one window's test.
    reference_size
        Capacity of the reference buffer (values); extra reference values are ignored.
    tail
        Share cut from each end of the reference for the range: [p(tail), p(1 − tail)].
    min_increase
        Smallest absolute rise of the share outside the range worth an alert.
    critical_increase
        Rise from which a drift is ``critical`` rather than ``warning``.

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
    config_keys: ClassVar[tuple[str, ...]] = (
        "alpha", "reference_size", "tail", "min_increase", "critical_increase")
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
        super().__init__(alpha)

    def _reset(self) -> None:
        self._reference_ready = False
        self._drift = False
        self._buffer: NDArray[np.float64] = np.empty(self.reference_size, dtype=np.float64)
        self._buffer_used = 0
        self._low: float | None = None
        self._high: float | None = None
        self._reference_events = 0
        self._reference_outside = 0
        self._events = 0
        self._below = 0
        self._above = 0
        self._window_min: float | None = None
        self._window_max: float | None = None

    def update_many(self, column: NumericColumn) -> None:
        """Add the non-missing values of a segment to the reference or window."""
        values = column.values[~column.missing]
        if not self._reference_ready:
            take = min(values.size, self.reference_size - self._buffer_used)
            self._buffer[self._buffer_used:self._buffer_used + take] = values[:take]
            self._buffer_used += take
            return
        if values.size == 0:
            return
        self._events += int(values.size)
        if self._low is None or self._high is None:
            return
        self._below += int(np.count_nonzero(values < self._low))
        self._above += int(np.count_nonzero(values > self._high))
        smallest, largest = float(values.min()), float(values.max())
        self._window_min = smallest if self._window_min is None else min(self._window_min,
                                                                          smallest)
        self._window_max = largest if self._window_max is None else max(self._window_max,
                                                                         largest)

    def end_reference(self) -> None:
        """Fix the reference range and its own share outside; free the buffer."""
        reference = self._buffer[:self._buffer_used]
        if reference.size >= _MIN_EVENTS:
            low, high = np.quantile(reference, [self.tail, 1.0 - self.tail])
            self._low, self._high = float(low), float(high)
            self._reference_outside = int(np.count_nonzero(reference < low)
                                          + np.count_nonzero(reference > high))
        self._reference_events = int(reference.size)
        self._buffer = np.empty(0, dtype=np.float64)
        self._buffer_used = 0
        self._reference_ready = True

    def end_window(self) -> TestResult:
        """Test the window's share outside the range; reset the window."""
        result = self._evaluate()
        self._drift = result.drift
        self._events = 0
        self._below = 0
        self._above = 0
        self._window_min = None
        self._window_max = None
        return result

    def _evaluate(self) -> TestResult:
        n_ref, k_ref = self._reference_events, self._reference_outside
        n, k = self._events, self._below + self._above
        if self._low is None or self._high is None or n == 0:
            reason = (f"{n_ref} reference values (need {_MIN_EVENTS})" if self._low is None
                      else "no values in the window")
            return TestResult(
                detector="out_of_range_rate", drift=False, statistic=0.0, threshold=math.inf,
                p_value=None, effect_size=0.0, severity=WARNING, window_events=n,
                explanation=f"not tested: {reason}", reference={"events": float(n_ref)})
        survival = _beta_binomial_survival(n, k_ref + 2.0, max(n_ref - k_ref - 1.0, 1.0))
        beyond = np.flatnonzero(survival <= self.alpha)
        threshold = float(beyond[0]) / n if beyond.size else math.inf
        rate, reference_rate = k / n, k_ref / n_ref
        effect = rate - reference_rate
        p_value = float(survival[k])
        drift = p_value <= self.alpha and effect >= self.min_increase
        explanation = (f"{rate:.1%} of the window outside the reference range "
                       f"[{self._low:.4g}, {self._high:.4g}] (reference {reference_rate:.1%}): "
                       f"{self._above / n:.1%} above, {self._below / n:.1%} below; window range "
                       f"[{self._window_min:.4g}, {self._window_max:.4g}]")
        return TestResult(
            detector="out_of_range_rate", drift=drift, statistic=rate, threshold=threshold,
            p_value=p_value, effect_size=effect,
            severity=CRITICAL if effect >= self.critical_increase else WARNING,
            window_events=n, explanation=explanation,
            reference={"events": float(n_ref), "low": self._low, "high": self._high,
                       "out_of_range_rate": reference_rate})

    def _restore(self, key: str, value: Any) -> Any:
        if key == "buffer":
            array = np.asarray(value, dtype=np.float64)
            if self._reference_ready:
                return array
            full = np.empty(self.reference_size, dtype=np.float64)
            full[:array.size] = array
            return full
        return value

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state; only the used part of the reference buffer is kept."""
        state = super().to_state()
        state["state"]["buffer"] = self._buffer[:self._buffer_used].tolist()
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
