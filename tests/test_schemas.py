"""The v1 event contract: the JSON Schemas and the examples in docs/events.md agree."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_NAMES = ("prediction", "label", "batch", "control", "alert", "retrain", "deadletter",
                "joined", "audit")
ID_PREFIX = "https://driftline.dev/schemas/v1/"
EVENTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "events.md"
EXAMPLE = re.compile(r"<!-- example: (?P<name>[a-z_]+) -->\s*```json\n(?P<body>.*?)\n```", re.S)


def load_schemas() -> dict[str, dict[str, Any]]:
    schema_dir = files("streams.ingest") / "schemas"
    return {
        name: json.loads((schema_dir / f"{name}.schema.json").read_text(encoding="utf-8"))
        for name in SCHEMA_NAMES
    }


SCHEMAS = load_schemas()
REGISTRY: Registry[Any] = Registry().with_resources(
    (schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012))
    for schema in SCHEMAS.values()
)


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMAS[name], registry=REGISTRY)


def doc_examples() -> list[tuple[str, Any]]:
    text = EVENTS_DOC.read_text(encoding="utf-8")
    return [(m["name"], json.loads(m["body"])) for m in EXAMPLE.finditer(text)]


def subschemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from subschemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from subschemas(value)


def example(name: str) -> Any:
    return copy.deepcopy(next(doc for kind, doc in doc_examples() if kind == name))


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = SCHEMAS[name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"{ID_PREFIX}{name}.json"
    assert schema["title"]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_property_is_described(name: str) -> None:
    undocumented = [
        prop
        for node in subschemas(SCHEMAS[name])
        for prop, spec in node.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert undocumented == []


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_ref_resolves(name: str) -> None:
    resolver = REGISTRY.resolver(base_uri=SCHEMAS[name]["$id"])
    refs = [node["$ref"] for node in subschemas(SCHEMAS[name]) if "$ref" in node]
    for ref in refs:
        assert resolver.lookup(ref).contents is not None


def test_docs_have_an_example_for_every_schema() -> None:
    assert {kind for kind, _ in doc_examples()} == set(SCHEMA_NAMES)


@pytest.mark.parametrize(("name", "document"), doc_examples())
def test_doc_example_validates(name: str, document: Any) -> None:
    errors = [error.message for error in validator(name).iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize(
    ("message_def", "document", "valid"),
    [
        ("prediction_message", example("prediction"), True),
        ("prediction_message", example("batch"), True),
        ("prediction_message", [example("prediction"), example("label")], False),
        ("label_message", example("label"), True),
        ("label_message", [example("label"), example("label")], True),
        ("label_message", example("prediction"), False),
    ],
)
def test_topic_message_defs(message_def: str, document: Any, valid: bool) -> None:
    schema = {"$ref": f"{ID_PREFIX}batch.json#/$defs/{message_def}"}
    assert Draft202012Validator(schema, registry=REGISTRY).is_valid(document) is valid


def test_batch_accepts_single_events_and_arrays() -> None:
    batch = validator("batch")
    assert batch.is_valid(example("prediction"))
    assert batch.is_valid(example("label"))
    assert batch.is_valid([example("prediction"), example("label")])
    assert not batch.is_valid([example("prediction"), 42])
    assert not batch.is_valid("not an event")
    assert SCHEMAS["batch"]["oneOf"][1]["maxItems"] == 100_000


def test_ts_accepts_epoch_seconds_and_rfc3339() -> None:
    prediction = validator("prediction")
    event = example("prediction")
    for ts in (1763898245, 1763898245.137, "2025-11-23T11:04:05Z", "2025-11-23T12:04:05.2+01:00"):
        event["ts"] = ts
        assert prediction.is_valid(event), ts
    for ts in ("2025-11-23", "2025-11-23T11:04:05", "yesterday", True, None, 1763898245000, -1):
        event["ts"] = ts
        assert not prediction.is_valid(event), ts


def drop(document: dict[str, Any], field: str) -> dict[str, Any]:
    del document[field]
    return document


def put(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, leaf = path.split(".")
    node = document
    for key in parents:
        node = node[key]
    node[leaf] = value
    return document


@pytest.mark.parametrize(
    ("name", "document"),
    [
        # missing required fields
        ("prediction", drop(example("prediction"), "event_id")),
        ("prediction", drop(example("prediction"), "features")),
        ("label", drop(example("label"), "label")),
        ("alert", drop(example("alert"), "dedup_key")),
        ("alert", put(example("alert"), "window", {"start_ts": 1.0, "end_ts": 2.0})),
        ("retrain", drop(example("retrain"), "training_window")),
        ("deadletter", drop(example("deadletter"), "payload_b64")),
        # wrong types
        ("prediction", put(example("prediction"), "model_id", 7)),
        ("prediction", put(example("prediction"), "features.amount", [1, 2])),
        ("prediction", put(example("prediction"), "prediction", None)),
        ("prediction", put(example("prediction"), "score", "0.3")),
        ("label", put(example("label"), "label", {"fraud": True})),
        ("alert", put(example("alert"), "window.events", 1.5)),
        ("retrain", put(example("retrain"), "alert_ids", "9f2c4e1a7b3d5c60")),
        ("deadletter", put(example("deadletter"), "source.partition", "3")),
        ("deadletter", put(example("deadletter"), "payload_truncated", "no")),
        # bad enums, consts and values
        ("alert", put(example("alert"), "kind", "drift")),
        ("alert", put(example("alert"), "status", "acknowledged")),
        ("alert", put(example("alert"), "severity", "page")),
        ("alert", put(example("alert"), "schema_version", 2)),
        ("alert", put(example("alert"), "alert_id", "not-hex")),
        ("alert", put(example("alert"), "p_value", 1.5)),
        ("deadletter", put(example("deadletter"), "error", "boom")),
        ("deadletter", put(example("deadletter"), "payload_b64", "not base64!")),
        ("prediction", put(example("prediction"), "model_id", "")),
        ("prediction", put(example("prediction"), "model_version", "v" * 129)),
        ("prediction", put(example("prediction"), "scores.fraud", 1.2)),
        ("prediction", put(example("prediction"), "features", {f"f{i}": 0 for i in range(2001)})),
    ],
)
def test_invalid_document_is_rejected(name: str, document: Any) -> None:
    assert not validator(name).is_valid(document)


def test_unknown_fields_are_allowed() -> None:
    assert validator("prediction").is_valid(put(example("prediction"), "request_id", "r-1"))
    assert validator("alert").is_valid(put(example("alert"), "runbook_url", "https://x"))
