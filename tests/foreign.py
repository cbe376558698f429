"""Driftline envelope events re-written in "foreign" layouts, and the mappings that read them.

Shared by the unit tests of the mapping and the end-to-end test on the broker.

- JSON layout: ``{"request": {"id", "at_ms", "inputs": {features}}, "response": {"class",
  "proba"}}``; the model id is the record key, the version a ``model-version`` header, the
  time in milliseconds.
- Avro layout: one flat record per prediction (every feature a field of its own, an Avro
  ``long`` id), no time in the body (the record's timestamp stands in), model id and version
  constants; written with confluent-kafka's ``AvroSerializer`` (magic byte, schema id, body).
- Labels: JSON ``{"request_id", "outcome"}`` keyed by model id; the Avro case's labels are
  Schema-Registry-framed JSON Schema values.
"""

from __future__ import annotations

from typing import Any

import orjson
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from detectors.synthetic import FEATURES
from streams.ingest.mapping import registry_client

# confluent-kafka's built-in registry: the only one available here. It lives in one client
# object; registry_client shares that object per URL within the process.
REGISTRY_URL = "mock://driftline-tests"
MODEL_ID, MODEL_VERSION = "credit-risk", "v1"


def json_prediction_input(topic: str) -> dict[str, Any]:
    return {"topic": topic, "role": "predictions", "format": "json", "ts_unit": "ms",
            "fields": {"model_id": {"from": "key"}, "model_version": {"header": "model-version"},
                       "event_id": "$.request.id", "ts": "$.request.at_ms",
                       "features": "$.request.inputs", "prediction": "response.class",
                       "score": "$.response.proba"}}


def json_label_input(topic: str, format: str = "json") -> dict[str, Any]:
    entry: dict[str, Any] = {"topic": topic, "role": "labels", "format": format,
                             "fields": {"model_id": {"from": "key"}, "event_id": "request_id",
                                        "ts": "$.at", "label": "$.outcome"}}
    if format != "json":
        entry["schema_registry"] = {"url": REGISTRY_URL}
    return entry


def avro_prediction_input(topic: str) -> dict[str, Any]:
    return {"topic": topic, "role": "predictions", "format": "avro",
            "schema_registry": {"url": REGISTRY_URL},
            "fields": {"model_id": {"const": MODEL_ID}, "model_version": {"const": MODEL_VERSION},
                       "event_id": "$.id", "features": {name: f"$.{name}" for name in FEATURES},
                       "prediction": "$.predicted", "score": "$.probability"}}


def json_prediction(event: dict[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A foreign JSON value and its headers."""
    value = {"request": {"id": event["event_id"], "at_ms": round(event["ts"] * 1000),
                         "inputs": event["features"]},
             "response": {"class": event["prediction"], "proba": event["score"]}}
    return orjson.dumps(value), [("model-version", event["model_version"].encode())]


def json_label(event: dict[str, Any]) -> bytes:
    return orjson.dumps({"request_id": event["event_id"], "at": event["ts"],
                         "outcome": event["label"]})


_AVRO_TYPES = {"numeric": ["null", "double"], "categorical": ["null", "string"]}


def avro_schema() -> str:
    fields: list[dict[str, Any]] = [{"name": "id", "type": "long"}]
    for name, kind in FEATURES.items():
        kind_type = (["null", "boolean"] if name.startswith("is_") else _AVRO_TYPES[kind])
        fields.append({"name": name, "type": kind_type, "default": None})
    fields += [{"name": "predicted", "type": "int"}, {"name": "probability", "type": "double"}]
    return orjson.dumps({"type": "record", "name": "CreditScored", "namespace": "shop",
                         "fields": fields}).decode()


def avro_serializer() -> AvroSerializer:
    return AvroSerializer(registry_client({"url": REGISTRY_URL}), avro_schema())


def avro_prediction(serializer: AvroSerializer, topic: str, event: dict[str, Any]) -> bytes:
    """A Schema-Registry-framed Avro value; event ids end in digits, sent as an Avro long."""
    record: dict[str, Any] = {"id": int(event["event_id"].rsplit("-", 1)[1])}
    for name, kind in FEATURES.items():
        value = event["features"].get(name)
        record[name] = (float(value) if kind == "numeric" and value is not None else value)
    record["predicted"], record["probability"] = event["prediction"], event["score"]
    framed = serializer(record, SerializationContext(topic, MessageField.VALUE))
    assert framed is not None and framed[0] == 0     # magic byte, then the schema id
    return framed


LABEL_SCHEMA = orjson.dumps({
    "type": "object", "required": ["request_id", "outcome"],
    "properties": {"request_id": {"type": "integer"}, "at": {"type": "number"},
                   "outcome": {"type": "integer"}}}).decode()


def jsonschema_serializer() -> JSONSerializer:
    return JSONSerializer(LABEL_SCHEMA, registry_client({"url": REGISTRY_URL}))


def jsonschema_label(serializer: JSONSerializer, topic: str, event: dict[str, Any]) -> bytes:
    value = {"request_id": int(event["event_id"].rsplit("-", 1)[1]), "at": event["ts"],
             "outcome": event["label"]}
    framed = serializer(value, SerializationContext(topic, MessageField.VALUE))
    assert framed is not None and framed[0] == 0
    return framed


def avro_event_id(event_id: str) -> str:
    """The envelope event id the Avro layout's long id maps to."""
    return str(int(event_id.rsplit("-", 1)[1]))
