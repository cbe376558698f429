"""Mapped input topics: sources, dead letters, and the same alerts as the envelope (no broker).

The Schema Registry here is confluent-kafka's built-in ``mock://`` registry (the only one
available); the values are real wire format, written by confluent-kafka's own serializers.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from detectors.synthetic import ScenarioSpec, iter_chunks
from streams.core.partition import PartitionState
from streams.core.step import PartitionStep
from streams.ingest.mapping import UNDECODABLE, RecordMapper, input_topics
from streams.settings import LimitSettings, Settings, load_settings
from streams.settings_inputs import parse_inputs
from streams.state.pending import MemoryPendingStore
from tests import foreign
from tests.messages import Record


def mapper(entry: dict[str, Any]) -> RecordMapper:
    return RecordMapper(parse_inputs([entry], {})[0], LimitSettings())


PREDICTIONS = {"topic": "shop", "role": "predictions", "fields": {
    "model_id": {"from": "key"}, "model_version": {"header": "v"}, "event_id": "$.id",
    "features": {"x": "$.in.x", "c": "$.in['c.d']"}, "prediction": "$.out[0]",
    "segments": {"region": "$.region"}}}


def test_each_source_path_constant_key_header_and_record_timestamp() -> None:
    value = orjson.dumps({"id": 7, "in": {"x": 1.5, "c.d": "red"}, "out": [1, 0]})
    decoded = mapper(PREDICTIONS).map(Record("shop", 0, value, b"churn", [("v", b"3")],
                                             1_700_000_000_500))
    assert decoded.rejected == []
    assert decoded.events == [{"model_id": "churn", "model_version": "3", "event_id": "7",
                               "features": {"x": 1.5, "c": "red"}, "segments": {},
                               "prediction": 1, "ts": 1_700_000_000.5}]
    # The last header of a name wins; a feature not in the record is a missing value.
    decoded = mapper(PREDICTIONS).map(Record("shop", 0, orjson.dumps({"id": "a", "out": [2],
                                                                      "region": "eu"}),
                                             b"churn", [("v", b"1"), ("v", b"2")], 0))
    event = decoded.events[0]
    assert (event["model_version"], event["features"], event["segments"]) == (
        "2", {"x": None, "c": None}, {"region": "eu"})


def test_ts_units_rfc3339_and_constants() -> None:
    entry = {"topic": "t", "role": "labels", "ts_unit": "ms", "fields": {
        "model_id": {"const": "m"}, "event_id": "id", "ts": "at", "label": {"const": 1}}}
    assert mapper(entry).map(Record("t", 0, b'{"id":"e","at":1700000000250}')).events[0][
        "ts"] == 1_700_000_000.25
    iso = mapper(entry).map(Record("t", 0, b'{"id":"e","at":"2026-01-01T00:00:00Z"}'))
    assert iso.events[0]["ts"] == 1_767_225_600.0
    # Without a mapped ts and without a record timestamp there is no time: refused, named.
    del entry["fields"]["ts"]  # type: ignore[attr-defined]
    refused = mapper(entry).map(Record("t", 0, b'{"id":"e"}')).rejected[0]
    assert (refused.error, refused.path) == ("missing_field", "ts")


def test_bad_records_are_refused_with_a_reason_that_names_the_source() -> None:
    m = mapper(PREDICTIONS)
    headers = [("v", b"1")]
    cases = {
        b"{oops": ("invalid_json", None),
        b'"text"': ("not_an_object", "(record)"),
        b'{"in": {}, "out": [1]}': ("missing_field", "event_id"),
        b'{"id": "e", "in": {}}': ("missing_field", "prediction"),
        b'{"id": "e", "out": [[1]]}': ("wrong_type", "prediction"),
        b'{"id": "e", "out": [1], "region": [1]}': ("wrong_type", "segments.region"),
    }
    for value, (error, path) in cases.items():
        decoded = m.map(Record("shop", 0, value, b"churn", headers, 1_000))
        assert not decoded.events, value
        refused = decoded.rejected[0]
        assert (refused.error, refused.path, refused.payload) == (error, path, value)
    reason = m.map(Record("shop", 0, b'{"id": "e", "out": [[1]]}', b"churn", headers,
                          1_000)).rejected[0].reason
    assert reason.endswith("(mapped from $.out[0])"), reason
    # No key: the model id is missing, and the reason says where it was looked for.
    missing = m.map(Record("shop", 0, b'{"id": "e", "out": [1]}', None, headers, 1_000))
    assert missing.rejected[0].reason == "missing field model_id: the record's key is not in " \
        "the record"


def test_schema_registry_values_and_what_is_not_one() -> None:
    m = mapper(foreign.avro_prediction_input("shop.avro"))
    spec = ScenarioSpec("mean_shift", events=3, seed=1)
    event = next(iter_chunks(spec))[0][0]
    framed = foreign.avro_prediction(foreign.avro_serializer(), "shop.avro", event)
    decoded = m.map(Record("shop.avro", 0, framed, None, None, 1_767_225_600_000))
    assert decoded.rejected == [] and decoded.events[0]["event_id"] == "0"
    assert decoded.events[0]["features"]["age"] == float(event["features"]["age"])
    for value in (b'{"plain": "json"}', b"\x00\x00\x00\x7f\x7f" + framed[5:], framed[:8]):
        refused = m.map(Record("shop.avro", 1, value, None, None, 1)).rejected[0]
        assert refused.error == UNDECODABLE and refused.payload == value, refused


def test_a_step_turns_a_bad_foreign_record_into_a_dead_letter() -> None:
    settings = Settings(inputs=parse_inputs([PREDICTIONS], {}))
    step = PartitionStep(settings, MemoryPendingStore())
    good = orjson.dumps({"id": "e1", "in": {"x": 1.0, "c.d": "a"}, "out": [1]})
    output = step(PartitionState.fresh(settings, 0), [
        Record("shop", 5, b"{oops", b"churn", [("v", b"1")], 1_000),
        Record("shop", 6, good, b"churn", [("v", b"1")], 1_000)])
    assert output.events == 1 and output.messages == {"shop": 2}
    [(key, dead)] = output.dead_letters
    assert (key, dead["error"], dead["source"]["topic"], dead["source"]["offset"]) == (
        b"churn", "invalid_json", "shop", 5)


def test_input_topics_replace_the_envelope_topic_of_their_role() -> None:
    settings = Settings(inputs=parse_inputs([foreign.json_label_input("shop.labels")], {}))
    assert input_topics(settings) == ("driftline.predictions", "shop.labels",
                                      "driftline.control")


def _layouts() -> dict[str, tuple[Settings, list[Record]]]:
    """The same mean-shift stream in the envelope, foreign JSON, and Avro + JSON Schema."""
    base = load_settings(environ={"DRIFTLINE_REFERENCE_SIZE": "1000",
                                  "DRIFTLINE_WINDOW_SIZE": "500"})
    spec = ScenarioSpec("mean_shift", events=4000, seed=3, label_delay_events=200)
    envelope: list[Record] = []
    json_layout: list[Record] = []
    avro_layout: list[Record] = []
    avro, labels_js = foreign.avro_serializer(), foreign.jsonschema_serializer()
    key = foreign.MODEL_ID.encode()
    for predictions, labels in iter_chunks(spec, chunk_size=250):
        for event in predictions:
            ts_ms = round(event["ts"] * 1000)
            envelope.append(Record("driftline.predictions", len(envelope),
                                   orjson.dumps(event), key))
            value, headers = foreign.json_prediction(event)
            json_layout.append(Record("shop.json", len(json_layout), value, key, headers, ts_ms))
            avro_layout.append(Record("shop.avro", len(avro_layout),
                                      foreign.avro_prediction(avro, "shop.avro", event),
                                      key, None, ts_ms))
        for label in labels:
            envelope.append(Record("driftline.labels", len(envelope), orjson.dumps(label), key))
            json_layout.append(Record("shop.labels", len(json_layout),
                                      foreign.json_label(label), key))
            avro_layout.append(Record("shop.labels-js", len(avro_layout),
                                      foreign.jsonschema_label(labels_js, "shop.labels-js",
                                                               label), key))
    json_settings = base.with_overrides(inputs=parse_inputs(
        [foreign.json_prediction_input("shop.json"), foreign.json_label_input("shop.labels")],
        {}))
    avro_settings = base.with_overrides(inputs=parse_inputs(
        [foreign.avro_prediction_input("shop.avro"),
         foreign.json_label_input("shop.labels-js", "jsonschema")], {}))
    return {"envelope": (base, envelope), "json": (json_settings, json_layout),
            "avro": (avro_settings, avro_layout)}


def alert_set(alerts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((a["kind"], a.get("feature"), a["window"].get("index"), a["status"])
                  for a in alerts)


@pytest.mark.parametrize("layout", ["json", "avro"])
def test_a_foreign_layout_gives_the_alerts_of_the_envelope(layout: str) -> None:
    outputs = {}
    layouts = _layouts()
    for name in ("envelope", layout):
        settings, records = layouts[name]
        step = PartitionStep(settings, MemoryPendingStore())
        state = PartitionState.fresh(settings, 0)
        alerts, dead, labels = [], [], 0
        for start in range(0, len(records), 300):
            output = step(state, records[start:start + 300])
            alerts += output.alerts
            dead += output.dead_letters
            labels += output.labels
        outputs[name] = (alert_set(alerts), dead, labels,
                         msgspec.json.encode(state.labels.summary()))
    expected, dead, labels, _ = outputs["envelope"]
    assert dead == [] and labels == 4000
    # The planted shift is found; the foreign layouts must find exactly the same.
    assert any(kind == "data_drift" and feature == "credit_score"
               for kind, feature, _, _ in expected)
    assert outputs[layout][:3] == (expected, [], 4000)
