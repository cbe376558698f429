"""The Kafka worker: batch-consume the input topics, run the partition step, publish outputs.

The hot path is a confluent-kafka ``consume(batch_size)`` loop (DESIGN: a
per-message Faust agent costs ~60× more). Each consumed batch is split by
partition number and handed to :class:`~streams.core.step.PartitionStep` with
that partition's :class:`~streams.core.partition.PartitionState`; the worker hands
the step's outputs to its :class:`~streams.runtime.outputs.OutputRouter`
(alerts, retrain requests, joined records, dead letters, audit records,
metrics, the live view) and checkpoints each partition's state with the
offsets it covers. On assignment it restores the checkpoint and seeks
there, so detector state counts every event once.

A step that raises leaves its partition half-applied: the worker forgets that
partition's state (it is never checkpointed) and stops with the error; the
next start resumes from the last checkpoint. A Redis outage is waited out inside
the call (:mod:`streams.state.redis_retry`); checkpoints are claimed, fenced and
incremental (:mod:`streams.runtime.checkpointing`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from operator import methodcaller
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from streams.core.audit import alert_record
from streams.core.engine import MonitorEngine
from streams.core.labels import LabelEngine
from streams.core.partition import PartitionState
from streams.core.step import PartitionStep
from streams.errors import DriftlineError
from streams.ingest.mapping import input_topics
from streams.runtime.checkpointing import Checkpointer
from streams.runtime.connections import client_config
from streams.runtime.metrics import WorkerMetrics
from streams.runtime.outputs import OutputRouter, WorkerStats
from streams.runtime.ticks import TickPublisher
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.state.checkpoint import FENCED, CheckpointStore
from streams.state.pending_redis import RedisPendingStore
from streams.state.redis_retry import RedisRetry, RedisUnavailable

log = logging.getLogger(__name__)
_ERROR, _PARTITION = methodcaller("error"), methodcaller("partition")
FETCH_QUEUE_BACKOFF_MS = 100
"""The consumer's ``fetch.queue.backoff.ms`` (a ``kafka:`` map may set another).

