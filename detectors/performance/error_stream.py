"""A model's error stream, watched event by event for concept drift.

Classification feeds ``1`` for a wrong prediction and ``0`` for a right one.
Regression feeds an exceedance indicator: ``1`` when the absolute error is
larger than :data:`EXCEEDANCE_MULTIPLE` times the reference MAE. Either way
the detector (:data:`detectors.concept.DEFAULT_ERROR_DETECTOR`, a one-sided
Bernoulli CUSUM that estimates its own baseline) sees a 0/1 stream whose
rate rises when the model gets worse. The watch starts when the reference
closes, so a signal always means "worse than lately", never "still warming up".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from detectors.base import CRITICAL, WARNING, TestResult
from detectors.performance.batch import CLASSIFICATION

if TYPE_CHECKING:
    from detectors.concept import ErrorStreamDetector

# The explanation's "recent" rate: the last this many labelled events.
RECENT = 500
EXCEEDANCE_MULTIPLE = 2.0


class ErrorStreamWatch:
    """Concept-drift detection on one model version's error stream.

    The *level* of a stretch of events is its error rate (classification) or
    its MAE (regression); findings compare the recent level with the reference's.

    Parameters
    ----------
    task
        ``"classification"`` or ``"regression"``.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> watch = ErrorStreamWatch("classification")
    >>> watch.start(reference_level=0.1)
    >>> errors = np.r_[rng.random(3000) < 0.1, rng.random(3000) < 0.3].astype(float)
    >>> [(3000 <= row < 3500, result.explanation) for row, result in watch.update(errors)]
    ... # doctest: +ELLIPSIS
    [(True, 'error rate 10.0% → ...% over the last 500 labelled events (reference 10.0%); \
bernoulli_cusum signalled')]

    """

    def __init__(self, task: str) -> None:
        self.task = task
        self.feature = "error_rate" if task == CLASSIFICATION else "mae"
        # Imported here: detectors.concept imports river (~1 s), which `import detectors` avoids.
        from detectors.concept import DEFAULT_ERROR_DETECTOR

        self._detector: ErrorStreamDetector = DEFAULT_ERROR_DETECTOR()
        self._started = False
        self._reference_level = math.nan
        self._recent = np.empty(0)
        self._signals = 0
        self._window_signals = 0
        self._window_events = 0
        self._window_sum = 0.0

    @property
    def signals(self) -> int:
        """Signals since the watch started."""
        return self._signals

    @property
    def detector_name(self) -> str:
        """The underlying detector's name."""
        return self._detector.name

    @property
    def exceedance_threshold(self) -> float:
        """The absolute error above which a regression event counts as a large error."""
        return EXCEEDANCE_MULTIPLE * self._reference_level

    def start(self, reference_level: float | None) -> None:
        """Begin watching, against the reference's error rate (or MAE, for regression)."""
        self._started = True
        self._reference_level = math.nan if reference_level is None else reference_level

    def update(self, errors: NDArray[np.float64]) -> list[tuple[int, TestResult]]:
        """Feed errors (0/1 flags, or absolute errors for regression); return the signals.

        Each signal is ``(row within errors, result)``; nothing happens before :meth:`start`.
        """
        if not self._started or errors.size == 0:
            return []
        finite = np.isfinite(errors)
        stream = errors if self.task == CLASSIFICATION else np.where(
            finite, (errors > self.exceedance_threshold).astype(np.float64), np.nan)
        self._window_events += int(np.count_nonzero(finite))
        self._window_sum += float(errors[finite].sum())
        rows = self._detector.update_many(stream)
        signals = [(int(row), self._signal(errors[:row + 1])) for row in rows.tolist()]
        self._signals += len(signals)
        self._window_signals += len(signals)
        self._recent = self._recent_with(errors)
        return signals

    def _recent_with(self, errors: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.concatenate((self._recent, errors[np.isfinite(errors)]))[-RECENT:]

    def _describe(self, level: float, events: int) -> str:
        reference = self._reference_level
        if self.task == CLASSIFICATION:
            return (f"error rate {reference:.1%} → {level:.1%} over the last {events:,} "
                    f"labelled events (reference {reference:.1%})")
        return (f"MAE {reference:.3g} → {level:.3g} over the last {events:,} labelled events "
                f"(reference {reference:.3g}; large errors: above "
                f"{self.exceedance_threshold:.3g})")

    def _rise(self, level: float) -> float:
        reference = self._reference_level
        if self.task == CLASSIFICATION or not reference > 0:
            return level - reference
        return (level - reference) / reference

    def _signal(self, errors_so_far: NDArray[np.float64]) -> TestResult:
        recent = self._recent_with(errors_so_far)
        level = float(recent.mean()) if recent.size else math.nan
        rise = self._rise(level)
        return TestResult(
            detector=self._detector.name, drift=True, statistic=_finite(level),
            threshold=_finite(self._reference_level), p_value=None, effect_size=_finite(rise),
            severity=CRITICAL if rise >= _critical(self.task) else WARNING,
            window_events=int(recent.size),
            explanation=f"{self._describe(level, recent.size)}; {self._detector.name} signalled",
            reference={self.feature: _finite(self._reference_level)})

    def end_window(self) -> TestResult:
        """The window's verdict: drift if the detector signalled in it; then reset the counts."""
        signals, n = self._window_signals, self._window_events
        level = self._window_sum / n if n else math.nan
        self._window_signals = self._window_events = 0
        self._window_sum = 0.0
        rise = self._rise(level) if n else 0.0
        verdict = (f"{self._detector.name} signalled {signals} time(s) in this window"
                   if signals else f"no {self._detector.name} signal in this window")
        return TestResult(
            detector=self._detector.name, drift=signals > 0, statistic=_finite(level),
            threshold=_finite(self._reference_level), p_value=None, effect_size=_finite(rise),
            severity=CRITICAL if signals and rise >= _critical(self.task) else WARNING,
            window_events=n, explanation=f"{verdict}; {self._describe(level, n)}",
            reference={self.feature: _finite(self._reference_level)})

    def to_state(self) -> dict[str, Any]:
        """Plain-dict state (the detector's own versioned state inside)."""
        return {"detector": self._detector.to_state(), "started": self._started,
                "reference_level": _finite(self._reference_level, None),
                "recent": self._recent.tolist(), "signals": self._signals,
                "window_signals": self._window_signals, "window_events": self._window_events,
                "window_sum": self._window_sum}

    @classmethod
    def from_state(cls, task: str, state: dict[str, Any]) -> ErrorStreamWatch:
        """Rebuild from :meth:`to_state` output."""
        watch = cls(task)
        watch._detector = type(watch._detector).from_state(state["detector"])
        watch._started = bool(state["started"])
        level = state["reference_level"]
        watch._reference_level = math.nan if level is None else float(level)
        watch._recent = np.asarray(state["recent"], dtype=np.float64)
        watch._signals = int(state["signals"])
        watch._window_signals = int(state["window_signals"])
        watch._window_events = int(state["window_events"])
        watch._window_sum = float(state["window_sum"])
        return watch


def _critical(task: str) -> float:
    # Ten points more errors, or half as much absolute error again, is critical.
    return 0.1 if task == CLASSIFICATION else 0.5


def _finite(value: float, default: Any = 0.0) -> Any:
    return value if math.isfinite(value) else default
