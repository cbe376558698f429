"""Pending predictions awaiting their labels: columnar blobs, one per model and step.

The worker stores the predictions of one model from one partition step as one
:class:`PendingRows` blob: ids, event times, offsets, versions, predictions and
scores as columns (features and segments only when present and wanted),
about 55 bytes a prediction with 20-character ids instead of one JSON value
each. A label finds its prediction through an in-memory index
``event_id -> (blob, row)`` per partition and model, built when the model's
first label asks (a model without labels never pays for it) from the blobs
listed in Redis when the partition was assigned. Recently written blobs are
kept decoded, so a label that arrives within a few steps needs no read.

**Counting every join once.** Monitor state is checkpointed with the input
offsets it covers. A blob is keyed by the offset of its first prediction;
when a partition is restored, blobs written after the checkpoint are deleted
(the predictions are read again and stored again), so a prediction is never
stored twice. A claim records *which label* claimed a row (the label's offset
and index, a :data:`CLAIMANT`): the same label claiming again is a replay after a
crash and joins again (the restored monitors have not seen it); a different
label is a duplicate and is ignored. One Lua script claims a label batch in one
round trip.

Blobs expire ``ttl_s`` after they were written (wall-clock), with their claims.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar

import numpy as np
import orjson
from numpy.typing import NDArray

from streams.errors import DriftlineError

T = TypeVar("T")

JOINED = "joined"
REPLAYED = "replayed"
DUPLICATE = "duplicate"
MISSING = "missing"
# Who claims a row: the label's offset and its index within its message (12 bytes packed).
CLAIMANT = np.dtype([("offset", "<i8"), ("index", "<u4")])
# A claim's status as one byte (the claim script answers a letter per row).
STATUS_CODES = {JOINED: ord("j"), REPLAYED: ord("r"), DUPLICATE: ord("d"), MISSING: ord("m")}
_STATUS_OF = np.array([None] * 256, dtype=object)
for _status, _code in STATUS_CODES.items():
    _STATUS_OF[_code] = _status

_MAGIC = b"DP1"
_HEADER = struct.Struct("<3sI")
_ROW_BITS = 24          # rows per blob < 16M (a step holds at most batch_size events)

class JoinStoreError(DriftlineError):
    """The pending-prediction store could not be read or written."""


@dataclass
class PendingRows:
    """Predictions of one model waiting for labels, as columns.

    ``score`` and ``confidence`` hold ``nan`` where unknown; ``segments`` and
    ``features`` are ``None`` when no row has them (or features are not kept);
    a row whose features were not kept has ``None`` among them.

    Examples
    --------
    >>> rows = PendingRows(["e1", "e2"], ["v1", "v1"], np.array([1.0, 2.0]),
    ...                    np.array([10, 11]), [1, 0], np.array([0.9, np.nan]),
    ...                    np.array([0.9, np.nan]))
    >>> PendingRows.decode(rows.encode()).take([1]).event_ids
    ['e2']
    """

    event_ids: list[str]
    versions: list[str]
    ts: NDArray[np.float64]
    offsets: NDArray[np.int64]
    predictions: list[Any]
    score: NDArray[np.float64]
    confidence: NDArray[np.float64]
    segments: list[dict[str, Any] | None] | None = None
    features: list[dict[str, Any] | None] | None = None

    def __len__(self) -> int:
        return len(self.event_ids)

    def take(self, rows: Sequence[int] | NDArray[np.integer[Any]]) -> PendingRows:
        """The rows at ``rows``, in that order."""
        index = np.asarray(rows, dtype=np.intp)
        chosen = index.tolist()
        return PendingRows(
            pick(self.event_ids, chosen), pick(self.versions, chosen),
            self.ts[index], self.offsets[index], pick(self.predictions, chosen),
            self.score[index], self.confidence[index],
            None if self.segments is None else pick(self.segments, chosen),
            None if self.features is None else pick(self.features, chosen))

    @staticmethod
    def concat(parts: Sequence[PendingRows]) -> PendingRows:
        """One table of ``parts`` in order (at least one)."""
        if len(parts) == 1:
            return parts[0]
        with_segments = any(p.segments is not None for p in parts)
        with_features = any(p.features is not None for p in parts)
        return PendingRows(
            [i for p in parts for i in p.event_ids], [v for p in parts for v in p.versions],
            np.concatenate([p.ts for p in parts]), np.concatenate([p.offsets for p in parts]),
            [y for p in parts for y in p.predictions],
            np.concatenate([p.score for p in parts]),
            np.concatenate([p.confidence for p in parts]),
            [s for p in parts for s in (p.segments or [None] * len(p))] if with_segments
            else None,
            [f for p in parts for f in (p.features or [None] * len(p))] if with_features
            else None)

    def encode(self) -> bytes:
        """Compact bytes: a JSON header (ids, predictions, versions) and raw numpy columns."""
        distinct = list(dict.fromkeys(self.versions))
        codes = {version: code for code, version in enumerate(distinct)}
        base = int(self.offsets.min()) if len(self) else 0
        header: dict[str, Any] = {"n": len(self), "base": base, "versions": distinct,
                                  "ids": self.event_ids, "y": self.predictions}
        known = ~np.isnan(self.confidence)
        # A confidence that follows from prediction and score is recomputed, not stored.
        header["c"] = bool(known.any())
        if self.segments is not None:
            header["g"] = self.segments
        if self.features is not None:
            header["f"] = self.features
        head = orjson.dumps(header)
        code_type = np.uint8 if len(distinct) < 256 else np.uint16
        columns = [self.ts.astype(np.float64).tobytes(),
                   (self.offsets - base).astype(np.uint32).tobytes(),
                   (np.zeros(len(self), dtype=code_type) if len(distinct) == 1 else
                    np.fromiter(map(codes.__getitem__, self.versions), dtype=code_type,
                                count=len(self))).tobytes(),
                   self.score.astype(np.float64).tobytes()]
        if header["c"]:
            columns.append(self.confidence.astype(np.float64).tobytes())
        return _HEADER.pack(_MAGIC, len(head)) + head + b"".join(columns)

    @classmethod
    def decode(cls, blob: bytes) -> PendingRows:
        """Rebuild from :meth:`encode` output."""
        magic, length = _HEADER.unpack_from(blob)
        if magic != _MAGIC:
            raise JoinStoreError(f"pending blob: expected format {_MAGIC!r}, got {magic!r}")
        start = _HEADER.size
        header = orjson.loads(blob[start:start + length])
        n, at = header["n"], start + length
        ts = np.frombuffer(blob, np.float64, n, at)
        at += 8 * n
        offsets = np.frombuffer(blob, np.uint32, n, at).astype(np.int64) + header["base"]
        at += 4 * n
        code_type = np.uint8 if len(header["versions"]) < 256 else np.uint16
        codes = np.frombuffer(blob, code_type, n, at)
        at += codes.itemsize * n
        score = np.frombuffer(blob, np.float64, n, at)
        at += 8 * n
        confidence = (np.frombuffer(blob, np.float64, n, at) if header["c"]
                      else np.full(n, np.nan))
        versions = header["versions"]
        return cls(header["ids"], [versions[c] for c in codes.tolist()], ts, offsets,
                   header["y"], score, confidence, header.get("g"), header.get("f"))


def claimants(offsets: Sequence[int] | NDArray[np.integer[Any]],
              indices: Sequence[int] | NDArray[np.integer[Any]]) -> NDArray[np.void]:
    """The :data:`CLAIMANT` of each label: its offset and its index within its message.

    Examples
    --------
    >>> claimants([7, 7], [0, 1]).tolist()
    [(7, 0), (7, 1)]
    """
    packed = np.empty(len(offsets), dtype=CLAIMANT)
    packed["offset"] = offsets
    packed["index"] = indices
    return packed


def pick(values: Sequence[T], rows: list[int]) -> list[T]:
    """``[values[row] for row in rows]``, in one C call."""
    if len(rows) > 1:
        return list(itemgetter(*rows)(values))
    return [values[rows[0]]] if rows else []


class Claimed(NamedTuple):
    """What a label batch found: per label a status, and the joined rows in label order."""

    codes: NDArray[np.uint8]
    """Per label its status as a byte of :data:`STATUS_CODES`."""
    rows: PendingRows | None
    """Rows of the labels whose status is ``joined`` or ``replayed``, in label order."""

    @property
    def statuses(self) -> list[str]:
        """Per label its status: ``joined``, ``replayed``, ``duplicate`` or ``missing``."""
        return list(_STATUS_OF[self.codes])

    @property
    def joins(self) -> NDArray[np.bool_]:
        """Per label whether it joins (``joined`` or ``replayed``): the labels of ``rows``."""
        joins: NDArray[np.bool_] = ((self.codes == STATUS_CODES[JOINED])
                                    | (self.codes == STATUS_CODES[REPLAYED]))
        return joins


@dataclass
class Blob:
    """Where one stored blob is: its model and first offset, and the ids it holds."""

    model_id: str
    first_offset: int
    event_ids: list[str]
    expires_at: float


class ColumnarPendingStore:
    """The in-memory index and blob cache; subclasses persist blobs and claims.

    Parameters
    ----------
    ttl_s
        How long a prediction waits for its label (a later label is unmatched).
    cache_blobs
        Recently written blobs kept decoded per partition, so a label that
        arrives soon needs no read.
    """

    def __init__(self, ttl_s: float = 7 * 86400.0, cache_blobs: int = 64) -> None:
        self.ttl_s = ttl_s
        self.cache_blobs = cache_blobs
        self._index: dict[int, dict[str, dict[str, int]]] = {}      # partition, model, id
        self._blobs: dict[int, dict[int, Blob]] = {}
        self._cache: dict[int, dict[int, PendingRows]] = {}
        self._next_blob = 0

    # -- the interface the partition step uses -----------------------------------------------
    def put(self, partition: int, model_id: str, rows: PendingRows) -> None:
        """Store one step's predictions of a model; the first stored id wins."""
        if not len(rows):
            return
        index = self._index.get(partition, {}).get(model_id)
        # A model no label has asked for yet has no index: its duplicates are settled when
        # the index is built, the first stored row winning there too.
        if index is not None and (not index.keys().isdisjoint(rows.event_ids)
                                  or len(set(rows.event_ids)) != len(rows)):
            first_rows: dict[str, int] = {}
            for row, event_id in enumerate(rows.event_ids):
                if event_id not in index:
                    first_rows.setdefault(event_id, row)
            if not first_rows:
                return
            rows = rows.take(sorted(first_rows.values()))
        first_offset = int(rows.offsets.min())
        self._persist(partition, model_id, first_offset, rows)
        number = self._add_blob(partition, Blob(model_id, first_offset, rows.event_ids,
                                                 time.time() + self.ttl_s))
        if index is not None:
            base = number << _ROW_BITS
            index.update(zip(rows.event_ids, range(base, base + len(rows)), strict=True))
        cache = self._cache.setdefault(partition, {})
        cache[number] = rows
        while len(cache) > self.cache_blobs:
            del cache[next(iter(cache))]
        self._expire(partition)

    def claim(self, partition: int, model_id: str, event_ids: Sequence[str],
              claimants: NDArray[np.void]) -> Claimed:
        """Claim predictions for labels (one round trip); see the module docstring.

        ``claimants[i]`` (a :data:`CLAIMANT`, see :func:`claimants`) claims ``event_ids[i]``.
        """
        self._expire(partition)
        index = self._model_index(partition, model_id)
        blobs = self._blobs.get(partition, {})
        # Column by column, without a Python step per label: where each label's row is.
        locations = np.fromiter(map(index.get, event_ids, repeat(-1)), dtype=np.int64,
                                count=len(event_ids))
        asking = np.flatnonzero(locations >= 0)
        numbers = locations[asking] >> _ROW_BITS
        wanted = list(dict.fromkeys(numbers.tolist()))
        tables = self._tables(partition, [blobs[n] for n in wanted], wanted)
        readable = [n for n in wanted if tables[n] is not None]
        if len(readable) < len(wanted):
            keep = np.isin(numbers, readable)
            asking, numbers = asking[keep], numbers[keep]
        missing = np.full(len(event_ids), STATUS_CODES[MISSING], dtype=np.uint8)
        if not len(asking):
            return Claimed(missing, None)
        rows = locations[asking] & ((1 << _ROW_BITS) - 1)
        found = self._claim(partition, {n: blobs[n] for n in readable}, numbers, rows,
                            claimants if len(asking) == len(claimants) else claimants[asking])
        codes = missing
        codes[asking] = found
        joined = found != STATUS_CODES[DUPLICATE]
        if not joined.any():
            return Claimed(codes, None)
        numbers, rows = numbers[joined], rows[joined]
        if len(readable) == 1:
            table = tables[readable[0]]
            assert table is not None
            return Claimed(codes, table.take(rows))
        # Blob by blob (label order within each), then back to label order.
        order = np.argsort(numbers, kind="stable")
        starts = np.flatnonzero(np.r_[True, numbers[order][1:] != numbers[order][:-1]])
        parts = []
        for first, stop in zip(starts.tolist(), [*starts[1:].tolist(), len(order)],
                               strict=True):
            table = tables[int(numbers[order[first]])]
            assert table is not None
            parts.append(table.take(rows[order[first:stop]]))
        together = PendingRows.concat(parts)
        return Claimed(codes, together.take(np.argsort(order, kind="stable")))

    def restore(self, partition: int, offset: int | None) -> None:
        """Rebuild a partition's index; drop blobs of predictions at or after ``offset``.

        ``offset`` is the checkpointed next offset of the predictions topic
        (``None``: no checkpoint, every blob of the partition is dropped).
        """
        self.forget(partition)
        for model_id, first_offset, rows, written_at in self._load(partition, offset):
            self._add_blob(partition, Blob(model_id, first_offset, rows.event_ids,
                                           written_at + self.ttl_s))
        self._expire(partition)

    def flush(self) -> None:
        """Write what :meth:`put` stored since the last flush (a no-op where puts write)."""

    def forget(self, partition: int) -> None:
        """Drop a partition's in-memory index (it was revoked or lost)."""
        self._index.pop(partition, None)
        self._blobs.pop(partition, None)
        self._cache.pop(partition, None)

    def pending(self, partition: int) -> int:
        """Predictions stored for a partition (joined ones included until they expire)."""
        return sum(len(blob.event_ids) for blob in self._blobs.get(partition, {}).values())

    # -- helpers -----------------------------------------------------------------------------
    def _model_index(self, partition: int, model_id: str) -> dict[str, int]:
        """``event_id -> blob << 24 | row`` of a model, built when its first label asks."""
        indexes = self._index.setdefault(partition, {})
        index = indexes.get(model_id)
        if index is None:
            index = indexes[model_id] = {}
            for number, blob in self._blobs.get(partition, {}).items():
                if blob.model_id == model_id:
                    base = number << _ROW_BITS
                    for row, event_id in enumerate(blob.event_ids):
                        index.setdefault(event_id, base + row)
        return index

    def _add_blob(self, partition: int, blob: Blob) -> int:
        number = self._next_blob
        self._next_blob += 1
        self._blobs.setdefault(partition, {})[number] = blob
        return number

    def _tables(self, partition: int, blobs: list[Blob],
                numbers: list[int]) -> dict[int, PendingRows | None]:
        cache = self._cache.setdefault(partition, {})
        tables: dict[int, PendingRows | None] = {n: cache.get(n) for n in numbers}
        missing = [(n, blob) for n, blob in zip(numbers, blobs, strict=True)
                   if tables[n] is None]
        if missing:
            for (number, _), rows in zip(missing, self._fetch(partition, [b for _, b in missing]),
                                         strict=True):
                tables[number] = rows
        return tables

    def _expire(self, partition: int) -> None:
        blobs = self._blobs.get(partition, {})
        now = time.time()
        while blobs:
            number, blob = next(iter(blobs.items()))
            if blob.expires_at > now:
                break
            del blobs[number]
            self._cache.get(partition, {}).pop(number, None)
            index = self._index.get(partition, {}).get(blob.model_id)
            if index is None:
                continue
            base = number << _ROW_BITS
            for row, event_id in enumerate(blob.event_ids):
                if index.get(event_id) == base + row:
                    del index[event_id]

    # -- persistence, per backend ------------------------------------------------------------
    def _persist(self, partition: int, model_id: str, first_offset: int,
                 rows: PendingRows) -> None:
        raise NotImplementedError

    def _fetch(self, partition: int, blobs: list[Blob]) -> list[PendingRows | None]:
        raise NotImplementedError

    def _claim(self, partition: int, blobs: dict[int, Blob], numbers: NDArray[np.int64],
               rows: NDArray[np.int64], claimants: NDArray[np.void]) -> NDArray[np.uint8]:
        """Claim row ``rows[i]`` of blob ``numbers[i]`` for ``claimants[i]``; the status codes."""
        raise NotImplementedError

    def _load(self, partition: int,
              offset: int | None) -> Iterable[tuple[str, int, PendingRows, float]]:
        raise NotImplementedError


