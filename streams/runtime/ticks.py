"""The tick publisher: every ``ticks.interval_s``, one tick per owned partition.

A tick (docs/events.md, *Control command*) tells the partition step that time
passes on a partition: its models' silence is measured by the ticks' ``ts``
(:mod:`streams.core.silence`). The worker owns the partitions, so it publishes
their ticks: one call per loop turn, :meth:`TickPublisher.publish_due`, which
sends only when the interval has passed (the call a timer can make instead).

A tick goes to the control topic's partition of the same number, unkeyed, and
carries the next predictions offset the worker had to read there: a replay
places it after those predictions. While the worker reads full batches it is
catching up on a backlog; it publishes no tick then, so time does not seem to
pass for models whose backlog is still unread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson
from confluent_kafka import KafkaException

from streams.core.partition import PartitionState
from streams.ingest.mapping import input_topics
from streams.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["TickPublisher", "tick_command"]


class Produces(Protocol):
    """What the publisher needs of a producer (confluent-kafka's ``Producer`` fits)."""

    def produce(self, topic: str, value: bytes, *, partition: int,   # noqa: D102
                on_delivery: Callable[..., Any]) -> None: ...


def tick_command(ts: float, partition: int, predictions_offset: int) -> dict[str, Any]:
    """The tick command sent to ``partition`` (``predictions_offset``: next offset to read).

    Examples
    --------
    >>> tick_command(1763902205.0, 3, 48210)
    {'command': 'tick', 'ts': 1763902205.0, 'predictions_offset': 48210, 'partition': 3}
    """
    return {"command": "tick", "ts": ts, "predictions_offset": predictions_offset,
            "partition": partition}


class TickPublisher:
    """Publish a tick for each partition a worker owns, every ``ticks.interval_s``.

    Parameters
    ----------
    settings
        The frozen settings (``ticks.interval_s``, topic names).
    producer
        Where ticks are produced (the worker's producer).
    partitions
        The partitions owned now, by number (read at each publication).
    clock
        Wall clock, seconds since the epoch: what a tick carries.

    Examples
    --------
    >>> class Sent(list):
    ...     def produce(self, topic, value, *, partition, on_delivery):
    ...         self.append((topic, partition, orjson.loads(value)["predictions_offset"]))
    >>> from streams.settings import load_settings
    >>> settings = load_settings(environ={})
    >>> state = PartitionState.fresh(settings, 2)
    >>> state.offsets["driftline.predictions"] = 120
    >>> sent, now = Sent(), iter([100.0, 102.0, 105.0])
    >>> ticks = TickPublisher(settings, sent, lambda: {2: state}, clock=lambda: next(now))
    >>> ticks.publish_due(), ticks.publish_due(), ticks.publish_due()
    (1, 0, 1)
    >>> sent
    [('driftline.control', 2, 120), ('driftline.control', 2, 120)]
    """

    def __init__(self, settings: Settings, producer: Produces,
                 partitions: Callable[[], Mapping[int, PartitionState]],
                 clock: Callable[[], float] = time.time) -> None:
        self.interval_s = settings.ticks.interval_s
        self.producer = producer
        self.partitions = partitions
        self.clock = clock
        self.predictions_topic, _, self.control_topic = input_topics(settings)
        self.published = 0
        self.failed = 0
        self._last = -float("inf")

    def publish_due(self, catching_up: bool = False) -> int:
        """Publish a tick to every owned partition if the interval has passed; how many.

        ``catching_up``: the worker's last poll returned a full batch (a backlog):
        no tick until it has read it.
        """
        if self.interval_s <= 0 or catching_up:
            return 0
        now = self.clock()
        if now - self._last < self.interval_s:
            return 0
        self._last = now
        sent = 0
        for partition, state in sorted(self.partitions().items()):
            command = tick_command(now, partition, state.offsets.get(self.predictions_topic, 0))
            try:
                self.producer.produce(self.control_topic, orjson.dumps(command),
                                      partition=partition, on_delivery=self._delivered)
            except (BufferError, KafkaException, RuntimeError) as exc:
                # A full queue or a closing producer: the next interval sends another tick.
                self.failed += 1
                log.warning("tick for partition %d not sent: %s", partition, exc)
                continue
            sent += 1
        self.published += sent
        return sent

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self.failed += 1
            log.warning("tick not delivered to %s: %s", self.control_topic, error)
