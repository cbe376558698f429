"""Per-segment performance in the label engine: its own monitors, alerts and bounds (no I/O)."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from streams.core.labels import LabelEngine, segment_label
from streams.ingest.decode import PREDICTION, validate_event
from streams.settings import load_settings
from tests.streams.core.test_labels import Harness
from tests.test_schemas import validator

EVENTS = 12_000
CHANGE = 8_000


def segmented(start: int, stop: int, channels: tuple[str, ...] = ("web", "app"),
              ) -> list[dict[str, Any]]:
    return [{"model_id": "m", "model_version": "v1", "event_id": f"e{i}", "ts": 1000.0 + i,
             "features": {"x": float(i % 7)}, "prediction": i % 2,
             "score": 0.8 if i % 2 else 0.2,
             "segments": {"channel": channels[i % len(channels)], "tier": 1 + i % 2}}
            for i in range(start, stop)]


def truth(i: int) -> int:
    """The prediction (i % 2), wrong one time in ten; for web events after CHANGE, half the time."""
    wrong = i % 10 == 0
    if i >= CHANGE and i % 2 == 0 and i % 4 == 0:   # every other web event: flipped
        wrong = True
    return (i % 2) ^ int(wrong)


def label_all(harness: Harness, start: int, stop: int) -> None:
    harness.label([{"model_id": "m", "event_id": f"e{i}", "ts": 1005.0 + i, "label": truth(i)}
                   for i in range(start, stop)], first_offset=start)


def alerts(harness: Harness) -> list[dict[str, Any]]:
    return [alert for step in harness.steps for alert in step.alerts]


def test_a_segment_that_degrades_alerts_by_itself() -> None:
    harness = Harness()
    for start in range(0, EVENTS, 1000):
        harness.predict(segmented(start, start + 1000))
        label_all(harness, start, start + 1000)
    fired = [a for a in alerts(harness) if a["status"] == "firing" and a["kind"] == "performance"]
    by_segment = {a["segment"] for a in fired}
    assert "channel=web" in by_segment
    assert "channel=app" not in by_segment
    web = next(a for a in fired if a["segment"] == "channel=web")
    assert web["dedup_key"].endswith("|channel=web")
    assert web["group_key"] == "m|v1|performance|channel=web"
    assert web["window"]["end_ts"] >= 1000.0 + CHANGE
    for alert in alerts(harness):
        validator("alert").validate(orjson.loads(orjson.dumps(alert)))
    summary = harness.summary()
    segments = summary["segments"]
    assert set(segments) == {"channel=web", "channel=app", "tier=1", "tier=2"}
    assert segments["channel=app"]["window"]["accuracy"] > 0.85
    assert segments["channel=web"]["window"]["accuracy"] < 0.6
    assert summary["segment_overflow"] == 0


def test_segments_beyond_the_limit_are_counted_not_monitored() -> None:
    defaults = load_settings(environ={})
    settings = dataclasses.replace(
        defaults, labels=dataclasses.replace(defaults.labels, max_segments=3))
    harness = Harness()
    harness.settings = settings
    harness.engine = LabelEngine(settings)
    harness.predict(segmented(0, 400, channels=("a", "b", "c", "d")))
    label_all(harness, 0, 400)
    summary = harness.summary()
    # In order of first appearance: event 0 brings channel=a and tier=1, event 1 channel=b.
    assert set(summary["segments"]) == {"channel=a", "tier=1", "channel=b"}
    # Refused: tier=2 (200 events), channel=c and channel=d (100 each).
    assert summary["segment_overflow"] == 400


def test_segment_monitors_survive_a_restart() -> None:
    harness = Harness()
    harness.predict(segmented(0, 3000))
    label_all(harness, 0, 3000)
    before = harness.summary()["segments"]
    state = orjson.loads(orjson.dumps(harness.engine.to_state()))
    harness.engine = LabelEngine.from_state(harness.settings, state)
    assert harness.summary()["segments"] == before
    harness.predict(segmented(3000, 3100))
    label_all(harness, 3000, 3100)
    after = harness.summary()["segments"]
    assert after["channel=web"]["labelled_events"] == before["channel=web"]["labelled_events"] + 50


def test_segment_values_are_named_and_checked() -> None:
    assert segment_label("tier", 2.0) == "tier=2" and segment_label("vip", False) == "vip=false"
    limits = load_settings(environ={}).limits
    event = segmented(0, 1)[0]
    assert validate_event(dict(event), PREDICTION, limits) is None
    event["segments"] = {"channel": ["web"]}
    problem = validate_event(event, PREDICTION, limits)
    assert problem is not None and problem[:2] == ("wrong_type", "segments.channel")
    event["segments"] = {"ratio": float("nan")}
    problem = validate_event(event, PREDICTION, limits)
    assert problem is not None and problem[:2] == ("non_finite", "segments.ratio")


def test_joined_records_are_built_only_when_switched_on() -> None:
    harness = Harness()
    harness.predict(segmented(0, 10))
    label_all(harness, 0, 10)
    assert not any(step.joined for step in harness.steps)

    defaults = load_settings(environ={"DRIFTLINE_JOINED_TOPIC": "true"})
    harness = Harness()
    harness.settings = defaults
    harness.engine = LabelEngine(defaults, partition=4)
    harness.predict(segmented(0, 10))
    label_all(harness, 0, 10)
    harness.label([{"model_id": "m", "event_id": "e3", "ts": 2000.0, "label": 0}],
                  first_offset=100)                # a second label for e3: not joined again
    joined = [record for step in harness.steps for record in step.joined]
    assert [record["event_id"] for record in joined] == [f"e{i}" for i in range(10)]
    check = validator("joined")
    for i, record in enumerate(joined):
        check.validate(orjson.loads(orjson.dumps(record)))
        assert record["label"] == truth(i) and record["prediction"] == i % 2
        assert record["source"] == {"partition": 4, "prediction_offset": i, "label_offset": i}
        assert record["features"] == {"x": float(i % 7)}
        assert record["segments"]["channel"] == ("web", "app")[i % 2]
