"""The per-model monitor: one reference, then tumbling windows, many tests.

A :class:`ModelMonitor` watches one model version. Its first
``reference_size`` events form the reference; every following
``window_size`` events form a window, and when a window closes every test
runs on it and the monitor returns a :class:`WindowReport`. Window boundaries
count events, not batches, so a replay and a live run cut the same windows.

Every numeric feature (and a numeric ``score``) also has a sequential
detector (:class:`~detectors.drift.cusum.NumericCusum`) that checks at every
block of 200 values, so a clear shift is reported within a few hundred events
instead of at the next window close. Its alarm comes back at once as a
*partial* report (``partial=True``): same window index, the window's events so
far, and only the alarming ``distribution`` findings. When the window closes,
its full report carries one ``distribution`` finding per feature, which drifts
if the windowed test or the sequential detector found drift in that window;
an alert policy therefore fires on the partial report and sees the same
finding again at the close, without a second alert.

False alarms are budgeted per model: ``false_alarm_events`` is the expected
number of events between false alarms of all its features and checks
together. The windowed tests (``alpha`` per window, Bonferroni over tests)
take ``alpha / window_size`` of that rate; the sequential detectors share the
rest evenly (each splits its share over its four CUSUM sides).

A monitor builds its tests only at its ``STAGED_EVENTS``-th event (100, or
``reference_size`` if smaller); until then it keeps its events in a compact
form (:mod:`detectors.staged`) and then feeds them to the new tests at once.
The tests see the same events in the same order, no report can be due before
the reference closes, and a partition's many model versions that send only a
few events cost a few hundred bytes each instead of tens of kilobytes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar

from detectors.base import TestResult
from detectors.batch import (
    CATEGORICAL,
    FEATURE_TYPES,
    NUMERIC,
    ColumnBatch,
    NumericBlock,
)
from detectors.column_tests import ColumnTests
from detectors.config import MonitorConfig
from detectors.errors import ConfigurationError, StateError, require
from detectors.multivariate.pca import PCADrift
from detectors.staged import StagedEvents
from detectors.state_digest import state_digest

STAGED_EVENTS = 100
"""Events a monitor keeps as they are before it builds its tests (at most ``reference_size``)."""

DATA_DRIFT = "data_drift"
PREDICTION_DRIFT = "prediction_drift"
DATA_QUALITY = "data_quality"
OUTPUT_COLUMNS = ("prediction", "score")
JOINT = "(joint)"   # the feature name of findings about several features together


@dataclass(frozen=True, init=False)
class Finding:
    """One test's verdict on one window, tagged with what it is about."""

    kind: str
    feature: str
    check: str
    result: TestResult
    segment: str | None = None
    """``name=value`` of the segment the verdict is about; None for the whole model version."""

    def __init__(self, kind: str, feature: str, check: str, result: TestResult,
                 segment: str | None = None) -> None:
        # ~60 per window: one dict update instead of the frozen __init__'s setattr per field.
        self.__dict__.update(kind=kind, feature=feature, check=check, result=result,
                             segment=segment)


@dataclass(frozen=True)
class WindowReport:
    """Everything a closed window produced, or a sequential alarm inside it.

    A ``partial`` report is raised at the block where a sequential detector
    alarmed: ``events`` counts the window's events up to that block's last one
    (at ``end_ts``) and ``findings`` holds only the alarms. The full report of
    the same ``index`` follows when the window closes.
    """

    index: int
    start_ts: float
    end_ts: float
    events: int
    findings: list[Finding]
    reference: dict[str, float] = field(default_factory=dict)
    partial: bool = False
    segment: str | None = None
    """``name=value`` of the segment whose monitor raised it; None for the whole version."""

    @property
    def drifted(self) -> list[Finding]:
        """Only the findings that call for an alert."""
        return [f for f in self.findings if f.result.drift]


@dataclass
class _Tests:
    """Every test of a monitor, built at its ``STAGED_EVENTS``-th event."""

    features: ColumnTests
    outputs: ColumnTests
    joint: PCADrift | None


