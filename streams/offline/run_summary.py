"""What a replay leaves besides its alerts: the run summary that ``driftline report`` draws.

A :class:`RunSummary` watches the partition step's outputs during a replay
and keeps, per model version, its closed windows (with each distribution
check's statistic/threshold) and its performance per labelled window; and,
for every firing alert, the reference and window histograms of each feature
it names, taken from the verdicts of the alert's window
(:attr:`detectors.base.TestResult.distribution`). An alert raised by a
sequential detector inside a window gets them when that window closes.

The summary is a versioned plain dict (``summary_version``), written as JSON
next to the alerts; it holds event time only, so it is as reproducible as the
alerts. Memory is bounded: at most :data:`MAX_WINDOWS` windows per model
version are kept (every second one is dropped when full, so the run stays
evenly covered), and histograms only for alerts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from detectors.monitor import JOINT, WindowReport
from streams.core.partition import PartitionState, StepOutput
from streams.errors import DriftlineError
from streams.settings import Settings

SUMMARY_VERSION = 1
MAX_WINDOWS = 1000
_DISTRIBUTION_KINDS = ("data_drift", "prediction_drift")
PERFORMANCE, ESTIMATED = "performance", "estimated_performance"


@dataclass
class _Series:
    """Windows of one model version, thinned evenly to at most :data:`MAX_WINDOWS`."""

    stride: int = 1
    points: list[dict[str, Any]] = field(default_factory=list)

    def add(self, index: int, point: dict[str, Any]) -> None:
        if index % self.stride:
            return
        self.points.append(point)
        if len(self.points) > MAX_WINDOWS:
            self.stride *= 2
            self.points = [p for p in self.points if p["index"] % self.stride == 0]


@dataclass
class _Version:
    reference: dict[str, float] = field(default_factory=dict)
    closed: int = 0
    windows: _Series = field(default_factory=_Series)
    performance: _Series = field(default_factory=_Series)
    estimate: _Series = field(default_factory=_Series)


class RunSummary:
    """Collect a replay's windows, performance and the histograms at its alerts.

    Parameters
    ----------
    inputs
        What was replayed (file names), recorded in the summary as given.
    settings
        The run's settings (the summary records the reference and window sizes).

    """

    def __init__(self, inputs: dict[str, str | None], settings: Settings) -> None:
        self.inputs = dict(inputs)
        self.sizes = {"reference_size": settings.monitor.reference_size,
                      "window_size": settings.monitor.window_size,
                      "labelled_reference_size": settings.performance.reference_size,
                      "labelled_window_size": settings.performance.window_size}
        self._models: list[dict[str, Any]] = []
        self._versions: dict[tuple[str, str], _Version] = {}
        # (model, version, window index) → feature → ids of firing alerts awaiting its close.
        self._wanted: dict[tuple[str, str, int], dict[str, list[str]]] = {}
        self._distributions: dict[str, dict[str, dict[str, Any]]] = {}

    def observe(self, output: StepOutput) -> None:
        """Take what one step produced.

        Alerts first: a report of the same step may close the window of one of them.
        """
        for alert in output.alerts:
            self._want(alert)
        for model_id, version, report, _ in output.reports:
            self._window(model_id, version, report)
        for model_id, version, report in output.label_reports:
            self._performance(model_id, version, report)

    def _version(self, model_id: str, version: str) -> _Version:
        entry = self._versions.get((model_id, version))
        if entry is None:
            entry = self._versions[(model_id, version)] = _Version()
        return entry

    def _want(self, alert: dict[str, Any]) -> None:
        window = alert.get("window") or {}
        if alert.get("status") != "firing" or alert.get("kind") not in _DISTRIBUTION_KINDS \
                or not isinstance(window.get("index"), int):
            return
        members = alert.get("features") or [alert]
        wanted = self._wanted.setdefault(
            (alert["model_id"], alert["model_version"], window["index"]), {})
        for member in members:
            feature = member.get("feature")
            if feature and feature != JOINT:
                wanted.setdefault(feature, []).append(alert["alert_id"])

    def _window(self, model_id: str, version: str, report: WindowReport) -> None:
        if report.partial:
            return            # its alarm is in the alerts; the window's close follows
        entry = self._version(model_id, version)
        entry.closed += 1
        entry.reference = {k: report.reference[k] for k in ("start_ts", "end_ts", "events")
                           if k in report.reference}
        scores: dict[str, float] = {}
        for finding in report.findings:
            if finding.check == "distribution":
                result = finding.result
                scores[finding.feature] = _ratio(result.statistic, result.threshold)
        entry.windows.add(report.index, {
            "index": report.index, "start_ts": report.start_ts, "end_ts": report.end_ts,
            "events": report.events, "scores": scores,
            "drifted": sorted({f.feature for f in report.drifted})})
        wanted = self._wanted.pop((model_id, version, report.index), None)
        if not wanted:
            return
        window = {"index": report.index, "start_ts": report.start_ts,
                  "end_ts": report.end_ts, "events": report.events}
        for finding in report.findings:
            alert_ids = wanted.get(finding.feature)
            if finding.check != "distribution" or not alert_ids:
                continue
            histograms = finding.result.distribution
            if histograms is None:
                continue
            for alert_id in alert_ids:
                self._distributions.setdefault(alert_id, {})[finding.feature] = {
                    **histograms, "at": window}

    def _performance(self, model_id: str, version: str, report: WindowReport) -> None:
        if report.partial:
            return
        metrics: dict[str, dict[str, Any]] = {}
        estimated = False
        for finding in report.findings:
            if finding.segment is not None or finding.kind not in (PERFORMANCE, ESTIMATED):
                continue
            result = finding.result
            value = _window_value(finding.kind, finding.feature, result.reference,
                                  result.effect_size, result.p_value)
            if value is not None:
                estimated = finding.kind == ESTIMATED
                metrics[finding.feature] = {"value": value, "drift": result.drift,
                                            "reference": _reference_value(result.reference)}
        if metrics:
            # Labelled windows and label-free estimate windows count different events.
            entry = self._version(model_id, version)
            (entry.estimate if estimated else entry.performance).add(report.index, {
                "index": report.index, "end_ts": report.end_ts, "events": report.events,
                "metrics": metrics})

    def finish(self, state: PartitionState) -> None:
        """Note every model version's totals and label join once the replay is over."""
        labels = state.labels.summary()
        self._models = []
        for model_id, version in sorted(set(self._versions) | set(state.monitors.models)):
            entry = self._versions.get((model_id, version), _Version())
            monitor = state.monitors.monitor(model_id, version)
            joined = labels.get(model_id, {})
            self._models.append({
                "model_id": model_id, "model_version": version,
                "events": monitor.events if monitor is not None else 0,
                "schema": dict(monitor.schema) if monitor is not None else {},
                "reference": entry.reference,
                "windows_closed": entry.closed, "windows": entry.windows.points,
                "window_stride": entry.windows.stride,
                "performance": entry.performance.points, "estimate": entry.estimate.points,
                "labels": {key: _json_ready(joined.get(key)) for key in (
                    "labels", "joined", "coverage", "delay_p50_s", "delay_p90_s", "task")}
                if joined.get("version") == version else None})

    def to_dict(self, totals: dict[str, int]) -> dict[str, Any]:
        """The summary: :meth:`finish` first; ``totals`` are the replay's counts."""
        return {"summary_version": SUMMARY_VERSION, "generator": "driftline replay",
                "inputs": self.inputs, "totals": totals, "sizes": self.sizes,
                "models": self._models, "distributions": self._distributions}


