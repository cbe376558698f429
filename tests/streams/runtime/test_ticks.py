"""The tick publisher: one tick per owned partition per interval, none while catching up."""

from __future__ import annotations

from typing import Any

import orjson

from streams.core.partition import PartitionState
from streams.core.silence import TickSettings
from streams.runtime.ticks import TickPublisher
from streams.settings import load_settings


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, dict[str, Any]]] = []

    def produce(self, topic: str, value: bytes, *, partition: int, on_delivery: Any) -> None:
        self.sent.append((topic, partition, orjson.loads(value)))


def publisher(interval_s: float, now: list[float]) -> tuple[TickPublisher, Producer]:
    settings = load_settings(environ={}).with_overrides(ticks=TickSettings(interval_s=interval_s))
    states = {p: PartitionState.fresh(settings, p) for p in (3, 1)}
    states[1].offsets["driftline.predictions"] = 42
    producer = Producer()
    return TickPublisher(settings, producer, lambda: states, clock=lambda: now[0]), producer


def test_one_tick_per_owned_partition_per_interval() -> None:
    now = [1000.0]
    ticks, producer = publisher(5.0, now)
    assert ticks.publish_due() == 2
    now[0] = 1004.9
    assert ticks.publish_due() == 0
    now[0] = 1005.0
    assert ticks.publish_due() == 2
    assert [(topic, partition, tick["predictions_offset"], tick["ts"])
            for topic, partition, tick in producer.sent] == [
        ("driftline.control", 1, 42, 1000.0), ("driftline.control", 3, 0, 1000.0),
        ("driftline.control", 1, 42, 1005.0), ("driftline.control", 3, 0, 1005.0)]
    assert ticks.published == 4


def test_no_tick_while_catching_up_or_when_disabled() -> None:
    now = [1000.0]
    ticks, producer = publisher(5.0, now)
    assert ticks.publish_due(catching_up=True) == 0
    assert ticks.publish_due() == 2          # the interval starts at the first tick sent
    off, quiet = publisher(0.0, now)
    assert off.publish_due() == 0 and quiet.sent == []
