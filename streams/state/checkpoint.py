"""Monitor state checkpointed in Redis together with the input offset it covers.

Input topics are co-partitioned by ``model_id`` (predictions, control, and
later labels), so one engine serves one partition *number*. One key per
partition number holds ``{"offsets": {topic: next offset to read}, "engine":
state}`` as one orjson document, written with a single ``SET``, so state and
offsets can never disagree. On assignment the worker restores the state and
seeks every topic's partition to its offset: every event is counted exactly
once in the detectors, however often Kafka redelivers it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from streams.errors import CheckpointError
from streams.settings_security import RedisSettings
from streams.state.connect import redis_client

VERSION = 2


@dataclass(frozen=True)
class Checkpoint:
    """State of one partition number's engine and the next offset to read per topic."""

    scope: str
    partition: int
    offsets: dict[str, int]
    engine: dict[str, Any]
    written_at: float


class CheckpointStore:
    """Read and write partition checkpoints in Redis."""

    def __init__(self, redis_url: str, group_id: str,
                 security: RedisSettings | None = None) -> None:
        self.group_id = group_id
        self._redis = redis_client(redis_url, security, socket_timeout=10.0)

    def key(self, scope: str, partition: int) -> str:
        """The Redis key of a partition's checkpoint."""
        return f"driftline:checkpoint:{self.group_id}:{scope}:{partition}"

    def save(self, scope: str, partition: int, offsets: dict[str, int],
             engine: dict[str, Any]) -> int:
        """Write a checkpoint; return its size in bytes.

        ``scope`` names the stream (the predictions topic), ``offsets`` the next offset
        to read of every input topic's partition ``partition``.
        """
        document = orjson.dumps({"version": VERSION, "scope": scope, "partition": partition,
                                 "offsets": offsets, "engine": engine, "written_at": time.time()})
        try:
            self._redis.set(self.key(scope, partition), document)
        except redis.RedisError as exc:
            raise CheckpointError(f"cannot write checkpoint {scope}[{partition}]: {exc}") from exc
        return len(document)

    def load(self, scope: str, partition: int) -> Checkpoint | None:
        """Read a partition's checkpoint, or ``None`` if there is none."""
        try:
            raw = self._redis.get(self.key(scope, partition))
        except redis.RedisError as exc:
            raise CheckpointError(f"cannot read checkpoint {scope}[{partition}]: {exc}") from exc
        if raw is None:
            return None
        document = orjson.loads(raw)
        if document.get("version") != VERSION:
            raise CheckpointError(f"checkpoint {scope}[{partition}] has version "
                                  f"{document.get('version')!r}, expected {VERSION}")
        return Checkpoint(scope, partition, {k: int(v) for k, v in document["offsets"].items()},
                          document["engine"], float(document["written_at"]))

    def ping(self) -> None:
        """Fail fast with a clear error when Redis is unreachable."""
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise CheckpointError(f"cannot reach Redis: {exc}") from exc