def _reference_value(reference: dict[str, float]) -> float | None:
    """The reference's value of a performance verdict's metric (its only key but ``events``)."""
    values = [v for k, v in reference.items() if k not in ("events", "start_ts", "end_ts")]
    return _finite(values[0]) if values else None


def _window_value(kind: str, metric: str, reference: dict[str, float], effect: float,
                  p_value: float | None) -> float | None:
    """A performance window's own value, from its verdict's reference value and effect size.

    The verdicts define the effect as the reference minus the window for
    accuracy (also estimated) and as the window's relative rise for a mean
    loss (:mod:`detectors.performance.degradation`, ``estimation``); an
    untested verdict has no p-value and says nothing of its window.
    """
    base = _reference_value(reference)
    if base is None or p_value is None and effect == 0.0:
        return None
    if kind == ESTIMATED or metric == "accuracy":
        return _finite(base - effect)
    return _finite(base * (1.0 + effect))


def _ratio(statistic: float, threshold: float) -> float:
    if not threshold or not math.isfinite(threshold) or not math.isfinite(statistic):
        return 0.0
    return round(statistic / threshold, 4)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _json_ready(value: Any) -> Any:
    """JSON has no infinity (an open-ended delay bucket): it becomes null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_summary(summary: dict[str, Any], path: Path) -> None:
    """Write the summary as JSON (sorted keys: the same run gives the same bytes)."""
    path.write_bytes(orjson.dumps(summary, option=orjson.OPT_SORT_KEYS) + b"\n")


def read_summary(path: Path) -> dict[str, Any]:
    """Read a summary :func:`write_summary` wrote; refuse anything else by name."""
    try:
        summary = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise DriftlineError(f"cannot read the run summary {path}: {exc}") from exc
    if not isinstance(summary, dict) or summary.get("summary_version") != SUMMARY_VERSION:
        raise DriftlineError(f"{path} is not a driftline run summary (summary_version "
                             f"{SUMMARY_VERSION}; `driftline replay --summary` writes one)")
    return summary


__all__ = ["MAX_WINDOWS", "SUMMARY_VERSION", "RunSummary", "read_summary", "write_summary"]
