"""Read output topics the way any downstream consumer would, without joining a group.

Assigning partitions directly skips the consumer-group join (seconds on Tansu),
which suits the demo, ``driftline tail`` and tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from streams.errors import StackError
from streams.runtime.connections import client_config, cluster_metadata


class TopicReader:
    """Assign every partition of ``topics`` and yield decoded JSON records."""

    def __init__(self, bootstrap_servers: str, topics: list[str],
                 from_beginning: bool = True, kafka: Mapping[str, str] | None = None) -> None:
        # Asked first, so an absent broker is one clear error, not a consumer's log flood.
        metadata = cluster_metadata(bootstrap_servers, kafka=kafka)
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        assignment = []
        for topic in topics:
            if topic not in metadata.topics:
                raise StackError(f"topic {topic} does not exist (is a worker running?)")
            partitions = metadata.topics[topic].partitions
            assignment += [TopicPartition(topic, p, start) for p in partitions]
        self._consumer = Consumer(client_config(
            bootstrap_servers, kafka, **{"group.id": f"driftline-reader-{uuid.uuid4().hex[:8]}",
                                  "enable.auto.commit": False, "enable.partition.eof": False}))
        self._consumer.assign(assignment)

    def poll(self, timeout_s: float = 0.5, max_records: int = 1000) -> list[tuple[str, Any]]:
        """Return ``(topic, record)`` pairs that arrived within ``timeout_s``."""
        records = []
        for message in self._consumer.consume(max_records, timeout_s):
            topic, value = message.topic(), message.value()
            # A record without a value (a tombstone) holds nothing to decode.
            if message.error() is None and topic is not None and value is not None:
                records.append((topic, orjson.loads(value)))
        return records

    def close(self) -> None:
        """Release the consumer."""
        self._consumer.close()