class MemoryPendingStore(ColumnarPendingStore):
    """The same semantics in memory, for offline replay (one process, nothing survives).

    Examples
    --------
    >>> store = MemoryPendingStore()
    >>> store.put(0, "m", PendingRows(["e1"], ["v1"], np.array([1.0]), np.array([7]), [1],
    ...                               np.array([np.nan]), np.array([np.nan])))
    >>> store.claim(0, "m", ["e1", "e1", "e2"], claimants([3, 3, 4], [0, 1, 0])).statuses
    ['joined', 'duplicate', 'missing']
    """

    def __init__(self, ttl_s: float = float("inf"), cache_blobs: int = 1 << 30) -> None:
        super().__init__(ttl_s, cache_blobs)
        self._claims: dict[tuple[int, int, str], dict[int, tuple[int, int]]] = {}

    def _persist(self, partition: int, model_id: str, first_offset: int,
                 rows: PendingRows) -> None:
        """Nothing to write: the cache holds every blob."""

    def _fetch(self, partition: int, blobs: list[Blob]) -> list[PendingRows | None]:
        return [None for _ in blobs]

    def _claim(self, partition: int, blobs: dict[int, Blob], numbers: NDArray[np.int64],
               rows: NDArray[np.int64], claimants: NDArray[np.void]) -> NDArray[np.uint8]:
        codes = np.empty(len(rows), dtype=np.uint8)
        for i, (number, row, claimant) in enumerate(zip(numbers.tolist(), rows.tolist(),
                                                        claimants.tolist(), strict=True)):
            blob = blobs[number]
            claims = self._claims.setdefault((partition, blob.first_offset, blob.model_id), {})
            previous = claims.get(row)
            if previous is None:
                claims[row] = claimant
            codes[i] = STATUS_CODES[JOINED if previous is None else
                                    REPLAYED if previous == claimant else DUPLICATE]
        return codes

    def _load(self, partition: int,
              offset: int | None) -> Iterable[tuple[str, int, PendingRows, float]]:
        return []


__all__ = ["CLAIMANT", "DUPLICATE", "JOINED", "MISSING", "REPLAYED", "STATUS_CODES", "Blob",
           "Claimed", "ColumnarPendingStore", "JoinStoreError", "MemoryPendingStore",
           "PendingRows", "claimants", "pick"]
