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
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar

from detectors.base import TestResult, WindowedTest
from detectors.batch import (
    CATEGORICAL,
    FEATURE_TYPES,
    NUMERIC,
    CategoricalColumn,
    Column,
    ColumnBatch,
    NumericColumn,
)
from detectors.drift.categorical import CategoricalDrift
from detectors.drift.cusum import NumericCusum
from detectors.drift.numeric import NumericDrift
from detectors.errors import ConfigurationError, StateError, require
from detectors.multivariate.pca import MAX_COLUMNS, PCADrift
from detectors.quality.missing import MissingRate
from detectors.quality.range import OutOfRangeRate

DATA_DRIFT = "data_drift"
PREDICTION_DRIFT = "prediction_drift"
DATA_QUALITY = "data_quality"
OUTPUT_COLUMNS = ("prediction", "score")
JOINT = "(joint)"   # the feature name of findings about several features together


@dataclass(frozen=True)
class MonitorConfig:
    """Settings shared by every test of a model.

    Parameters
    ----------
    reference_size
        Events in the reference (the first events of a model version).
    window_size
        Events per tumbling window.
    alpha
        Probability that a stationary window raises any alert for the model;
        split evenly (Bonferroni) over all of the model's tests.
    min_psi
        Effect-size floor for distribution drift.
    min_missing_increase
        Smallest rise in a missing-value rate worth an alert.
    min_new_category_rate
        Smallest share of never-seen categories worth an alert.
    false_alarm_events
        Expected events between false alarms of the model, all features and
        checks together (the sequential detectors' budget is what the
        windowed tests leave of it, and at least half).
    min_shift
        Smallest mean shift, in reference standard deviations, that the
        sequential detectors accumulate evidence for.
    min_variance_ratio
        Smallest variance ratio (either way) that the sequential detectors
        accumulate evidence for.
    min_out_of_range_increase
        Smallest rise in the share of values outside the reference's range worth an alert.
    min_joint_increase
        Smallest relative rise of the joint (PCA) statistic worth an alert.
    joint_max_features
        Numeric features (in schema order) watched together by the joint test.

    """

    reference_size: int = 5000
    window_size: int = 2000
    alpha: float = 1e-6
    min_psi: float = 0.05
    min_missing_increase: float = 0.05
    min_new_category_rate: float = 0.01
    false_alarm_events: float = 10_000_000.0
    min_shift: float = 0.15
    min_variance_ratio: float = 1.2
    min_out_of_range_increase: float = 0.01
    min_joint_increase: float = 0.25
    joint_max_features: int = 50

    def __post_init__(self) -> None:
        require(self.reference_size >= 100, "reference_size", "an integer >= 100",
                self.reference_size)
        require(self.window_size >= 100, "window_size", "an integer >= 100", self.window_size)
        require(0.0 < self.alpha < 1.0, "alpha", "a probability in (0, 1)", self.alpha)
        require(self.min_psi >= 0.0, "min_psi", "a number >= 0", self.min_psi)
        require(0.0 < self.min_missing_increase <= 1.0, "min_missing_increase",
                "a share in (0, 1]", self.min_missing_increase)
        require(0.0 <= self.min_new_category_rate <= 1.0, "min_new_category_rate",
                "a share in [0, 1]", self.min_new_category_rate)
        require(self.false_alarm_events >= 1000, "false_alarm_events", "a number >= 1000",
                self.false_alarm_events)
        require(0.0 < self.min_shift <= 5.0, "min_shift", "a number in (0, 5]", self.min_shift)
        require(1.0 < self.min_variance_ratio <= 100.0, "min_variance_ratio",
                "a number in (1, 100]", self.min_variance_ratio)
        require(0.0 < self.min_out_of_range_increase <= 1.0, "min_out_of_range_increase",
                "a share in (0, 1]", self.min_out_of_range_increase)
        require(self.min_joint_increase > 0.0, "min_joint_increase", "a number > 0",
                self.min_joint_increase)
        require(2 <= self.joint_max_features <= MAX_COLUMNS, "joint_max_features",
                f"an integer in [2, {MAX_COLUMNS}]", self.joint_max_features)

    @property
    def sequential_rate(self) -> float:
        """False-alarm rate per event left to the sequential detectors of a model."""
        budget = 1.0 / self.false_alarm_events
        return max(budget - self.alpha / self.window_size, 0.5 * budget)


