"""The ``inputs:`` setting: the users' own topics, and where each event field is in them.

A service that already publishes its predictions (or labels) in a layout of its
own, as JSON or as Schema-Registry-framed Avro or JSON Schema, need not write a
translator: an input mapping names the topic, its role and format, and where
each envelope field is in a record: a path into the value, a constant, the
record's key or one of its headers, or the record's timestamp.
:mod:`streams.ingest.mapping` applies it; ``docs/inputs.md`` is the reference.

Everything here is validated once at start-up, and every error names the key
(``inputs[0].fields.event_id``), what was expected and what was given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.errors import SettingsError

ROLES = ("predictions", "labels")
FORMATS = ("json", "avro", "jsonschema")
TS_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}

# Envelope fields each role needs (ts is always optional: the record's timestamp stands in).
REQUIRED = {
    "predictions": ("model_id", "model_version", "event_id", "features", "prediction"),
    "labels": ("model_id", "event_id", "label"),
}
OPTIONAL = {
    "predictions": ("ts", "score", "scores", "segments"),
    "labels": ("ts", "model_version"),
}
# Fields that hold an object: a path to one, or a mapping of names to paths.
OBJECT_FIELDS = ("features", "scores", "segments")
_SOURCE_KINDS = ("path", "const", "header", "from")
_RECORD_PARTS = ("key", "timestamp")

Segment = str | int


@dataclass(frozen=True)
class FieldSource:
    """Where one envelope field comes from.

    Parameters
    ----------
    kind
        ``path`` (into the decoded value), ``const``, ``header``, ``key`` (the
        record's key) or ``timestamp`` (the record's timestamp).
    path
        The parsed path, for ``path``.
    value
        The constant, or the header's name.
    text
        How the setting spelled it, for error messages and dead letters.
    """

    kind: str
    path: tuple[Segment, ...] = ()
    value: Any = None
    text: str = ""


@dataclass(frozen=True)
class InputSettings:
    """One mapped input topic (an entry of ``inputs``).

    Parameters
    ----------
    topic
        The topic to read.
    role
        ``predictions`` or ``labels``: which input of the partition step it feeds.
    format
        ``json`` (plain JSON values), ``avro`` or ``jsonschema`` (values framed
        by a Confluent Schema Registry serializer: magic byte, schema id, body).
    fields
        Envelope field → where it is (:class:`FieldSource`); ``features``,
        ``scores`` and ``segments`` map to a path of an object, or to one
        source per name in ``objects``.
    objects
        For ``features``/``scores``/``segments`` given name by name: name → path.
    schema_registry
        Schema Registry client configuration (``url`` and any of confluent-kafka's
        ``SchemaRegistryClient`` keys), for ``avro`` and ``jsonschema``.
    ts_unit
        Unit of a numeric ``ts`` read from the record (``s``, ``ms``, ``us``, ``ns``).
    """

    topic: str
    role: str
    format: str = "json"
    fields: Mapping[str, FieldSource] = field(default_factory=dict)
    objects: Mapping[str, Mapping[str, FieldSource]] = field(default_factory=dict)
    schema_registry: Mapping[str, str] = field(default_factory=dict)
    ts_unit: str = "s"


_PATH_TOKEN = re.compile(r"""\.([^.\[\]'"]+)|\[(-?\d+)\]|\[(?:'([^']*)'|"([^"]*)")\]""")


def parse_path(text: str) -> tuple[Segment, ...]:
    """Parse a path: ``$.a.b``, ``a.b``, ``$.items[0].id``, ``$['odd.name']`` (``$``: the value).

    Examples
    --------
    >>> parse_path("$.body.model"), parse_path("a.b[1]"), parse_path("$['x.y']")
    (('body', 'model'), ('a', 'b', 1), ('x.y',))
    >>> parse_path("$..a")
    Traceback (most recent call last):
    ...
    ValueError: cannot read '$..a' from position 1
    """
    rest = text[1:] if text.startswith("$") else "." + text if text else ""
    segments: list[Segment] = []
    position = 0
    while position < len(rest):
        match = _PATH_TOKEN.match(rest, position)
        if match is None:
            raise ValueError(f"cannot read {text!r} from position "
                             f"{position + (len(text) - len(rest))}")
        name, index, single, double = match.groups()
        segments.append(int(index) if index is not None
                        else next(s for s in (name, single, double) if s is not None))
        position = match.end()
    return tuple(segments)


def parse_inputs(raw: object, own_topics: Mapping[str, str]) -> tuple[InputSettings, ...]:
    """Validate the ``inputs`` list; ``own_topics`` maps driftline's topic roles to names.

    Examples
    --------
    >>> inputs = parse_inputs([{"topic": "shop", "role": "labels", "fields": {
    ...     "model_id": {"const": "churn"}, "event_id": "$.id", "label": "outcome"}}], {})
    >>> inputs[0].fields["event_id"].path, inputs[0].fields["model_id"].value
    (('id',), 'churn')
    >>> parse_inputs([{"topic": "shop", "role": "labels", "fields": {}}], {})
    Traceback (most recent call last):
    ...
    streams.errors.SettingsError: inputs[0].fields.model_id: required for role labels
    """
    if not isinstance(raw, list):
        raise SettingsError(f"inputs: expected a list of input mappings, got {raw!r}")
    inputs = tuple(_input(f"inputs[{index}]", entry) for index, entry in enumerate(raw))
    seen: dict[str, str] = {}
    own = {name: role for role, name in own_topics.items()}
    for index, entry in enumerate(inputs):
        where = f"inputs[{index}]"
        if entry.topic in own:
            raise SettingsError(f"{where}.topic: {entry.topic!r} is driftline's own "
                                f"{own[entry.topic]} topic; map a topic of your own")
        if entry.role in seen:
            # The label join, checkpoints and pending predictions are keyed by one
            # predictions topic per consumer group.
            raise SettingsError(f"{where}.role: a second {entry.role} input (the first is "
                                f"{seen[entry.role]}); one input per role per consumer group: "
                                "run another group (group_id) for another topic")
        seen[entry.role] = f"{where} ({entry.topic})"
    return inputs


_INPUT_KEYS = {"topic", "role", "format", "fields", "schema_registry", "ts_unit"}


def _input(where: str, raw: object) -> InputSettings:
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: expected a mapping, got {raw!r}")
    unknown = sorted(set(raw) - _INPUT_KEYS)
    if unknown:
        raise SettingsError(f"{where}.{unknown[0]}: unknown key (expected one of "
                            f"{sorted(_INPUT_KEYS)})")
    topic = raw.get("topic")
    if not isinstance(topic, str) or not topic:
        raise SettingsError(f"{where}.topic: expected a topic name, got {topic!r}")
    role = raw.get("role")
    if role not in ROLES:
        raise SettingsError(f"{where}.role: expected one of {list(ROLES)}, got {role!r}")
    kind = raw.get("format", "json")
    if kind not in FORMATS:
        raise SettingsError(f"{where}.format: expected one of {list(FORMATS)}, got {kind!r}")
    unit = raw.get("ts_unit", "s")
    if unit not in TS_UNITS:
        raise SettingsError(f"{where}.ts_unit: expected one of {list(TS_UNITS)}, got {unit!r}")
    registry = _registry(where, raw.get("schema_registry"), kind)
    sources = raw.get("fields")
    if not isinstance(sources, dict):
        raise SettingsError(f"{where}.fields: expected a mapping of envelope fields to "
                            f"sources, got {sources!r}")
    known = REQUIRED[role] + OPTIONAL[role]
    for name in sources:
        if name not in known:
            raise SettingsError(f"{where}.fields.{name}: not a field of a {role[:-1]} event "
                                f"(expected one of {list(known)})")
    for name in REQUIRED[role]:
        if name not in sources:
            raise SettingsError(f"{where}.fields.{name}: required for role {role}")
    fields: dict[str, FieldSource] = {}
    objects: dict[str, dict[str, FieldSource]] = {}
    for name, spec in sources.items():
        here = f"{where}.fields.{name}"
        if name in OBJECT_FIELDS and isinstance(spec, dict):
            if not spec:
                raise SettingsError(f"{here}: expected a path or a mapping of names to "
                                    "paths, got an empty mapping")
            objects[name] = {str(key): _path_source(f"{here}.{key}", path)
                             for key, path in spec.items()}
        elif name in OBJECT_FIELDS:
            fields[name] = _path_source(here, spec)
        else:
            fields[name] = _source(here, spec)
    return InputSettings(topic, role, kind, fields, objects, registry, unit)


def _registry(where: str, raw: object, kind: str) -> dict[str, str]:
    if kind == "json":
        if raw is not None:
            raise SettingsError(f"{where}.schema_registry: only for format avro or jsonschema "
                                "(format json reads plain JSON values)")
        return {}
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str) or not raw["url"]:
        raise SettingsError(f"{where}.schema_registry.url: format {kind} needs the Schema "
                            f"Registry's URL, got {raw!r}")
    for key, value in raw.items():
        if not isinstance(value, str):
            raise SettingsError(f"{where}.schema_registry.{key}: expected a string, "
                                f"got {value!r}")
    return {str(key): value for key, value in raw.items()}


