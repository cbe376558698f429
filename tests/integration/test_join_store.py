"""The pending-prediction store on a real Redis: first write wins, one claim per label, expiry."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest

from streams.stack.embedded import EmbeddedStack
from streams.state.pending import (
    DUPLICATE,
    JOINED,
    MISSING,
    REPLAYED,
    MemoryPendingStore,
    PendingStore,
    RedisPendingStore,
)

pytestmark = pytest.mark.integration


def _entry(version: str, offset: int) -> bytes:
    return orjson.dumps({"v": version, "ts": 1.0, "y": 1, "o": offset})


def _stores(stack: EmbeddedStack) -> list[PendingStore]:
    return [RedisPendingStore(stack.redis_url, f"join-{uuid.uuid4().hex[:8]}"),
            MemoryPendingStore()]


def test_claims_join_once_replay_as_themselves_and_refuse_duplicates(
        stack: EmbeddedStack) -> None:
    for store in _stores(stack):
        store.put(0, "m", {"e1": _entry("v1", 10), "e2": _entry("v1", 11)})
        store.put(0, "m", {"e1": _entry("v2", 99)})           # redelivered: first write wins
        claims = store.claim(0, "m", [("e1", "5.0"), ("e1", "6.0"), ("e1", "5.0"),
                                      ("e3", "7.0"), ("e2", "8.0")])
        assert [c.status for c in claims] == [JOINED, DUPLICATE, REPLAYED, MISSING, JOINED]
        assert claims[0].prediction == {"v": "v1", "ts": 1.0, "y": 1, "o": 10}
        assert claims[3].prediction is None
        # Another partition or model is another namespace.
        assert store.claim(1, "m", [("e2", "8.0")])[0].status == MISSING
        assert store.claim(0, "other", [("e2", "8.0")])[0].status == MISSING


def test_entries_expire_after_the_ttl(stack: EmbeddedStack) -> None:
    store = RedisPendingStore(stack.redis_url, f"ttl-{uuid.uuid4().hex[:8]}", ttl_s=1.0,
                              bucket_s=1.0)
    store.put(0, "m", {"old": _entry("v1", 1)})
    assert store.claim(0, "m", [("old", "1.0")])[0].status == JOINED
    store.put(0, "m", {"late": _entry("v1", 2)})
    time.sleep(3.2)      # expiry is ttl + one bucket
    assert store.claim(0, "m", [("late", "2.0")])[0].status == MISSING


def test_a_claim_finds_predictions_in_older_buckets(stack: EmbeddedStack) -> None:
    store = RedisPendingStore(stack.redis_url, f"bkt-{uuid.uuid4().hex[:8]}", ttl_s=5.0,
                              bucket_s=1.0)
    store.put(0, "m", {"a": _entry("v1", 1)})
    time.sleep(1.1)
    store.put(0, "m", {"b": _entry("v1", 2)})
    claims = store.claim(0, "m", [("a", "1.0"), ("b", "2.0")])
    assert [c.status for c in claims] == [JOINED, JOINED]
