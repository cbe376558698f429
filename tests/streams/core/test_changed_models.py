"""The engines name the models whose state changed: an incremental checkpoint writes only those.

An incremental checkpoint is correct only if every change of a model's state is
named. The property test keeps a store the way Redis keeps a checkpoint (the
head plus one entry per model, updated with the changed models only) and
checks after every step that it holds exactly the partition's whole state.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from streams.core.partition import PartitionState
from streams.core.step import PartitionStep
from streams.offline.replay import Line
from streams.settings import Settings, load_settings
from streams.state.checkpoint import merge, split
from streams.state.pending import MemoryPendingStore


class Stream:
    """One partition's three topics, each message numbered by its own offset."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.offsets: dict[str, int] = {}

    def message(self, role: str, value: Any) -> Line:
        topic = self.settings.topics.name(role)
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        return Line(topic, offset, orjson.dumps(value))


def predictions(model: str, start: int, n: int, version: str = "v1") -> list[dict[str, Any]]:
    return [{"model_id": model, "model_version": version, "event_id": f"{model}-{i}",
             "ts": 1000.0 + i, "features": {"x": float(i % 7), "c": "ab"[i % 2]},
             "prediction": i % 2, "score": 0.7 if i % 2 else 0.3} for i in range(start, start + n)]


def labels(model: str, ids: range, ts: float | None = None) -> list[dict[str, Any]]:
    return [{"model_id": model, "event_id": f"{model}-{i}",
             "ts": 1005.0 + i if ts is None else ts, "label": i % 3 % 2} for i in ids]


def settings() -> Settings:
    base = load_settings(environ={"DRIFTLINE_REFERENCE_SIZE": "200",
                                  "DRIFTLINE_WINDOW_SIZE": "100"})
    # Few early labels and a short wait: eviction and expiry touch other models' state.
    return replace(base, labels=replace(base.labels, max_early_labels=30, early_wait_s=50.0))


def normal(state: dict[str, Any]) -> tuple[Any, Any]:
    """Whole state, independent of the order models are listed in."""
    head, models = split(orjson.loads(orjson.dumps(state)))
    return head, models


def test_a_step_names_the_models_it_touched_and_only_those() -> None:
    config = settings()
    state = PartitionState.fresh(config, 0)
    step = PartitionStep(config, MemoryPendingStore())
    stream = Stream(config)
    step(state, [stream.message("predictions", predictions("a", 0, 50) + predictions("b", 0, 50))])
    assert state.take_changed() == {"a", "b"}
    assert state.take_changed() == set()
    step(state, [stream.message("predictions", predictions("a", 50, 10))])
    assert state.take_changed() == {"a"}
    step(state, [stream.message("labels", labels("b", range(0, 10)))])
    assert state.take_changed() == {"b"}
    step(state, [stream.message("control", {"command": "rebaseline", "model_id": "a"})])
    assert state.take_changed() == {"a"}
    assert set(state.to_state({"b"})["labels"]["counts"]) == {"b"}
    assert [m["model_id"] for m in state.to_state({"b"})["models"]] == ["b"]


def test_a_store_updated_with_the_changed_models_only_holds_the_whole_state() -> None:
    config = settings()
    state = PartitionState.fresh(config, 0)
    step = PartitionStep(config, MemoryPendingStore())
    stream = Stream(config)
    head: dict[str, Any] = {}
    stored: dict[str, dict[str, Any]] = {}
    batches = []
    for i in range(12):
        start = i * 40
        batch = [stream.message("predictions", predictions("a", start, 40)),
                 stream.message("labels", labels("a", range(start, start + 40, 3)))]
        if i % 3 == 0:
            batch.append(stream.message("predictions", predictions("b", start, 40,
                                                                   "v2" if i > 5 else "v1")))
        if i == 7:
            batch.append(stream.message("control", {"command": "rebaseline", "model_id": "b"}))
        if i == 9:      # a model seen once, idle afterwards
            batch.append(stream.message("predictions", predictions("c", 0, 5)))
        batches.append(batch)
    # Early labels of a model never predicted, 40 of at most 30: evicted within the step.
    batches.insert(4, [stream.message("labels", labels("ghost", range(40), ts=1000.0))])
    # Early labels of "a", too old to wait long, evict more of ghost's in a step that does not
    # touch ghost; then they expire in a step of b's predictions only.
    batches.insert(5, [stream.message("labels", labels("a", range(6000, 6005), ts=1000.0))])
    batches.insert(6, [stream.message("predictions", predictions("b", 900, 10))])
    for batch in batches:
        step(state, batch)
        changed = state.take_changed()
        new_head, models = split(orjson.loads(orjson.dumps(state.to_state(changed))))
        head = new_head
        for model_id in changed:
            if model_id in models:
                stored[model_id] = models[model_id]
            else:
                stored.pop(model_id, None)
        assert normal(merge(head, stored.values())) == normal(state.to_state())
    assert {"a", "b", "c", "ghost"} <= set(stored)
    restored = PartitionState.from_state(config, 0, merge(head, stored.values()), state.offsets)
    assert normal(restored.to_state()) == normal(state.to_state())