def _path_source(where: str, spec: object) -> FieldSource:
    if isinstance(spec, dict) and set(spec) == {"path"}:
        spec = spec["path"]
    if not isinstance(spec, str):
        raise SettingsError(f"{where}: expected a path such as '$.body.features', got {spec!r}")
    try:
        return FieldSource("path", parse_path(spec), text=spec)
    except ValueError as exc:
        raise SettingsError(f"{where}: {exc} (paths read like $.a.b, a.b, $.a[0] or "
                            "$['a.b'])") from exc


def _source(where: str, spec: object) -> FieldSource:
    if isinstance(spec, str):
        return _path_source(where, spec)
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in _SOURCE_KINDS:
        raise SettingsError(f"{where}: expected a path, or one of {{path: P}}, {{const: V}}, "
                            f"{{header: NAME}}, {{from: key}}, {{from: timestamp}}; got {spec!r}")
    kind, value = next(iter(spec.items()))
    if kind == "path":
        return _path_source(where, value)
    if kind == "const":
        if isinstance(value, (dict, list)) or value is None:
            raise SettingsError(f"{where}.const: expected a string, number or boolean, "
                                f"got {value!r}")
        return FieldSource("const", value=value, text=f"const {value!r}")
    if kind == "header":
        if not isinstance(value, str) or not value:
            raise SettingsError(f"{where}.header: expected a header name, got {value!r}")
        return FieldSource("header", value=value, text=f"header {value!r}")
    if value not in _RECORD_PARTS:
        raise SettingsError(f"{where}.from: expected one of {list(_RECORD_PARTS)}, got {value!r}")
    return FieldSource(str(value), text=f"the record's {value}")


__all__ = ["FieldSource", "InputSettings", "parse_inputs", "parse_path"]
