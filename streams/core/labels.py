"""The label side of a partition: join bookkeeping, performance, estimates, retrain requests.

``LabelEngine`` is pure like :class:`~streams.core.engine.MonitorEngine`: the worker
(or offline replay) does the I/O against a :class:`~streams.state.pending.PendingStore`
and hands it the results. One step on predictions returns what to store and
which early labels to claim now; one step on claims returns alerts and retrain
requests. Its state is checkpointed with the partition's offsets, so after a
crash the same labels join again exactly once (see :mod:`streams.state.pending`).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import orjson

# river is imported lazily by the monitors (``import detectors`` stays light); a worker
# pays for it at start rather than on its first label.
import river.linear_model  # noqa: F401
import river.tree  # noqa: F401

import detectors.concept  # noqa: F401
from detectors.monitor import WindowReport
from detectors.performance import (
    CLASSIFICATION,
    REGRESSION,
    LabelFreeEstimator,
    LabelledBatch,
    PerformanceMonitor,
    confidence_of,
    normalise_class,
)
from streams.core.alerts import AlertPolicy
from streams.settings import Settings
from streams.state.pending import DUPLICATE, MISSING, Claim

STATE_VERSION = 1
# (model_id, model_version, saved state or None) -> the alert policy of a model version.
PolicyFactory = Callable[[str, str, dict[str, Any] | None], AlertPolicy]
# Upper bounds (seconds) of the label-delay histogram's buckets; the last is +inf.
DELAY_BUCKETS = (1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0)


class LabelRequest(NamedTuple):
    """A label waiting to claim its prediction."""

    event_id: str
    claimant: str
    label: Any
    ts: float
    offset: int


@dataclass
class LabelStep:
    """Outputs of one step of the label engine."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    retrain: list[dict[str, Any]] = field(default_factory=list)
    reports: list[tuple[str, str, WindowReport]] = field(default_factory=list)
    entries: dict[str, dict[str, bytes]] = field(default_factory=dict)
    retry: dict[str, list[LabelRequest]] = field(default_factory=dict)
    joined: list[dict[str, Any]] = field(default_factory=list)
    """Joined records for the optional ``driftline.joined`` topic (``labels.joined_topic``)."""


@dataclass
class ModelCounts:
    """Join counters of one model in one partition."""

    predictions: int = 0
    labels: int = 0
    joined: int = 0
    duplicates: int = 0
    unmatched: int = 0
    segment_overflow: int = 0
    """Labelled events of segment values beyond ``labels.max_segments`` (not monitored)."""
    delays: list[int] = field(default_factory=lambda: [0] * (len(DELAY_BUCKETS) + 1))
    last_prediction_ts: float = -math.inf
    version: str | None = None

    @property
    def coverage(self) -> float | None:
        """Share of predictions that have been joined with a label."""
        return self.joined / self.predictions if self.predictions else None

    def delay_quantile(self, q: float) -> float | None:
        """Upper bound of the delay bucket holding quantile ``q`` (``inf`` past the last)."""
        total = sum(self.delays)
        if not total:
            return None
        running = 0
        for bound, count in zip((*DELAY_BUCKETS, math.inf), self.delays, strict=True):
            running += count
            if running >= q * total:
                return bound
        return math.inf


