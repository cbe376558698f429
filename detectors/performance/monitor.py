"""Realized performance of one model version: metrics, degradation alerts, concept drift.

A :class:`PerformanceMonitor` is fed the model's labelled events (the
prediction⋈label join) in label-arrival order. Its first ``reference_size``
labelled events form the reference; every following ``window_size`` form a
tumbling window. When a window closes, each tested metric is compared with
the reference by a one-sided test against the configured tolerance
(:mod:`~detectors.performance.degradation`): alert kind ``performance``.

From the reference's end on, the error stream goes event by event to the
default error-stream detector (:class:`~detectors.performance.error_stream.ErrorStreamWatch`);
a signal comes back at once as a *partial* report with a ``concept_drift``
finding, and the window's full report repeats it, as
:class:`~detectors.monitor.ModelMonitor` does for its sequential detectors,
so the alert policy fires once and resolves after clean windows.

Challengers (:mod:`~detectors.performance.challengers`) learn from every
labelled event (reference included); their scoring restarts at each
concept-drift signal.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from detectors.errors import ConfigurationError, StateError, require
from detectors.monitor import Finding, WindowReport
from detectors.performance.batch import CLASSIFICATION, TASKS, LabelledBatch
from detectors.performance.challengers import ChallengerSet
from detectors.performance.config import PerformanceConfig
from detectors.performance.degradation import accuracy_drop, mean_loss_rise
from detectors.performance.error_stream import ErrorStreamWatch
from detectors.performance.metrics import ClassificationMetrics, Moments, RegressionMetrics
from detectors.performance.windows import Span, WindowClock

PERFORMANCE = "performance"
CONCEPT_DRIFT = "concept_drift"

Metrics = ClassificationMetrics | RegressionMetrics


class PerformanceMonitor:
    """Performance metrics, ``performance`` and ``concept_drift`` findings of one model version.

    Parameters
    ----------
    task
        ``"classification"`` or ``"regression"``.
    config
        Shared settings.

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> n = 6000
    >>> truth = rng.choice(["0", "1"], size=n).astype(object)
    >>> right = rng.random(n) < np.where(np.arange(n) < 4000, 0.9, 0.7)   # worse from 4000
    >>> predicted = np.where(right, truth, np.where(truth == "1", "0", "1")).astype(object)
    >>> monitor = PerformanceMonitor("classification", PerformanceConfig(challengers=()))
    >>> for r in monitor.update_many(LabelledBatch.of(truth, predicted)):
    ...     print(r.index, r.partial, r.events, [(f.kind, f.feature) for f in r.drifted])
    ... # doctest: +ELLIPSIS
    0 False 1000 []
    1 False 1000 []
    2 True ... [('concept_drift', 'error_rate')]
    2 False 1000 [('performance', 'accuracy'), ('concept_drift', 'error_rate')]
    3 False 1000 [('performance', 'accuracy')]
    >>> round(monitor.metrics()["window"]["accuracy"], 3)
    0.711

    """

    STATE_VERSION: ClassVar[int] = 1

    def __init__(self, task: str, config: PerformanceConfig) -> None:
        require(task in TASKS, "task", f"one of {TASKS}", task)
        self.task = task
        self.config = config
        self._reset()

    def _reset(self) -> None:
        config = self.config
        self._clock = WindowClock(config.reference_size, config.window_size)
        self._reference = self._new_metrics()
        self._window = self._new_metrics()
        self._last_window: Metrics | None = None
        self._since_reference = self._new_metrics()   # closed windows only
        self._concept = ErrorStreamWatch(self.task)
        self._challengers = (ChallengerSet(
            self.task, config.challengers, every=config.challenger_every,
            warm_up=config.challenger_warm_up, alpha=config.challenger_alpha,
            seed=config.challenger_seed) if config.challengers else None)

    def _new_metrics(self) -> Metrics:
        if self.task == CLASSIFICATION:
            return ClassificationMetrics(self.config.positive_class)
        return RegressionMetrics()

    @property
    def reference_complete(self) -> bool:
        """Whether the reference has been collected."""
        return self._clock.reference_complete

    @property
    def events(self) -> int:
        """Labelled events seen since the monitor was created."""
        return self._clock.events

    def update_many(self, batch: LabelledBatch) -> list[WindowReport]:
        """Feed labelled events; return the reports they produced, in stream order.

        A full report for every window the batch closed, and a partial one at
        every event where the concept-drift detector signalled.
        """
        reports: list[WindowReport] = []
        position, n = 0, len(batch)
        while position < n:
            in_reference = not self._clock.reference_complete
            events_before = self._clock.window_events
            stop, closed = self._clock.take(batch.ts, position)
            segment = batch if position == 0 and stop == n else batch.slice(position, stop)
            reports += self._feed(segment, in_reference, events_before)
            position = stop
            if closed:
                span = self._clock.close()
                if span.is_reference:
                    self._concept.start(self._reference_level())
                else:
                    reports.append(self._close(span))
        return reports

    def _feed(self, segment: LabelledBatch, in_reference: bool,
              events_before: int) -> list[WindowReport]:
        outcome: NDArray[Any] = (self._reference if in_reference else self._window).update(
            segment)
        # The error stream: 1 for a wrong prediction, or the absolute error (regression).
        errors = (1.0 - outcome) if outcome.dtype == np.bool_ else outcome
        signals = [] if in_reference else self._concept.update(errors)
        reports, start = [], 0
        for row, result in signals:
            self._update_challengers(segment, outcome, start, row + 1)
            if self._challengers is not None:
                self._challengers.restart_scoring()
            start = row + 1
            reports.append(WindowReport(
                index=self._clock.window_index, start_ts=self._clock.window_start_ts,
                end_ts=float(segment.ts[row]), events=events_before + row + 1,
                findings=[Finding(CONCEPT_DRIFT, self._concept.feature, "concept", result)],
                reference=self._clock.reference_info(), partial=True))
        self._update_challengers(segment, outcome, start, len(segment))
        return reports

    def _update_challengers(self, segment: LabelledBatch, outcome: NDArray[Any], start: int,
                            stop: int) -> None:
        if self._challengers is not None and stop > start:
            whole = start == 0 and stop == len(segment)
            self._challengers.update_many(segment if whole else segment.slice(start, stop),
                                          outcome[start:stop])

    def _reference_level(self) -> float | None:
        result = self._reference.result()
        level: float | None = result["error_rate" if self.task == CLASSIFICATION else "mae"]
        return level

    def _close(self, span: Span) -> WindowReport:
        findings = [Finding(PERFORMANCE, metric, PERFORMANCE, result)
                    for metric, result in self._tests()]
        findings.append(Finding(CONCEPT_DRIFT, self._concept.feature, "concept",
                                self._concept.end_window()))
        _merge(self._since_reference, self._window)
        self._last_window = self._window
        self._window = self._new_metrics()
        return WindowReport(index=span.index, start_ts=span.start_ts, end_ts=span.end_ts,
                            events=span.events, findings=findings,
                            reference=self._clock.reference_info())

    def _tests(self) -> list[tuple[str, Any]]:
        config = self.config
        reference, window = self._reference, self._window
        if isinstance(reference, ClassificationMetrics) and isinstance(
                window, ClassificationMetrics):
            alpha = config.alpha / 2   # Bonferroni over accuracy and log loss
            return [
                ("accuracy", accuracy_drop(reference.correct, reference.events, window.correct,
                                           window.events, tolerance=config.tolerance,
                                           alpha=alpha)),
                ("log_loss", mean_loss_rise("log_loss", reference.log_loss, window.log_loss,
                                            relative_tolerance=config.relative_tolerance,
                                            alpha=alpha, min_events=config.min_scored_events)),
            ]
        return [("mae", mean_loss_rise("mae", _absolute_error(reference),
                                       _absolute_error(window),
                                       relative_tolerance=config.relative_tolerance,
                                       alpha=config.alpha))]

    def metrics(self) -> dict[str, Any]:
        """Realized performance: reference, last window, current window and since the reference.

        Each scope holds the task's metrics (classification: accuracy,
        precision, recall, F1, log loss, ROC AUC, calibration error, and
        ``estimate_error``, the mean confidence minus the accuracy on the same
        events; regression: MAE, RMSE, R²). The top-level ``estimate_error``
        is the last closed window's (the current window's before the first closes).
        """
        since = copy.deepcopy(self._since_reference)
        _merge(since, self._window)
        window = self._last_window.result() if self._last_window is not None else None
        current = self._window.result()
        rolling = window if window is not None else current
        return {
            "task": self.task, "labelled_events": self._clock.events,
            "reference_complete": self.reference_complete,
            "window_index": self._clock.window_index,
            "reference": self._reference.result(), "window": window,
            "current_window": current,
            "since_reference": since.result() if self.reference_complete else None,
            "estimate_error": rolling.get("estimate_error"),
            "concept": {"detector": self._concept.detector_name,
                        "signals": self._concept.signals},
        }

    def challenger_result(self) -> dict[str, Any] | None:
        """Per challenger: its prequential score, the champion's, the paired test (or ``None``)."""
        return None if self._challengers is None else self._challengers.result()

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state (challenger models excluded: see :mod:`.challengers`)."""
        return {
            "type": "performance_monitor", "version": self.STATE_VERSION, "task": self.task,
            "config": self.config.to_dict(), "clock": self._clock.to_state(),
            "reference": self._reference.to_state(), "window": self._window.to_state(),
            "last_window": (self._last_window.to_state()
                            if self._last_window is not None else None),
            "since_reference": self._since_reference.to_state(),
            "concept": self._concept.to_state(),
            "challengers": (self._challengers.to_state()
                            if self._challengers is not None else None),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PerformanceMonitor:
        """Rebuild a monitor from :meth:`to_state` output (challengers re-learn from scratch)."""
        if not isinstance(state, dict) or state.get("type") != "performance_monitor" or (
                state.get("version") != cls.STATE_VERSION):
            found = (state.get("type"), state.get("version")) if isinstance(state, dict) else state
            raise StateError(f"state: expected performance_monitor version "
                             f"{cls.STATE_VERSION}, got {found!r}")
        try:
            state = copy.deepcopy(state)
            monitor = cls(state["task"], PerformanceConfig(**state["config"]))
            config = monitor.config
            monitor._clock = WindowClock.from_state(config.reference_size, config.window_size,
                                                    state["clock"])
            monitor._reference = monitor._restore_metrics(state["reference"])
            monitor._window = monitor._restore_metrics(state["window"])
            monitor._last_window = (monitor._restore_metrics(state["last_window"])
                                    if state["last_window"] is not None else None)
            monitor._since_reference = monitor._restore_metrics(state["since_reference"])
            monitor._concept = ErrorStreamWatch.from_state(monitor.task, state["concept"])
            if monitor._challengers is not None:
                monitor._challengers = ChallengerSet.from_state(state["challengers"])
        except (KeyError, TypeError, ValueError, AttributeError, ConfigurationError) as exc:
            raise StateError(f"state: cannot restore performance_monitor: {exc}") from exc
        return monitor

    def _restore_metrics(self, state: dict[str, Any]) -> Metrics:
        if self.task == CLASSIFICATION:
            return ClassificationMetrics.from_state(self.config.positive_class, state)
        return RegressionMetrics.from_state(state)


def _merge(total: Metrics, part: Metrics) -> None:
    if isinstance(total, ClassificationMetrics) and isinstance(part, ClassificationMetrics):
        total.merge(part)
    elif isinstance(total, RegressionMetrics) and isinstance(part, RegressionMetrics):
        total.merge(part)
    else:
        raise TypeError(f"cannot merge {type(part).__name__} into {type(total).__name__}")


def _absolute_error(metrics: Metrics) -> Moments:
    if not isinstance(metrics, RegressionMetrics):
        raise TypeError(f"expected RegressionMetrics, got {type(metrics).__name__}")
    return metrics.absolute_error
