"""Bounded partition state: each limit's refusal or count, its reason and its metric (no I/O)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.core.bounds import IDLE, TOO_MANY_MODELS, VERSIONS_PER_MODEL
from streams.core.engine import CATEGORIES, FEATURES_PER_MODEL
from streams.core.partition import PartitionState, StepOutput
from streams.core.step import STEP_BYTES, PartitionStep
from streams.offline.reference import (
    ReferenceFileError,
    build_reference,
    load_reference,
    write_reference,
)
from streams.runtime.metrics import WorkerMetrics
from streams.settings import Settings, load_settings
from streams.state.checkpoint import merge, split
from streams.state.pending import MemoryPendingStore
from tests.messages import Record as Message

TOPICS = ("predictions", "labels", "control")


def events(model: str, n: int, ts: float, version: str = "v1", shift: float = 0.0,
           seed: int = 0, features: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, (n, features))
    return [{"model_id": model, "model_version": version, "event_id": f"{model}-{version}-{ts}-{i}",
             "ts": ts + i, "features": {f"f{j}": float(x[i, j]) for j in range(features)},
             "prediction": int(x[i, 0] > 0), "score": 0.5}
            for i in range(n)]


class Partition:
    """One partition's state and step, fed messages as the worker feeds them."""

    def __init__(self, environ: dict[str, str] | None = None, **limits: str) -> None:
        self.settings = settings(environ, **limits)
        self.state = PartitionState.fresh(self.settings, 0)
        self.step = PartitionStep(self.settings, MemoryPendingStore(), TOPICS)
        self.offset = 0

    def send(self, *groups: list[dict[str, Any]], topic: str = "predictions") -> StepOutput:
        messages = []
        for group in groups:
            messages.append(Message(topic, self.offset, orjson.dumps(group),
                                    group[0]["model_id"].encode()))
            self.offset += 1
        return self.step(self.state, messages)


def settings(environ: dict[str, str] | None = None, **limits: str) -> Settings:
    environ = {"DRIFTLINE_MONITOR_REFERENCE_SIZE": "100", "DRIFTLINE_MONITOR_WINDOW_SIZE": "100",
               **(environ or {})}
    environ |= {f"DRIFTLINE_LIMITS_{key.upper()}": value for key, value in limits.items()}
    return load_settings(environ=environ)


