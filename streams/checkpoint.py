"""Monitor state checkpointed in Redis together with the input offset it covers.

One key per input partition holds ``{"offset": next offset to read, "engine":
state}`` as one orjson document, written with a single ``SET``, so state and
offset can never disagree. On assignment the worker restores the state and
seeks to that offset: every event is counted exactly once in the detectors,
however often Kafka redelivers it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from streams.errors import CheckpointError

VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """State of one partition's engine and the next offset to read."""

    topic: str
    partition: int
    offset: int
    engine: dict[str, Any]
    written_at: float


class CheckpointStore:
    """Read and write partition checkpoints in Redis."""

    def __init__(self, redis_url: str, group_id: str) -> None:
        self.group_id = group_id
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=10.0)

    def _key(self, topic: str, partition: int) -> str:
        return f"driftline:checkpoint:{self.group_id}:{topic}:{partition}"

    def save(self, topic: str, partition: int, offset: int, engine: dict[str, Any]) -> int:
        """Write a checkpoint; return its size in bytes."""
        document = orjson.dumps({"version": VERSION, "topic": topic, "partition": partition,
                                 "offset": offset, "engine": engine, "written_at": time.time()})
        try:
            self._redis.set(self._key(topic, partition), document)
        except redis.RedisError as exc:
            raise CheckpointError(f"cannot write checkpoint {topic}[{partition}]: {exc}") from exc
        return len(document)

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        """Read a partition's checkpoint, or ``None`` if there is none."""
        try:
            raw = self._redis.get(self._key(topic, partition))
        except redis.RedisError as exc:
            raise CheckpointError(f"cannot read checkpoint {topic}[{partition}]: {exc}") from exc
        if raw is None:
            return None
        document = orjson.loads(raw)  # type: ignore[arg-type]
        if document.get("version") != VERSION:
            raise CheckpointError(f"checkpoint {topic}[{partition}] has version "
                                  f"{document.get('version')!r}, expected {VERSION}")
        return Checkpoint(topic, partition, int(document["offset"]), document["engine"],
                          float(document["written_at"]))

    def ping(self) -> None:
        """Fail fast with a clear error when Redis is unreachable."""
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise CheckpointError(f"cannot reach Redis: {exc}") from exc
