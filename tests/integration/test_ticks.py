"""Ticks on the real stack: a silent model's window closes, no_data fires and resolves,
and a replay of the same predictions with the published ticks writes the same alerts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from streams.core.silence import TickSettings
from streams.offline.replay import replay
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from tests.integration.conftest import (
    RunningWorker,
    as_arrays,
    events,
    produce,
    read_until,
    wait_for,
)

pytestmark = pytest.mark.integration


def partition_records(settings: Settings, topic: str, partition: int) -> list[tuple[int, bytes]]:
    """Every (offset, value) of one partition, in offset order (read until 3 s of nothing)."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": f"dump-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, partition, 0)])
    records: list[tuple[int, bytes]] = []
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < 3.0:
            batch = consumer.consume(500, 0.5)
            for message in batch:
                value, offset = message.value(), message.offset()
                if message.error() is None and value is not None and offset is not None:
                    records.append((offset, value))
                    quiet_since = time.monotonic()
    finally:
        consumer.close()
    return sorted(records)


def no_data(records: list[tuple[str, Any]]) -> list[str]:
    return [alert["status"] for _, alert in records if alert["kind"] == "no_data"]


def test_a_silent_model_closes_its_window_and_raises_no_data_then_replays_the_same(
        settings: Settings, start_worker: Callable[[Settings], RunningWorker],
        tmp_path: Path) -> None:
    settings = settings.with_overrides(ticks=TickSettings(
        interval_s=0.5, idle_close_s=3.0, min_window_events=50, no_data_after_s=6.0))
    ensure_topics(settings)        # before the producer, which would create them otherwise
    running = start_worker(settings)
    worker = running.worker
    produce(settings, as_arrays(events(1300)))          # reference 1,000 + 300 in a window
    assert wait_for(lambda: worker.stats.events == 1300, 60), worker.stats
    engines = worker.engines()
    owner = next(p for p, engine in engines.items() if engine.monitor("m1", "v1"))
    monitor = engines[owner].monitor("m1", "v1")
    assert monitor is not None and monitor.window_events == 300
    # Silent: after idle_close_s of ticks the 300-event window closes ...
    assert wait_for(lambda: monitor.window_events == 0, 20), worker.stats
    assert worker.stats.windows == 1
    # ... and after no_data_after_s the model raises no_data.
    fired = read_until(settings, ["alerts"], lambda r: no_data(r) == ["firing"], 30)
    assert no_data(fired) == ["firing"]
    alert = next(a for _, a in fired if a["kind"] == "no_data")
    assert alert["model_id"] == "m1" and alert["statistic"] >= 6.0
    assert alert["window"]["end_ts"] == 1_700_000_000.0 + 1299
    # Data returns: resolved.
    produce(settings, as_arrays(events(10, start=5000)))
    everything = read_until(settings, ["alerts"],
                            lambda r: no_data(r) == ["firing", "resolved"], 30)
    assert no_data(everything) == ["firing", "resolved"]
    assert worker.stats.ticks > 10
    running.close()
    live = [alert for _, alert in everything if alert["model_id"] == "m1"]

    # The same predictions with the ticks the worker published, replayed offline.
    predictions = partition_records(settings, settings.topics.name("predictions"), owner)
    control = partition_records(settings, settings.topics.name("control"), owner)
    assert [offset for offset, _ in predictions] == list(range(len(predictions)))
    assert all(orjson.loads(value)["command"] == "tick" for _, value in control)
    (tmp_path / "p.jsonl").write_bytes(b"".join(value + b"\n" for _, value in predictions))
    (tmp_path / "c.jsonl").write_bytes(b"".join(value + b"\n" for _, value in control))
    stats = replay(settings, tmp_path / "p.jsonl", tmp_path / "alerts.jsonl",
                   control=tmp_path / "c.jsonl", progress=None)
    replayed = [orjson.loads(line)
                for line in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]

    def identity(alert: dict[str, Any]) -> tuple[Any, ...]:
        return alert["alert_id"], alert["kind"], alert["status"], alert["window"]

    assert [identity(a) for a in replayed] == [identity(a) for a in live]
    assert stats.windows == 1 and stats.events == 1310
