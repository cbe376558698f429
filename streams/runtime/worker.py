"""The Kafka worker: batch-consume predictions, run the engine, publish outputs.

The hot path is a confluent-kafka ``consume(batch_size)`` loop; every batch
is decoded with orjson, validated, columnarised per model and handed to the
detectors (DESIGN.md: a per-message Faust agent costs ~60× more). Each input
partition has its own :class:`~streams.core.engine.MonitorEngine`, checkpointed to
Redis with the offset it covers; on assignment the worker restores it and
seeks there, so detector state counts every event once.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from detectors.errors import DetectorError
from detectors.monitor import WindowReport
from streams.core.engine import MonitorEngine
from streams.core.labels import LabelEngine, LabelRequest, LabelStep
from streams.errors import CheckpointError
from streams.ingest.deadletter import Source, dead_letter
from streams.ingest.decode import (
    CONTROL,
    LABEL,
    NON_FINITE,
    PREDICTION,
    Decoded,
    Rejected,
    decode_message,
)
from streams.runtime.metrics import WorkerMetrics
from streams.runtime.sinks import WebhookSink
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.state.checkpoint import Checkpoint, CheckpointStore
from streams.state.hotview import HotView
from streams.state.pending import RedisPendingStore

log = logging.getLogger(__name__)

WEBHOOK_FAILED = "webhook_failed"


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
    delivery_errors: int = 0
    busy_s: float = 0.0
    first_batch_at: float = 0.0
    last_batch_at: float = 0.0


class Worker:
    """One member of the driftline consumer group."""

    def __init__(self, settings: Settings, client_id: str = "driftline-worker") -> None:
        self.settings = settings
        self.stats = WorkerStats()
        self.metrics = WorkerMetrics(settings.worker.metrics_max_series)
        self.metrics_port: int | None = None
        self._topic = settings.topics.name("predictions")
        self._control_topic = settings.topics.name("control")
        self._labels_topic = settings.topics.name("labels")
        self._retrain_topic = settings.topics.name("retrain")
        self._joined_topic = settings.topics.name("joined")
        self._alerts_topic = settings.topics.name("alerts")
        self._deadletter_topic = settings.topics.name("deadletter")
        self._store = CheckpointStore(settings.redis_url, settings.group_id)
        self._hot = HotView(settings.redis_url, settings.group_id)
        self._last_totals = (0, 0, 0)
        self._webhooks = [WebhookSink(hook, self._park_webhook)
                          for hook in settings.sinks.webhooks]
        self._hot_pending: tuple[list[tuple[str, str, WindowReport, int]],
                                 list[dict[str, Any]]] = ([], [])
        self._engines: dict[int, MonitorEngine] = {}
        self._label_engines: dict[int, LabelEngine] = {}
        self._pending = RedisPendingStore(settings.redis_url, settings.group_id,
                                          settings.labels.pending_ttl_s,
                                          settings.labels.pending_bucket_s)
        self._next_offsets: dict[int, dict[str, int]] = {}
        self._dirty: set[int] = set()
        self._consumer = Consumer({
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": settings.group_id,
            "client.id": client_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": settings.worker.session_timeout_ms,
            "heartbeat.interval.ms": max(settings.worker.session_timeout_ms // 5, 100),
            "partition.assignment.strategy": "range",
        })
        self._producer = Producer({
            "bootstrap.servers": settings.bootstrap_servers,
            "client.id": client_id,
            "linger.ms": 20,
            "compression.type": "none",
        })

    def run(self, stop: threading.Event) -> WorkerStats:
        """Consume until ``stop`` is set; checkpoint and leave the group cleanly."""
        self._store.ping()
        ensure_topics(self.settings)
        if self.settings.worker.metrics_port >= 0:
            self.metrics_port = self.metrics.serve(self.settings.worker.metrics_port,
                                                   self.settings.worker.metrics_host)
            log.info("metrics on http://%s:%d/metrics", self.settings.worker.metrics_host,
                     self.metrics_port)
        for sink in self._webhooks:
            sink.start()
        # Everything alive now lives as long as the worker: keep the collector off it, so
        # collections triggered by per-event dicts only scan the current step.
        gc.collect()
        gc.freeze()
        # Co-partitioned by model_id: the range assignor gives this worker the same
        # partition numbers of every input topic, so one engine per number sees them all.
        self._consumer.subscribe([self._topic, self._labels_topic, self._control_topic],
                                 on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_lost)
        interval = self.settings.worker.checkpoint_interval_s
        last_checkpoint = last_log = time.monotonic()
        try:
            while not stop.is_set():
                messages = self._consumer.consume(self.settings.worker.batch_size,
                                                  self.settings.worker.poll_timeout_s)
                if messages:
                    started = time.perf_counter()
                    self.process(messages)
                    self._write_hot_view()
                    finished = time.perf_counter()
                    self.metrics.batch_seconds.observe(finished - started)
                    self.stats.busy_s += finished - started
                    self.stats.first_batch_at = self.stats.first_batch_at or started
                    self.stats.last_batch_at = finished
                self._producer.poll(0)
                now = time.monotonic()
                if now - last_checkpoint >= interval:
                    if self._dirty:
                        self.checkpoint(sorted(self._dirty))
                    self._sample_throughput(now - last_checkpoint)
                    self._write_label_view()
                    last_checkpoint = now
                if now - last_log >= 10.0:
                    self._observe_lag()
                    log.info("events=%d dead_letters=%d alerts=%d windows=%d",
                             self.stats.events, self.stats.dead_letters, self.stats.alerts,
                             self.stats.windows)
                    last_log = now
            self.checkpoint(sorted(self._dirty))
        finally:
            for sink in self._webhooks:
                sink.close(timeout_s=5.0)      # what it cannot deliver by then is parked
            self._consumer.close()
            self._producer.flush(10)
        return self.stats

    def process(self, messages: list[Message]) -> None:
        """Decode, monitor and publish one consumed batch.

        Events go to the engines in steps of about ``batch_size`` events, so a batch of
        large array messages never holds more than one step of decoded dicts alive.
        """
        self.stats.batches += 1
        step: dict[int, list[tuple[Message, Decoded]]] = {}
        label_step: dict[int, list[tuple[Message, Decoded]]] = {}
        step_events = 0
        limits = self.settings.limits
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error: %s", error)
                continue
            partition = message.partition()
            if partition not in self._engines:
                continue
            if message.topic() == self._control_topic:
                self._run_step(step)          # earlier predictions first: keep the order
                self._run_label_step(label_step)
                step, label_step, step_events = {}, {}, 0
                self._control(message)
                continue
            if message.topic() == self._labels_topic:
                decoded = decode_message(message.value(), LABEL, limits)
                label_step.setdefault(partition, []).append((message, decoded))
                self.metrics.messages.labels(self._labels_topic).inc()
                for rejected in decoded.rejected:
                    self._dead_letter(rejected, message)
                continue
            decoded = decode_message(message.value(), PREDICTION, limits)
            step.setdefault(partition, []).append((message, decoded))
            step_events += len(decoded.events)
            self.stats.messages += 1
            self.metrics.messages.labels(self._topic).inc()
            for rejected in decoded.rejected:
                self._dead_letter(rejected, message)
                key = message.key()
                if rejected.error == NON_FINITE and key:
                    # Unparseable, but the key names the model: count it as its data quality.
                    self._engines[partition].note_rejected(key.decode("utf-8", "replace"),
                                                           rejected.path or "(event)")
            if step_events >= self.settings.worker.batch_size:
                self._run_step(step)
                step, step_events = {}, 0
        self._run_step(step)
        # Labels after the predictions of the same batch: a label usually finds its prediction.
        self._run_label_step(label_step)

    def _run_step(self, step: dict[int, list[tuple[Message, Decoded]]]) -> None:
        for partition, items in step.items():
            events = [event for _, decoded in items for event in decoded.events]
            self.stats.events += len(events)
            self.metrics.events.labels(self._topic).inc(len(events))
            output = self._engines[partition].process(events)
            self.stats.windows += output.windows
            engine = self._engines[partition]
            for model_id, model_version, report in output.reports:
                self.metrics.observe_report(model_id, model_version, report)
                monitor = engine.monitor(model_id, model_version)
                self._hot_pending[0].append((model_id, model_version, report,
                                             monitor.events if monitor else 0))
            self._publish_alerts(output.alerts)
            for reason, count in output.suppressed.items():
                self.metrics.alerts_suppressed.labels(reason).inc(count)
            if output.problems:
                origin = {id(event): message for message, decoded in items
                          for event in decoded.events}
                for event, problem in output.problems:
                    message = origin[id(event)]
                    self._dead_letter(Rejected(problem.error, problem.reason, orjson.dumps(event),
                                               path=problem.path), message)
            offsets = [message.offset() for message, decoded in items for _ in decoded.events]
            self._join_predictions(partition, events, offsets)
            self._advance(items[-1][0])

    def _join_predictions(self, partition: int, events: list[dict[str, Any]],
                          offsets: list[int]) -> None:
        labels = self._label_engines[partition]
        step = labels.on_predictions(events, offsets)
        for model_id, entries in step.entries.items():
            self._pending.put(partition, model_id, entries)
        self._emit_labels(partition, step)
        for model_id, waiting in step.retry.items():
            self._claim(partition, model_id, waiting)

    def _run_label_step(self, step: dict[int, list[tuple[Message, Decoded]]]) -> None:
        for partition, items in step.items():
            labels, offsets, indices = [], [], []
            for message, decoded in items:
                labels += decoded.events
                offsets += [message.offset()] * len(decoded.events)
                indices += range(len(decoded.events))
            self.stats.labels += len(labels)
            self.metrics.events.labels(self._labels_topic).inc(len(labels))
            requests = self._label_engines[partition].requests(labels, offsets, indices)
            for model_id, group in requests.items():
                self._claim(partition, model_id, group)
            self._advance(items[-1][0])

    def _claim(self, partition: int, model_id: str, requests: list[LabelRequest]) -> None:
        claims = self._pending.claim(partition, model_id,
                                     [(r.event_id, r.claimant) for r in requests])
        self._emit_labels(partition, self._label_engines[partition].on_claims(
            model_id, requests, claims))

    def _emit_labels(self, partition: int, step: LabelStep) -> None:
        # Label-driven windows (performance, estimates) count labelled events, not predictions:
        # the live view's drift series and model rows stay the monitor's; performance reaches
        # the page through the label summary (write_labels).
        for model_id, model_version, report in step.reports:
            self.metrics.observe_report(model_id, model_version, report)
        self._publish_alerts(step.alerts)
        for request in step.retrain:
            self._producer.produce(self._retrain_topic, orjson.dumps(request),
                                   key=request["model_id"], on_delivery=self._delivered)
            self.stats.retrain += 1
            log.info("retrain requested for %s %s: %s", request["model_id"],
                     request["model_version"], request["reason"])
        for record in step.joined:
            self._producer.produce(self._joined_topic, orjson.dumps(record),
                                   key=record["model_id"], on_delivery=self._delivered)

    def _advance(self, message: Message) -> None:
        offsets = self._next_offsets.setdefault(message.partition(), {})
        offsets[message.topic()] = message.offset() + 1
        self._dirty.add(message.partition())

    def _control(self, message: Message) -> None:
        decoded = decode_message(message.value(), CONTROL, self.settings.limits)
        for rejected in decoded.rejected:
            self._dead_letter(rejected, message)
        for command in decoded.events:
            # Only "rebaseline" exists so far; decode refuses any other command.
            alerts = self._engines[message.partition()].rebaseline(
                command["model_id"], command.get("model_version"),
                command.get("reason") or "requested on the control topic", time.time())
            log.info("re-baselined %s %s (%d open alerts resolved)", command["model_id"],
                     command.get("model_version") or "(all versions)", len(alerts))
            self._publish_alerts(alerts)
        self._advance(message)

    def _publish_alerts(self, alerts: list[dict[str, Any]]) -> None:
        for alert in alerts:
            self._producer.produce(self._alerts_topic, orjson.dumps(alert),
                                   key=alert["model_id"], on_delivery=self._delivered)
            self.metrics.observe_alert(alert)
            for sink in self._webhooks:
                sink.submit(alert)             # never blocks: a bounded queue, parks when full
        self._hot_pending[1].extend(alerts)
        self.stats.alerts += len(alerts)

    def _park_webhook(self, alert: dict[str, Any], reason: str) -> None:
        # Runs on a sink's thread; Producer.produce is thread-safe. The source names the
        # alerts topic: a produced alert has no input offset, hence partition/offset -1.
        record = dead_letter(Rejected(WEBHOOK_FAILED, reason, orjson.dumps(alert)),
                             Source(self._alerts_topic, -1, -1, alert["model_id"].encode()))
        self._producer.produce(self._deadletter_topic, orjson.dumps(record),
                               key=alert["model_id"], on_delivery=self._delivered)
        self.metrics.dead_letters.labels(WEBHOOK_FAILED).inc()

    def _write_hot_view(self) -> None:
        reports, alerts = self._hot_pending
        if not reports and not alerts:
            return
        self._hot_pending = ([], [])
        try:
            self._hot.write(reports, alerts)
        except redis.RedisError as exc:
            # The live view is a convenience; checkpoints (same Redis) report real trouble.
            log.warning("hot view not updated: %s", exc)

    def _write_label_view(self) -> None:
        for partition, labels in list(self._label_engines.items()):
            summary = labels.summary()
            self.metrics.observe_labels(summary)
            try:
                self._hot.write_labels(summary, partition)
            except redis.RedisError as exc:
                log.warning("hot view not updated: %s", exc)

    def _sample_throughput(self, elapsed_s: float) -> None:
        totals = (self.stats.events, self.stats.dead_letters, self.stats.alerts)
        previous, self._last_totals = self._last_totals, totals
        if elapsed_s <= 0:
            return
        try:
            self._hot.write_throughput({
                "ts": time.time(), "events_per_s": (totals[0] - previous[0]) / elapsed_s,
                "dead_letters_per_s": (totals[1] - previous[1]) / elapsed_s,
                "alerts": totals[2] - previous[2], "partitions": len(self._engines)})
        except redis.RedisError as exc:
            log.warning("hot view not updated: %s", exc)

    def _observe_lag(self) -> None:
        for partition, offsets in list(self._next_offsets.items()):
            for topic, offset in offsets.items():
                try:
                    _low, high = self._consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=1.0, cached=True)
                except KafkaException:
                    continue
                if high >= 0:
                    self.metrics.lag.labels(topic, str(partition)).set(max(high - offset, 0))
        self.metrics.assigned.set(len(self._engines))
        self.metrics.models.set(sum(len(e.models) for e in self._engines.values()))

    def checkpoint(self, partitions: list[int]) -> None:
        """Flush outputs, then store state + offsets of ``partitions`` and commit offsets."""
        partitions = [p for p in partitions if p in self._next_offsets and p in self._engines]
        if not partitions:
            return
        started = time.perf_counter()
        pending = self._producer.flush(30)
        if pending:
            log.error("%d outputs not delivered; checkpoint postponed", pending)
            return
        commits = []
        for partition in partitions:
            offsets = self._next_offsets[partition]
            state = self._engines[partition].to_state()
            state["labels"] = self._label_engines[partition].to_state()
            size = self._store.save(self._topic, partition, offsets, state)
            self.metrics.checkpoint_bytes.labels(str(partition)).set(size)
            commits += [TopicPartition(topic, partition, offset)
                        for topic, offset in offsets.items()]
            self._dirty.discard(partition)
        self._consumer.commit(offsets=commits, asynchronous=True)
        self.stats.checkpoints += 1
        self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)

    def _dead_letter(self, rejected: Rejected, message: Message) -> None:
        timestamp_type, timestamp = message.timestamp()
        source = Source(message.topic(), message.partition(), message.offset(), message.key(),
                        timestamp if timestamp_type else None)
        self._producer.produce(self._deadletter_topic, orjson.dumps(dead_letter(rejected, source)),
                               key=message.key(), on_delivery=self._delivered)
        self.stats.dead_letters += 1
        self.metrics.dead_letters.labels(rejected.error).inc()

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.stats.delivery_errors += 1
            log.error("delivery to %s failed: %s", message.topic(), error)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        checkpoints = {p: self._store.load(self._topic, p) for p in {tp.partition
                                                                     for tp in partitions}}
        for partition, checkpoint in checkpoints.items():
            if checkpoint is None:
                self._engines[partition] = MonitorEngine(self.settings)
                self._label_engines[partition] = LabelEngine(
                    self.settings, partition, self._engines[partition].alert_policy)
            else:
                self._restore(partition, checkpoint)
        for tp in partitions:
            checkpoint = checkpoints[tp.partition]
            if checkpoint is not None and tp.topic in checkpoint.offsets:
                tp.offset = checkpoint.offsets[tp.topic]
        log.info("assigned %s", [(tp.topic, tp.partition, tp.offset) for tp in partitions])
        consumer.assign(partitions)

    def _restore(self, partition: int, checkpoint: Checkpoint) -> None:
        try:
            engine = MonitorEngine.from_state(self.settings, checkpoint.engine)
            labels = checkpoint.engine.get("labels")
            label_engine = (LabelEngine.from_state(self.settings, labels, partition,
                                                   engine.alert_policy) if labels
                            else LabelEngine(self.settings, partition, engine.alert_policy))
        except DetectorError as exc:
            # Typically a checkpoint of another driftline version whose detector state changed.
            raise CheckpointError(
                f"checkpoint {checkpoint.scope}[{partition}] cannot be restored: {exc}. A "
                "checkpoint written by another driftline version is not migrated; delete "
                f"Redis key {self._store.key(checkpoint.scope, partition)!r} to start the "
                "partition afresh (new references are learned)") from exc
        self._engines[partition], self._label_engines[partition] = engine, label_engine
        self._next_offsets[partition] = dict(checkpoint.offsets)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.checkpoint([tp.partition for tp in partitions])
        self._forget(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("partitions lost without revoke: %s", [tp.partition for tp in partitions])
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._engines.pop(tp.partition, None)
            self._label_engines.pop(tp.partition, None)
            self._next_offsets.pop(tp.partition, None)
            self._dirty.discard(tp.partition)

    def engines(self) -> dict[int, MonitorEngine]:
        """The engines of the partitions currently assigned (read-only use)."""
        return dict(self._engines)

    def label_engines(self) -> dict[int, LabelEngine]:
        """The label engines of the partitions currently assigned (read-only use)."""
        return dict(self._label_engines)


def run_worker(settings: Settings, stop: threading.Event | None = None) -> WorkerStats:
    """Run one worker until ``stop`` is set (or forever)."""
    return Worker(settings).run(stop or threading.Event())


__all__ = ["Worker", "WorkerStats", "run_worker"]