def exported(output: StepOutput) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The worker's counters after it has counted ``output``'s retirements and limits."""
    metrics = WorkerMetrics()
    metrics.observe_bounds(output.retired, output.limited)
    text = generate_latest(metrics.registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_a_model_past_max_models_per_partition_is_dead_lettered_with_the_reason() -> None:
    partition = Partition(max_models_per_partition="2")
    output = partition.send(events("m1", 5, 0.0), events("m2", 5, 0.0), events("m3", 5, 0.0))
    assert sorted(partition.state.monitors.models) == [("m1", "v1"), ("m2", "v1")]
    refused = [record for _, record in output.dead_letters]
    assert [r["error"] for r in refused] == [TOO_MANY_MODELS] * 5
    assert "model_id 'm3' not monitored: this partition already monitors 2 models " \
           "(limits.max_models_per_partition)" in refused[0]["reason"]
    assert [orjson.loads(base64.b64decode(r["payload_b64"]))["event_id"]
            for r in refused] == [f"m3-v1-0.0-{i}" for i in range(5)]
    assert refused[2]["source"]["offset"] == 2
    # Refused events are dead letters, not events: no label-side state, nothing pending.
    assert output.events == 10
    assert set(partition.state.labels.summary()) == {"m1", "m2"}
    assert partition.step.store.claim(0, "m3", ["m3-v1-0.0-0"], ["0.0"]).rows is None
    # A model already monitored keeps being monitored; a new version of it is no new model.
    again = partition.send(events("m1", 5, 10.0), events("m2", 5, 10.0, version="v2"))
    assert again.dead_letters == [] and len(partition.state.monitors.models) == 3


def test_a_version_past_max_versions_per_model_retires_the_idlest_and_resolves_its_alerts(
        ) -> None:
    partition = Partition(max_versions_per_model="2")
    partition.send(events("m", 100, 0.0, "v1"))
    fired = partition.send(events("m", 100, 100.0, "v1", shift=3.0, seed=1))
    firing = [a for a in fired.alerts if a["status"] == "firing"]
    assert firing
    partition.send(events("m", 10, 300.0, "v2"))
    output = partition.send(events("m", 10, 400.0, "v3"))
    assert sorted(partition.state.monitors.models) == [("m", "v2"), ("m", "v3")]
    assert [(r.model_version, r.reason) for r in output.retired] == [("v1", VERSIONS_PER_MODEL)]
    resolved = [a for a in output.alerts if a["status"] == "resolved"]
    assert {a["resolves"] for a in resolved} == {a["alert_id"] for a in firing}
    assert all("limits.max_versions_per_model (2)" in a["explanation"] for a in resolved)
    assert output.dead_letters == []
    assert exported(output)[("driftline_model_versions_retired_total",
                             (("reason", VERSIONS_PER_MODEL),))] == 1


def test_idle_versions_expire_by_event_time_and_start_afresh() -> None:
    partition = Partition(idle_expiry_s="1000")
    partition.send(events("m1", 120, 0.0), events("m2", 5, 0.0))
    assert partition.state.monitors.monitor("m1", "v1").events == 120  # type: ignore[union-attr]
    # One model far ahead (a skewed clock) is not enough to make the others idle ...
    ahead = partition.send(events("m3", 5, 50_000.0))
    assert ahead.retired == [] and len(partition.state.monitors.models) == 3
    # ... a second model's time confirms it: the partition's clock passes m1's and m2's last
    # event by more than idle_expiry_s.
    output = partition.send(events("m2", 5, 2000.0))
    assert [(r.model_id, r.reason) for r in output.retired] == [("m1", IDLE)]
    assert output.retired[0].at_ts == 119.0 + 1000.0
    assert sorted(partition.state.monitors.models) == [("m2", "v1"), ("m3", "v1")]
    assert "m1" not in partition.state.labels.summary()
    assert exported(output)[("driftline_model_versions_retired_total",
                             (("reason", IDLE),))] == 1
    # Its next events start a new monitor, with a new reference.
    partition.send(events("m1", 5, 2100.0))
    assert partition.state.monitors.monitor("m1", "v1").events == 5  # type: ignore[union-attr]


def test_expiry_resumes_from_a_checkpoint_as_if_uninterrupted() -> None:
    def run(restart: bool) -> list[tuple[str, str, str, float]]:
        partition = Partition(idle_expiry_s="1000")
        retired = []
        for step, ts in enumerate((0.0, 600.0, 1200.0, 1800.0, 2400.0)):
            models = ["m1", "m2", "m3", *(["m0"] if step == 0 else []),
                      *(["m4"] if step == 1 else [])]
            retired += partition.send(*[events(m, 3, ts) for m in models]).retired
            if restart:
                # Through a checkpoint's layout: each version's time travels with its model.
                head, parts = split(orjson.loads(orjson.dumps(partition.state.to_state())))
                assert "last" not in head["clock"]
                saved = merge(head, parts.values())
                partition.state = PartitionState.from_state(partition.settings, 0, saved, {})
        return [(r.model_id, r.model_version, r.reason, r.at_ts) for r in retired]

    assert run(restart=True) == run(restart=False) == [
        ("m0", "v1", IDLE, 2.0 + 1000.0), ("m4", "v1", IDLE, 602.0 + 1000.0)]


def test_features_past_max_features_per_model_are_counted_and_not_monitored() -> None:
    partition = Partition(max_features_per_model="3")
    output = partition.send(events("m", 5, 0.0, features=5))
    assert output.dead_letters == [] and output.events == 5
    assert partition.state.monitors.monitor("m", "v1").schema == {  # type: ignore[union-attr]
        "f0": "numeric", "f1": "numeric", "f2": "numeric"}
    assert output.limited == {FEATURES_PER_MODEL: 2}
    assert exported(output)[("driftline_limit_hits_total",
                             (("limit", FEATURES_PER_MODEL),))] == 2


def test_a_step_decodes_at_most_max_step_bytes_at_once_with_the_same_result() -> None:
    messages = [events(f"m{i % 3}", 60, 100.0 * i, seed=i) for i in range(12)]
    size = len(orjson.dumps(messages[0]))
    cut, whole = Partition(max_step_bytes=str(3 * size)), Partition()
    output, reference = cut.send(*messages), whole.send(*messages)
    assert output.limited[STEP_BYTES] >= 3 and reference.limited == {}
    assert exported(output)[("driftline_limit_hits_total", (("limit", STEP_BYTES),))] \
        == output.limited[STEP_BYTES]
    # The same events reach the same monitors and windows (sums of floats may differ in
    # their last digit with the batching, as in any run).
    assert (output.events, output.windows) == (reference.events, reference.windows) == (720, 3)
    for state in (cut.state, whole.state):
        assert {key: state.monitors.monitor(*key).events  # type: ignore[union-attr]
                for key in state.monitors.models} == {(f"m{i}", "v1"): 240 for i in range(3)}
    assert cut.state.labels.summary() == whole.state.labels.summary()


def test_data_quality_counts_of_unknown_keys_are_bounded() -> None:
    engine = Partition(max_models_per_partition="2").state.monitors
    for i in range(1000):
        engine.note_rejected(f"nobody-{i}", "x")
    assert len(engine._unattributed) == 2


def test_a_full_category_tally_is_counted_at_each_window() -> None:
    def categorical(n: int, start: int, distinct: int) -> list[dict[str, Any]]:
        return [{"model_id": "m", "model_version": "v1", "event_id": f"e{start + i}",
                 "ts": float(start + i), "features": {"c": f"id-{(start + i) % distinct}"},
                 "prediction": 0} for i in range(n)]

    capped = Partition({"DRIFTLINE_MONITOR_MAX_TRACKED_CATEGORIES": "64"})
    roomy = Partition()
    for partition in (capped, roomy):
        partition.send(categorical(100, 0, 80))         # a reference of 80 categories
    output = capped.send(categorical(100, 100, 80))     # one window closes
    assert output.windows == 1 and output.limited == {CATEGORIES: 1}
    assert exported(output)[("driftline_limit_hits_total", (("limit", CATEGORIES),))] == 1
    assert roomy.send(categorical(100, 100, 80)).limited == {}


def test_a_reference_file_built_before_max_tracked_categories_still_loads(
        tmp_path: Path) -> None:
    current = settings()
    rows = [{"model_id": "m", "model_version": "v1", "event_id": f"e{i}", "ts": float(i),
             "features": {"x": float(i % 7), "c": "abc"[i % 3]}, "prediction": i % 2}
            for i in range(150)]
    train = tmp_path / "train.jsonl"
    train.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    reference = build_reference(train, "m", None, current)
    del reference["monitor"]["config"]["max_tracked_categories"]
    write_reference(reference, tmp_path / "old.json")
    assert load_reference(tmp_path / "old.json", current)["model_id"] == "m"
    other = load_settings(environ={"DRIFTLINE_MONITOR_REFERENCE_SIZE": "100",
                                   "DRIFTLINE_MONITOR_WINDOW_SIZE": "100",
                                   "DRIFTLINE_MONITOR_MAX_TRACKED_CATEGORIES": "100"})
    with pytest.raises(ReferenceFileError, match="max_tracked_categories=10000"):
        load_reference(tmp_path / "old.json", other)
