"""Records of a mapped ("foreign") input topic → driftline envelope events, or dead letters.

driftline's own topics carry its envelope and take the fast path
(:mod:`streams.ingest.batch`). A topic configured under ``inputs``
(:mod:`streams.settings_inputs`) carries the user's own layout instead, and
takes this separate, slower path, one record at a time: its value is decoded
(plain JSON, or a Schema-Registry-framed value through confluent-kafka's own
``AvroDeserializer`` / ``JSONDeserializer``), each envelope field is read from
where the mapping says (a path into the value, a constant, the key, a header,
the record's timestamp), and the event is checked by the same validation as an
envelope event (:func:`streams.ingest.decode.validate_event`), so the same
dead-letter reasons apply. The events then join the same partition step.

A record that cannot be used is dead-lettered with its original bytes and a
reason naming the field and where it was looked for. A Schema Registry that
cannot be reached is no fault of the record: that raises
:class:`MappingError`, and the worker stops without checkpointing the step.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

from streams.errors import DriftlineError
from streams.ingest.decode import (
    INVALID_JSON,
    LABEL,
    MISSING_FIELD,
    NOT_AN_OBJECT,
    OVERSIZED,
    PREDICTION,
    TOO_MANY_EVENTS,
    WRONG_TYPE,
    Decoded,
    Rejected,
    validate_event,
)
from streams.settings import LimitSettings, Settings
from streams.settings_inputs import TS_UNITS, FieldSource, InputSettings

if TYPE_CHECKING:
    # Imported where a registry is configured: the client costs ~0.5 s to import.
    from confluent_kafka.schema_registry import SchemaRegistryClient

UNDECODABLE = "undecodable"
"""Dead-letter code of a Schema-Registry-framed value its deserializer refused."""

_IDS = ("model_id", "model_version", "event_id")
_MISSING = object()


class MappingError(DriftlineError):
    """A mapped topic cannot be read for a reason that is not the record's (registry down)."""


def input_topics(settings: Settings) -> tuple[str, str, str]:
    """The predictions, labels and control topics a worker reads: mapped ones where configured.

    Examples
    --------
    >>> from streams.settings_inputs import parse_inputs
    >>> settings = Settings(inputs=parse_inputs([{"topic": "shop.scores", "role": "predictions",
    ...     "fields": {"model_id": {"from": "key"}, "model_version": {"const": "1"},
    ...                "event_id": "id", "features": "x", "prediction": "y"}}], {}))
    >>> input_topics(settings)
    ('shop.scores', 'driftline.labels', 'driftline.control')
    """
    mapped = {entry.role: entry.topic for entry in settings.inputs}
    return (mapped.get("predictions", settings.topics.name("predictions")),
            mapped.get("labels", settings.topics.name("labels")),
            settings.topics.name("control"))


_CLIENTS: dict[str, SchemaRegistryClient] = {}
_CLIENTS_LOCK = threading.Lock()


def registry_client(conf: dict[str, str]) -> SchemaRegistryClient:
    """One Schema Registry client per URL in this process (schemas are cached in it).

    confluent-kafka's ``mock://`` registry lives inside one client object, so
    sharing the client is also what lets every reader and writer of one process
    see the same mock registry (the tests rely on it).
    """
    from confluent_kafka.schema_registry import SchemaRegistryClient

    with _CLIENTS_LOCK:
        client = _CLIENTS.get(conf["url"])
        if client is None:
            client = _CLIENTS[conf["url"]] = SchemaRegistryClient.new_client(dict(conf))
        return client