@dataclass(frozen=True)
class Finding:
    """One test's verdict on one window, tagged with what it is about."""

    kind: str
    feature: str
    check: str
    result: TestResult


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

    @property
    def drifted(self) -> list[Finding]:
        """Only the findings that call for an alert."""
        return [f for f in self.findings if f.result.drift]


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

    STATE_VERSION: ClassVar[int] = 1
    state_keys: ClassVar[tuple[str, ...]] = (
        "events", "window_index", "window_events", "window_start_ts", "window_end_ts",
        "reference_start_ts", "reference_end_ts", "rejected")

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
        numeric_features = [name for name, kind in self.schema.items() if kind == NUMERIC]
        joint = numeric_features[:self.config.joint_max_features]
        n_tests = (2 * len(self.schema) + len(self.outputs) + len(numeric_features)
                   + (len(joint) >= 2))
        alpha = self.config.alpha / max(n_tests, 1)
        self._range_tests: dict[str, WindowedTest[Any]] = {
            name: OutOfRangeRate(alpha, self.config.reference_size,
                                 min_increase=self.config.min_out_of_range_increase)
            for name in numeric_features}
        self._joint_test: PCADrift | None = (
            PCADrift(alpha, joint, self.config.reference_size,
                     min_increase=self.config.min_joint_increase) if len(joint) >= 2 else None)
        self._drift_tests: dict[str, WindowedTest[Any]] = {
            name: self._distribution_test(kind, alpha) for name, kind in self.schema.items()}
        self._output_tests: dict[str, WindowedTest[Any]] = {
            name: self._distribution_test(kind, alpha) for name, kind in self.outputs.items()}
        self._missing_tests: dict[str, WindowedTest[Any]] = {
            name: MissingRate(alpha, self.config.min_missing_increase) for name in self.schema}
        numeric_outputs = [name for name, kind in self.outputs.items() if kind == NUMERIC]
        rate = self.config.sequential_rate / max(len(numeric_features) + len(numeric_outputs), 1)
        self._sequential_tests = {name: self._sequential_test(rate) for name in numeric_features}
        self._output_sequential = {name: self._sequential_test(rate) for name in numeric_outputs}
        self._events = 0
        self._window_index = 0
        self._window_events = 0
        self._window_start_ts = 0.0
        self._window_end_ts = 0.0
        self._reference_start_ts = 0.0
        self._reference_end_ts = 0.0
        self._rejected: dict[str, int] = {}

    def _distribution_test(self, kind: str, alpha: float) -> WindowedTest[Any]:
        if kind == NUMERIC:
            return NumericDrift(alpha, self.config.reference_size, self.config.min_psi)
        return CategoricalDrift(alpha, min_psi=self.config.min_psi,
                                min_new_rate=self.config.min_new_category_rate)

    def _sequential_test(self, rate: float) -> NumericCusum:
        return NumericCusum(rate, self.config.reference_size, min_shift=self.config.min_shift,
                            min_variance_ratio=self.config.min_variance_ratio)

    @property
    def reference_complete(self) -> bool:
        """Whether the reference has been collected."""
        return self._events >= self.config.reference_size

    @property
    def events(self) -> int:
        """Events seen since the monitor was created or re-baselined."""
        return self._events

    def update_many(self, batch: ColumnBatch) -> list[WindowReport]:
        """Feed a batch; return its reports in stream order.

        A full report for every window the batch closed, and a partial one at
        every block where a sequential detector alarmed.
        """
        for name, count in batch.rejected.items():
            self._rejected[name] = self._rejected.get(name, 0) + count
        reports: list[WindowReport] = []
        position, n = 0, len(batch)
        while position < n:
            limit = (self.config.reference_size if not self.reference_complete
                     else self.config.window_size)
            stop = min(n, position + limit - self._window_events)
            events_before = self._window_events
            alarms = self._feed(batch, position, stop)
            reports += self._alarm_reports(batch, position, events_before, alarms)
            position = stop
            if self._window_events == limit:
                report = self._close()
                if report is not None:
                    reports.append(report)
        return reports

    def _feed(self, batch: ColumnBatch, start: int, stop: int) -> list[tuple[int, Finding]]:
        if self._window_events == 0:
            self._window_start_ts = float(batch.ts[start])
        self._window_end_ts = float(batch.ts[stop - 1])
        self._window_events += stop - start
        self._events += stop - start
        whole = start == 0 and stop == len(batch)
        alarms: list[tuple[int, Finding]] = []
        for kind, kinds, columns, tests, sequential in (
                (DATA_DRIFT, self.schema, batch.columns, self._drift_tests,
                 self._sequential_tests),
                (PREDICTION_DRIFT, self.outputs, batch.outputs, self._output_tests,
                 self._output_sequential)):
            for name, test in tests.items():
                column = columns.get(name)
                if column is None:
                    column = _all_missing(kinds[name] == NUMERIC, stop - start)
                elif not whole:
                    column = column.slice(start, stop)
                test.update_many(column)
                if kind == DATA_DRIFT:
                    self._missing_tests[name].update_many(column)
                    if name in self._range_tests:
                        self._range_tests[name].update_many(column)
                detector = sequential.get(name)
                if detector is not None and isinstance(column, NumericColumn):
                    detector.update_many(column)
                    alarms += [(start + row, Finding(kind, name, "distribution", result))
                               for row, result in detector.last_alarms]
        if self._joint_test is not None:
            segment: dict[str, NumericColumn] = {}
            for name in self._joint_test.columns:
                column = batch.columns.get(name)
                if isinstance(column, NumericColumn):
                    segment[name] = column if whole else column.slice(start, stop)
            self._joint_test.update_many(segment)
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

    def _close(self) -> WindowReport | None:
        self._window_events = 0
        if self._events == self.config.reference_size:
            self._reference_start_ts = self._window_start_ts
            self._reference_end_ts = self._window_end_ts
            for test in self._all_tests():
                test.end_reference()
            return None
        findings = [Finding(DATA_DRIFT, name, "distribution",
                            _merge(test.end_window(), self._sequential_tests.get(name)))
                    for name, test in self._drift_tests.items()]
        findings += [Finding(PREDICTION_DRIFT, name, "distribution",
                             _merge(test.end_window(), self._output_sequential.get(name)))
                     for name, test in self._output_tests.items()]
        findings += [Finding(DATA_QUALITY, name, "missing_rate", test.end_window())
                     for name, test in self._missing_tests.items()]
        findings += [Finding(DATA_QUALITY, name, "out_of_range_rate", test.end_window())
                     for name, test in self._range_tests.items()]
        if self._joint_test is not None:
            findings.append(Finding(DATA_DRIFT, JOINT, "joint_distribution",
                                    self._joint_test.end_window()))
        findings += self._rejected_findings()
        report = WindowReport(
            index=self._window_index, start_ts=self._window_start_ts,
            end_ts=self._window_end_ts, events=self.config.window_size, findings=findings,
            reference=self._reference_info())
        self._window_index += 1
        return report

    def _reference_info(self) -> dict[str, float]:
        return {"events": float(self.config.reference_size),
                "start_ts": self._reference_start_ts, "end_ts": self._reference_end_ts}

    def _rejected_findings(self) -> list[Finding]:
        findings = []
        for name in sorted(set(self.schema) | set(self.outputs) | set(self._rejected)):
            count = self._rejected.get(name, 0)
            findings.append(Finding(DATA_QUALITY, name, "rejected_values", TestResult(
                detector="rejected_values", drift=count > 0, statistic=float(count),
                threshold=0.0, p_value=None, effect_size=count / self.config.window_size,
                severity="warning", window_events=self.config.window_size,
                explanation=f"{count} events with non-finite or wrongly typed values"
                f"{'' if name == '(event)' else f' in {name!r}'} went to the dead-letter topic",
                reference={})))
        self._rejected = {}
        return findings

    def _all_tests(self) -> list[WindowedTest[Any]]:
        joint = [self._joint_test] if self._joint_test is not None else []
        return [*self._drift_tests.values(), *self._output_tests.values(),
                *self._missing_tests.values(), *self._sequential_tests.values(),
                *self._output_sequential.values(), *self._range_tests.values(), *joint]

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
            "tests": {
                "drift": {n: t.to_state() for n, t in self._drift_tests.items()},
                "output": {n: t.to_state() for n, t in self._output_tests.items()},
                "missing": {n: t.to_state() for n, t in self._missing_tests.items()},
                "sequential": {n: t.to_state() for n, t in self._sequential_tests.items()},
                "output_sequential": {n: t.to_state()
                                      for n, t in self._output_sequential.items()},
                "range": {n: t.to_state() for n, t in self._range_tests.items()},
                "joint": self._joint_test.to_state() if self._joint_test is not None else None,
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ModelMonitor:
        """Rebuild a monitor from :meth:`to_state` output."""
        if state.get("type") != "model_monitor" or state.get("version") != cls.STATE_VERSION:
            raise StateError(f"state: expected model_monitor version {cls.STATE_VERSION}, got "
                             f"{state.get('type')!r} version {state.get('version')!r}")
        try:
            monitor = cls(state["schema"], state["outputs"], MonitorConfig(**state["config"]))
            for key in cls.state_keys:
                setattr(monitor, "_" + key, copy.deepcopy(state["state"][key]))
            tests = state["tests"]
            monitor._drift_tests = {n: _restore_test(s) for n, s in tests["drift"].items()}
            monitor._output_tests = {n: _restore_test(s) for n, s in tests["output"].items()}
            monitor._missing_tests = {n: MissingRate.from_state(s)
                                      for n, s in tests["missing"].items()}
            monitor._sequential_tests = {n: NumericCusum.from_state(s)
                                         for n, s in tests["sequential"].items()}
            monitor._output_sequential = {n: NumericCusum.from_state(s)
                                          for n, s in tests["output_sequential"].items()}
            monitor._range_tests = {n: OutOfRangeRate.from_state(s)
                                    for n, s in tests["range"].items()}
            monitor._joint_test = (PCADrift.from_state(tests["joint"])
                                   if tests["joint"] is not None else None)
        except (KeyError, TypeError, ConfigurationError) as exc:
            raise StateError(f"state: cannot restore model_monitor: {exc}") from exc
        return monitor


def _merge(windowed: TestResult, sequential: NumericCusum | None) -> TestResult:
    """One verdict per feature and window.

    The windowed test's, unless only the sequential detector found drift in the window.
    """
    if sequential is None:
        return windowed
    summary = sequential.end_window()
    return summary if summary.drift and not windowed.drift else windowed


def _restore_test(state: dict[str, Any]) -> WindowedTest[Any]:
    for cls in (NumericDrift, CategoricalDrift):
        if state.get("type") == cls.name:
            return cls.from_state(state)
    raise StateError(f"state: unknown test type {state.get('type')!r}")


def _all_missing(numeric: bool, n: int) -> Column:
    if numeric:
        import numpy as np

        return NumericColumn(np.zeros(n), np.ones(n, dtype=np.bool_))
    return CategoricalColumn([None] * n)


__all__ = ["CATEGORICAL", "NUMERIC", "Finding", "ModelMonitor", "MonitorConfig", "WindowReport"]
