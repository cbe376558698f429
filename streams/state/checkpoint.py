"""Monitor state checkpointed in Redis together with the input offsets it covers.

Input topics are co-partitioned by ``model_id`` (predictions, labels, control),
so one engine serves one partition *number*. Its checkpoint is one Redis hash,
``driftline:checkpoint:<group>:<scope>:<partition>``:

- ``head``: ``{"version", "offsets": {topic: next offset to read}, "engine":
  what is not per model, "written_at", ...}`` (orjson);
- ``m:<model_id>``: the state of one model, all its versions, both engines;
- ``epoch`` and ``seq``: who wrote it, and its how-manieth write that was.

**Incremental.** A write carries the head and only the models that changed
since the previous write (a model gone from the engine is deleted), so its
cost follows the busy models, not the idle ones. Every write is one Lua
script, so the hash always holds one consistent snapshot: state and offsets
never disagree, whichever write was the last.

**Fenced.** Whoever is assigned a partition first *claims* it: its epoch key
(``driftline:epoch:...``) is raised above any earlier claim. Every write
carries the writer's epoch; the script refuses a write whose epoch is older
than the key's (the partition has moved on to another worker, which may
already have written newer state) and a copy of an earlier write of the same
epoch (a request that timed out and reached Redis late). The refused worker
drops the partition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import redis

from streams.errors import CheckpointError
from streams.settings_security import RedisSettings
from streams.state.redis_retry import RedisRetry, state_client

VERSION = 3
WRITTEN, FENCED, MISSING = "written", "fenced", "missing"
MODEL_FIELD = "m:"
# Label-engine sections keyed by model id, and those whose items start with it.
_LABEL_MAPS = ("tasks", "counts", "early")
_LABEL_LISTS = ("performance", "estimators", "policies", "retrain", "segments")
T = TypeVar("T")

# KEYS: owner epoch. ARGV: the claimant's clock (ms). Returns the new epoch: above any
# before it, and (by the clock) above those of a Redis that lost its data meanwhile.
_CLAIM = """
local owner = tonumber(redis.call('GET', KEYS[1])) or 0
local epoch = math.max(owner + 1, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%d', epoch))
return epoch
"""

# KEYS: checkpoint hash, owner epoch. ARGV: epoch (-1: unfenced), seq, 'full' or 'delta',
# head, then field/value pairs (an empty value deletes the field).
_WRITE = """
local epoch, seq = tonumber(ARGV[1]), tonumber(ARGV[2])
local owner = tonumber(redis.call('GET', KEYS[2]))
if epoch >= 0 then
  if owner and epoch < owner then return {'fenced', owner} end
  if not owner or epoch > owner then redis.call('SET', KEYS[2], ARGV[1]) end
end
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'hash' then
  local last = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
  if epoch >= 0 and tonumber(last[1]) == epoch and (tonumber(last[2]) or 0) >= seq then
    return {'written', epoch}
  end
elseif ARGV[3] ~= 'full' then
  return {'missing', owner or epoch}
end
if ARGV[3] == 'full' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'head', ARGV[4], 'epoch', ARGV[1], 'seq', ARGV[2])
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return {'written', owner or epoch}
"""

# KEYS: checkpoint. A hash (this version) or a string (version 2: one document).
_READ = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'hash' then return {kind, redis.call('HGETALL', KEYS[1])} end
if kind == 'string' then return {kind, redis.call('GET', KEYS[1])} end
return {kind}
"""


@dataclass(frozen=True)
class Checkpoint:
    """State of one partition number's engines and the next offset to read per topic."""

    scope: str
    partition: int
    offsets: dict[str, int]
    engine: dict[str, Any]
    written_at: float
    incremental: bool = True
    """Stored as a hash of models (``False``: a version-2 document, rewritten whole)."""


@dataclass(frozen=True)
class Written:
    """What a checkpoint write did: ``written``, ``fenced`` (refused) or ``missing``."""

    status: str
    owner: int
    """The partition's epoch in Redis after the write (a newer owner's when fenced)."""
    size: int = 0
    models: int = 0


