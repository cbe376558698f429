"""Label-free performance estimation from the model's own confidence (CBPE).

When a model is calibrated, the probability it gives its prediction is the
chance that prediction is right, so the mean confidence over a window is an
unbiased estimate of the window's accuracy, with no label needed (NannyML's
confidence-based performance estimation, here streaming). For ``n`` events
with confidences ``q_i`` the realized accuracy differs from the estimate by a
sum of independent Bernoulli deviations: mean zero, standard deviation
``sqrt(sum q_i (1 - q_i)) / n <= 1 / (2 sqrt(n))``. A covariate shift that
moves traffic towards harder inputs lowers the confidences and therefore the
estimate, before a single label arrives; a change of concept does not (the
model stays as confident as before), which is why labels are still watched.

The estimator is fed *every* prediction, labelled or not. Windows count all
predictions; those without a confidence (``nan``) are skipped in the mean and
counted.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from detectors import stats
from detectors.base import CRITICAL, WARNING, TestResult
from detectors.errors import ConfigurationError, StateError, require
from detectors.monitor import Finding, WindowReport
from detectors.performance.config import EstimationConfig
from detectors.performance.metrics import Moments
from detectors.performance.windows import WindowClock

ESTIMATED_PERFORMANCE = "estimated_performance"


class LabelFreeEstimator:
    """Estimated accuracy per window from confidences; ``estimated_performance`` findings.

    Parameters
    ----------
    config
        Shared settings.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> confidence = np.r_[rng.uniform(0.8, 1.0, 15000), rng.uniform(0.6, 0.9, 5000)]
    >>> estimator = LabelFreeEstimator(EstimationConfig())
    >>> for r in estimator.update_many(np.arange(20000.0), confidence):
    ...     print(r.index, [f.result.drift for f in r.findings])
    0 [False]
    1 [False]
    2 [True]
    >>> print(r.findings[0].result.explanation)
    estimated accuracy 0.900 → 0.750 over the last 5,000 predictions (5,000 with a \
confidence; reference estimate 0.900 ± 0.002; tolerated drop 0.02)
    >>> round(estimator.estimate()["estimated_accuracy"], 3)
    0.75

    """

    STATE_VERSION: ClassVar[int] = 1

    def __init__(self, config: EstimationConfig) -> None:
        require(isinstance(config, EstimationConfig), "config", "an EstimationConfig", config)
        self.config = config
        self._reset()

    def _reset(self) -> None:
        self._clock = WindowClock(self.config.reference_size, self.config.window_size)
        self._reference = Moments()
        self._window = Moments()
        self._last_window: Moments | None = None
        self._last_window_events = 0
        self._unscored = 0

    @property
    def reference_complete(self) -> bool:
        """Whether the reference has been collected."""
        return self._clock.reference_complete

    @property
    def events(self) -> int:
        """Predictions seen since the estimator was created."""
        return self._clock.events

    def update_many(self, ts: NDArray[np.float64],
                    confidence: NDArray[np.float64]) -> list[WindowReport]:
        """Feed predictions' timestamps and confidences; return a report per closed window."""
        require(len(ts) == len(confidence), "confidence", f"{len(ts)} values (as many as ts)",
                len(confidence))
        reports: list[WindowReport] = []
        position = 0
        while position < len(ts):
            in_reference = not self._clock.reference_complete
            stop, closed = self._clock.take(ts, position)
            values = confidence[position:stop]
            known = np.isfinite(values)
            (self._reference if in_reference else self._window).add(values[known])
            self._unscored += int(values.size - np.count_nonzero(known))
            position = stop
            if closed:
                span = self._clock.close()
                if not span.is_reference:
                    result = self._test(span.events)
                    reports.append(WindowReport(
                        index=span.index, start_ts=span.start_ts, end_ts=span.end_ts,
                        events=span.events,
                        findings=[Finding(ESTIMATED_PERFORMANCE, "accuracy", "confidence",
                                          result)],
                        reference=self._clock.reference_info()))
                    self._last_window, self._window = self._window, Moments()
                    self._last_window_events = span.events
                self._unscored = 0
        return reports

    def _test(self, events: int) -> TestResult:
        """One-sided Welch z-test of ``estimate(window) < estimate(reference) - tolerance``."""
        reference, window, tolerance = self._reference, self._window, self.config.tolerance
        threshold = stats.normal_upper_quantile(self.config.alpha)
        if reference.n < 2 or window.n < 2:
            return TestResult(
                detector="confidence_based_estimate", drift=False, statistic=0.0,
                threshold=threshold, p_value=None, effect_size=0.0, severity=WARNING,
                window_events=events, explanation=f"not estimated: {reference.n:,} reference "
                f"and {window.n:,} window predictions with a confidence",
                reference={"events": int(reference.n)})
        se_ref = math.sqrt(reference.variance / reference.n)
        se = math.hypot(se_ref, math.sqrt(window.variance / window.n))
        gap = reference.mean - tolerance - window.mean
        z = gap / se if se > 0 else (math.copysign(1e9, gap) if gap else 0.0)
        drop = reference.mean - window.mean
        return TestResult(
            detector="confidence_based_estimate", drift=z > threshold, statistic=z,
            threshold=threshold, p_value=0.5 * math.erfc(z / math.sqrt(2.0)), effect_size=drop,
            severity=CRITICAL if drop >= max(5 * tolerance, 0.05) else WARNING,
            window_events=events,
            explanation=f"estimated accuracy {reference.mean:.3f} → {window.mean:.3f} over the "
            f"last {events:,} predictions ({window.n:,} with a confidence; reference estimate "
            f"{reference.mean:.3f} ± {1.96 * se_ref:.3f}; tolerated drop {tolerance:g})",
            reference={"events": int(reference.n), "estimated_accuracy": reference.mean})

    def estimate(self) -> dict[str, Any]:
        """The last closed window's estimated accuracy, the current window's and the reference's."""
        last = self._last_window
        return {
            "estimated_accuracy": last.mean if last is not None and last.n else None,
            "window_events": self._last_window_events if last is not None else 0,
            "window_scored_events": last.n if last is not None else 0,
            "current_estimate": self._window.mean if self._window.n else None,
            "current_events": self._clock.window_events,
            "current_unscored_events": self._unscored,
            "reference_estimate": (self._reference.mean
                                   if self.reference_complete and self._reference.n else None),
            "events": self._clock.events,
            "reference_complete": self.reference_complete,
        }

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state."""
        return {"type": "label_free_estimator", "version": self.STATE_VERSION,
                "config": self.config.to_dict(), "clock": self._clock.to_state(),
                "reference": self._reference.to_state(), "window": self._window.to_state(),
                "last_window": (self._last_window.to_state()
                                if self._last_window is not None else None),
                "last_window_events": self._last_window_events, "unscored": self._unscored}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LabelFreeEstimator:
        """Rebuild an estimator from :meth:`to_state` output."""
        if not isinstance(state, dict) or state.get("type") != "label_free_estimator" or (
                state.get("version") != cls.STATE_VERSION):
            found = (state.get("type"), state.get("version")) if isinstance(state, dict) else state
            raise StateError(f"state: expected label_free_estimator version "
                             f"{cls.STATE_VERSION}, got {found!r}")
        try:
            estimator = cls(EstimationConfig(**state["config"]))
            config = estimator.config
            estimator._clock = WindowClock.from_state(config.reference_size, config.window_size,
                                                      state["clock"])
            estimator._reference = Moments.from_state(state["reference"])
            estimator._window = Moments.from_state(state["window"])
            last = state["last_window"]
            estimator._last_window = Moments.from_state(last) if last is not None else None
            estimator._last_window_events = int(state["last_window_events"])
            estimator._unscored = int(state["unscored"])
        except (KeyError, TypeError, ValueError, ConfigurationError) as exc:
            raise StateError(f"state: cannot restore label_free_estimator: {exc}") from exc
        return estimator
