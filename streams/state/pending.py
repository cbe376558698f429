"""Pending predictions awaiting their labels: a bounded, TTL'd store in Redis.

A prediction is stored under ``(model_id, event_id)`` when the worker reads it;
a label claims it later. Entries live in *buckets*: one Redis hash per
partition, model and ``bucket_s`` of arrival (wall-clock) time, each with an
expiry of ``ttl_s + bucket_s``, so memory is bounded by the arrival rate times
the TTL and nothing needs sweeping.

**Counting every join once.** Detector state is checkpointed with the input
offsets it covers (:mod:`streams.state.checkpoint`); after a crash the worker
re-reads both topics from those offsets. A claim therefore records *which
label* claimed the prediction (the label's offset): a claim by the same label
again is a replay after a crash and joins again (the restored detectors have
not seen it); a claim by a different label is a duplicate and is ignored. Both
the store and the claim are single Lua scripts, so a batch costs one round trip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import orjson
import redis

from streams.errors import DriftlineError

JOINED = "joined"
REPLAYED = "replayed"
DUPLICATE = "duplicate"
MISSING = "missing"

# Batches cross as one JSON argument and one JSON reply: redis-py packs and parses every
# argument and reply element in Python (~10 µs per event), Redis's Lua cjson does it in C.

# KEYS: one bucket. ARGV: expiry seconds, JSON [id, value, id, value, ...]. First write
# wins: a redelivered prediction must not erase the claim a label already made.
_PUT = """
local items = cjson.decode(ARGV[2])
for i = 1, #items, 2 do
  redis.call('HSETNX', KEYS[1], items[i], items[i + 1])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return #items / 2
"""

# KEYS: live buckets, newest first. ARGV: JSON [id, claimant, ...].
# Reply: JSON [status, value or false, ...].
_CLAIM = """
local items = cjson.decode(ARGV[1])
local out = {}
for i = 1, #items, 2 do
  local id, claimant = items[i], items[i + 1]
  local found = false
  for _, key in ipairs(KEYS) do
    local value = redis.call('HGET', key, id)
    if value then
      local marker = id .. '\\0claim'
      local previous = redis.call('HGET', key, marker)
      local status = 'joined'
      if not previous then
        redis.call('HSET', key, marker, claimant)
      elseif previous == claimant then
        status = 'replayed'
      else
        status = 'duplicate'
      end
      out[#out + 1] = status
      out[#out + 1] = value
      found = true
      break
    end
  end
  if not found then
    out[#out + 1] = 'missing'
    out[#out + 1] = false
  end
end
return cjson.encode(out)
"""


class Claim(NamedTuple):
    """What a label found: a status and, unless ``missing``, the stored prediction."""

    status: str
    prediction: dict[str, Any] | None


class PendingStore(Protocol):
    """Where predictions wait for labels (Redis in the worker, memory in offline replay)."""

    def put(self, partition: int, model_id: str, entries: dict[str, bytes]) -> None:
        """Store predictions (``event_id`` → encoded entry); the first write of an id wins."""

    def claim(self, partition: int, model_id: str,
              claims: list[tuple[str, str]]) -> list[Claim]:
        """Claim predictions for labels: ``(event_id, claimant)`` pairs, in order."""


class JoinStoreError(DriftlineError):
    """The pending-prediction store could not be read or written."""


@dataclass
class RedisPendingStore:
    """Pending predictions in Redis hashes, bucketed by arrival time.

    Parameters
    ----------
    redis_url, group_id
        Where, and under which consumer group's namespace.
    ttl_s
        How long a prediction waits for its label (a later label is unmatched).
    bucket_s
        Width of one bucket of arrival time; a claim looks through
        ``ttl_s / bucket_s + 1`` buckets, newest first.
    """

    redis_url: str
    group_id: str
    ttl_s: float = 7 * 86400.0
    bucket_s: float = 3600.0

    def __post_init__(self) -> None:
        self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=10.0)
        self._put = self._redis.register_script(_PUT)
        self._claim = self._redis.register_script(_CLAIM)

    def _key(self, partition: int, model_id: str, bucket: int) -> str:
        return f"driftline:pending:{self.group_id}:{partition}:{model_id}:{bucket}"

    def _live_buckets(self, partition: int, model_id: str) -> list[str]:
        newest = int(time.time() // self.bucket_s)
        count = int(self.ttl_s // self.bucket_s) + 1
        return [self._key(partition, model_id, newest - age) for age in range(count + 1)]

    def put(self, partition: int, model_id: str, entries: dict[str, bytes]) -> None:
        """Store predictions in the current bucket (one round trip)."""
        if not entries:
            return
        bucket = int(time.time() // self.bucket_s)
        flat: list[str] = []
        for event_id, value in entries.items():
            flat += (event_id, value.decode())
        try:
            self._put(keys=[self._key(partition, model_id, bucket)],
                      args=[int(self.ttl_s + self.bucket_s), orjson.dumps(flat)])
        except redis.RedisError as exc:
            raise JoinStoreError(f"cannot store pending predictions of {model_id!r}: {exc}"
                                 ) from exc

    def claim(self, partition: int, model_id: str,
              claims: list[tuple[str, str]]) -> list[Claim]:
        """Claim predictions for labels (one round trip); see the module docstring."""
        if not claims:
            return []
        flat = [part for pair in claims for part in pair]
        try:
            reply = self._claim(keys=self._live_buckets(partition, model_id),
                                args=[orjson.dumps(flat)])
        except redis.RedisError as exc:
            raise JoinStoreError(f"cannot claim pending predictions of {model_id!r}: {exc}"
                                 ) from exc
        found = orjson.loads(reply)
        return [Claim(found[i], orjson.loads(found[i + 1]) if found[i + 1] else None)
                for i in range(0, len(found), 2)]

    def memory_bytes(self) -> int:
        """Redis's ``used_memory`` (to measure the cost of pending predictions)."""
        return int(self._redis.info("memory")["used_memory"])


class MemoryPendingStore:
    """The same semantics in a dict, for offline replay (one process, no TTL by clock).

    Entries beyond ``max_entries`` evict the oldest, the way expiry would.

    Examples
    --------
    >>> store = MemoryPendingStore()
    >>> store.put(0, "m", {"e1": orjson.dumps({"y": "1"})})
    >>> [c.status for c in store.claim(0, "m", [("e1", "L1"), ("e1", "L2"), ("e2", "L3")])]
    ['joined', 'duplicate', 'missing']
    """

    def __init__(self, max_entries: int = 5_000_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple[int, str, str], list[Any]] = {}

    def put(self, partition: int, model_id: str, entries: dict[str, bytes]) -> None:
        """Store predictions; the first write of an id wins."""
        for event_id, value in entries.items():
            self._entries.setdefault((partition, model_id, event_id), [value, None])
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]

    def claim(self, partition: int, model_id: str,
              claims: list[tuple[str, str]]) -> list[Claim]:
        """Claim predictions for labels, in order."""
        results = []
        for event_id, claimant in claims:
            entry = self._entries.get((partition, model_id, event_id))
            if entry is None:
                results.append(Claim(MISSING, None))
                continue
            if entry[1] is None:
                entry[1] = claimant
                status = JOINED
            else:
                status = REPLAYED if entry[1] == claimant else DUPLICATE
            results.append(Claim(status, orjson.loads(entry[0])))
        return results


__all__ = ["DUPLICATE", "JOINED", "MISSING", "REPLAYED", "Claim", "JoinStoreError",
           "MemoryPendingStore", "PendingStore", "RedisPendingStore"]
