"""The worker on the real Tansu broker and real Redis."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import orjson
import pytest

from streams.runtime import outputs as outputs_module
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.state.hotview import HotView
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
    # Window 0 covers events 1000..1499; the alert fires at its end or, from the
    # sequential test, at the block where evidence crossed the threshold inside it.
    assert drifted[0]["ts"] <= alert["window"]["end_ts"] <= drifted[499]["ts"]
    assert 0 < alert["window"]["events"] <= 500
    assert alert["window"]["end_ts"] - alert["window"]["start_ts"] == alert["window"]["events"] - 1
    assert "reference" in alert["explanation"] and "sd" in alert["explanation"]
    assert not [a for a in alerts if a["kind"] == "data_drift" and a["feature"] == "c"]
    # The unparseable 1e400 message is counted against model m1's data quality.
    # It may share a grouped event with other data-quality conditions: read every member.
    quality = read_until(settings, ["alerts"], lambda r: any(
        m["detector"] == "rejected_values" for _, a in r for m in a.get("features") or [a]))
    rejected = [(a, m) for _, a in quality for m in a.get("features") or [a]
                if m["detector"] == "rejected_values"]
    assert [(a["kind"], m["statistic"], a["window"]["index"]) for a, m in rejected] == [
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


def test_rebaseline_resolves_open_alerts_and_learns_a_new_reference(
        settings: Settings, start_worker: Any) -> None:
    from streams.ui.cli import main

    ensure_topics(settings)
    running = start_worker(settings)
    produce(settings, as_arrays(events(1000) + events(1000, start=1000, shift=1.5)))
    def is_x_drift(alert: dict[str, Any]) -> bool:
        return alert["feature"] == "x" and alert["kind"] == "data_drift"

    fired = read_until(settings, ["alerts"], lambda r: any(
        is_x_drift(a) and a["status"] == "firing" for _, a in r))
    firing = next(a for _, a in fired if is_x_drift(a) and a["status"] == "firing")

    env = {"DRIFTLINE_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "DRIFTLINE_TOPIC_PREFIX": settings.topics.prefix}
    import os
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert main(["rebaseline", "--model", "m1", "--reason", "new normal"]) == 0
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value
    records = read_until(settings, ["alerts"], lambda r: any(
        a["status"] == "resolved" and a.get("resolves") == firing["alert_id"] for _, a in r))
    resolved = [a for _, a in records if a.get("resolves") == firing["alert_id"]]
    assert len(resolved) == 1 and "re-baselined: new normal" in resolved[0]["explanation"]
    validate(resolved[0], "alert")
    # The shifted data is the new normal: 1000 events of reference, then 2000 more, no alert.
    produce(settings, as_arrays(events(3000, start=2000, shift=1.5)))
    assert wait_for(lambda: sum(e.monitor("m1", "v1").events for e in
                                running.worker.engines().values() if e.monitor("m1", "v1"))
                    == 3000)
    after = read_until(settings, ["alerts"], lambda r: False, timeout_s=3)
    assert [a for _, a in after if a["status"] == "firing" and is_x_drift(a)] == [firing]


def test_live_view_tail_and_status_show_the_drift(settings: Settings, start_worker: Any) -> None:
    import io
    import threading

    from streams.state.hotview import HotView
    from streams.ui.console import status, tail

    ensure_topics(settings)
    start_worker(settings)
    produce(settings, as_arrays(events(1000) + events(1000, start=1000, shift=1.5)))
    view = HotView(settings.redis_url, settings.group_id)
    assert wait_for(lambda: len(view.series("m1", "v1")) == 2)
    points = view.series("m1", "v1")
    assert [p["index"] for p in points] == [0, 1]
    assert points[0]["scores"]["data_drift:x"] >= 1.0 > points[0]["scores"]["data_drift:c"]
    assert "data_drift:x" in points[0]["drifted"]
    assert any(a["feature"] == "x" for a in view.alerts())

    out = io.StringIO()
    assert tail(settings, True, threading.Event(), out=out, limit=1) == 1
    assert "FIRING" in out.getvalue()
    out = io.StringIO()
    assert status(settings, out=out) == 1
    line = out.getvalue().splitlines()[1]
    assert line.split()[:4] == ["m1", "v1", "2,000", "2"] and "data_drift:x" in line

    # Once labels join, status adds a line per model: coverage, joined, delay.
    predictions = events(1000) + events(1000, start=1000, shift=1.5)
    produce(settings, as_arrays([{"model_id": "m1", "event_id": e["event_id"],
                                  "ts": e["ts"] + 5.0, "label": e["prediction"]}
                                 for e in predictions[:1500]]), topic_role="labels")
    assert wait_for(lambda: view.labels().get("m1", {}).get("joined") == 1500)
    out = io.StringIO()
    status(settings, out=out)
    lines = out.getvalue().splitlines()
    labels_line = lines[lines.index(next(x for x in lines if x.startswith("labels"))) + 1]
    assert labels_line.split()[:4] == ["m1", "75.0%", "1,500", "≤10"], labels_line


def test_topics_with_different_partition_counts_are_refused(settings: Settings) -> None:
    """Labels join only within one partition number: a 1-partition labels topic next to a
    2-partition predictions topic would leave most labels waiting forever."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from streams.errors import StackError

    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    labels = settings.topics.name("labels")
    admin.create_topics([NewTopic(labels, 1, 1)])[labels].result(15)
    with pytest.raises(StackError, match=r"\(2 partitions\) and .*labels \(1 partitions\)"):
        ensure_topics(settings)


def test_a_version_the_worker_stops_monitoring_leaves_the_live_view(
        settings: Settings, start_worker: Any) -> None:
    settings = settings.with_overrides(limits=replace(settings.limits,
                                                      max_versions_per_model=1))
    ensure_topics(settings)
    start_worker(settings)
    hot = HotView(settings.redis_url, settings.group_id)

    def versions() -> list[str]:
        return [m["model_version"] for m in hot.models()]

    produce(settings, as_arrays(events(1500)))          # v1: its reference and a window
    assert wait_for(lambda: versions() == ["v1"]), versions()
    assert hot.series("m1", "v1") and hot.details("m1", "v1")
    # v2 takes v1's place (limits.max_versions_per_model 1): v1's keys go with it.
    produce(settings, as_arrays([dict(e, model_version="v2") for e in events(1500, 1500)]))
    assert wait_for(lambda: versions() == ["v2"]), versions()
    assert hot.series("m1", "v1") == [] and hot.details("m1", "v1") == {}


def test_catching_up_the_live_view_still_gets_every_window_once_the_input_is_drained(
        settings: Settings, start_worker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small batches: the worker catches up on full batches, whose live-view writes wait
    # (here for good: only a batch that is not full, or an empty poll, writes).
    monkeypatch.setattr(outputs_module, "LIVE_VIEW_INTERVAL_S", 3600.0)
    settings = settings.with_overrides(worker=replace(settings.worker, batch_size=500))
    ensure_topics(settings)
    hot = HotView(settings.redis_url, settings.group_id)
    produce(settings, [orjson.dumps(e) for e in events(12_000)])     # one event a message
    running = start_worker(settings)
    assert wait_for(lambda: running.worker.stats.events == 12_000), running.worker.stats
    # The reference (1,000 events), then 22 windows of 500: each one a point of the series.
    assert wait_for(lambda: len(hot.series("m1", "v1")) == 22), len(hot.series("m1", "v1"))
    assert [p["index"] for p in hot.series("m1", "v1")] == list(range(22))
    # Full batches, read while catching up.
    assert running.worker.stats.batches >= 12_000 // settings.worker.step_events(1)
