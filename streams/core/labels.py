"""The label side of a partition: join bookkeeping, performance, estimates, retrain requests.

``LabelEngine`` is pure like :class:`~streams.core.engine.MonitorEngine`: the worker
(or offline replay) does the I/O against a :class:`~streams.state.pending.PendingStore`
and hands it the results. One step on predictions returns what to store and
which early labels to claim now; one step on claims returns alerts and retrain
requests. Its state is checkpointed with the partition's offsets, so after a
crash the same labels join again exactly once (see :mod:`streams.state.pending`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Any, NamedTuple, cast

import numpy as np
from numpy.typing import NDArray

from detectors.monitor import WindowReport
from detectors.performance import (
    LabelFreeEstimator,
    LabelledBatch,
    PerformanceMonitor,
)
from streams.core.alerts import AlertPolicy
from streams.core.label_columns import (
    infer_task,
    labelled_batch,
    pending_rows,
    segment_label,
)
from streams.core.label_counts import DELAY_BUCKETS, ModelCounts
from streams.ingest.columnar import rows_by_key
from streams.settings import Settings
from streams.state.pending import (
    DUPLICATE,
    MISSING,
    STATUS_CODES,
    Claimed,
    PendingRows,
    claimants,
    pick,
)

STATE_VERSION = 1
# (model_id, model_version, saved state or None) -> the alert policy of a model version.
PolicyFactory = Callable[[str, str, dict[str, Any] | None], AlertPolicy]


class LabelRequest(NamedTuple):
    """An early label waiting for its prediction (one row of a :class:`LabelBatch`)."""

    event_id: str
    position: int
    """Its index within its message: with ``offset``, who claims (:func:`claimants`)."""
    label: Any
    ts: float
    offset: int


# A LabelRequest from its fields' tuple by tuple.__new__ itself (a C call: the named
# tuple's own __new__ is a Python function).
_as_request = cast("Callable[[tuple[Any, ...]], LabelRequest]",
                   partial(tuple.__new__, LabelRequest))


@dataclass
class LabelBatch:
    """Labels of one model that claim their predictions, as columns.

    Examples
    --------
    >>> batch = LabelBatch(["e1", "e2"], [1, 0], np.array([5.0, 6.0]), np.array([9, 9]),
    ...                    np.array([0, 1]))
    >>> batch.take(np.array([1])).event_ids, batch.claimants().tolist()
    (['e2'], [(9, 0), (9, 1)])
    """

    event_ids: list[str]
    labels: list[Any]
    ts: NDArray[np.float64]
    offsets: NDArray[np.int64]
    """The offset of each label's message."""
    indices: NDArray[np.int64]
    """Each label's index within its message."""

    def __len__(self) -> int:
        return len(self.event_ids)

    def take(self, rows: NDArray[np.intp]) -> LabelBatch:
        """The labels at ``rows``, in that order."""
        chosen = rows.tolist()
        return LabelBatch(pick(self.event_ids, chosen), pick(self.labels, chosen),
                          self.ts[rows], self.offsets[rows], self.indices[rows])

    def claimants(self) -> NDArray[np.void]:
        """Who claims each row: the label's offset and index (the same after a crash)."""
        return claimants(self.offsets, self.indices)

    def requests(self) -> Iterator[LabelRequest]:
        """Every label, as it waits among the early ones (no Python call per label)."""
        return map(_as_request, zip(self.event_ids, self.indices.tolist(), self.labels,
                                    self.ts.tolist(), self.offsets.tolist(), strict=True))

    @classmethod
    def of_requests(cls, requests: list[LabelRequest]) -> LabelBatch:
        """The columns of early labels.

        >>> batch = LabelBatch(["e1", "e2"], [1, 0], np.array([5.0, 6.0]), np.array([9, 9]),
        ...                    np.array([0, 1]))
        >>> again = LabelBatch.of_requests(list(batch.requests()))
        >>> again.event_ids, again.labels, again.ts.tolist(), again.indices.tolist()
        (['e1', 'e2'], [1, 0], [5.0, 6.0], [0, 1])
        >>> list(batch.requests())[1]
        LabelRequest(event_id='e2', position=1, label=0, ts=6.0, offset=9)
        """
        if not requests:
            return cls([], [], np.empty(0), np.empty(0, dtype=np.int64),
                       np.empty(0, dtype=np.int64))
        event_ids, positions, labels, ts, offsets = zip(*requests, strict=True)
        return cls(list(event_ids), list(labels), np.array(ts, dtype=np.float64),
                   np.array(offsets, dtype=np.int64), np.array(positions, dtype=np.int64))


