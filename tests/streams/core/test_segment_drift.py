"""Drift per segment value through the partition step: alerts, budget, cap, checkpoints."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import orjson
import pytest

from streams.core.partition import PartitionState
from streams.core.segment_drift import DRIFT_SEGMENTS
from streams.state.checkpoint import merge, split
from tests.streams.core.test_bounds import Partition
from tests.test_schemas import validator

REGIONS = 20
CHANGE = 24_000
EVENTS = 40_000
SIZES = {"DRIFTLINE_MONITOR_REFERENCE_SIZE": "500", "DRIFTLINE_MONITOR_WINDOW_SIZE": "500"}


def regional(start: int, stop: int, seed: int = 0, segments: bool = True,
             regions: int = REGIONS) -> list[dict[str, Any]]:
    """Events of model m; region r3's ``amount`` rises by 1 sd from CHANGE on."""
    rng = np.random.default_rng([seed, start])
    amount = rng.normal(100.0, 10.0, stop - start)
    tier = rng.normal(0.0, 1.0, stop - start)
    events = []
    for i, (a, t) in enumerate(zip(amount.tolist(), tier.tolist(), strict=True), start):
        region = i % regions
        if region == 3 and i >= CHANGE:
            a += 10.0
        event: dict[str, Any] = {
            "model_id": "m", "model_version": "v1", "event_id": f"e{i}", "ts": 1000.0 + i,
            "features": {"amount": a, "tier": t}, "prediction": int(t > 0)}
        if segments:
            event["segments"] = {"region": f"r{region}"}
        events.append(event)
    return events


def run(partition: Partition, start: int, stop: int, **kwargs: Any) -> list[dict[str, Any]]:
    alerts = []
    for first in range(start, stop, 1000):
        alerts += partition.send(regional(first, min(first + 1000, stop), **kwargs)).alerts
    return alerts


def test_a_region_that_shifts_fires_data_drift_with_its_segment() -> None:
    partition = Partition(SIZES)
    alerts = run(partition, 0, EVENTS)
    firing = [a for a in alerts if a["status"] == "firing"]
    assert firing, "the shifted region raised no alert"
    assert {(a["kind"], a["segment"], a["feature"]) for a in firing} == {
        ("data_drift", "region=r3", "amount")}
    alert = firing[0]
    assert alert["window"]["end_ts"] >= 1000.0 + CHANGE
    assert alert["dedup_key"] == "m|v1|data_drift|amount|distribution|region=r3"
    assert alert["group_key"] == "m|v1|data_drift|region=r3"
    assert alert["explanation"].startswith("segment region=r3: ")
    validator("alert").validate(orjson.loads(orjson.dumps(alert)))
    # The whole version's budget is shared: half of it stays with its own monitor.
    engine = partition.state.monitors
    monitor = engine.monitor("m", "v1")
    assert monitor is not None
    settings = partition.settings.monitor
    assert monitor.config.false_alarm_events == 2 * settings.false_alarm_events
    segments = engine.segments.monitors(("m", "v1"))
    assert segments is not None and len(segments) == REGIONS
    assert segments.config.false_alarm_events == 2 * REGIONS * settings.false_alarm_events
    # A re-baseline forgets the segments too, and resolves their open alert.
    resolved = engine.rebaseline("m", None, "new normal", 1000.0 + EVENTS)
    assert [(a["status"], a["segment"]) for a in resolved] == [("resolved", "region=r3")]
    assert engine.segments.monitors(("m", "v1")) is None


def test_a_checkpoint_mid_stream_resumes_with_the_same_alerts() -> None:
    def alert_ids(restart_at: int | None) -> list[str]:
        partition = Partition(SIZES)
        alerts = []
        for start, stop in ((0, restart_at or EVENTS), (restart_at or EVENTS, EVENTS)):
            alerts += run(partition, start, stop)
            head, parts = split(orjson.loads(orjson.dumps(partition.state.to_state())))
            partition.state = PartitionState.from_state(partition.settings, 0,
                                                        merge(head, parts.values()), {})
        return [a["alert_id"] for a in alerts]

    uninterrupted = alert_ids(None)
    assert uninterrupted
    assert alert_ids(CHANGE + 3000) == uninterrupted
    assert alert_ids(7000) == uninterrupted


def test_a_version_without_segments_keeps_its_whole_budget(
        caplog: pytest.LogCaptureFixture) -> None:
    partition = Partition(SIZES)
    partition.send(regional(0, 1000, segments=False))
    engine = partition.state.monitors
    monitor = engine.monitor("m", "v1")
    assert monitor is not None and monitor.config == partition.settings.monitor
    with caplog.at_level(logging.WARNING, logger="streams.core.segment_drift"):
        partition.send(regional(1000, 2000))
        partition.send(regional(2000, 3000))
    assert engine.segments.monitors(("m", "v1")) is None
    warned = [r for r in caplog.records if "whole version only" in r.getMessage()]
    assert len(warned) == 1


def test_segment_values_past_the_cap_are_counted() -> None:
    partition = Partition(SIZES, max_drift_segments="4")
    output = partition.send(regional(0, 1000, regions=10))
    segments = partition.state.monitors.segments.monitors(("m", "v1"))
    assert segments is not None
    assert segments.segments == ["region=r0", "region=r1", "region=r2", "region=r3"]
    assert output.limited[DRIFT_SEGMENTS] == 600


def test_no_segment_monitors_when_the_cap_is_zero() -> None:
    partition = Partition(SIZES, max_drift_segments="0")
    output = partition.send(regional(0, 1000))
    engine = partition.state.monitors
    assert engine.segments.monitors(("m", "v1")) is None
    monitor = engine.monitor("m", "v1")
    assert monitor is not None and monitor.config == partition.settings.monitor
    assert DRIFT_SEGMENTS not in output.limited
