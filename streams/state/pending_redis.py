"""The pending-prediction store in Redis (see :mod:`streams.state.pending` for the design).

Kept apart so that offline replay, which holds pending predictions in memory,
never imports the Redis client. Every call is idempotent, so the worker's
:class:`~streams.state.redis_retry.RedisRetry` may repeat it through an outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import TypeVar

import numpy as np
import orjson
import redis
from numpy.typing import NDArray

from streams.settings_security import RedisSettings
from streams.state.pending import (
    CLAIMANT,
    Blob,
    ColumnarPendingStore,
    JoinStoreError,
    PendingRows,
)
from streams.state.redis_retry import RedisRetry, state_client

T = TypeVar("T")
_CLAIMS, _LEGACY_CLAIMS = ":claimed", ":claims"

# KEYS: per blob its claims (a string of 12-byte slots, one per row: the claimant's offset + 1
# and index, little-endian; zero bytes: unclaimed), then the claims hash of the format before
# (``row -> "offset.index"``), read where it still exists. ARGV: JSON rows asked per blob (in
# KEYS order), JSON rows per blob, JSON rows asked (ascending within a blob; a row asked twice,
# in label order), the claimants packed in the same order, TTL. Reply: a letter per row asked,
# in that order: j(oined), r(eplayed), d(uplicate). One GETRANGE and one SETRANGE per blob: a
# call into Redis and a hash field per row were most of the time of the script before (4 µs a
# claim, in Redis). A blob's first claim writes its whole string at once: one grown by
# SETRANGE keeps up to as much again spare.
_CLAIM = """
local counts = cjson.decode(ARGV[1])
local sizes = cjson.decode(ARGV[2])
local rows = cjson.decode(ARGV[3])
local claimants = ARGV[4]
local ttl = tonumber(ARGV[5])
local width = 12
local blank = string.rep('\\0', width)
local out = {}
local at = 0
for k = 1, #counts do
  local key, legacy = KEYS[2 * k - 1], KEYS[2 * k]
  -- Only the span of the rows asked: a batch of a few labels reads a few slots.
  local low = rows[at + 1] * width
  local held = redis.call('GETRANGE', key, low, rows[at + counts[k]] * width + width - 1)
  -- Written at its full size, a blob's claims never answer a span within it with ''.
  local fresh = held == ''
  if fresh then held = string.rep('\\0', rows[at + counts[k]] * width + width - low) end
  local old = redis.call('EXISTS', legacy) == 1
  local pieces = {}
  local first, written = nil, 0
  local last_row, holder = -1, nil
  for i = at + 1, at + counts[k] do
    local row = rows[i]
    local start = row * width
    local claimant = string.sub(claimants, (i - 1) * width + 1, i * width)
    if row ~= last_row then
      last_row = row
      holder = string.sub(held, start - low + 1, start - low + width)
      if holder == '' or holder == blank then
        holder = nil
        if old then
          local before = redis.call('HGET', legacy, tostring(row))
          if before then
            local offset, index = struct.unpack('<i8I4', claimant)
            -- Claimed before the format changed: the same label replays, another duplicates.
            holder = before == string.format('%d.%d', offset - 1, index) and claimant or before
          end
        end
      end
    end
    if holder == nil then
      if first == nil then first, written = start, start end
      if start > written then
        local gap = string.sub(held, written - low + 1, start - low)
        pieces[#pieces + 1] = gap .. string.rep('\\0', start - written - #gap)
      end
      pieces[#pieces + 1] = claimant
      written = start + width
      holder = claimant
      out[i] = 'j'
    elseif holder == claimant then
      out[i] = 'r'
    else
      out[i] = 'd'
    end
  end
  if first ~= nil then
    if fresh then redis.call('SET', key, string.rep('\\0', sizes[k] * width), 'EX', ttl) end
    redis.call('SETRANGE', key, first, table.concat(pieces))
  end
  at = at + counts[k]
end
return table.concat(out)
"""


class RedisPendingStore(ColumnarPendingStore):
    """Blobs and claims in Redis, under the consumer group's namespace.

    Keys: ``driftline:pending:<group>:<partition>`` (a sorted set of the
    partition's blobs, scored by write time), ``…:<partition>:<first offset>:<model>``
    (a blob) and the same with ``:claimed`` (the claims, a 12-byte slot per row). A
    ``:claims`` hash (``row -> "offset.index"``, the format before) is still read.
    """

    def __init__(self, redis_url: str, group_id: str, ttl_s: float = 7 * 86400.0,
                 cache_blobs: int = 64, security: RedisSettings | None = None,
                 retry: RedisRetry | None = None) -> None:
        super().__init__(ttl_s, cache_blobs)
        self.redis_url, self.group_id = redis_url, group_id
        self._redis = state_client(redis_url, security)
        self._retry = retry
        self._claim_script = self._redis.register_script(_CLAIM)
        self._unwritten: list[tuple[int, str, int, bytes]] = []

    def _registry(self, partition: int) -> str:
        return f"driftline:pending:{self.group_id}:{partition}"

    def _blob_key(self, partition: int, first_offset: int, model_id: str) -> str:
        return f"{self._registry(partition)}:{first_offset}:{model_id}"

    def _persist(self, partition: int, model_id: str, first_offset: int,
                 rows: PendingRows) -> None:
        # Written by flush(), once per step for all of its models: one round trip.
        self._unwritten.append((partition, model_id, first_offset, rows.encode()))

    def flush(self) -> None:
        """Write the blobs stored since the last flush (the step calls it at its end)."""
        if not self._unwritten:
            return
        now = time.time()
        unwritten = self._unwritten

        def write() -> None:
            # Built anew for each attempt: a pipeline forgets its commands when it fails.
            pipe = self._redis.pipeline(transaction=False)
            for partition, model_id, first_offset, blob in unwritten:
                pipe.set(self._blob_key(partition, first_offset, model_id), blob,
                         ex=max(int(self.ttl_s), 1))
                pipe.zadd(self._registry(partition), {orjson.dumps([first_offset, model_id]): now})
            for partition in {entry[0] for entry in unwritten}:
                pipe.zremrangebyscore(self._registry(partition), "-inf", now - self.ttl_s)
            pipe.execute()

        try:
            self._call("store pending predictions", write)
        finally:
            self._unwritten = []

    def forget(self, partition: int) -> None:
        """Drop a partition's in-memory index and its blobs not yet written."""
        super().forget(partition)
        self._unwritten = [u for u in self._unwritten if u[0] != partition]

    def _fetch(self, partition: int, blobs: list[Blob]) -> list[PendingRows | None]:
        self.flush()                     # a blob still unwritten is read like any other
        keys = [self._blob_key(partition, b.first_offset, b.model_id) for b in blobs]
        found = self._call("read pending predictions", lambda: self._mget(keys))
        return [None if blob is None else PendingRows.decode(blob) for blob in found]

    def _claim(self, partition: int, blobs: dict[int, Blob], numbers: NDArray[np.int64],
               rows: NDArray[np.int64], claimants: NDArray[np.void]) -> NDArray[np.uint8]:
        if not len(rows):
            return np.zeros(0, dtype=np.uint8)
        # Blob by blob, rows ascending; a row asked twice keeps its labels' order.
        order = np.lexsort((rows, numbers))
        distinct, counts = np.unique(numbers[order], return_counts=True)
        keys, sizes = [], []
        for number in distinct.tolist():
            blob = blobs[number]
            key = self._blob_key(partition, blob.first_offset, blob.model_id)
            keys += [key + _CLAIMS, key + _LEGACY_CLAIMS]
            sizes.append(len(blob.event_ids))
        # Offsets from 1 in the slots: zero bytes are an unclaimed row.
        packed = claimants[order]
        packed["offset"] += 1
        args: list[bytes | int] = [orjson.dumps(counts, option=orjson.OPT_SERIALIZE_NUMPY),
                                   orjson.dumps(sizes),
                                   orjson.dumps(rows[order], option=orjson.OPT_SERIALIZE_NUMPY),
                                   packed.astype(CLAIMANT, copy=False).tobytes(),
                                   max(int(self.ttl_s), 1)]
        # Repeatable: a row claimed by the same claimant answers "replayed", which joins.
        reply = self._call("claim pending predictions",
                           lambda: self._claim_script(keys=keys, args=args))
        codes = np.frombuffer(reply if isinstance(reply, bytes) else str(reply).encode(),
                              dtype=np.uint8)
        if len(codes) != len(rows):
            raise JoinStoreError(f"claim script answered {len(codes)} statuses for "
                                 f"{len(rows)} rows")
        statuses = np.empty_like(codes)
        statuses[order] = codes
        return statuses

    def _load(self, partition: int,
              offset: int | None) -> Iterable[tuple[str, int, PendingRows, float]]:
        registry = self._registry(partition)
        what = f"restore pending predictions of partition {partition}"
        members = self._call(what, lambda: self._members(registry))
        parsed = [(_member(m), m) for m, _ in members]
        stale = [((first, model_id), m) for (first, model_id), m in parsed
                 if offset is None or first >= offset]

        def drop_stale() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for (first, model_id), member in stale:
                key = self._blob_key(partition, first, model_id)
                pipe.delete(key, key + _CLAIMS, key + _LEGACY_CLAIMS)
                pipe.zrem(registry, member)
            pipe.execute()

        if stale:
            self._call(what, drop_stale)
        stale_members = {m for _, m in stale}
        live = [(_member(m), score) for m, score in members if m not in stale_members]
        for start in range(0, len(live), 256):
            chunk = live[start:start + 256]
            keys = [self._blob_key(partition, first, model_id) for (first, model_id), _ in chunk]
            blobs = self._call(what, partial(self._mget, keys))
            for ((first, model_id), written_at), blob in zip(chunk, blobs, strict=True):
                if blob is None:
                    self._call(what, partial(self._redis.zrem, registry,
                                             orjson.dumps([first, model_id])))
                    continue
                yield model_id, first, PendingRows.decode(blob), written_at

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        try:
            return self._retry.call(what, operation) if self._retry else operation()
        except redis.RedisError as exc:
            raise JoinStoreError(f"cannot {what}: {exc}") from exc

    def _mget(self, keys: list[str]) -> list[bytes | None]:
        # The client is built without decode_responses: replies are bytes.
        return [value if value is None or isinstance(value, bytes) else value.encode()
                for value in self._redis.mget(keys)]

    def _members(self, registry: str) -> list[tuple[bytes, float]]:
        members: list[tuple[bytes, float]] = []
        for entry in self._redis.zrange(registry, 0, -1, withscores=True):
            if isinstance(entry, tuple | list) and isinstance(entry[0], bytes):
                members.append((entry[0], float(entry[1])))
        return members

    def stored_bytes(self, partition: int) -> int:
        """Redis's own account (``MEMORY USAGE``) of a partition's blobs, claims and registry.

        Unlike ``used_memory`` it does not move with other keys of the same Redis.
        """
        self.flush()
        registry = self._registry(partition)
        keys = [registry]
        for member, _ in self._members(registry):
            first, model_id = _member(member)
            key = self._blob_key(partition, first, model_id)
            keys += [key, key + _CLAIMS, key + _LEGACY_CLAIMS]
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        return sum(int(size) for size in pipe.execute() if size)

    def memory_bytes(self) -> int:
        """Redis's ``used_memory`` (to measure the cost of pending predictions)."""
        return int(self._redis.info("memory")["used_memory"])


def _member(member: bytes) -> tuple[int, str]:
    """(first offset, model id) of a registry member."""
    first, model_id = orjson.loads(member)
    return int(first), str(model_id)



__all__ = ["RedisPendingStore"]
