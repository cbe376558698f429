"""The users' own topics on the real broker: the same alerts as driftline's envelope.

The same mean-shift stream goes (a) to driftline's own topics, (b) to topics in a foreign
JSON layout (model id in the key, version in a header, time in ms), (c) as
Schema-Registry-framed Avro predictions and JSON Schema labels (confluent-kafka's own
serializers; the registry is its built-in ``mock://`` one, the only one available here,
shared in-process by :func:`streams.ingest.mapping.registry_client`). A worker per case;
the alert sets (kind, feature, window, status) must be equal.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from detectors.synthetic import ScenarioSpec, iter_chunks
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.settings_inputs import parse_inputs
from tests import foreign

from .conftest import read_until, wait_for

pytestmark = pytest.mark.integration

EVENTS = 4000


def _create(settings: Settings, names: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    for future in admin.create_topics([NewTopic(name, settings.topics.partitions, 1)
                                       for name in names]).values():
        future.result(15)


def _publish(settings: Settings, records: list[tuple[str, bytes, Any, int | None]]) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5})
    key = foreign.MODEL_ID.encode()
    for topic, value, headers, ts_ms in records:
        extra = {"timestamp": ts_ms} if ts_ms is not None else {}
        producer.produce(topic, value, key=key, headers=headers, **extra)
        producer.poll(0)
    assert producer.flush(30) == 0


def _case(settings: Settings, layout: str) -> Settings:
    tag = uuid.uuid4().hex[:6]
    predictions, labels = f"shop{tag}.scored", f"shop{tag}.outcomes"
    mapped = settings
    if layout != "envelope":
        entries = ([foreign.json_prediction_input(predictions),
                    foreign.json_label_input(labels)] if layout == "json"
                   else [foreign.avro_prediction_input(predictions),
                         foreign.json_label_input(labels, "jsonschema")])
        _create(settings, [predictions, labels])
        mapped = settings.with_overrides(inputs=parse_inputs(entries, {}))
    ensure_topics(mapped)
    spec = ScenarioSpec("mean_shift", events=EVENTS, seed=3, label_delay_events=200)
    avro, labels_js = foreign.avro_serializer(), foreign.jsonschema_serializer()
    records: list[tuple[str, bytes, Any, int | None]] = []
    for chunk, due in iter_chunks(spec, chunk_size=500):
        for event in chunk:
            ts_ms = round(event["ts"] * 1000)
            if layout == "envelope":
                records.append((settings.topics.name("predictions"), orjson.dumps(event), None,
                                None))
            elif layout == "json":
                value, headers = foreign.json_prediction(event)
                records.append((predictions, value, headers, ts_ms))
            else:
                records.append((predictions, foreign.avro_prediction(avro, predictions, event),
                                None, ts_ms))
        for label in due:
            if layout == "envelope":
                records.append((settings.topics.name("labels"), orjson.dumps(label), None, None))
            elif layout == "json":
                records.append((labels, foreign.json_label(label), None, None))
            else:
                records.append((labels, foreign.jsonschema_label(labels_js, labels, label),
                                None, None))
    _publish(settings, records)
    return mapped


def _alert_set(alerts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((a["kind"], a.get("feature"), a["window"].get("index"), a["status"])
                  for a in alerts)


def test_foreign_json_and_avro_topics_give_the_alerts_of_the_envelope(
        settings: Settings, start_worker: Any) -> None:
    import dataclasses

    cases: dict[str, tuple[Settings, Any]] = {}
    for layout in ("envelope", "json", "avro"):
        tag = uuid.uuid4().hex[:8]
        own = dataclasses.replace(settings, group_id=f"mapped-{tag}", topics=dataclasses.replace(
            settings.topics, prefix=f"m{tag}."))
        case = _case(own, layout)
        cases[layout] = (case, start_worker(case))
    for layout, (_, running) in cases.items():
        assert wait_for(lambda r=running: r.worker.stats.labels >= EVENTS
                        and r.worker.stats.events >= EVENTS, 90), (layout, running.worker.stats)
    sets = {}
    for layout, (case, _) in cases.items():
        # Alerts are published before the stats count the step: a short read catches them.
        records = read_until(case, ["alerts", "deadletter"], lambda r: False, timeout_s=3)
        assert [d for role, d in records if "deadletter" in role] == [], layout
        sets[layout] = _alert_set([a for role, a in records if "alerts" in role])
    assert any(kind == "data_drift" and feature == "credit_score"
               for kind, feature, _, _ in sets["envelope"]), sets
    assert sets["json"] == sets["envelope"] and sets["avro"] == sets["envelope"], sets
