"""The pending-prediction store on a real Redis (and its in-memory twin).

First stored id wins, one claim per label, a label read again after a crash
claims as itself, blobs written after a checkpoint are dropped on restore,
expiry, and the compact size of a pending prediction.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
import redis

from streams.core.label_columns import pending_rows
from streams.stack.embedded import EmbeddedStack
from streams.state.pending import (
    DUPLICATE,
    JOINED,
    MISSING,
    REPLAYED,
    ColumnarPendingStore,
    MemoryPendingStore,
    PendingRows,
    claimants,
)
from streams.state.pending_redis import RedisPendingStore

pytestmark = pytest.mark.integration


def _rows(ids: list[str], first_offset: int, version: str = "v1") -> PendingRows:
    events = [{"model_version": version, "event_id": event_id, "ts": 100.0 + i,
               "prediction": i % 2, "score": 0.75, "features": {"x": i},
               "segments": {"tier": "gold"} if i == 0 else None}
              for i, event_id in enumerate(ids)]
    for event in events:
        if event["segments"] is None:
            del event["segments"]
    return pending_rows(events, np.arange(first_offset, first_offset + len(ids)),
                        feature_every=1)


def _stores(stack: EmbeddedStack) -> list[ColumnarPendingStore]:
    return [RedisPendingStore(stack.redis_url, f"join-{uuid.uuid4().hex[:8]}", cache_blobs=0),
            MemoryPendingStore()]


def test_claims_join_once_replay_as_themselves_and_refuse_duplicates(
        stack: EmbeddedStack) -> None:
    for store in _stores(stack):
        store.put(0, "m", _rows(["e1", "e2"], 10))
        store.put(0, "m", _rows(["e1"], 99, version="v2"))     # sent again: first stored wins
        claimed = store.claim(0, "m", ["e1", "e1", "e1", "e3", "e2"],
                              claimants([5, 6, 5, 7, 8], [0, 0, 0, 0, 0]))
        assert claimed.statuses == [JOINED, DUPLICATE, REPLAYED, MISSING, JOINED]
        rows = claimed.rows
        assert rows is not None and rows.event_ids == ["e1", "e1", "e2"]
        assert rows.versions == ["v1", "v1", "v1"] and rows.offsets.tolist() == [10, 10, 11]
        assert rows.predictions == [0, 0, 1] and rows.ts.tolist() == [100.0, 100.0, 101.0]
        assert rows.confidence.tolist() == [0.25, 0.25, 0.75]
        assert rows.features == [{"x": 0}, {"x": 0}, {"x": 1}]
        assert rows.segments == [{"tier": "gold"}, {"tier": "gold"}, None]
        # Another partition or model is another namespace.
        assert store.claim(1, "m", ["e2"], claimants([8], [0])).statuses == [MISSING]
        assert store.claim(0, "other", ["e2"], claimants([8], [0])).statuses == [MISSING]


def test_a_label_batch_across_blobs_claims_like_one_label_at_a_time(
        stack: EmbeddedStack) -> None:
    """Rows asked out of order, twice in one batch, in several blobs: as the memory twin."""
    rng = np.random.default_rng(13)
    ids = [f"e{i}" for i in range(3000)]
    asked = rng.choice(len(ids) + 50, 2500).tolist()      # some twice, some never stored
    labels = [f"e{i}" for i in asked]
    answers = []
    for store in _stores(stack):
        for start in range(0, len(ids), 1000):
            store.put(0, "m", _rows(ids[start:start + 1000], start))
        first = store.claim(0, "m", labels, claimants(range(2500), [1] * 2500))
        # Half again, as after a crash (the same claimants), and half from other labels.
        again = store.claim(0, "m", labels[:1000], claimants(
            [*range(500), *range(10_000, 10_500)], [1] * 1000))
        answers.append((first.statuses, again.statuses,
                        first.rows.offsets.tolist() if first.rows else None))
        seen: dict[str, int] = {}
        expected = []
        for position, label in enumerate(labels):
            known = int(label[1:]) < len(ids)
            expected.append(MISSING if not known else DUPLICATE if label in seen else JOINED)
            seen.setdefault(label, position)
        assert first.statuses == expected
        assert again.statuses == [
            MISSING if int(label[1:]) >= len(ids)
            else REPLAYED if position < 500 and seen[label] == position else DUPLICATE
            for position, label in enumerate(labels[:1000])]
    assert answers[0] == answers[1]


def test_claims_a_few_at_a_time_and_across_a_blob_agree(stack: EmbeddedStack) -> None:
    """Small label batches read and write only the span of their rows; the result is the same."""
    ids = [f"e{i}" for i in range(600)]
    rng = np.random.default_rng(5)
    asked = rng.choice(len(ids), 900).tolist()
    answers = []
    for batch in (1, 7, 900):
        store = RedisPendingStore(stack.redis_url, f"span-{uuid.uuid4().hex[:8]}")
        store.put(0, "m", _rows(ids, 0))
        statuses: list[str] = []
        for start in range(0, len(asked), batch):
            part = asked[start:start + batch]
            statuses += store.claim(0, "m", [ids[i] for i in part],
                                    claimants(range(start, start + len(part)), [0] * len(part))
                                    ).statuses
        again = store.claim(0, "m", [ids[i] for i in asked], claimants(range(len(asked)),
                                                                       [0] * len(asked)))
        answers.append((statuses, again.statuses))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0].count(JOINED) == len(set(asked))
    assert set(answers[0][1]) == {REPLAYED, DUPLICATE}


def test_claims_written_in_the_format_before_still_count(stack: EmbeddedStack) -> None:
    """A row claimed in a ``:claims`` hash (``row -> "offset.index"``) replays or duplicates."""
    group = f"legacy-{uuid.uuid4().hex[:8]}"
    store = RedisPendingStore(stack.redis_url, group)
    store.put(0, "m", _rows(["a", "b", "c"], 40))
    store.flush()
    client = redis.Redis.from_url(stack.redis_url)
    client.hset(f"driftline:pending:{group}:0:40:m:claims", mapping={"0": "7.2", "1": "8.0"})
    claimed = store.claim(0, "m", ["a", "b", "c"], claimants([7, 9, 10], [2, 0, 0]))
    assert claimed.statuses == [REPLAYED, DUPLICATE, JOINED]
    assert store.claim(0, "m", ["c"], claimants([11], [0])).statuses == [DUPLICATE]


def test_restore_keeps_checkpointed_blobs_and_drops_later_ones(stack: EmbeddedStack) -> None:
    group = f"restore-{uuid.uuid4().hex[:8]}"
    store = RedisPendingStore(stack.redis_url, group)
    store.put(0, "m", _rows(["a", "b"], 0))
    store.put(0, "m", _rows(["c"], 2))          # written after the checkpoint at offset 2
    store.flush()                               # as a partition step does at its end
    assert store.claim(0, "m", ["a"], claimants([7], [0])).statuses == [JOINED]
    restarted = RedisPendingStore(stack.redis_url, group)
    restarted.restore(0, 2)
    assert restarted.pending(0) == 2
    # The same label again is a replay; "c" is read again from offset 2 and stored again.
    assert restarted.claim(0, "m", ["a", "b", "c"], claimants([7, 8, 9], [0, 0, 0])).statuses == [
        REPLAYED, JOINED, MISSING]
    restarted.put(0, "m", _rows(["c"], 2))
    assert restarted.claim(0, "m", ["c"], claimants([9], [0])).statuses == [JOINED]


def test_blobs_expire_after_the_ttl(stack: EmbeddedStack) -> None:
    store = RedisPendingStore(stack.redis_url, f"ttl-{uuid.uuid4().hex[:8]}", ttl_s=1.0,
                              cache_blobs=0)
    store.put(0, "m", _rows(["old"], 1))
    assert store.claim(0, "m", ["old"], claimants([1], [0])).statuses == [JOINED]
    store.put(0, "m", _rows(["late"], 2))
    store.flush()
    time.sleep(2.2)
    assert store.claim(0, "m", ["late"], claimants([2], [0])).statuses == [MISSING]


def test_a_pending_prediction_without_features_takes_at_most_64_bytes_of_redis(
        stack: EmbeddedStack) -> None:
    store = RedisPendingStore(stack.redis_url, f"size-{uuid.uuid4().hex[:8]}")
    count, step = 100_000, 5000
    for first in range(0, count, step):
        events = [{"model_version": "v1", "event_id": f"credit-risk-{i:09d}",
                   "ts": 1.7e9 + i * 0.01, "prediction": i % 2, "score": (i % 100) / 100,
                   "features": {}} for i in range(first, first + step)]
        store.put(0, "credit-risk", pending_rows(events, np.arange(first, first + step)))
        store.flush()
    per_prediction = store.stored_bytes(0) / count
    assert 30 < per_prediction <= 64, per_prediction
    # Claims take a 12-byte slot per row of a blob with a claim, however many rows are claimed
    # (a hash field per claim took about 87 bytes).
    rng = np.random.default_rng(7)
    claimed = np.sort(rng.choice(count, int(0.7 * count), replace=False))
    for start in range(0, len(claimed), step):
        rows = claimed[start:start + step]
        store.claim(0, "credit-risk", [f"credit-risk-{i:09d}" for i in rows.tolist()],
                    claimants(rows + count, np.zeros(len(rows), dtype=np.int64)))
    claims_per_prediction = store.stored_bytes(0) / count - per_prediction
    assert 12 <= claims_per_prediction <= 14, claims_per_prediction
