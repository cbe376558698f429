"""The partitions one worker owns: claimed on assignment, checkpointed incrementally, fenced.

On assignment the worker claims each partition number (raising its epoch in
Redis, see :mod:`streams.state.checkpoint`) and then loads its checkpoint, so
whatever the previous owner wrote before the claim is restored and whatever it
tries to write after the claim is refused. Each checkpoint writes the models
that changed since the previous one (the engines keep the list), so the
interval's cost follows the busy models, not the idle ones.

A worker paused past its session (a long GC, SIGSTOP, a frozen VM) wakes up
believing it still owns its partitions; Kafka has given them to another
worker meanwhile. Its first checkpoint write is refused, and before that, a
batch of a partition whose ownership has not been confirmed for half a
session timeout is checked against Redis (one ``MGET``) before it is
processed: a partition claimed by a newer owner is dropped without publishing
anything for it.

A partition without checkpoint whose group has committed offsets has lost
its state (Redis lost its data). ``worker.missing_checkpoint`` says what
happens: ``resume`` (default) starts fresh monitors at the committed offsets,
``rewind`` at the earliest retained offsets. Either way it is logged as an
error, counted (``driftline_monitor_resets_total``) and announced by a
``monitor_reset`` alert.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from detectors.errors import DetectorError
from streams.core.alert_events import monitor_reset_event
from streams.core.partition import PartitionState
from streams.errors import CheckpointError
from streams.ingest.mapping import input_topics
from streams.runtime.metrics import WorkerMetrics
from streams.settings import Settings
from streams.state.checkpoint import FENCED, MISSING, Checkpoint, CheckpointStore, Written

log = logging.getLogger(__name__)


@dataclass
class Ownership:
    """What the worker knows of one partition it claimed."""

    epoch: int
    seq: int = 0
    stored: bool = False
    """A checkpoint of this format exists, so a write may carry changed models only."""
    unwritten: set[str] = field(default_factory=set)
    """Changed models a write that raised did not store (the next write carries them)."""
    proven_at: float = 0.0
    """When Redis last confirmed the claim (``time.monotonic()``)."""


class Checkpointer:
    """Claims, restores and writes the checkpoints of one worker's partitions.

    Parameters
    ----------
    settings
        Topic names, session timeout and the missing-checkpoint policy.
    store
        The checkpoint store (with the worker's Redis outage policy).
    metrics
        Where fencing, resets and written models are counted.
    """

    def __init__(self, settings: Settings, store: CheckpointStore,
                 metrics: WorkerMetrics) -> None:
        self.settings = settings
        # A mapped predictions topic replaces driftline's: checkpoints are keyed by the topic read.
        self.scope = input_topics(settings)[0]
        self.store = store
        self.metrics = metrics
        # A session lasts session_timeout_ms without heartbeats: a claim older than half of
        # it is confirmed before a batch is processed (never in steady state, where every
        # checkpoint confirms it).
        self.confirm_after_s = settings.worker.session_timeout_ms / 2000.0
        self._owned: dict[int, Ownership] = {}

    def assign(self, consumer: Consumer, partitions: list[TopicPartition]
               ) -> tuple[dict[int, PartitionState], list[dict[str, Any]]]:
        """Claim and restore every partition number; set where each topic partition starts.

        Returns the restored states and the ``monitor_reset`` alerts of partitions
        that lost their checkpoint (see the module docstring).
        """
        checkpoints = {p: self.claim(p) for p in sorted({tp.partition for tp in partitions})}
        states = {p: self._restore(p, checkpoint) for p, checkpoint in checkpoints.items()}
        missing = {p for p, checkpoint in checkpoints.items() if checkpoint is None}
        lost = self._committed(consumer, [tp for tp in partitions if tp.partition in missing])
        policy = self.settings.worker.missing_checkpoint
        for partition, offsets in lost.items():
            log.error("partition %d: no checkpoint in Redis, but group %s had read it up to "
                      "offsets %s: the monitor state of its models is lost (did Redis lose its "
                      "data?). Policy %r: fresh monitors from %s", partition,
                      self.settings.group_id, offsets, policy,
                      "the committed offsets" if policy == "resume" else "the earliest offsets")
            self.metrics.monitor_resets.labels(policy).inc()
        for tp in partitions:
            checkpoint = checkpoints[tp.partition]
            if checkpoint is not None and tp.topic in checkpoint.offsets:
                tp.offset = checkpoint.offsets[tp.topic]
            elif tp.partition in lost and policy == "rewind":
                tp.offset = OFFSET_BEGINNING
        return states, [monitor_reset_event(self.settings.group_id, partition, offsets, policy,
                                            time.time()) for partition, offsets in lost.items()]

    def claim(self, partition: int) -> Checkpoint | None:
        """Become the owner of a partition and read its checkpoint (``None``: none)."""
        epoch = self.store.claim(self.scope, partition)
        # Read after the claim: whatever the previous owner wrote before it is here.
        checkpoint = self.store.load(self.scope, partition)
        self._owned[partition] = Ownership(
            epoch, stored=checkpoint is not None and checkpoint.incremental,
            proven_at=time.monotonic())
        return checkpoint

    def write(self, state: PartitionState) -> Written:
        """Checkpoint a claimed partition: its offsets and the models changed since last time.

        A ``fenced`` result means another worker owns the partition now: drop it.
        """
        owned = self._owned[state.partition]
        # Kept until written: a write that raises leaves them to the next one.
        owned.unwritten |= state.take_changed()
        written = self._write(state, owned, full=not owned.stored)
        if written.status == MISSING:
            log.error("partition %d: its checkpoint is gone from Redis while this worker owns "
                      "it (Redis restarted empty?); writing it again whole from memory. "
                      "Predictions stored for the label join before now are lost with it",
                      state.partition)
            self.metrics.checkpoint_lost.inc()
            written = self._write(state, owned, full=True)
        if written.status == FENCED:
            self._fenced(state.partition, written.owner, "its checkpoint write was refused")
            return written
        owned.stored, owned.unwritten = True, set()
        owned.proven_at = time.monotonic()
        self.metrics.checkpoint_models.inc(written.models)
        return written

    def unconfirmed(self, partitions: Iterable[int]) -> list[int]:
        """Partitions whose claim has not been confirmed for half a session timeout."""
        now = time.monotonic()
        return [p for p in partitions
                if p in self._owned and now - self._owned[p].proven_at > self.confirm_after_s]

    def fenced(self, partitions: list[int]) -> list[int]:
        """Those of ``partitions`` a newer owner has claimed; the others are confirmed."""
        now = time.monotonic()
        found = []
        for partition, owner in self.store.owners(self.scope, partitions).items():
            owned = self._owned.get(partition)
            if owned is None:
                continue
            if owner is not None and owner > owned.epoch:
                self._fenced(partition, owner, "found before processing its next batch")
                found.append(partition)
            else:
                owned.proven_at = now
        return found

    def release(self, partition: int) -> None:
        """Forget a partition (revoked, lost or fenced)."""
        self._owned.pop(partition, None)

    def _restore(self, partition: int, checkpoint: Checkpoint | None) -> PartitionState:
        if checkpoint is None:
            return PartitionState.fresh(self.settings, partition)
        try:
            return PartitionState.from_state(self.settings, partition, checkpoint.engine,
                                             checkpoint.offsets)
        except DetectorError as exc:
            # Typically a checkpoint of another driftline version whose detector state changed.
            raise CheckpointError(
                f"checkpoint {checkpoint.scope}[{partition}] cannot be restored: {exc}. A "
                "checkpoint written by another driftline version is not migrated; delete "
                f"Redis key {self.store.key(checkpoint.scope, partition)!r} to start the "
                "partition afresh (new references are learned)") from exc

    def _write(self, state: PartitionState, owned: Ownership, full: bool) -> Written:
        owned.seq += 1
        changed = None if full else owned.unwritten
        return self.store.write(self.scope, state.partition, state.offsets,
                                state.to_state(changed), epoch=owned.epoch, seq=owned.seq,
                                changed=changed)

    def _fenced(self, partition: int, owner: int, how: str) -> None:
        log.warning("partition %d belongs to a newer owner (epoch %d, ours %d; %s): this worker "
                    "was paused past its session. Dropping the partition without writing or "
                    "publishing anything more for it", partition, owner,
                    self._owned[partition].epoch, how)
        self.metrics.partitions_fenced.inc()

    def _committed(self, consumer: Consumer,
                   partitions: list[TopicPartition]) -> dict[int, dict[str, int]]:
        if not partitions:
            return {}
        try:
            committed = consumer.committed([TopicPartition(tp.topic, tp.partition)
                                            for tp in partitions], timeout=10.0)
        except KafkaException as exc:
            log.warning("cannot read the group's committed offsets (%s): a partition whose "
                        "checkpoint is missing is taken for a new one", exc)
            return {}
        lost: dict[int, dict[str, int]] = {}
        for tp in committed:
            if tp.error is None and tp.offset >= 0:
                lost.setdefault(tp.partition, {})[tp.topic] = tp.offset
        return lost


__all__ = ["Checkpointer", "Ownership"]