@dataclass
class LabelStep:
    """Outputs of one step of the label engine."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    retrain: list[dict[str, Any]] = field(default_factory=list)
    reports: list[tuple[str, str, WindowReport]] = field(default_factory=list)
    pending: dict[str, PendingRows] = field(default_factory=dict)
    """Rows to store in the pending store, per model."""
    retry: dict[str, LabelBatch] = field(default_factory=dict)
    joined: list[dict[str, Any]] = field(default_factory=list)
    """Joined records for the optional ``driftline.joined`` topic (``labels.joined_topic``)."""


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
        # Models whose state changed since the last take_changed(): what a checkpoint writes.
        self._changed: set[str] = set()
        # Segments get no challengers: one set per model version bounds their cost.
        self._segment_config = dataclasses.replace(settings.performance, challengers=())
        # Features wait with their predictions only where something will read them: the
        # challengers learn from every challenger_every-th labelled event, so a sample of
        # that rate is kept; the joined topic publishes them all.
        labels, performance = settings.labels, settings.performance
        self._feature_every = (0 if not labels.store_features
                               else 1 if labels.joined_topic
                               else performance.challenger_every if performance.challengers
                               else 0)

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

    def counts_by_model(self) -> list[ModelCounts]:
        """The join counters of every model seen."""
        return list(self._counts.values())

    # -- predictions ------------------------------------------------------------------------
    def on_predictions(self, model_id: str, events: list[dict[str, Any]],
                       offsets: NDArray[np.int64],
                       fields: dict[str, tuple[Any, ...]] | None = None) -> LabelStep:
        """Columnar pending rows of one model's predictions; estimate performance without labels.

        ``offsets[i]`` is the input offset of ``events[i]``; for typed events,
        ``fields`` may give their ``struct_columns``, transposed already. The step's
        ``pending`` holds the rows to store and ``retry`` the early labels whose
        predictions just arrived: claim them after storing the rows.
        """
        step = LabelStep()
        self._changed.add(model_id)
        rows = pending_rows(events, offsets, self._feature_every, fields)
        step.pending[model_id] = rows
        counts = self.counts(model_id)
        counts.predictions += len(rows)
        last = len(rows) - 1 - int(np.argmax(rows.ts[::-1]))     # the latest, last of ties
        if rows.ts[last] >= counts.last_prediction_ts:
            counts.last_prediction_ts = float(rows.ts[last])
            counts.version = rows.versions[last]
        early = self._early.get(model_id)
        if early:
            arrived = early.keys() & set(rows.event_ids)
            if arrived:
                waiting = [early.pop(event_id) for event_id in rows.event_ids
                           if event_id in arrived and event_id in early]
                self._early_total -= len(waiting)
                step.retry[model_id] = LabelBatch.of_requests(waiting)
        known = ~np.isnan(rows.confidence)
        if known.any():
            for version, picked in rows_by_key(rows.versions).items():
                scored = picked[known[picked]]
                estimator = self._estimators.get((model_id, version))
                if estimator is None:
                    estimator = self._estimators[(model_id, version)] = LabelFreeEstimator(
                        self.settings.estimation)
                for report in estimator.update_many(rows.ts[scored], rows.confidence[scored]):
                    self._report(step, model_id, version, report)
        self._expire_early()
        return step

    # -- labels -----------------------------------------------------------------------------
    def requests(self, labels: list[dict[str, Any]],
                 offsets: Sequence[int] | NDArray[np.int64],
                 indices: Sequence[int] | NDArray[np.int64] | None = None,
                 ) -> dict[str, LabelBatch]:
        """Group decoded label events into claims, per model.

        The claimant is the label's position (offset, and index within an array
        message): the same label read again after a crash claims as itself.
        """
        count = len(labels)
        if not count:
            return {}
        batch = LabelBatch(
            list(map(_EVENT_ID, labels)), list(map(_LABEL, labels)),
            np.fromiter(map(_TS, labels), dtype=np.float64, count=count),
            np.asarray(offsets, dtype=np.int64),
            np.zeros(count, dtype=np.int64) if indices is None
            else np.asarray(indices, dtype=np.int64))
        model_ids = list(map(_MODEL_ID, labels))
        grouped: dict[str, LabelBatch]
        if model_ids.count(model_ids[0]) == count:
            grouped = {model_ids[0]: batch}
        else:
            grouped = {model_id: batch.take(rows)
                       for model_id, rows in rows_by_key(model_ids).items()}
        for model_id, group in grouped.items():
            self.counts(model_id).labels += len(group)
        self._changed.update(grouped)
        return grouped

    def on_claims(self, model_id: str, requests: LabelBatch, claimed: Claimed) -> LabelStep:
        """Join what the labels found; queue the early ones; feed the monitors."""
        step = LabelStep()
        self._changed.add(model_id)
        counts = self.counts(model_id)
        codes = claimed.codes
        counts.duplicates += int(np.count_nonzero(codes == _DUPLICATE))
        missing = np.flatnonzero(codes == _MISSING)
        if missing.size:
            self._wait_many(model_id, requests if missing.size == len(requests)
                            else requests.take(missing))
        rows = claimed.rows
        if rows is None:
            return step
        joins = claimed.joins
        joined = requests if joins.all() else requests.take(np.flatnonzero(joins))
        if not len(joined):
            return step
        for version, picked in rows_by_key(rows.versions).items():
            pairs, part = ((joined, rows) if len(picked) == len(rows) else
                           (joined.take(picked), rows.take(picked)))
            counts.joined += len(pairs)
            delays = np.maximum(pairs.ts - part.ts, 0.0)
            buckets = np.bincount(np.searchsorted(DELAY_BUCKETS, delays, side="left"),
                                  minlength=len(DELAY_BUCKETS) + 1)
            counts.delays = [a + int(b) for a, b in zip(counts.delays, buckets, strict=True)]
            if self.settings.labels.joined_topic:
                step.joined += [self._joined_record(model_id, version, request, part, row)
                                for row, request in enumerate(pairs.requests())]
            self._feed(step, model_id, version, pairs, part)
        return step

    def _joined_record(self, model_id: str, version: str, request: LabelRequest,
                       rows: PendingRows, row: int) -> dict[str, Any]:
        """One prediction with its label, as published on the joined topic (contract v1)."""
        score = float(rows.score[row])
        record: dict[str, Any] = {
            "schema_version": 1, "model_id": model_id, "model_version": version,
            "event_id": request.event_id, "ts": float(rows.ts[row]), "label_ts": request.ts,
            "prediction": rows.predictions[row], "score": None if math.isnan(score) else score,
            "label": request.label,
            "source": {"partition": self.partition,
                       "prediction_offset": int(rows.offsets[row]),
                       "label_offset": request.offset}}
        if rows.features is not None and rows.features[row] is not None:
            record["features"] = rows.features[row]
        if rows.segments is not None and rows.segments[row] is not None:
            record["segments"] = rows.segments[row]
        return record

    def _wait_many(self, model_id: str, batch: LabelBatch) -> None:
        """Queue labels that came before their predictions, in order, as :meth:`_wait` does.

        The usual batch (no label already waiting, none twice, room for all) is queued
        without a Python step per label.
        """
        early = self._early.setdefault(model_id, {})
        ids = batch.event_ids
        if (self._early_total + len(ids) <= self.settings.labels.max_early_labels
                and early.keys().isdisjoint(ids) and len(set(ids)) == len(ids)):
            early.update(zip(ids, batch.requests(), strict=True))
            self._early_total += len(ids)
            return
        for request in batch.requests():
            self._wait(model_id, request)

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
            self._changed.add(fullest)

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
                self._changed.add(model_id)

    def _feed(self, step: LabelStep, model_id: str, version: str,
              requests: LabelBatch, rows: PendingRows) -> None:
        task = self._task(model_id, requests.labels[0], rows.predictions[0])
        key = (model_id, version)
        monitor = self._performance.get(key)
        if monitor is None:
            monitor = self._performance[key] = PerformanceMonitor(task, self.settings.performance)
        batch = labelled_batch(task, requests.labels, rows)
        for report in monitor.update_many(batch):
            self._report(step, model_id, version, report)
        retrain = self._retrain_policy(model_id, version)
        request = retrain.on_labelled(
            ts=batch.ts.tolist(), prediction_offsets=rows.offsets.tolist(),
            label_offsets=requests.offsets.tolist(), partition=self.partition,
            topics=self._topics,
            coverage=self.counts(model_id).coverage, challenger=monitor.challenger_result())
        if request is not None:
            step.retrain.append(request)
        if self.settings.labels.max_segments:
            self._feed_segments(step, model_id, version, task, batch, rows)

    def _feed_segments(self, step: LabelStep, model_id: str, version: str, task: str,
                       batch: LabelledBatch, pending: PendingRows) -> None:
        """Feed each segment value's own monitor; the first ``max_segments`` of a version get one.

        A prediction with several segments (``{"channel": "web", "region": "eu"}``)
        counts in each of them. Each segment's events are rows of the version's
        ``batch``, taken rather than decoded again.
        """
        rows_of: dict[str, list[int]] = {}
        for row, segments in enumerate(pending.segments or ()):
            for name, value in (segments or {}).items():
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
        policy: AlertPolicy | None
        if segment is None:
            step.reports.append((model_id, version, report))
            policy = self._policies.get((model_id, version))
            if policy is None:
                policy = self._policies[(model_id, version)] = self._policy_factory(
                    model_id, version, None)
        else:
            policy = self._segment_policies.get((model_id, version, segment))
            if policy is None:
                policy = self._segment_policies[(model_id, version, segment)] = (
                    self._policy_factory(model_id, version, None))
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

    def forget(self, model_id: str, version: str, reason: str, at_ts: float,
               whole_model: bool = False) -> list[dict[str, Any]]:
        """Drop what the label side keeps of a retired model version; its alerts resolve.

        With ``whole_model`` (its last version went), every version of the model
        goes, with its join counters and the labels still waiting for it.
        """
        alerts: list[dict[str, Any]] = []
        self._changed.add(model_id)
        for key in [k for k in self._performance.keys() | self._estimators.keys()
                    | self._policies.keys() | self._retrain.keys()
                    if k[0] == model_id and (whole_model or k[1] == version)]:
            for table in (self._performance, self._estimators, self._retrain):
                table.pop(key, None)
            policy = self._policies.pop(key, None)
            alerts += policy.resolve_all(reason, at_ts) if policy is not None else []
        for segment in [k for k in self._segments
                        if k[0] == model_id and (whole_model or k[1] == version)]:
            del self._segments[segment]
            policy = self._segment_policies.pop(segment, None)
            alerts += policy.resolve_all(reason, at_ts) if policy is not None else []
        if whole_model:
            self._counts.pop(model_id, None)
            self._tasks.pop(model_id, None)
            self._early_total -= len(self._early.pop(model_id, {}))
        return alerts

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

    def take_changed(self) -> set[str]:
        """Ids of the models whose state changed since the last call (or since built)."""
        changed, self._changed = self._changed, set()
        return changed

    def to_state(self, models: Collection[str] | None = None) -> dict[str, Any]:
        """Plain-dict state (checkpointed with the partition's offsets), or of ``models`` only."""
        def wanted(model_id: str) -> bool:
            return models is None or model_id in models

        def pairs(table: dict[tuple[str, str], Any]) -> list[list[Any]]:
            return [[mid, ver, item.to_state()] for (mid, ver), item in table.items()
                    if wanted(mid)]

        return {
            "version": STATE_VERSION,
            "tasks": {m: task for m, task in self._tasks.items() if wanted(m)},
            "counts": {m: {**vars(c), "last_prediction_ts": c.last_prediction_ts
                           if math.isfinite(c.last_prediction_ts) else None}
                       for m, c in self._counts.items() if wanted(m)},
            "early": {m: [list(r) for r in early.values()] for m, early in self._early.items()
                      if wanted(m)},
            "performance": pairs(self._performance), "estimators": pairs(self._estimators),
            "policies": pairs(self._policies), "retrain": pairs(self._retrain),
            "segments": [[mid, ver, label, monitor.to_state(),
                          self._segment_policies[(mid, ver, label)].to_state()
                          if (mid, ver, label) in self._segment_policies else None]
                         for (mid, ver, label), monitor in self._segments.items()
                         if wanted(mid)],
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
            engine._early[model_id] = {r[0]: _early_label(r) for r in early}
        engine._early_total = sum(len(e) for e in engine._early.values())
        for model_id, version, item in state["performance"]:
            engine._performance[(model_id, version)] = PerformanceMonitor.from_state(item)
        for model_id, version, item in state["estimators"]:
            engine._estimators[(model_id, version)] = LabelFreeEstimator.from_state(item)
        for model_id, version, item in state["retrain"]:
            engine._retrain[(model_id, version)] = RetrainPolicy.from_state(item)
        for model_id, version, item in state["policies"]:
            engine._policies[(model_id, version)] = engine._policy_factory(model_id, version,
                                                                           item)
        for model_id, version, label, monitor, policy in state.get("segments", []):
            segment = (model_id, version, label)
            engine._segments[segment] = PerformanceMonitor.from_state(monitor)
            if policy is not None:
                engine._segment_policies[segment] = engine._policy_factory(model_id, version,
                                                                           policy)
        return engine


def _early_label(saved: list[Any]) -> LabelRequest:
    """An early label from its saved state (before 2026-12-07 its claimant was "offset.index")."""
    event_id, position, label, ts, offset = saved
    if isinstance(position, str):
        position = int(position.rpartition(".")[2])
    return LabelRequest(event_id, int(position), label, ts, offset)


_EVENT_ID, _LABEL = itemgetter("event_id"), itemgetter("label")
_TS, _MODEL_ID = itemgetter("ts"), itemgetter("model_id")
_DUPLICATE, _MISSING = STATUS_CODES[DUPLICATE], STATUS_CODES[MISSING]


def _segment_summary(monitor: PerformanceMonitor) -> dict[str, Any]:
    metrics = monitor.metrics()
    return {"labelled_events": metrics["labelled_events"],
            "reference_complete": metrics["reference_complete"],
            "reference": metrics["reference"], "window": metrics["window"],
            "current_window": metrics["current_window"]}



__all__ = ["DELAY_BUCKETS", "LabelBatch", "LabelEngine", "LabelRequest", "LabelStep", "ModelCounts",
           "infer_task", "segment_label"]
