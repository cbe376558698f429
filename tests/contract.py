"""Validate records against the contract-v1 JSON Schemas shipped in streams/ingest/schemas."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema
from referencing import Registry, Resource


@cache
def _registry() -> tuple[Registry, dict[str, dict[str, Any]]]:
    schemas = {}
    for entry in (files("streams.ingest") / "schemas").iterdir():
        if entry.name.endswith(".schema.json"):
            schemas[entry.name.removesuffix(".schema.json")] = json.loads(entry.read_text())
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values())
    return registry, schemas


def validate(record: Any, name: str) -> None:
    """Raise jsonschema.ValidationError unless ``record`` matches schema ``name``."""
    registry, schemas = _registry()
    jsonschema.Draft202012Validator(schemas[name], registry=registry).validate(record)