class LabelEngine:
    """Join bookkeeping and label-driven monitors of every model in one partition."""

    def __init__(self, settings: Settings, partition: int = 0,
                 policy_factory: PolicyFactory | None = None) -> None:
        self.settings = settings
        self.partition = partition
        self._policy_factory = policy_factory or self._own_policy
        self._topics = (settings.topics.name("predictions"), settings.topics.name("labels"))
        self._counts: dict[str, ModelCounts] = {}
        self._tasks: dict[str, str] = {}
        self._early: dict[str, dict[str, LabelRequest]] = {}
        self._early_total = 0
        self._performance: dict[tuple[str, str], PerformanceMonitor] = {}
        self._estimators: dict[tuple[str, str], LabelFreeEstimator] = {}
        self._policies: dict[tuple[str, str], AlertPolicy] = {}
        self._retrain: dict[tuple[str, str], Any] = {}
        # Per segment value ("name=value") of a model version: its performance and alerts.
        self._segments: dict[tuple[str, str, str], PerformanceMonitor] = {}
        self._segment_policies: dict[tuple[str, str, str], AlertPolicy] = {}
        # Segments get no challengers: one set per model version bounds their cost.
        self._segment_config = dataclasses.replace(settings.performance, challengers=())

    def _own_policy(self, model_id: str, version: str,
                    state: dict[str, Any] | None) -> AlertPolicy:
        alerts = self.settings.alerts
        if state is not None:
            return AlertPolicy.from_state(state, alerts)
        return AlertPolicy(model_id, version, alerts.resolve_after_windows,
                           cooldown_windows=alerts.cooldown_windows, group=alerts.group)

    def counts(self, model_id: str) -> ModelCounts:
        """The join counters of a model (created empty on first use)."""
        counts = self._counts.get(model_id)
        if counts is None:
            counts = self._counts[model_id] = ModelCounts()
        return counts

    # -- predictions ------------------------------------------------------------------------
    def on_predictions(self, events: list[dict[str, Any]], offsets: list[int]) -> LabelStep:
        """Encode predictions for the pending store; estimate performance without labels.

        ``offsets[i]`` is the input offset of ``events[i]``. The step's ``retry``
        lists early labels whose predictions just arrived: claim them after
        storing ``entries``.
        """
        step = LabelStep()
        keep_features = self.settings.labels.store_features
        by_version: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
        latest: dict[str, tuple[float, str]] = {}
        entries_of = step.entries
        nan = math.nan
        for event, offset in zip(events, offsets, strict=True):
            model_id, version, ts = event["model_id"], event["model_version"], event["ts"]
            prediction = event["prediction"]
            score, scores = event.get("score"), event.get("scores")
            confidence = nan
            if score is not None or scores:
                confidence = confidence_of(normalise_class(prediction), score, scores)
            known = confidence == confidence          # not nan
            entry = {"v": version, "ts": ts, "y": prediction, "s": score,
                     "c": confidence if known else None, "o": offset}
            if keep_features:
                entry["f"] = event["features"]
            segments = event.get("segments")
            if segments:
                entry["g"] = segments
            entries = entries_of.get(model_id)
            if entries is None:
                entries = entries_of[model_id] = {}
            entries[event["event_id"]] = orjson.dumps(entry)
            if known:
                series = by_version.get((model_id, version))
                if series is None:
                    series = by_version[(model_id, version)] = ([], [])
                series[0].append(ts)
                series[1].append(confidence)
            previous = latest.get(model_id)
            if previous is None or ts >= previous[0]:
                latest[model_id] = (ts, version)
        for model_id, entries in step.entries.items():
            counts = self.counts(model_id)
            counts.predictions += len(entries)
            counts.last_prediction_ts = max(counts.last_prediction_ts, latest[model_id][0])
            counts.version = latest[model_id][1]
            early = self._early.get(model_id)
            if early:
                waiting = [early.pop(event_id) for event_id in entries if event_id in early]
                self._early_total -= len(waiting)
                if waiting:
                    step.retry[model_id] = waiting
        for (model_id, version), (ts, confidence) in by_version.items():
            estimator = self._estimators.get((model_id, version))
            if estimator is None:
                estimator = self._estimators[(model_id, version)] = LabelFreeEstimator(
                    self.settings.estimation)
            for report in estimator.update_many(np.asarray(ts, dtype=np.float64),
                                                np.asarray(confidence, dtype=np.float64)):
                self._report(step, model_id, version, report)
        self._expire_early()
        return step

    # -- labels -----------------------------------------------------------------------------
    def requests(self, labels: list[dict[str, Any]], offsets: list[int],
                 indices: list[int] | None = None) -> dict[str, list[LabelRequest]]:
        """Group decoded label events into claims, per model.

        The claimant is the label's position (offset, and index within an array
        message): the same label read again after a crash claims as itself.
        """
        grouped: dict[str, list[LabelRequest]] = {}
        for i, (label, offset) in enumerate(zip(labels, offsets, strict=True)):
            index = indices[i] if indices is not None else 0
            grouped.setdefault(label["model_id"], []).append(LabelRequest(
                label["event_id"], f"{offset}.{index}", label["label"], float(label["ts"]),
                offset))
        for model_id, group in grouped.items():
            self.counts(model_id).labels += len(group)
        return grouped

    def on_claims(self, model_id: str, requests: list[LabelRequest],
                  claims: list[Claim]) -> LabelStep:
        """Join what the labels found; queue the early ones; feed the monitors."""
        step = LabelStep()
        counts = self.counts(model_id)
        joined: dict[str, list[tuple[LabelRequest, dict[str, Any]]]] = {}
        for request, claim in zip(requests, claims, strict=True):
            if claim.status == DUPLICATE:
                counts.duplicates += 1
            elif claim.status == MISSING or claim.prediction is None:
                self._wait(model_id, request)
            else:
                joined.setdefault(claim.prediction["v"], []).append((request, claim.prediction))
        for version, pairs in joined.items():
            counts.joined += len(pairs)
            for request, prediction in pairs:
                delay = max(request.ts - float(prediction["ts"]), 0.0)
                counts.delays[bisect.bisect_left(DELAY_BUCKETS, delay)] += 1
            if self.settings.labels.joined_topic:
                step.joined += [self._joined_record(model_id, version, request, prediction)
                                for request, prediction in pairs]
            self._feed(step, model_id, version, pairs)
        return step

    def _joined_record(self, model_id: str, version: str, request: LabelRequest,
                       prediction: dict[str, Any]) -> dict[str, Any]:
        """One prediction with its label, as published on the joined topic (contract v1)."""
        record: dict[str, Any] = {
            "schema_version": 1, "model_id": model_id, "model_version": version,
            "event_id": request.event_id, "ts": prediction["ts"], "label_ts": request.ts,
            "prediction": prediction["y"], "score": prediction.get("s"), "label": request.label,
            "source": {"partition": self.partition, "prediction_offset": prediction["o"],
                       "label_offset": request.offset}}
        if "f" in prediction:
            record["features"] = prediction["f"]
        if "g" in prediction:
            record["segments"] = prediction["g"]
        return record

    def _wait(self, model_id: str, request: LabelRequest) -> None:
        early = self._early.setdefault(model_id, {})
        if request.event_id in early:
            self.counts(model_id).duplicates += 1
            return
        early[request.event_id] = request
        self._early_total += 1
        limit = self.settings.labels.max_early_labels
        while self._early_total > limit:
            # Evict the oldest early label of the model holding most of them.
            fullest = max(self._early, key=lambda m: len(self._early[m]))
            victims = self._early[fullest]
            victims.pop(next(iter(victims)))
            self._early_total -= 1
            self.counts(fullest).unmatched += 1

    def _expire_early(self) -> None:
        wait = self.settings.labels.early_wait_s
        for model_id, early in self._early.items():
            horizon = self.counts(model_id).last_prediction_ts - wait
            while early:
                oldest = next(iter(early))
                if early[oldest].ts >= horizon:
                    break
                del early[oldest]
                self._early_total -= 1
                self.counts(model_id).unmatched += 1

    def _feed(self, step: LabelStep, model_id: str, version: str,
              pairs: list[tuple[LabelRequest, dict[str, Any]]]) -> None:
        task = self._task(model_id, pairs[0][0].label, pairs[0][1]["y"])
        key = (model_id, version)
        monitor = self._performance.get(key)
        if monitor is None:
            monitor = self._performance[key] = PerformanceMonitor(task, self.settings.performance)
        batch = _labelled_batch(task, pairs, self.settings.labels.store_features)
        for report in monitor.update_many(batch):
            self._report(step, model_id, version, report)
        retrain = self._retrain_policy(model_id, version)
        request = retrain.on_labelled(
            ts=batch.ts.tolist(), prediction_offsets=[int(p["o"]) for _, p in pairs],
            label_offsets=[r.offset for r, _ in pairs], partition=self.partition,
            topics=self._topics,
            coverage=self.counts(model_id).coverage, challenger=monitor.challenger_result())
        if request is not None:
            step.retrain.append(request)
        if self.settings.labels.max_segments:
            self._feed_segments(step, model_id, version, task, batch, pairs)

    def _feed_segments(self, step: LabelStep, model_id: str, version: str, task: str,
                       batch: LabelledBatch,
                       pairs: list[tuple[LabelRequest, dict[str, Any]]]) -> None:
        """Feed each segment value's own monitor; the first ``max_segments`` of a version get one.

        A prediction with several segments (``{"channel": "web", "region": "eu"}``)
        counts in each of them. Each segment's events are rows of the version's
        ``batch``, taken rather than decoded again.
        """
        rows_of: dict[str, list[int]] = {}
        for row, (_, prediction) in enumerate(pairs):
            for name, value in (prediction.get("g") or {}).items():
                rows_of.setdefault(segment_label(name, value), []).append(row)
        for label, rows in rows_of.items():
            key = (model_id, version, label)
            monitor = self._segments.get(key)
            if monitor is None:
                known = sum(1 for m, v, _ in self._segments if m == model_id and v == version)
                if known >= self.settings.labels.max_segments:
                    self.counts(model_id).segment_overflow += len(rows)
                    continue
                monitor = self._segments[key] = PerformanceMonitor(task, self._segment_config)
            for report in monitor.update_many(batch.take(rows)):
                findings = [dataclasses.replace(f, segment=label) for f in report.findings]
                self._report(step, model_id, version,
                             dataclasses.replace(report, findings=findings), label)

    def _report(self, step: LabelStep, model_id: str, version: str,
                report: WindowReport, segment: str | None = None) -> None:
        # A segment has its own window indices, hence its own policy and cooldowns (the
        # model's rate limit is shared through the factory).
        table: dict[Any, AlertPolicy]
        key: tuple[str, ...]
        if segment is None:
            step.reports.append((model_id, version, report))
            table, key = self._policies, (model_id, version)
        else:
            table, key = self._segment_policies, (model_id, version, segment)
        policy = table.get(key)
        if policy is None:
            policy = table[key] = self._policy_factory(model_id, version, None)
        alerts = policy.apply(report)
        step.alerts += alerts
        retrain = self._retrain_policy(model_id, version)
        for alert in alerts:
            retrain.on_alert(alert)

    def _retrain_policy(self, model_id: str, version: str) -> Any:
        from streams.core.retrain import RetrainPolicy

        policy = self._retrain.get((model_id, version))
        if policy is None:
            policy = self._retrain[(model_id, version)] = RetrainPolicy(
                model_id, version, self.settings.labels.retrain_min_labels)
        return policy

    def _task(self, model_id: str, label: Any, prediction: Any) -> str:
        task = self._tasks.get(model_id)
        if task is None:
            declared = self.settings.models.get(model_id)
            task = (declared.task if declared is not None and declared.task
                    else infer_task(label, prediction))
            self._tasks[model_id] = task
        return task

    # -- views and state --------------------------------------------------------------------
    def summary(self) -> dict[str, dict[str, Any]]:
        """Per model: join counters, coverage, delay quantiles, metrics, estimate, challengers."""
        out: dict[str, dict[str, Any]] = {}
        for model_id, counts in self._counts.items():
            entry: dict[str, Any] = {
                "predictions": counts.predictions, "labels": counts.labels,
                "joined": counts.joined, "duplicates": counts.duplicates,
                "unmatched": counts.unmatched, "waiting": len(self._early.get(model_id, {})),
                "coverage": counts.coverage, "delay_p50_s": counts.delay_quantile(0.5),
                "delay_p90_s": counts.delay_quantile(0.9), "delay_buckets": list(counts.delays),
                "task": self._tasks.get(model_id), "version": counts.version,
                "segment_overflow": counts.segment_overflow}
            if counts.version is not None:
                monitor = self._performance.get((model_id, counts.version))
                estimator = self._estimators.get((model_id, counts.version))
                entry["performance"] = monitor.metrics() if monitor else None
                entry["challengers"] = monitor.challenger_result() if monitor else None
                entry["estimate"] = estimator.estimate() if estimator else None
                entry["segments"] = {
                    label: _segment_summary(monitor)
                    for (mid, ver, label), monitor in self._segments.items()
                    if mid == model_id and ver == counts.version}
            out[model_id] = entry
        return out

    def to_state(self) -> dict[str, Any]:
        """Plain-dict state (checkpointed with the partition's offsets)."""
        def pairs(table: dict[tuple[str, str], Any]) -> list[list[Any]]:
            return [[mid, ver, item.to_state()] for (mid, ver), item in table.items()]

        return {
            "version": STATE_VERSION, "tasks": dict(self._tasks),
            "counts": {m: {**vars(c), "last_prediction_ts": c.last_prediction_ts
                           if math.isfinite(c.last_prediction_ts) else None}
                       for m, c in self._counts.items()},
            "early": {m: [list(r) for r in early.values()] for m, early in self._early.items()},
            "performance": pairs(self._performance), "estimators": pairs(self._estimators),
            "policies": pairs(self._policies), "retrain": pairs(self._retrain),
            "segments": [[mid, ver, label, monitor.to_state(),
                          self._segment_policies[(mid, ver, label)].to_state()
                          if (mid, ver, label) in self._segment_policies else None]
                         for (mid, ver, label), monitor in self._segments.items()],
        }

    @classmethod
    def from_state(cls, settings: Settings, state: dict[str, Any], partition: int = 0,
                   policy_factory: PolicyFactory | None = None) -> LabelEngine:
        """Rebuild from :meth:`to_state` output."""
        from streams.core.retrain import RetrainPolicy

        engine = cls(settings, partition, policy_factory)
        engine._tasks = dict(state["tasks"])
        for model_id, saved in state["counts"].items():
            raw = dict(saved)
            last = raw.pop("last_prediction_ts")
            engine._counts[model_id] = ModelCounts(
                **raw, last_prediction_ts=-math.inf if last is None else float(last))
        for model_id, early in state["early"].items():
            engine._early[model_id] = {r[0]: LabelRequest(*r) for r in early}
        engine._early_total = sum(len(e) for e in engine._early.values())
        for table, restore, key in (
                (engine._performance, PerformanceMonitor.from_state, "performance"),
                (engine._estimators, LabelFreeEstimator.from_state, "estimators"),
                (engine._retrain, RetrainPolicy.from_state, "retrain")):
            for model_id, version, item in state[key]:
                table[(model_id, version)] = restore(item)
        for model_id, version, item in state["policies"]:
            engine._policies[(model_id, version)] = engine._policy_factory(model_id, version,
                                                                           item)
        for model_id, version, label, monitor, policy in state.get("segments", []):
            key = (model_id, version, label)
            engine._segments[key] = PerformanceMonitor.from_state(monitor)
            if policy is not None:
                engine._segment_policies[key] = engine._policy_factory(model_id, version, policy)
        return engine


