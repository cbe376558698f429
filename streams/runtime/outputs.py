"""Where a partition step's outputs go: the output topics, the worker's counts, the live view.

The worker hands each :class:`~streams.core.partition.StepOutput` to
:meth:`OutputRouter.route`. Dead letters, alerts, retrain requests, joined
records and audit records are produced to their topics, keyed by model (an
audit record goes to its input partition's number, so a model's records keep
their order). Counts go to :class:`WorkerStats` and the Prometheus metrics.
Closed windows, alerts, audit records and retired versions wait for the next
live-view write: after every consumed batch, or at most every
:data:`LIVE_VIEW_INTERVAL_S` while the worker catches up
(:meth:`OutputRouter.write_live_view`).

The live view is a convenience: a Redis error there is logged, never raised
(checkpoints, in the same Redis, report real trouble).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from confluent_kafka import KafkaError, Message, Producer

from detectors.monitor import WindowReport
from streams.core.audit import audit_key
from streams.core.partition import PartitionState, StepOutput
from streams.ingest.mapping import input_topics
from streams.runtime.metrics import WorkerMetrics
from streams.settings import Settings
from streams.state.hotview import HotView

log = logging.getLogger(__name__)
LIVE_VIEW_INTERVAL_S = 0.5
"""While catching up, the live view is written at most this often (else after every batch).