class ModelMonitor:
    """All the tests of one model version, fed with columnar batches.

    Parameters
    ----------
    schema
        Feature name → ``"numeric"`` or ``"categorical"``. ``prediction`` and
        ``score`` are monitored too when present in a batch's ``outputs``.
    outputs
        Output column name → type, e.g. ``{"prediction": "numeric", "score": "numeric"}``.
    config
        Shared settings.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> monitor = ModelMonitor({"x": "numeric"}, {}, MonitorConfig(reference_size=1000,
    ...                                                              window_size=500))
    >>> ts = np.arange(3000.0)
    >>> x = np.r_[rng.normal(size=2000), rng.normal(2.0, 1.0, 1000)]
    >>> reports = monitor.update_many(ColumnBatch.from_numeric(ts=ts, x=x))
    >>> for r in reports:
    ...     print(r.index, r.partial, r.events, [(f.feature, f.check) for f in r.drifted])
    0 False 500 []
    1 False 500 []
    2 True 200 [('x', 'distribution')]
    2 False 500 [('x', 'distribution'), ('x', 'out_of_range_rate')]
    3 True 100 [('x', 'distribution')]
    3 False 500 [('x', 'distribution'), ('x', 'out_of_range_rate')]

    """

    STATE_VERSION: ClassVar[int] = 4
    state_keys: ClassVar[tuple[str, ...]] = (
        "events", "window_index", "window_events", "window_start_ts", "window_end_ts",
        "reference_start_ts", "reference_end_ts", "rejected", "reference_digest")
    # Keys a state saved before they existed lacks, with the value they then read as.
    _optional_state: ClassVar[dict[str, Any]] = {"reference_digest": None}

    def __init__(self, schema: dict[str, str], outputs: dict[str, str],
                 config: MonitorConfig) -> None:
        for name, kind in [*schema.items(), *outputs.items()]:
            require(kind in FEATURE_TYPES, f"schema[{name!r}]", f"one of {FEATURE_TYPES}", kind)
        for name in outputs:
            require(name in OUTPUT_COLUMNS, "outputs", f"names among {OUTPUT_COLUMNS}", name)
        self.schema = dict(schema)
        self.outputs = dict(outputs)
        self.config = config
        self._reset()

    def _reset(self) -> None:
        self._tests: _Tests | None = None
        # The first events, until there are enough to build the tests (see detectors.staged).
        self._staged: StagedEvents | None = None
        self._events = 0
        self._window_index = 0
        self._window_events = 0
        self._window_start_ts = 0.0
        self._window_end_ts = 0.0
        self._reference_start_ts = 0.0
        self._reference_end_ts = 0.0
        self._rejected: dict[str, int] = {}
        self._reference_digest: str | None = None
        # The finding of a column without rejected values, by column (derived, not state).
        self._clean: dict[str, Finding] = {}

    def _build(self) -> _Tests:
        numeric_features = [name for name, kind in self.schema.items() if kind == NUMERIC]
        numeric_outputs = [name for name, kind in self.outputs.items() if kind == NUMERIC]
        joint = numeric_features[:self.config.joint_max_features]
        n_tests = (2 * len(self.schema) + len(self.outputs) + len(numeric_features)
                   + (len(joint) >= 2))
        alpha = self.config.alpha / max(n_tests, 1)
        rate = self.config.sequential_rate / max(len(numeric_features) + len(numeric_outputs), 1)
        self._tests = _Tests(
            ColumnTests(self.schema, alpha, rate, self.config, quality=True),
            ColumnTests(self.outputs, alpha, rate, self.config, quality=False),
            # Scored by the features' sequential test: a batch is turned into scores once.
            PCADrift(alpha, joint, self.config.reference_size,
                     min_increase=self.config.min_joint_increase, scored=True)
            if len(joint) >= 2 else None)
        return self._tests

    @property
    def reference_complete(self) -> bool:
        """Whether the reference has been collected."""
        return self._events >= self.config.reference_size

    @property
    def reference_digest(self) -> str | None:
        """SHA-256 of the reference as learned, once it is complete (``None`` before).

        The digest is taken over every test's state at the moment the reference
        closes (canonical JSON), so two references with the same digest judge
        every window alike; it does not depend on how the events were batched.
        """
        return self._reference_digest

    @property
    def reference_window(self) -> dict[str, float]:
        """Events, first and last event time of the reference (times 0 until it closes)."""
        return self._reference_info()

    @property
    def events(self) -> int:
        """Events seen since the monitor was created or re-baselined."""
        return self._events + (len(self._staged) if self._staged is not None else 0)

    @property
    def staged(self) -> bool:
        """Whether the monitor still keeps its first events instead of its tests."""
        return self._tests is None

    @property
    def window_events(self) -> int:
        """Events in the open window (0 while the reference is being collected)."""
        return self._window_events if self.reference_complete else 0

    def close_window(self, min_events: int) -> WindowReport | None:
        """Close the open window early, with the events it has (its model went quiet).

        A window of at least ``min_events`` events is tested like a full one and
        its report returned (``events`` says how many it had: a shorter window
        gives each test wider thresholds, so only a larger change is found,
        at the same false-alarm rate). A shorter one is dropped untested and
        None returned: its events still count, the sequential detectors have
        seen them, and its rejected-value counts join the next window. Without
        an open window (a reference still being collected, or no event since
        the last close) nothing changes and None is returned.

        Examples
        --------
        >>> import numpy as np
        >>> monitor = ModelMonitor({"x": "numeric"}, {}, MonitorConfig(reference_size=1000,
        ...                                                              window_size=500))
        >>> x = np.random.default_rng(1).normal(size=1300)
        >>> monitor.update_many(ColumnBatch.from_numeric(ts=np.arange(1300.0), x=x))
        []
        >>> monitor.window_events, monitor.close_window(min_events=200).events
        (300, 300)
        >>> monitor.window_events, monitor.close_window(min_events=200)
        (0, None)
        """
        require(isinstance(min_events, int) and min_events >= 1, "min_events",
                "an integer >= 1", min_events)
        tests, events = self._tests, self.window_events
        if tests is None or events == 0:
            return None
        if events < min_events:
            self._window_events = 0
            tests.features.end_window()
            tests.outputs.end_window()
            if tests.joint is not None:
                tests.joint.end_window()
            self._window_index += 1
            return None
        return self._close(tests)

    def update_many(self, batch: ColumnBatch) -> list[WindowReport]:
        """Feed a batch; return its reports in stream order.

        A full report for every window the batch closed, and a partial one at
        every block where a sequential detector alarmed.
        """
        for name, count in batch.rejected.items():
            self._rejected[name] = self._rejected.get(name, 0) + count
        reports: list[WindowReport] = []
        if len(batch) == 0:
            return reports
        tests = self._tests
        if tests is None:
            # A model version with few events costs its events, not a full set of tests.
            staged = StagedEvents.append(self._staged, batch)
            if len(staged) < min(STAGED_EVENTS, self.config.reference_size):
                self._staged = staged
                return reports
            self._staged = None
            batch = staged.batch()
            tests = self._build()
        position, n = 0, len(batch)
        # The numeric columns stacked once per batch; every numeric test reads the stack.
        features = tests.features.block(batch.columns, n)
        outputs = tests.outputs.block(batch.outputs, n)
        while position < n:
            limit = (self.config.reference_size if not self.reference_complete
                     else self.config.window_size)
            stop = min(n, position + limit - self._window_events)
            events_before = self._window_events
            alarms = self._feed(tests, batch, features, outputs, position, stop)
            reports += self._alarm_reports(batch, position, events_before, alarms)
            position = stop
            if self._window_events == limit:
                report = self._close(tests)
                if report is not None:
                    reports.append(report)
        return reports

    def _feed(self, tests: _Tests, batch: ColumnBatch, features: NumericBlock | None,
              outputs: NumericBlock | None, start: int, stop: int) -> list[tuple[int, Finding]]:
        if self._window_events == 0:
            self._window_start_ts = float(batch.ts[start])
        self._window_end_ts = float(batch.ts[stop - 1])
        self._window_events += stop - start
        self._events += stop - start
        whole = start == 0 and stop == len(batch)
        if not whole:
            features = features.slice(start, stop) if features is not None else None
            outputs = outputs.slice(start, stop) if outputs is not None else None
        alarms = [(row, Finding(DATA_DRIFT, name, "distribution", result)) for row, name, result
                  in tests.features.update(features, batch.columns, start, stop, whole)]
        alarms += [(row, Finding(PREDICTION_DRIFT, name, "distribution", result))
                   for row, name, result
                   in tests.outputs.update(outputs, batch.outputs, start, stop, whole)]
        if tests.joint is not None and features is not None:
            tests.joint.update_many(features, tests.features.scores)
        return alarms

    def _alarm_reports(self, batch: ColumnBatch, start: int, events_before: int,
                       alarms: list[tuple[int, Finding]]) -> list[WindowReport]:
        by_row: dict[int, list[Finding]] = {}
        for row, finding in sorted(alarms, key=lambda alarm: alarm[0]):
            by_row.setdefault(row, []).append(finding)
        return [WindowReport(
            index=self._window_index, start_ts=self._window_start_ts,
            end_ts=float(batch.ts[row]), events=events_before + row - start + 1,
            findings=findings, reference=self._reference_info(), partial=True)
            for row, findings in by_row.items()]

    def _close(self, tests: _Tests) -> WindowReport | None:
        events, self._window_events = self._window_events, 0
        if self._events == self.config.reference_size:
            self._reference_start_ts = self._window_start_ts
            self._reference_end_ts = self._window_end_ts
            tests.features.end_reference()
            tests.outputs.end_reference()
            if tests.joint is not None:
                tests.joint.end_reference(tests.features.scores_of)
            self._reference_digest = state_digest({
                "features": tests.features.to_state(), "outputs": tests.outputs.to_state(),
                "joint": tests.joint.to_state() if tests.joint is not None else None})
            return None
        features = tests.features.end_window()
        outputs = tests.outputs.end_window()
        findings = [Finding(DATA_DRIFT, name, "distribution", features["distribution"][name])
                    for name in self.schema]
        findings += [Finding(PREDICTION_DRIFT, name, "distribution",
                             outputs["distribution"][name]) for name in self.outputs]
        findings += [Finding(DATA_QUALITY, name, "missing_rate", features["missing_rate"][name])
                     for name in self.schema]
        findings += [Finding(DATA_QUALITY, name, "out_of_range_rate", result)
                     for name, result in features.get("out_of_range_rate", {}).items()]
        if tests.joint is not None:
            findings.append(Finding(DATA_DRIFT, JOINT, "joint_distribution",
                                    tests.joint.end_window()))
        findings += self._rejected_findings(events)
        report = WindowReport(
            index=self._window_index, start_ts=self._window_start_ts,
            end_ts=self._window_end_ts, events=events, findings=findings,
            reference=self._reference_info())
        self._window_index += 1
        return report

    def _reference_info(self) -> dict[str, float]:
        return {"events": self.config.reference_size,
                "start_ts": self._reference_start_ts, "end_ts": self._reference_end_ts}

    def _rejected_findings(self, events: int) -> list[Finding]:
        findings = []
        for name in sorted(set(self.schema) | set(self.outputs) | set(self._rejected)):
            count = self._rejected.get(name, 0)
            finding = self._clean.get(name) if count == 0 and events == self.config.window_size \
                else None
            if finding is None:
                finding = Finding(DATA_QUALITY, name, "rejected_values", TestResult(
                    detector="rejected_values", drift=count > 0, statistic=float(count),
                    threshold=0.0, p_value=None, effect_size=count / events,
                    severity="warning", window_events=events,
                    explanation=f"{count} events with non-finite or wrongly typed values"
                    f"{'' if name == '(event)' else f' in {name!r}'} went to the dead-letter "
                    "topic", reference={}))
                if count == 0 and events == self.config.window_size:  # the same every window
                    self._clean[name] = finding
            findings.append(finding)
        self._rejected = {}
        return findings

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state of the monitor and all its tests."""
        return {
            "type": "model_monitor",
            "version": self.STATE_VERSION,
            "schema": dict(self.schema),
            "outputs": dict(self.outputs),
            "config": self.config.__dict__.copy(),
            # A snapshot: later updates must not reach into a state already handed out.
            "state": {key: copy.deepcopy(getattr(self, "_" + key)) for key in self.state_keys},
            "tests": None if self._tests is None else {
                **self._tests.features.to_state(),
                "outputs": self._tests.outputs.to_state(),
                "joint": self._tests.joint.to_state() if self._tests.joint is not None else None,
            },
            "staged": self._staged.to_plain() if self._staged is not None else None,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ModelMonitor:
        """Rebuild a monitor from :meth:`to_state` output."""
        # Version 3 (before staging) always holds built tests: it reads as version 4.
        if state.get("type") != "model_monitor" or state.get("version") not in (
                3, cls.STATE_VERSION):
            raise StateError(f"state: expected model_monitor version {cls.STATE_VERSION}, got "
                             f"{state.get('type')!r} version {state.get('version')!r}")
        try:
            monitor = cls(state["schema"], state["outputs"], MonitorConfig(**state["config"]))
            saved = state["state"]
            for key in cls.state_keys:
                value = saved[key] if key in saved or key not in cls._optional_state \
                    else cls._optional_state[key]
                setattr(monitor, "_" + key, copy.deepcopy(value))
            tests = state["tests"]
            if tests is not None:
                built = monitor._build()
                built.features.restore(tests)
                built.outputs.restore(tests["outputs"])
                built.joint = (PCADrift.from_state(tests["joint"])
                               if tests["joint"] is not None else None)
            if state.get("staged") is not None:
                monitor._staged = StagedEvents.from_plain(state["staged"])
        except (KeyError, TypeError, ConfigurationError) as exc:
            raise StateError(f"state: cannot restore model_monitor: {exc}") from exc
        return monitor


__all__ = ["CATEGORICAL", "NUMERIC", "Finding", "ModelMonitor", "MonitorConfig", "WindowReport"]