librdkafka's default, 1,000 ms, postpones the next fetch once 100,000 messages are
queued, and a worker catching up on one-event messages drains them in less than
that: it then waited for its next batch. Measured on the bench's 1-event topic
(6 alternating runs): 1.1-1.7 µs/event in ``consume()`` with the default, 0.6-0.7
with 100 ms, and 129-136k against 110-125k events/s."""


class Worker:
    """One member of the driftline consumer group."""

    def __init__(self, settings: Settings, client_id: str = "driftline-worker") -> None:
        self.settings = settings
        self.stats = WorkerStats()
        self.metrics = WorkerMetrics(settings.worker.metrics_max_series)
        self.assignments = 0
        """Assignments received from the group so far (``/readyz``: 0 = not yet a member)."""
        # The inputs: driftline's topics, or a mapped topic of the user's own per role
        # (the checkpoints and pending predictions are then keyed by the mapped topic).
        self._topic, self._labels_topic, self._control_topic = input_topics(settings)
        # One outage policy for every Redis call the state depends on; the live view
        # (a convenience) only logs its failures.
        self._retry = RedisRetry(on_change=self.metrics.redis_changed)
        self._store = CheckpointStore(settings.redis_url, settings.group_id, settings.redis,
                                      retry=self._retry)
        self._checkpoints = Checkpointer(settings, self._store, self.metrics)
        self._pending = RedisPendingStore(settings.redis_url, settings.group_id,
                                          settings.labels.pending_ttl_s, retry=self._retry,
                                          security=settings.redis)
        self._step = PartitionStep(settings, self._pending)
        self._partitions: dict[int, PartitionState] = {}
        self._dirty: set[int] = set()
        # The user's kafka: map (SASL, TLS) goes to both clients: client_config.
        self._consumer = Consumer(consumer_config(settings, client_id))
        self._producer = Producer(client_config(settings.bootstrap_servers, settings.kafka, **{
            "client.id": client_id,
            "linger.ms": 20,
            "compression.type": "none",
        }))
        self.outputs = OutputRouter(settings, self._producer, self.metrics, self.stats)
        self.ticks = TickPublisher(settings, self._producer, lambda: self._partitions)

    def run(self, stop: threading.Event) -> WorkerStats:
        """Consume until ``stop`` is set; checkpoint and leave the group cleanly."""
        self._store.ping()
        self._retry.cancel = stop            # asked to stop, a call waiting for Redis gives up
        ensure_topics(self.settings)
        # An audit record goes to its input partition's number, so a model's records keep
        # their order; an audit topic created with another count falls back to the key.
        outputs = self.outputs
        audit = self._producer.list_topics(outputs.audit_topic, timeout=10).topics.get(
            outputs.audit_topic)
        outputs.audit_partitions = len(audit.partitions) if audit is not None else 0
        # The label monitors' challengers use river: pay for its import now, not at the
        # first label.
        import river.linear_model  # noqa: F401
        import river.tree  # noqa: F401

        # Everything alive now lives as long as the worker: keep the collector off it. A step
        # allocates (and frees) millions of dicts that never form cycles, so the automatic
        # collector is off too: young objects are collected after each batch, all of them at
        # each checkpoint tick (measured: ~10 % of a step's time otherwise).
        gc.collect()
        gc.freeze()
        gc.disable()
        # Co-partitioned by model_id: the range assignor gives this worker the same
        # partition numbers of every input topic, so one state per number sees them all.
        self._consumer.subscribe([self._topic, self._labels_topic, self._control_topic],
                                 on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_lost)
        interval = self.settings.worker.checkpoint_interval_s
        last_checkpoint = last_log = time.monotonic()
        try:
            while not stop.is_set():
                models = sum(len(state.monitors) for state in self._partitions.values())
                wanted = self.settings.worker.step_events(models)
                messages = self._consumer.consume(wanted, self.settings.worker.poll_timeout_s)
                catching_up = len(messages) >= wanted
                if messages:
                    started = time.perf_counter()
                    self.process(messages)
                    # Freed first: not held while the next poll waits (a grown step is
                    # thousands of messages), and the collector tracks every Message, so
                    # collecting with them alive would walk each one (~0.15 µs/event).
                    del messages
                    gc.collect(1)
                    outputs.write_live_view(catching_up)
                    finished = time.perf_counter()
                    self.metrics.batch_seconds.observe(finished - started)
                    self.stats.busy_s += finished - started
                    self.stats.first_batch_at = self.stats.first_batch_at or started
                    self.stats.last_batch_at = finished
                else:
                    outputs.write_live_view()        # what waits, once the input is drained
                # After the step: a tick carries the offsets read so far (streams.runtime.ticks).
                self.ticks.publish_due(catching_up)
                self._producer.poll(0)
                now = time.monotonic()
                if now - last_checkpoint >= interval:
                    if self._dirty:
                        self.checkpoint(sorted(self._dirty))
                    outputs.sample_throughput(now - last_checkpoint, len(self._partitions))
                    outputs.write_label_view(self._partitions)
                    gc.collect()
                    last_checkpoint = now
                if now - last_log >= 10.0:
                    self._observe_lag()
                    log.info("events=%d dead_letters=%d alerts=%d windows=%d",
                             self.stats.events, self.stats.dead_letters, self.stats.alerts,
                             self.stats.windows)
                    last_log = now
            outputs.write_live_view()
            self.checkpoint(sorted(self._dirty))
        except RedisUnavailable as exc:
            log.warning("stopped while waiting for Redis (%s): each partition resumes from its "
                        "last checkpoint", exc)
        finally:
            # A worker run in-process (tests, benches) gives the heap back to the collector,
            # or the consumer's callbacks would keep this worker alive for good.
            gc.unfreeze()
            gc.enable()
            self._consumer.close()
            self._producer.flush(10)
        return self.stats

    def process(self, messages: list[Message]) -> None:
        """Run one consumed batch: a partition step per partition number, then route outputs.

        If a step raises, its partition's state is forgotten (never checkpointed) and
        the error propagates; outputs of the partitions stepped before it are published.
        """
        self.stats.batches += 1
        by_partition: dict[int, list[Message]] = {}
        if list(map(_ERROR, messages)).count(None) == len(messages):
            # The common batch, without a Python step per message: no errors, and often
            # a single partition.
            partitions = list(map(_PARTITION, messages))
            if len(set(partitions)) == 1:
                if partitions[0] in self._partitions:
                    by_partition[partitions[0]] = messages
                messages = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error: %s", error)
                continue
            partition = message.partition()
            if partition is None or partition not in self._partitions:
                continue
            batch = by_partition.get(partition)
            if batch is None:
                batch = by_partition[partition] = []
            batch.append(message)
        # Not confirmed for half a session (the worker was paused?): check before publishing.
        unconfirmed = self._checkpoints.unconfirmed(by_partition)
        for partition in self._checkpoints.fenced(unconfirmed) if unconfirmed else ():
            self._drop(partition)
            del by_partition[partition]
        for partition, batch in by_partition.items():
            state = self._partitions[partition]
            try:
                self.outputs.route(self._step(state, batch))
            except BaseException:
                # Until its outputs are with the producer, the step is not done.
                log.error("step of partition %d failed: its state is dropped, not checkpointed; "
                          "a restart resumes from the last checkpoint", partition)
                self._partitions.pop(partition, None)
                self._dirty.discard(partition)
                self._pending.forget(partition)
                raise
            self._dirty.add(partition)

    def _observe_lag(self) -> None:
        for partition, state in list(self._partitions.items()):
            for topic, offset in state.offsets.items():
                try:
                    _low, high = self._consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=1.0, cached=True)
                except KafkaException:
                    continue
                if high >= 0:
                    self.metrics.lag.labels(topic, str(partition)).set(max(high - offset, 0))
        self.metrics.assigned.set(len(self._partitions))
        self.metrics.models.set(sum(len(s.monitors.models) for s in self._partitions.values()))

    def checkpoint(self, partitions: list[int]) -> None:
        """Flush outputs, then store state + offsets of ``partitions`` and commit offsets."""
        states = [self._partitions[p] for p in partitions
                  if p in self._partitions and self._partitions[p].offsets]
        if not states:
            return
        started = time.perf_counter()
        pending = self._producer.flush(30)
        if pending:
            log.error("%d outputs not delivered; checkpoint postponed", pending)
            return
        commits = []
        for state in states:
            written = self._checkpoints.write(state)
            if written.status == FENCED:
                self._drop(state.partition)
                continue
            self.metrics.checkpoint_bytes.labels(str(state.partition)).set(written.size)
            commits += [TopicPartition(topic, state.partition, offset)
                        for topic, offset in state.offsets.items()]
            self._dirty.discard(state.partition)
        if commits:
            self._consumer.commit(offsets=commits, asynchronous=True)
        self.stats.checkpoints += 1
        self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        states, resets = self._checkpoints.assign(consumer, partitions)
        for partition, state in states.items():
            self._partitions[partition] = state
            self._pending.restore(partition, state.offsets.get(self._topic))
        log.info("assigned %s", [(tp.topic, tp.partition, tp.offset) for tp in partitions])
        consumer.assign(partitions)
        self.assignments += 1
        self.outputs.alerts(resets)
        self.outputs.audit([alert_record(alert, alert["partition"]) for alert in resets])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            self.checkpoint(sorted({tp.partition for tp in partitions}))
        except DriftlineError as exc:
            # Stopping while Redis is away: the next owner resumes from the last checkpoint.
            log.warning("revoked partitions not checkpointed: %s", exc)
        self._forget(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("partitions lost without revoke: %s", [tp.partition for tp in partitions])
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._partitions.pop(tp.partition, None)
            self._dirty.discard(tp.partition)
            self._pending.forget(tp.partition)
            self._checkpoints.release(tp.partition)

    def _drop(self, partition: int) -> None:
        # A newer owner claimed it. Its messages are skipped, not paused: librdkafka keeps a
        # paused partition paused when the next rebalance gives it back.
        self._forget([TopicPartition(self._topic, partition)])

    def partitions(self) -> list[int]:
        """Partition numbers this worker owns now (any thread; a copy)."""
        return sorted(self._partitions)

    def broker_reachable(self, timeout_s: float) -> bool:
        """Whether the broker answers a metadata request for the predictions topic.

        Asked through the producer, whose client is safe to use from another thread
        (the web server's probe) while the batch loop runs.
        """
        try:
            self._producer.list_topics(self._topic, timeout=timeout_s)
        except KafkaException:
            return False
        return True

    def engines(self) -> dict[int, MonitorEngine]:
        """The monitor engines of the partitions currently assigned (read-only use)."""
        return {p: state.monitors for p, state in self._partitions.items()}

    def label_engines(self) -> dict[int, LabelEngine]:
        """The label engines of the partitions currently assigned (read-only use)."""
        return {p: state.labels for p, state in self._partitions.items()}



def consumer_config(settings: Settings, client_id: str) -> dict[str, Any]:
    """The worker's consumer: manual commits, range assignment, the user's ``kafka:`` map on top.

    >>> from streams.settings import load_settings
    >>> config = consumer_config(load_settings(environ={}), "w")
    >>> config["fetch.queue.backoff.ms"], config["enable.auto.commit"]
    (100, False)
    """
    return client_config(settings.bootstrap_servers, settings.kafka, **{
        "group.id": settings.group_id,
        "client.id": client_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.worker.session_timeout_ms,
        "heartbeat.interval.ms": max(settings.worker.session_timeout_ms // 5, 100),
        "partition.assignment.strategy": "range",
        "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
    })


def run_worker(settings: Settings, stop: threading.Event | None = None) -> WorkerStats:
    """Run one worker until ``stop`` is set (or forever)."""
    return Worker(settings).run(stop or threading.Event())


__all__ = ["Worker", "consumer_config", "run_worker"]