def split(engine: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A partition's engine state as (what is not per model, each model's part).

    ``engine`` is :meth:`~streams.core.partition.PartitionState.to_state` output, whole or
    for some models. A section this function does not know stays in the head, which
    is written every time: new state is checkpointed whole rather than lost.

    >>> head, models = split({"version": 1, "models": [{"model_id": "a", "monitor": 1}],
    ...                       "labels": {"counts": {"a": 2}, "policies": [["a", "v", 3]]}})
    >>> head
    {'version': 1, 'labels': {}}
    >>> models["a"]["models"], models["a"]["labels"]["policies"]
    ([{'model_id': 'a', 'monitor': 1}], [['a', 'v', 3]])
    >>> merge(head, models.values())["labels"]["counts"]
    {'a': 2}
    """
    head = {k: v for k, v in engine.items() if k not in ("models", "rate_limits", "labels")}
    models: dict[str, dict[str, Any]] = {}

    def part(model_id: str) -> dict[str, Any]:
        found = models.get(model_id)
        if found is None:
            found = models[model_id] = {}
        return found

    for section in ("models", "rate_limits"):
        for entry in engine.get(section, ()):
            part(entry["model_id"]).setdefault(section, []).append(entry)
    labels = engine.get("labels")
    if labels is not None:
        head["labels"] = {}
        for name, value in labels.items():
            if name in _LABEL_MAPS:
                for model_id, item in value.items():
                    part(model_id).setdefault("labels", {}).setdefault(name, {})[model_id] = item
            elif name in _LABEL_LISTS:
                for item in value:
                    part(item[0]).setdefault("labels", {}).setdefault(name, []).append(item)
            else:
                head["labels"][name] = value
    return head, models


def merge(head: dict[str, Any], models: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The engine state :func:`split` took apart (models in the order given)."""
    engine: dict[str, Any] = {k: v for k, v in head.items() if k != "labels"}
    engine["models"], engine["rate_limits"] = [], []
    labels: dict[str, Any] | None = None
    if "labels" in head:
        labels = {**head["labels"], **{name: {} for name in _LABEL_MAPS},
                  **{name: [] for name in _LABEL_LISTS}}
        engine["labels"] = labels
    for model in models:
        engine["models"] += model.get("models", ())
        engine["rate_limits"] += model.get("rate_limits", ())
        for name, value in model.get("labels", {}).items():
            if labels is None:
                raise CheckpointError(f"checkpoint holds label state {name!r} without a head")
            if isinstance(value, dict):
                labels[name].update(value)
            else:
                labels[name] += value
    return engine


