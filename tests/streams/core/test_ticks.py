"""Ticks in the partition step: idle windows close, no_data fires and resolves (no I/O)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from streams.core.partition import PartitionState, StepOutput
from streams.core.step import PartitionStep
from streams.errors import SettingsError
from streams.settings import Settings, load_settings
from streams.state.pending import MemoryPendingStore
from tests.messages import Record

SETTINGS = load_settings(environ={
    "DRIFTLINE_MONITOR_REFERENCE_SIZE": "1000", "DRIFTLINE_MONITOR_WINDOW_SIZE": "500",
    "DRIFTLINE_TICKS_IDLE_CLOSE_S": "60", "DRIFTLINE_TICKS_NO_DATA_AFTER_S": "120",
    "DRIFTLINE_TICKS_MIN_WINDOW_EVENTS": "100"})
PREDICTIONS = SETTINGS.topics.name("predictions")
CONTROL = SETTINGS.topics.name("control")
T0 = 1_800_000_000.0


class Partition:
    """A partition's state and step, fed records with consecutive offsets per topic."""

    def __init__(self, settings: Settings = SETTINGS, seed: int = 0) -> None:
        self.settings = settings
        self.state = PartitionState.fresh(settings, 0)
        self.step = PartitionStep(settings, MemoryPendingStore())
        self.offsets = {PREDICTIONS: 0, CONTROL: 0}
        self.rng = np.random.default_rng(seed)

    def record(self, topic: str, value: bytes) -> Record:
        record = Record(topic, self.offsets[topic], value)
        self.offsets[topic] += 1
        return record

    def events(self, model_id: str, n: int, start_ts: float) -> list[Record]:
        x = self.rng.normal(size=n)
        return [self.record(PREDICTIONS, orjson.dumps({
            "model_id": model_id, "model_version": "v1", "event_id": f"{model_id}-{start_ts + i}",
            "ts": start_ts + i, "features": {"x": float(x[i])}, "prediction": int(x[i] > 0)}))
            for i in range(n)]

    def tick(self, ts: float, predictions_offset: int | None = None) -> Record:
        command: dict[str, Any] = {"command": "tick", "ts": ts, "partition": 0}
        command["predictions_offset"] = (self.offsets[PREDICTIONS] if predictions_offset is None
                                         else predictions_offset)
        return self.record(CONTROL, orjson.dumps(command))

    def __call__(self, records: list[Record]) -> StepOutput:
        return self.step(self.state, records)


def kinds(output: StepOutput) -> list[tuple[str, str, str]]:
    return [(a["model_id"], a["kind"], a["status"]) for a in output.alerts]


def test_a_silent_model_closes_its_window_then_fires_and_resolves_no_data() -> None:
    partition = Partition()
    assert partition(partition.events("m", 1300, T0)).windows == 0
    assert partition.state.monitors.monitor("m", "v1").window_events == 300
    first = partition([partition.tick(T0 + 2000)])           # quiet from here
    assert (first.ticks, first.windows, first.alerts) == (1, 0, [])
    early = partition([partition.tick(T0 + 2059)])
    assert early.windows == 0
    closed = partition([partition.tick(T0 + 2060)])
    assert closed.windows == 1 and [r[2].events for r in closed.reports] == [300]
    assert partition.state.monitors.monitor("m", "v1").window_events == 0
    assert partition([partition.tick(T0 + 2090)]).windows == 0     # closed once
    fired = partition([partition.tick(T0 + 2120)])
    assert kinds(fired) == [("m", "no_data", "firing")]
    alert = fired.alerts[0]
    assert (alert["statistic"], alert["threshold"], alert["quiet_since"]) == (120.0, 120.0,
                                                                            T0 + 2000)
    assert alert["window"]["end_ts"] == T0 + 1299            # the last prediction's ts
    assert kinds(partition([partition.tick(T0 + 3000)])) == []     # fires once
    back = partition(partition.events("m", 10, T0 + 5000))
    assert kinds(back) == [("m", "no_data", "resolved")]
    assert back.alerts[0]["resolves"] == alert["alert_id"]
    assert kinds(partition([partition.tick(T0 + 3100)])) == []


def test_a_model_that_keeps_sending_is_not_quiet() -> None:
    partition = Partition()
    partition(partition.events("busy", 1100, T0) + partition.events("quiet", 1100, T0))
    for second in range(0, 300, 30):
        output = partition(partition.events("busy", 5, T0 + 2000 + second)
                           + [partition.tick(T0 + 2000 + second)])
        assert all(model_id == "quiet" for model_id, *_ in output.reports)
    monitors = partition.state.monitors
    assert monitors.monitor("busy", "v1").window_events == 150
    assert monitors.monitor("quiet", "v1").window_events == 0


