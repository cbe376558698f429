"""With many models in a partition, a step grows so each monitor gets a large group."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from detectors.synthetic import ScenarioSpec, iter_chunks
from streams.core.engine import MonitorEngine
from streams.core.partition import PartitionState
from streams.core.step import PartitionStep
from streams.offline.replay import Line
from streams.settings import load_settings
from streams.state.pending import MemoryPendingStore


def _group_sizes(monkeypatch: pytest.MonkeyPatch, models: int, group_events: int) -> list[int]:
    settings = load_settings(environ={"DRIFTLINE_WORKER_BATCH_SIZE": "2000",
                                      "DRIFTLINE_WORKER_GROUP_EVENTS": str(group_events)})
    topic = settings.topics.name("predictions")
    stream, _ = next(iter_chunks(ScenarioSpec("stationary", 800 * models, seed=1),
                                 chunk_size=800 * models))
    for i, event in enumerate(stream):
        event["model_id"] = f"model-{i % models}"
    messages = [Line(topic, n, orjson.dumps(stream[s:s + 50]))
                for n, s in enumerate(range(0, len(stream), 50))]
    state = PartitionState.fresh(settings, 0)
    step = PartitionStep(settings, MemoryPendingStore())
    step(state, messages[:len(messages) // 2])        # every model now has a monitor
    sizes: list[int] = []
    process_groups = MonitorEngine.process_groups

    def record(self: MonitorEngine, groups: dict[Any, list[Any]], *rest: Any) -> Any:
        sizes.extend(len(group) for group in groups.values())
        return process_groups(self, groups, *rest)

    monkeypatch.setattr(MonitorEngine, "process_groups", record)
    output = step(state, messages[len(messages) // 2:])
    assert output.events == 400 * models
    return sizes


def test_a_step_of_many_models_hands_each_monitor_one_group(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 10 models x 400 events in one step of 4,000 events: batch_size 2,000 alone would cut
    # it in two runs of 200 events per model; group_events 1,000 lets the run hold it all.
    assert sorted(_group_sizes(monkeypatch, 10, 1000)) == [400] * 10


def test_group_events_of_one_keeps_runs_of_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _group_sizes(monkeypatch, 10, 1)
    assert sorted(sizes) == [200] * 20
