"""Checkpoints in the real Redis: claimed and fenced by epoch, incremental per model."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
import redis

from streams.core.partition import PartitionState
from streams.core.step import PartitionStep
from streams.runtime.checkpointing import Checkpointer
from streams.runtime.metrics import WorkerMetrics
from streams.settings import Settings
from streams.state.checkpoint import FENCED, MISSING, WRITTEN, CheckpointStore
from streams.state.pending import MemoryPendingStore
from tests.streams.core.test_changed_models import Stream, predictions

pytestmark = pytest.mark.integration


def engine(*models: str, events: int = 1) -> dict[str, Any]:
    """A minimal engine state: one monitor entry per model (opaque to the store)."""
    return {"version": 1, "rebaselined": [],
            "models": [{"model_id": m, "model_version": "v1", "monitor": {"events": events},
                        "policy": {}} for m in models], "rate_limits": []}


def test_a_stale_owner_cannot_overwrite_the_new_owners_checkpoint(settings: Settings) -> None:
    store = CheckpointStore(settings.redis_url, settings.group_id)
    old = store.claim("s", 0)
    assert store.write("s", 0, {"t": 250}, engine("a"), epoch=old, seq=1).status == WRITTEN
    new = store.claim("s", 0)
    assert new > old
    assert store.write("s", 0, {"t": 500}, engine("a", events=2), epoch=new, seq=1).status \
        == WRITTEN
    # The paused worker wakes up and writes what it had: refused, the newer state stays.
    refused = store.write("s", 0, {"t": 300}, engine("a", events=9), epoch=old, seq=2)
    assert (refused.status, refused.owner) == (FENCED, new)
    checkpoint = store.load("s", 0)
    assert checkpoint is not None
    assert checkpoint.offsets == {"t": 500}
    assert checkpoint.engine["models"][0]["monitor"] == {"events": 2}
    assert store.owners("s", [0, 1]) == {0: new, 1: None}


def test_a_late_copy_of_an_earlier_write_is_ignored(settings: Settings) -> None:
    """A write that timed out may reach Redis after the owner's next one: it must not win."""
    store = CheckpointStore(settings.redis_url, settings.group_id)
    epoch = store.claim("s", 0)
    store.write("s", 0, {"t": 10}, engine("a"), epoch=epoch, seq=1)
    store.write("s", 0, {"t": 20}, engine("a", events=2), epoch=epoch, seq=2)
    late = store.write("s", 0, {"t": 10}, engine("a"), epoch=epoch, seq=1)
    assert late.status == WRITTEN                # already there, as far as its writer knows
    checkpoint = store.load("s", 0)
    assert checkpoint is not None and checkpoint.offsets == {"t": 20}


def test_increments_update_and_delete_models_and_need_a_whole_checkpoint_first(
        settings: Settings) -> None:
    store = CheckpointStore(settings.redis_url, settings.group_id)
    epoch = store.claim("s", 0)
    assert store.write("s", 0, {"t": 1}, engine("a"), epoch=epoch, seq=1,
                       changed={"a"}).status == MISSING
    assert store.write("s", 0, {"t": 1}, engine("a", "b", "c"), epoch=epoch, seq=2).models == 3
    # "b" changed, "c" is gone (changed, without state): "a" is left as it was.
    written = store.write("s", 0, {"t": 2}, engine("b", events=5), epoch=epoch, seq=3,
                          changed={"b", "c"})
    assert (written.status, written.models) == (WRITTEN, 2)
    checkpoint = store.load("s", 0)
    assert checkpoint is not None and checkpoint.offsets == {"t": 2}
    assert [(m["model_id"], m["monitor"]) for m in checkpoint.engine["models"]] == [
        ("a", {"events": 1}), ("b", {"events": 5})]


def test_a_version_2_checkpoint_is_read_and_replaced_whole(settings: Settings) -> None:
    store = CheckpointStore(settings.redis_url, settings.group_id)
    client = redis.Redis.from_url(settings.redis_url)
    client.set(store.key("s", 0), orjson.dumps({
        "version": 2, "scope": "s", "partition": 0, "offsets": {"t": 7},
        "engine": engine("a"), "written_at": time.time()}))
    checkpoint = store.load("s", 0)
    assert checkpoint is not None and not checkpoint.incremental
    assert checkpoint.offsets == {"t": 7} and checkpoint.engine == engine("a")
    epoch = store.claim("s", 0)
    assert store.write("s", 0, {"t": 8}, engine("a"), epoch=epoch, seq=1,
                       changed={"a"}).status == MISSING
    assert store.write("s", 0, {"t": 8}, engine("a"), epoch=epoch, seq=2).status == WRITTEN
    assert client.type(store.key("s", 0)) == b"hash"


def test_a_claim_after_redis_lost_its_data_is_still_above_earlier_claims(
        settings: Settings) -> None:
    store = CheckpointStore(settings.redis_url, settings.group_id)
    zombie = store.claim("s", 0)
    redis.Redis.from_url(settings.redis_url).delete(store.epoch_key("s", 0))
    time.sleep(0.002)
    assert store.claim("s", 0) > zombie


def test_checkpoint_cost_follows_the_busy_models_not_the_idle_ones(settings: Settings) -> None:
    idle = 1000
    state = PartitionState.fresh(settings, 0)
    step = PartitionStep(settings, MemoryPendingStore())
    stream = Stream(settings)
    step(state, [stream.message("predictions", [e for m in range(first, first + 100)
                                                for e in predictions(f"idle-{m}", 0, 10)])
                 for first in range(0, idle, 100)])
    store = CheckpointStore(settings.redis_url, settings.group_id)
    checkpoints = Checkpointer(settings, store, WorkerMetrics())
    assert checkpoints.claim(0) is None
    started = time.perf_counter()
    first = checkpoints.write(state)
    whole_s = time.perf_counter() - started
    assert (first.status, first.models) == (WRITTEN, idle)
    step(state, [stream.message("predictions", predictions("busy", 0, 500))])
    started = time.perf_counter()
    second = checkpoints.write(state)
    increment_s = time.perf_counter() - started
    assert (second.status, second.models) == (WRITTEN, 1)
    assert second.size < first.size / 100
    print(f"checkpoint of {idle} idle models + 1 busy: whole {whole_s * 1000:.0f} ms, "
          f"then {increment_s * 1000:.1f} ms per interval")
    restored = store.load(settings.topics.name("predictions"), 0)
    assert restored is not None and len(restored.engine["models"]) == idle + 1

