"""The worker on the real Tansu broker and real Redis."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from streams.settings import Settings
from streams.topics import ensure_topics
from tests.contract import validate

from .conftest import as_arrays, events, produce, read_until, wait_for

pytestmark = pytest.mark.integration


def test_drifted_feature_produces_a_contract_alert(settings: Settings, start_worker: Any) -> None:
    ensure_topics(settings)
    running = start_worker(settings)
    reference = events(1000)
    drifted = events(1000, start=1000, shift=1.5)
    produce(settings, as_arrays(reference + drifted[:100]))
    produce(settings, [b'{"model_id":"m1","ts":1,"features":{"x":1e400}}'])   # key m1
    produce(settings, as_arrays(drifted[100:]))

    records = read_until(settings, ["alerts"], lambda r: any(
        a["feature"] == "x" and a["kind"] == "data_drift" for _, a in r))
    alerts = [a for _, a in records]
    x_alerts = [a for a in alerts if a["feature"] == "x" and a["kind"] == "data_drift"]
    assert len(x_alerts) == 1, alerts
    alert = x_alerts[0]
    validate(alert, "alert")
    assert alert["status"] == "firing"
    # Window 0 covers events 1000..1499: end_ts is the ts of its last event.
    assert alert["window"]["end_ts"] == drifted[499]["ts"]
    assert alert["window"]["events"] == 500
    assert "mean" in alert["explanation"]
    assert not [a for a in alerts if a["kind"] == "data_drift" and a["feature"] == "c"]
    # The unparseable 1e400 message is counted against model m1's data quality.
    quality = read_until(settings, ["alerts"], lambda r: any(
        a["detector"] == "rejected_values" for _, a in r))
    rejected = [a for _, a in quality if a["detector"] == "rejected_values"]
    assert [(a["kind"], a["statistic"], a["window"]["index"]) for a in rejected] == [
        ("data_quality", 1.0, 0)]
    assert running.worker.stats.events == 2000


def test_malformed_messages_go_to_the_dead_letter_topic(settings: Settings,
                                                        start_worker: Any) -> None:
    ensure_topics(settings)
    running = start_worker(settings)
    good = events(30)
    bad_row = dict(events(1, start=99)[0], features={"x": "high", "c": "a"})
    mixed = [good[20], {"model_id": "m1"}, 42, bad_row, good[21]]
    messages = [
        *[orjson.dumps(e) for e in good[:20]],          # schema is inferred from these
        b"{not json",
        b'{"model_id":"m1","model_version":"v1","event_id":"n","ts":1,"features":{"x":NaN},'
        b'"prediction":1}',
        orjson.dumps(dict(good[0], features="not an object")),
        orjson.dumps({k: v for k, v in good[0].items() if k != "event_id"}),
        b'{"model_id":"m1","model_version":"v1","event_id":"big","ts":1,"features":{"blob":"'
        + b"x" * 5_000_000 + b'"},"prediction":1}',
        orjson.dumps(mixed),
        *[orjson.dumps(e) for e in good[22:]],
    ]
    produce(settings, messages)
    expected_dead = 5 + 3   # five bad messages, three bad elements of the mixed array

    records = read_until(settings, ["deadletter"], lambda r: len(r) >= expected_dead)
    dead = [d for _, d in records]
    assert len(dead) == expected_dead, dead
    for record in dead:
        validate(record, "deadletter")
        assert record["source"]["topic"] == settings.topics.name("predictions")
        assert record["reason"]
    errors = sorted(d["error"] for d in dead)
    assert errors == sorted(["invalid_json", "invalid_json", "wrong_type", "missing_field",
                             "oversized", "missing_field", "not_an_object", "wrong_type"])
    oversized = next(d for d in dead if d["error"] == "oversized")
    assert oversized["payload_bytes"] > 5_000_000 and oversized["payload_truncated"]
    by_index = {d["event_index"]: d for d in dead if "event_index" in d}
    assert set(by_index) == {1, 2}
    row = next(d for d in dead if d.get("path") == "features.x")
    assert orjson.loads(base64.b64decode(row["payload_b64"]))["event_id"] == \
        bad_row["event_id"]
    assert "expected a number" in row["reason"]
    # Every good event was processed, including the two around the bad ones in the array.
    assert wait_for(lambda: sum(
        e.monitor("m1", "v1").events for e in running.worker.engines().values()
        if e.monitor("m1", "v1")) == 30)