A write covers every window closed since the last one; what it saves is the per-write
work (a version's summary and drill-down detail, the pub/sub message): 0.22-0.24 µs per
event, 3 % of the worker's time, on a 1-event topic written after every batch."""


@dataclass
class WorkerStats:
    """Running totals, for logs, the demo summary and benchmarks."""

    messages: int = 0
    events: int = 0
    dead_letters: int = 0
    alerts: int = 0
    windows: int = 0
    labels: int = 0
    retrain: int = 0
    batches: int = 0
    checkpoints: int = 0
    ticks: int = 0
    delivery_errors: int = 0
    busy_s: float = 0.0
    first_batch_at: float = 0.0
    last_batch_at: float = 0.0


@dataclass
class _LiveViewUpdates:
    """What the next write of the live view carries."""

    reports: list[tuple[str, str, WindowReport, int]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    retired: list[tuple[str, str]] = field(default_factory=list)
    """Versions no longer monitored: their keys are deleted."""


class OutputRouter:
    """Produces a worker's outputs, counts them and keeps its share of the live view.

    Parameters
    ----------
    settings
        The worker's settings (topic names, the live view's Redis).
    producer
        The worker's producer; deliveries are confirmed through :meth:`delivered`.
    metrics, stats
        The worker's metrics and running totals, updated here.
    """

    def __init__(self, settings: Settings, producer: Producer, metrics: WorkerMetrics,
                 stats: WorkerStats) -> None:
        self.producer, self.metrics, self.stats = producer, metrics, stats
        self._predictions_topic, self._labels_topic, _ = input_topics(settings)
        topics = settings.topics
        self._retrain_topic, self._joined_topic = topics.name("retrain"), topics.name("joined")
        self._alerts_topic, self._deadletter_topic = (topics.name("alerts"),
                                                      topics.name("deadletter"))
        self.audit_topic = topics.name("audit")
        self.audit_partitions = 0
        """Partitions of the audit topic (0 until known: records then go by key)."""
        self.hot = HotView(settings.redis_url, settings.group_id, security=settings.redis)
        self._live = _LiveViewUpdates()
        self._live_written = -math.inf
        self._last_totals = (0, 0, 0)

    def route(self, output: StepOutput) -> None:
        """Produce, count and queue for the live view everything one step put out."""
        stats, metrics = self.stats, self.metrics
        for topic, count in output.messages.items():
            metrics.messages.labels(topic).inc(count)
        stats.messages += output.messages.get(self._predictions_topic, 0)
        stats.events += output.events
        stats.labels += output.labels
        stats.windows += output.windows
        stats.ticks += output.ticks
        if output.events:
            metrics.events.labels(self._predictions_topic).inc(output.events)
        if output.labels:
            metrics.events.labels(self._labels_topic).inc(output.labels)
        for model_id, model_version, report, seen in output.reports:
            metrics.observe_report(model_id, model_version, report)
            self._live.reports.append((model_id, model_version, report, seen))
        # Label-driven windows (performance, estimates) count labelled events, not predictions:
        # the live view's drift series stay the monitor's; performance reaches the page
        # through the label summary (write_labels).
        for model_id, model_version, report in output.label_reports:
            metrics.observe_report(model_id, model_version, report)
        for reason, count in output.suppressed.items():
            metrics.alerts_suppressed.labels(reason).inc(count)
        metrics.observe_bounds(output.retired, output.limited)
        for retired in output.retired:
            log.info("%s %s no longer monitored: %s", retired.model_id, retired.model_version,
                     retired.explanation)
            self._live.retired.append((retired.model_id, retired.model_version))
        for model_id, version, resolved in output.rebaselines:
            log.info("re-baselined %s %s (%d open alerts resolved)", model_id,
                     version or "(all versions)", resolved)
        for key, record in output.dead_letters:
            self.producer.produce(self._deadletter_topic, orjson.dumps(record), key=key,
                                  on_delivery=self.delivered)
            metrics.dead_letters.labels(record["error"]).inc()
        stats.dead_letters += len(output.dead_letters)
        self.alerts(output.alerts)
        for request in output.retrain:
            self.producer.produce(self._retrain_topic, orjson.dumps(request),
                                  key=request["model_id"], on_delivery=self.delivered)
            stats.retrain += 1
            log.info("retrain requested for %s %s: %s", request["model_id"],
                     request["model_version"], request["reason"])
        for record in output.joined:
            self.producer.produce(self._joined_topic, orjson.dumps(record),
                                  key=record["model_id"], on_delivery=self.delivered)
        self.audit(output.audit)

    def audit(self, records: list[dict[str, Any]]) -> None:
        """Produce audit records (and queue them for the live view)."""
        for record in records:
            partition = record["partition"]
            self.producer.produce(self.audit_topic, orjson.dumps(record),
                                  key=audit_key(record), on_delivery=self.delivered,
                                  **({"partition": partition}
                                     if 0 <= partition < self.audit_partitions else {}))
        self._live.audit.extend(records)

    def alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Produce alert events (and queue them for the live view)."""
        for alert in alerts:
            self.producer.produce(self._alerts_topic, orjson.dumps(alert),
                                  key=alert["model_id"], on_delivery=self.delivered)
            self.metrics.observe_alert(alert)
        self._live.alerts.extend(alerts)
        self.stats.alerts += len(alerts)

    def delivered(self, error: KafkaError | None, message: Message) -> None:
        """Delivery report of an output: a failure is counted and logged."""
        if error is not None:
            self.stats.delivery_errors += 1
            log.error("delivery to %s failed: %s", message.topic(), error)

    def write_live_view(self, catching_up: bool = False) -> None:
        """Write what the steps since the last write put out, in one pipeline.

        While the worker is ``catching_up`` on a backlog (full batches), at most every
        :data:`LIVE_VIEW_INTERVAL_S`; the first call that is not writes whatever waits.
        """
        pending = self._live
        if not (pending.reports or pending.alerts or pending.audit or pending.retired):
            return
        now = time.monotonic()
        if catching_up and now - self._live_written < LIVE_VIEW_INTERVAL_S:
            return
        self._live, self._live_written = _LiveViewUpdates(), now
        try:
            self.hot.write(pending.reports, pending.alerts, pending.audit, pending.retired)
        except redis.RedisError as exc:
            log.warning("hot view not updated: %s", exc)

    def write_label_view(self, partitions: Mapping[int, PartitionState]) -> None:
        """Each partition's label summary, to the metrics and the live view."""
        for partition, state in list(partitions.items()):
            summary = state.labels.summary()
            self.metrics.observe_labels(summary)
            try:
                self.hot.write_labels(summary, partition)
            except redis.RedisError as exc:
                log.warning("hot view not updated: %s", exc)

    def sample_throughput(self, elapsed_s: float, partitions: int) -> None:
        """Events, dead letters and alerts per second since the last sample, to the live view."""
        totals = (self.stats.events, self.stats.dead_letters, self.stats.alerts)
        previous, self._last_totals = self._last_totals, totals
        if elapsed_s <= 0:
            return
        try:
            self.hot.write_throughput({
                "ts": time.time(), "events_per_s": (totals[0] - previous[0]) / elapsed_s,
                "dead_letters_per_s": (totals[1] - previous[1]) / elapsed_s,
                "alerts": totals[2] - previous[2], "partitions": partitions})
        except redis.RedisError as exc:
            log.warning("hot view not updated: %s", exc)


__all__ = ["OutputRouter", "WorkerStats"]