def test_silence_counts_from_the_first_tick_past_the_last_prediction() -> None:
    """Where the consumer reads a tick does not matter: its predictions_offset does."""
    late, early = Partition(seed=1), Partition(seed=1)
    events = late.events("m", 1200, T0)
    early.offsets[PREDICTIONS] = 1200
    # A tick sent when 1,100 predictions had been read: read after 1,100 of them, or 1,200.
    early(events[:1100] + [early.tick(T0 + 1000, predictions_offset=1100)] + events[1100:])
    late(events + [late.tick(T0 + 1000, predictions_offset=1100)])
    for partition in (late, early):
        partition([partition.tick(T0 + 1010)])
        output = partition([partition.tick(T0 + 1200)])
        assert kinds(output) == [("m", "no_data", "firing")]
        assert output.alerts[0]["quiet_since"] == T0 + 1010
    assert late.state.to_state() == early.state.to_state()


def test_a_window_below_the_minimum_is_dropped_and_counted() -> None:
    partition = Partition()
    partition(partition.events("m", 1050, T0))
    partition([partition.tick(T0 + 2000)])
    output = partition([partition.tick(T0 + 2100)])
    assert (output.windows, output.reports, output.limited["min_window_events"]) == (0, [], 1)
    assert partition.state.monitors.monitor("m", "v1").window_events == 0


def test_checkpoint_round_trip_mid_silence_gives_the_same_alerts() -> None:
    partition = Partition(seed=2)
    partition(partition.events("m", 1300, T0))
    partition([partition.tick(T0 + 2000)])
    saved = orjson.loads(orjson.dumps(partition.state.to_state()))
    restored = Partition(seed=2)
    restored.state = PartitionState.from_state(SETTINGS, 0, saved, partition.state.offsets)
    restored.offsets = dict(partition.offsets)
    outputs = []
    for run in (partition, restored):
        closed = run([run.tick(T0 + 2060)])
        fired = run([run.tick(T0 + 2130)])
        resumed = run(run.events("m", 5, T0 + 9000))
        outputs.append(([r[2].events for r in closed.reports],
                        [(a["alert_id"], a["status"]) for a in fired.alerts + resumed.alerts]))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] == [300] and [s for _, s in outputs[0][1]] == ["firing", "resolved"]


def test_an_open_no_data_alert_survives_a_checkpoint() -> None:
    partition = Partition()
    partition(partition.events("m", 200, T0))
    partition([partition.tick(T0)])
    fired = partition([partition.tick(T0 + 500)])
    saved = orjson.loads(orjson.dumps(partition.state.to_state()))
    restored = PartitionState.from_state(SETTINGS, 0, saved, partition.state.offsets)
    partition.state = restored
    assert kinds(partition([partition.tick(T0 + 900)])) == []       # not fired twice
    back = partition(partition.events("m", 1, T0 + 9000))
    assert [a.get("resolves") for a in back.alerts] == [fired.alerts[0]["alert_id"]]


def test_a_retired_model_resolves_its_no_data_alert() -> None:
    partition = Partition()
    partition(partition.events("m", 200, T0))
    partition([partition.tick(T0)])
    assert kinds(partition([partition.tick(T0 + 500)])) == [("m", "no_data", "firing")]
    # Re-baselined, the model has no version left: its alert resolves with the last one.
    resolved = partition.state.monitors.rebaseline("m", None, "operator", T0 + 600)
    assert [(a["kind"], a["status"], a["explanation"]) for a in resolved] == [
        ("no_data", "resolved", "operator")]
    assert kinds(partition([partition.tick(T0 + 900)])) == []


def test_malformed_ticks_are_dead_lettered() -> None:
    partition = Partition()
    output = partition([partition.record(CONTROL, b'{"command":"tick"}'),
                        partition.record(CONTROL, b'{"command":"tick","ts":"soon"}'),
                        partition.record(CONTROL, b'{"command":"tick","ts":1,'
                                                  b'"predictions_offset":-1}'),
                        partition.record(CONTROL, b'{"command":"rebaseline"}')])
    reasons = [record["reason"] for _, record in output.dead_letters]
    assert reasons == ["missing field ts",
                       "ts: expected a finite number of epoch seconds, got str 'soon'",
                       "predictions_offset: expected an integer >= 0, got int -1",
                       "missing field model_id"]
    assert output.ticks == 0


def test_a_tick_without_offset_is_past_every_prediction_read() -> None:
    partition = Partition()
    partition(partition.events("m", 200, T0))
    partition([partition.record(CONTROL, orjson.dumps({"command": "tick", "ts": T0}))])
    output = partition([partition.record(CONTROL, orjson.dumps({"command": "tick",
                                                                "ts": T0 + 120}))])
    assert kinds(output) == [("m", "no_data", "firing")]


def test_tick_settings_are_validated() -> None:
    with pytest.raises(SettingsError, match=r"ticks.min_window_events: expected an integer "
                                            r">= 50, got 20"):
        load_settings(environ={"DRIFTLINE_TICKS_MIN_WINDOW_EVENTS": "20"})
    with pytest.raises(SettingsError, match=r"ticks.interval_s: expected a number of seconds "
                                            r">= 0 \(0 = no ticks\), got -1"):
        load_settings(environ={"DRIFTLINE_TICKS_INTERVAL_S": "-1"})