class CheckpointStore:
    """Read, claim and write partition checkpoints in Redis.

    Parameters
    ----------
    redis_url, group_id
        Where, and under which consumer group's namespace.
    security
        The ``redis:`` settings (ACL user, TLS files).
    retry
        The worker's outage policy: calls wait while Redis is unreachable.
        Without one a Redis error raises :class:`~streams.errors.CheckpointError`.
    """

    def __init__(self, redis_url: str, group_id: str, security: RedisSettings | None = None,
                 retry: RedisRetry | None = None) -> None:
        self.group_id = group_id
        self._redis = state_client(redis_url, security)
        self._retry = retry
        self._claim = self._redis.register_script(_CLAIM)
        self._write = self._redis.register_script(_WRITE)
        self._read = self._redis.register_script(_READ)

    def key(self, scope: str, partition: int) -> str:
        """The Redis key of a partition's checkpoint."""
        return f"driftline:checkpoint:{self.group_id}:{scope}:{partition}"

    def epoch_key(self, scope: str, partition: int) -> str:
        """The Redis key of a partition's owner epoch."""
        return f"driftline:epoch:{self.group_id}:{scope}:{partition}"

    def claim(self, scope: str, partition: int) -> int:
        """Become the partition's owner: return an epoch above every earlier claim's."""
        reply = self._call(f"claim {scope}[{partition}]", lambda: self._claim(
            keys=[self.epoch_key(scope, partition)], args=[int(time.time() * 1000)]))
        return int(reply)

    def owners(self, scope: str, partitions: Collection[int]) -> dict[int, int | None]:
        """The current epoch of each partition (``None``: never claimed, or Redis lost it)."""
        numbers = sorted(partitions)
        if not numbers:
            return {}
        found = self._call("read owner epochs", lambda: self._redis.mget(
            [self.epoch_key(scope, p) for p in numbers]))
        return {p: None if raw is None else int(raw) for p, raw in zip(numbers, found,
                                                                        strict=True)}

    def write(self, scope: str, partition: int, offsets: dict[str, int],
              engine: dict[str, Any], *, epoch: int, seq: int,
              changed: Collection[str] | None = None) -> Written:
        """Write a checkpoint: whole (``changed`` is ``None``), or the head and ``changed`` models.

        ``engine`` holds the state of at least the ``changed`` models; one of them
        without state there is deleted. ``epoch`` -1 writes unfenced (tools, tests).
        An incremental write onto a partition without checkpoint is not applied:
        its status is ``missing`` and the caller writes the whole state.
        """
        head, models = split(engine)
        document = {"version": VERSION, "scope": scope, "partition": partition,
                    "offsets": offsets, "engine": head, "written_at": time.time()}
        args: list[Any] = [epoch, seq, "full" if changed is None else "delta",
                           orjson.dumps(document)]
        for model_id in (models if changed is None else changed):
            model = models.get(model_id)
            args += [MODEL_FIELD + model_id, b"" if model is None else orjson.dumps(model)]
        keys = [self.key(scope, partition), self.epoch_key(scope, partition)]
        status, owner = self._call(f"write checkpoint {scope}[{partition}]",
                                   lambda: self._write(keys=keys, args=args))
        status = status.decode() if isinstance(status, bytes) else str(status)
        return Written(status, int(owner), sum(len(a) for a in args[3:] if isinstance(a, bytes)),
                       (len(args) - 4) // 2)

    def save(self, scope: str, partition: int, offsets: dict[str, int],
             engine: dict[str, Any]) -> int:
        """Write a whole checkpoint, unfenced; return its size in bytes (tools and tests)."""
        return self.write(scope, partition, offsets, engine, epoch=-1, seq=0).size

    def load(self, scope: str, partition: int) -> Checkpoint | None:
        """Read a partition's checkpoint, or ``None`` if there is none."""
        reply = self._call(f"read checkpoint {scope}[{partition}]",
                           lambda: self._read(keys=[self.key(scope, partition)]))
        kind = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if kind == "none":
            return None
        if kind == "string":
            return self._document(scope, partition, orjson.loads(reply[1]), 2)
        if kind != "hash":
            raise CheckpointError(f"checkpoint {scope}[{partition}] is a Redis {kind}, "
                                  "expected a hash")
        fields = dict(zip(reply[1][::2], reply[1][1::2], strict=True))
        if b"head" not in fields:
            raise CheckpointError(f"checkpoint {scope}[{partition}] has no head")
        document = orjson.loads(fields[b"head"])
        # Sorted by model id: a restore does not depend on the order Redis lists fields in.
        models = [orjson.loads(value) for name, value in sorted(fields.items())
                  if name.startswith(MODEL_FIELD.encode())]
        document["engine"] = merge(document["engine"], models)
        return self._document(scope, partition, document, VERSION)

    def ping(self) -> None:
        """Fail fast with a clear error when Redis is unreachable."""
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise CheckpointError(f"cannot reach Redis: {exc}") from exc

    def _document(self, scope: str, partition: int, document: dict[str, Any],
                  expected: int) -> Checkpoint:
        if document.get("version") != expected:
            raise CheckpointError(f"checkpoint {scope}[{partition}] has version "
                                  f"{document.get('version')!r}, expected {expected}")
        return Checkpoint(scope, partition, {k: int(v) for k, v in document["offsets"].items()},
                          document["engine"], float(document["written_at"]),
                          incremental=expected == VERSION)

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        try:
            return self._retry.call(what, operation) if self._retry else operation()
        except redis.RedisError as exc:
            raise CheckpointError(f"cannot {what}: {exc}") from exc


__all__ = ["FENCED", "MISSING", "VERSION", "WRITTEN", "Checkpoint", "CheckpointStore", "Written",
           "merge", "split"]