class RecordMapper:
    """Turn each record of one mapped topic into validated envelope events.

    Parameters
    ----------
    mapping
        The topic's entry of ``inputs``.
    limits
        The same per-message limits as the envelope topics.

    Examples
    --------
    >>> from streams.settings_inputs import parse_inputs
    >>> mapping, = parse_inputs([{"topic": "shop", "role": "labels", "fields": {
    ...     "model_id": {"const": "churn"}, "event_id": "$.order.id", "label": "outcome"}}], {})
    >>> class Record:
    ...     def __init__(self, value): self._value = value
    ...     def value(self): return self._value
    ...     def key(self): return None
    ...     def topic(self): return "shop"
    ...     def timestamp(self): return (1, 1_700_000_000_000)
    >>> mapper = RecordMapper(mapping, LimitSettings())
    >>> mapper.map(Record(b'{"order": {"id": 42}, "outcome": true}')).events
    [{'model_id': 'churn', 'event_id': '42', 'label': True, 'ts': 1700000000.0}]
    >>> mapper.map(Record(b'{"outcome": false}')).rejected[0].reason
    'missing field event_id: $.order.id is not in the record'
    """

    def __init__(self, mapping: InputSettings, limits: LimitSettings) -> None:
        self.mapping = mapping
        self.limits = limits
        self.kind = PREDICTION if mapping.role == "predictions" else LABEL
        self._required = {"predictions": ("model_id", "model_version", "event_id",
                                          "features", "prediction"),
                          "labels": ("model_id", "event_id", "label")}[mapping.role]
        self._per_second = TS_UNITS[mapping.ts_unit]
        self._deserialize: Any = None
        if mapping.format != "json":
            from confluent_kafka.schema_registry.avro import AvroDeserializer
            from confluent_kafka.schema_registry.json_schema import JSONDeserializer

            client = registry_client(dict(mapping.schema_registry))
            self._deserialize = (AvroDeserializer(client) if mapping.format == "avro"
                                 else JSONDeserializer(None, schema_registry_client=client))

    def map(self, message: Any) -> Decoded:
        """Decode one record (a confluent-kafka ``Message`` or alike) into events and refusals."""
        value: bytes | None = message.value()
        if not value:
            return Decoded([], [Rejected(INVALID_JSON if self._deserialize is None
                                         else UNDECODABLE, "empty message", value or b"")])
        if len(value) > self.limits.max_message_bytes:
            return Decoded([], [Rejected(
                OVERSIZED, f"message of {len(value)} bytes exceeds max_message_bytes "
                f"({self.limits.max_message_bytes})", value)])
        decoded = self._decode(value, message)
        if isinstance(decoded, Rejected):
            return Decoded([], [decoded])
        if isinstance(decoded, list):
            if len(decoded) > self.limits.max_events_per_message:
                return Decoded([], [Rejected(
                    TOO_MANY_EVENTS, f"array of {len(decoded)} records exceeds "
                    f"max_events_per_message ({self.limits.max_events_per_message})", value)])
            records: list[tuple[Any, int | None]] = [(r, i) for i, r in enumerate(decoded)]
        else:
            records = [(decoded, None)]
        events: list[dict[str, Any]] = []
        rejected: list[Rejected] = []
        for record, index in records:
            event = self._event(record, message)
            if isinstance(event, tuple):
                rejected.append(Rejected(event[0], event[2], value, index, event[1]))
                continue
            problem = validate_event(event, self.kind, self.limits)
            if problem is None:
                events.append(event)
            else:
                rejected.append(Rejected(problem[0], self._where(problem[1], problem[2]),
                                         value, index, problem[1]))
        return Decoded(events, rejected)

    def _decode(self, value: bytes, message: Any) -> Any:
        if self._deserialize is None:
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                return Rejected(INVALID_JSON, f"not valid JSON: {exc}", value)
        from confluent_kafka.schema_registry.error import SchemaRegistryError
        from confluent_kafka.serialization import MessageField, SerializationContext

        headers = getattr(message, "headers", lambda: None)()
        context = SerializationContext(message.topic() or self.mapping.topic,
                                       MessageField.VALUE, headers)
        try:
            return self._deserialize(value, context)
        except SchemaRegistryError as exc:
            # Not found (an unknown schema id) is the record's fault; anything else the
            # registry's, and dead-lettering every record while it is down would be wrong.
            if exc.http_status_code in (404, 422):
                return Rejected(UNDECODABLE, f"{self.mapping.format} value: {exc}", value)
            raise MappingError(f"Schema Registry {self.mapping.schema_registry['url']} failed "
                               f"reading topic {self.mapping.topic}: {exc}") from exc
        except Exception as exc:    # noqa: BLE001 - any refusal of the bytes is the record's
            if type(exc).__module__.startswith(("httpx", "httpcore")):
                raise MappingError(f"Schema Registry {self.mapping.schema_registry['url']} "
                                   f"unreachable: {exc}") from exc
            return Rejected(UNDECODABLE, f"not a Schema-Registry-framed {self.mapping.format} "
                            f"value: {type(exc).__name__}: {exc}", value)

    def _event(self, record: Any, message: Any) -> dict[str, Any] | tuple[str, str, str]:
        if not isinstance(record, dict):
            return (NOT_AN_OBJECT, "(record)",
                    f"expected a record (object), got {type(record).__name__}")
        event: dict[str, Any] = {}
        for name, source in self.mapping.fields.items():
            value = _read(source, record, message)
            if value is not _MISSING and value is not None and name in _IDS:
                value = _text(value)
            if value is not _MISSING and name == "ts":
                value = self._seconds(value)
            if value is _MISSING or (value is None and name not in self._required):
                if name in self._required:
                    return (MISSING_FIELD, name,
                            f"missing field {name}: {source.text} is not in the record")
                continue
            if name in ("features", "scores", "segments"):
                if not isinstance(value, dict):
                    return (WRONG_TYPE, name, f"{name}: expected an object at {source.text}, "
                            f"got {type(value).__name__}")
                value = {str(k): _plain(v) for k, v in value.items()}
            event[name] = _plain(value)
        for name, sources in self.mapping.objects.items():
            values = {key: _read(source, record, message) for key, source in sources.items()}
            # A feature not in the record is a missing value (data quality counts it);
            # a segment or score not there is simply not given.
            event[name] = {key: None if value is _MISSING else _plain(value)
                           for key, value in values.items()
                           if name == "features" or value is not _MISSING}
        if "ts" not in event:
            timestamp_type, timestamp_ms = message.timestamp()
            if not timestamp_type:
                return MISSING_FIELD, "ts", "missing field ts: no ts mapped and the record " \
                    "has no timestamp"
            event["ts"] = timestamp_ms / 1000.0
        return event

    def _seconds(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return value                      # RFC 3339 text: validation reads it
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value / self._per_second if self._per_second != 1 else value
        return value

    def _where(self, path: str, reason: str) -> str:
        source = self.mapping.fields.get(path.split(".")[0])
        return f"{reason} (mapped from {source.text})" if source is not None else reason


def _read(source: FieldSource, record: dict[str, Any], message: Any) -> Any:
    """The value ``source`` names, or ``_MISSING``."""
    if source.kind == "path":
        value: Any = record
        for segment in source.path:
            if isinstance(segment, int):
                if not isinstance(value, list) or not -len(value) <= segment < len(value):
                    return _MISSING
                value = value[segment]
            elif isinstance(value, dict) and segment in value:
                value = value[segment]
            else:
                return _MISSING
        return value
    if source.kind == "const":
        return source.value
    if source.kind == "key":
        key = message.key()
        return _MISSING if key is None else key
    if source.kind == "timestamp":
        timestamp_type, timestamp_ms = message.timestamp()
        return _MISSING if not timestamp_type else datetime.fromtimestamp(
            timestamp_ms / 1000.0, UTC)
    headers = getattr(message, "headers", lambda: None)() or []
    # The last header of a name wins, as in Kafka Streams' lastHeader().
    for name, value in reversed(headers):
        if name == source.value:
            return _MISSING if value is None else value
    return _MISSING


def _text(value: Any) -> Any:
    """Ids as text: a key or header as UTF-8, a numeric id (Avro long) as its digits."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _plain(value: Any) -> Any:
    """Avro/JSON-Schema logical types as JSON values (a Decimal as a float, times as text)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


__all__ = ["UNDECODABLE", "MappingError", "RecordMapper", "input_topics", "registry_client"]