def segment_label(name: str, value: Any) -> str:
    """How a segment value is named in alerts and metrics: ``name=value``.

    Examples
    --------
    >>> segment_label("channel", "web"), segment_label("tier", 2), segment_label("vip", True)
    ('channel=web', 'tier=2', 'vip=true')
    >>> segment_label("tier", 2.0), segment_label("ratio", 0.5)
    ('tier=2', 'ratio=0.5')
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    return f"{name}={text}"


def _segment_summary(monitor: PerformanceMonitor) -> dict[str, Any]:
    metrics = monitor.metrics()
    return {"labelled_events": metrics["labelled_events"],
            "reference_complete": metrics["reference_complete"],
            "reference": metrics["reference"], "window": metrics["window"],
            "current_window": metrics["current_window"]}


def infer_task(label: Any, prediction: Any) -> str:
    """Classification unless a label or prediction is a non-integral number.

    Examples
    --------
    >>> infer_task(1, 0), infer_task("spam", "ham"), infer_task(3.25, 2.0)
    ('classification', 'classification', 'regression')
    """
    for value in (label, prediction):
        if isinstance(value, float) and not value.is_integer():
            return REGRESSION
    return CLASSIFICATION


def _labelled_batch(task: str, pairs: list[tuple[LabelRequest, dict[str, Any]]],
                    with_features: bool) -> LabelledBatch:
    if task == REGRESSION:
        y_true: np.ndarray[Any, Any] = np.array([_number(r.label) for r, _ in pairs])
        y_pred: np.ndarray[Any, Any] = np.array([_number(p["y"]) for _, p in pairs])
    else:
        y_true = np.array([normalise_class(r.label) for r, _ in pairs], dtype=object)
        y_pred = np.array([normalise_class(p["y"]) for _, p in pairs], dtype=object)
    return LabelledBatch(
        ts=np.array([float(p["ts"]) for _, p in pairs]),
        y_true=y_true, y_pred=y_pred,
        score=np.array([_number(p.get("s")) for _, p in pairs]),
        confidence=np.array([_number(p.get("c")) for _, p in pairs]),
        features=[p.get("f") or {} for _, p in pairs] if with_features else [])


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return math.nan


__all__ = ["DELAY_BUCKETS", "LabelEngine", "LabelRequest", "LabelStep", "ModelCounts",
           "infer_task", "segment_label"]
