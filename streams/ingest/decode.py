"""Bytes → validated events, or a dead-letter reason. Never an exception.

One message on an input topic holds one event object or a JSON array of
events. Each event's envelope (ids, timestamp, types of the top-level fields,
feature values that are arrays or objects) is checked here; feature values of
the wrong scalar type are refused column by column later, in
:mod:`streams.ingest.columnar`, where it is cheaper.

Every refusal is total, whatever the input: values are described and
re-encoded to a bounded depth (:mod:`streams.ingest.bounded`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from streams.ingest.bounded import describe, reencode
from streams.settings import LimitSettings

PREDICTION = "prediction"
LABEL = "label"
CONTROL = "control"
REBASELINE = "rebaseline"
TICK = "tick"
CONTROL_COMMANDS = (REBASELINE, TICK)

INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
NON_FINITE = "non_finite"
OVERSIZED = "oversized"
INVALID_VALUE = "invalid_value"
TOO_MANY_EVENTS = "too_many_events"
INTERNAL_ERROR = "internal_error"
KEY_MISMATCH = "key_mismatch"

# Event times are epoch seconds in [TS_MIN, TS_MAX). The upper bound lies far beyond any real
# time in seconds (the year 5138) yet far below the same times in milliseconds (1e12 from 2001
# on), so a time in ms, µs or ns is refused with a reason that says so instead of being read
# as a date thousands of years ahead. A bound relative to the clock would make decoding depend
# on when it runs: a replay of old data, or a simulated stream starting at 0, must decode alike.
TS_MIN = 0.0
TS_MAX = 1e11
_SMALLER_UNITS = (("milliseconds", 1_000), ("microseconds", 1_000_000),
                  ("nanoseconds", 1_000_000_000))


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a message, or one element of an array message, was refused."""

    error: str
    reason: str
    payload: bytes
    index: int | None = None
    path: str | None = None
    clipped: bool = False
    """The payload is a re-encoding whose values nested beyond 64 levels were cut.

    See :data:`streams.ingest.bounded.MAX_DEPTH`.
    """


class Decoded(NamedTuple):
    """Valid events (``ts`` normalised to float seconds) and refusals of one message."""

    events: list[dict[str, Any]]
    rejected: list[Rejected]


_ID_LIMITS = {"model_id": 256, "model_version": 128, "event_id": 256}
_REQUIRED = {
    PREDICTION: ("model_id", "model_version", "event_id", "ts", "features", "prediction"),
    LABEL: ("model_id", "event_id", "ts", "label"),
    CONTROL: ("command",),
}


def decode_message(value: bytes | None, kind: str, limits: LimitSettings,
                   key: bytes | str | None = None) -> Decoded:
    """Decode one Kafka message value into events of ``kind``.

    ``key`` is the message's key when it must equal each event's ``model_id``
    (``limits.key_policy: reject``); ``None`` or empty checks nothing.

    Examples
    --------
    >>> ok = b'{"model_id":"m","event_id":"1","ts":1.5,"label":1}'
    >>> decode_message(ok, LABEL, LimitSettings()).events[0]["ts"]
    1.5
    >>> decode_message(b'[' + ok + b', {"ts": 1}]', LABEL, LimitSettings()).rejected[0].reason
    'missing field model_id'
    >>> decode_message(ok, LABEL, LimitSettings(), key=b"n").rejected[0].error
    'key_mismatch'
    """
    expected = key_text(key) if key else None
    if not value:
        return Decoded([], [Rejected(INVALID_JSON, "empty message", value or b"")])
    if len(value) > limits.max_message_bytes:
        return Decoded([], [Rejected(
            OVERSIZED, f"message of {len(value)} bytes exceeds max_message_bytes "
            f"({limits.max_message_bytes})", value)])
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        # orjson refuses 1e400 and friends at parse time; say what it really is.
        error = NON_FINITE if "infinity" in str(exc) else INVALID_JSON
        return Decoded([], [Rejected(error, f"not valid JSON: {exc}", value)])
    if isinstance(document, dict):
        problem = validate_event(document, kind, limits)
        if problem is None and expected is not None:
            problem = _key_problem(document, key, expected)
        if problem is None:
            return Decoded([document], [])
        return Decoded([], [Rejected(problem[0], problem[2], value, None, problem[1])])
    if not isinstance(document, list):
        return Decoded([], [Rejected(
            NOT_AN_OBJECT, f"expected a JSON object or an array of objects, got "
            f"{type(document).__name__}", value)])
    if len(document) > limits.max_events_per_message:
        return Decoded([], [Rejected(
            TOO_MANY_EVENTS, f"array of {len(document)} events exceeds max_events_per_message "
            f"({limits.max_events_per_message})", value)])
    events: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for index, element in enumerate(document):
        if not isinstance(element, dict):
            payload, clipped = reencode(element)
            rejected.append(Rejected(NOT_AN_OBJECT, f"array element {index} is "
                                     f"{type(element).__name__}, expected an object",
                                     payload, index, clipped=clipped))
            continue
        problem = validate_event(element, kind, limits)
        if problem is None and expected is not None:
            problem = _key_problem(element, key, expected)
        if problem is None:
            events.append(element)
        else:
            payload, clipped = reencode(element)
            rejected.append(Rejected(problem[0], problem[2], payload, index, problem[1],
                                     clipped))
    return Decoded(events, rejected)


def key_text(key: bytes | str) -> str:
    """The ``model_id`` a message key names; a key that is not UTF-8 names none.

    >>> key_text(b"fraud-v1"), key_text(bytes([255])) == NOT_UTF8
    ('fraud-v1', True)
    """
    if isinstance(key, str):
        return key
    try:
        return key.decode()
    except UnicodeDecodeError:
        return NOT_UTF8


# Longer than any valid model_id, so equal to none: the event of a key that is not UTF-8
# is refused as a mismatch (its reason describes the key's bytes).
NOT_UTF8 = "\x00" * 257


def _key_problem(event: dict[str, Any], key: bytes | str | None,
                 expected: str) -> tuple[str, str, str] | None:
    model_id = event["model_id"]
    if model_id == expected:
        return None
    named = describe(key) if expected is NOT_UTF8 else repr(expected[:60])
    return KEY_MISMATCH, "model_id", (
        f"model_id {describe(model_id).removeprefix('str ')} differs from the message key "
        f"{named}: events keyed by another model land in its partition and split this "
        "model's monitor; key each event by its model_id (or set limits.key_policy: accept)")


def decode_safely(value: bytes | None, kind: str, limits: LimitSettings,
                  key: bytes | str | None = None) -> Decoded:
    """:func:`decode_message`, with anything it raises turned into a refusal of the message.

    The last resort: decoding is meant never to raise, but a message that finds
    a way must not stop the worker (it would stop on it again after every
    restart). Its dead letter names the exception.

    Examples
    --------
    >>> decode_safely(b'{"command":"rebaseline","model_id":"m"}', CONTROL,
    ...               LimitSettings()).events
    [{'command': 'rebaseline', 'model_id': 'm'}]
    """
    try:
        return decode_message(value, kind, limits, key)
    except Exception as exc:  # noqa: BLE001 - any failure on input is a refusal of it
        return Decoded([], [unexpected(exc, value or b"")])


def unexpected(exc: BaseException, payload: bytes) -> Rejected:
    """The refusal of a message whose checks raised ``exc``: its type and message.

    >>> unexpected(RecursionError("too deep"), b"[]").reason
    'unexpected RecursionError while checking the message: too deep'
    """
    message = str(exc)
    if len(message) > 200:
        message = message[:200] + "…"
    return Rejected(INTERNAL_ERROR, f"unexpected {type(exc).__name__} while checking the "
                    f"message: {message}", payload)


_SCALAR_TYPES = (int, float, str, bool)


def validate_event(event: dict[str, Any], kind: str,
                   limits: LimitSettings) -> tuple[str, str, str] | None:
    """Check an event's envelope; normalise ``ts`` in place.

    Returns ``None`` when valid, else ``(error code, field path, reason)``.
    The worker's good path (:mod:`streams.ingest.batch`) accepts exactly the
    events this accepts; this is where a refused event learns why.
    """
    problem = _validate_slowly(event, kind, limits)
    if problem is None:
        _int64_or_float(event)
    return problem


def _validate_slowly(event: dict[str, Any], kind: str,
                     limits: LimitSettings) -> tuple[str, str, str] | None:
    for name in _REQUIRED[kind]:
        if name not in event:
            return MISSING_FIELD, name, f"missing field {name}"
    for name, limit in _ID_LIMITS.items():
        if name in event:
            ident = event[name]
            if not isinstance(ident, str):
                return WRONG_TYPE, name, f"{name}: expected a string, got {describe(ident)}"
            if not 0 < len(ident) <= limit:
                return INVALID_VALUE, name, f"{name}: expected 1 to {limit} characters, " \
                    f"got {len(ident)}"
    if kind == CONTROL:
        return _check_control(event)
    ts = _timestamp(event["ts"])
    if isinstance(ts, tuple):
        return ts
    event["ts"] = ts
    if kind == LABEL:
        return _check_scalar(event["label"], "label", allow_null=False)
    features = event["features"]
    if not isinstance(features, dict):
        return WRONG_TYPE, "features", f"features: expected an object, got {describe(features)}"
    if len(features) > limits.max_features:
        return INVALID_VALUE, "features", f"features: expected at most {limits.max_features} " \
            f"entries, got {len(features)}"
    problem = _flat(features, "features")
    if problem is not None:
        return problem
    problem = _check_scalar(event["prediction"], "prediction", allow_null=False)
    if problem is not None:
        return problem
    if "score" in event:
        score = event["score"]
        if not _is_number(score):
            return WRONG_TYPE, "score", f"score: expected a number, got {describe(score)}"
        if not math.isfinite(score):
            return NON_FINITE, "score", f"score: expected a finite number, got {score!r}"
        event["score"] = float(score)
    for name in ("scores", "segments"):
        if name in event and not isinstance(event[name], dict):
            return WRONG_TYPE, name, f"{name}: expected an object, got {describe(event[name])}"
    if "scores" in event:
        problem = _flat(event["scores"], "scores")
        if problem is not None:
            return problem
    for name, value in event.get("segments", {}).items():
        if type(value) not in _SCALAR_TYPES:
            return WRONG_TYPE, f"segments.{name}", (f"segments.{name}: expected a string, number "
                                                    f"or boolean, got {describe(value)}")
        if type(value) is float and not math.isfinite(value):
            return NON_FINITE, f"segments.{name}", (f"segments.{name}: expected a finite "
                                                    f"number, got {value!r}")
    return None


def _int64_or_float(event: dict[str, Any]) -> None:
    """Integers outside int64 become floats, as the fast path (msgspec) reads them."""
    for name in ("prediction", "label", "score"):
        value = event.get(name)
        if type(value) is int and not _INT64[0] <= value <= _INT64[1]:
            event[name] = float(value)
    for name in ("features", "scores", "segments"):
        values = event.get(name)
        if isinstance(values, dict):
            for key, value in values.items():
                if type(value) is int and not _INT64[0] <= value <= _INT64[1]:
                    values[key] = float(value)


_INT64 = (-(2**63), 2**63 - 1)
_FLAT_TYPES = {int, float, str, bool, type(None)}


def _flat(values: dict[str, Any], field: str) -> tuple[str, str, str] | None:
    """An array or object among ``values`` (features or scores): the contract wants scalars.

    Refused here, not by the column checks, so that no nested value travels on
    (features wait for their labels in the pending store and are published on
    the joined topic): the fast paths refuse them too.
    """
    if set(map(type, values.values())) <= _FLAT_TYPES:
        return None
    for name, value in values.items():
        if type(value) not in _FLAT_TYPES:
            return WRONG_TYPE, f"{field}.{name}", (f"{field}.{name}: expected a number, string, "
                                                   f"boolean or null, got {describe(value)}")
    return None


def _check_control(event: dict[str, Any]) -> tuple[str, str, str] | None:
    command = event["command"]
    if command not in CONTROL_COMMANDS:
        return INVALID_VALUE, "command", f"command: expected one of {list(CONTROL_COMMANDS)}, " \
            f"got {describe(command)}"
    if command == TICK:
        return _check_tick(event)
    if "model_id" not in event:
        return MISSING_FIELD, "model_id", "missing field model_id"
    for name in ("model_version", "reason", "requested_by"):
        if event.get(name) is not None and not isinstance(event[name], str):
            return WRONG_TYPE, name, f"{name}: expected a string, got {describe(event[name])}"
    return None


def _check_tick(event: dict[str, Any]) -> tuple[str, str, str] | None:
    """A tick: ``ts`` (epoch seconds), optional ``predictions_offset`` and ``partition``."""
    if "ts" not in event:
        return MISSING_FIELD, "ts", "missing field ts"
    ts = event["ts"]
    if not _is_number(ts) or not math.isfinite(ts):
        return WRONG_TYPE, "ts", f"ts: expected a finite number of epoch seconds, got " \
            f"{describe(ts)}"
    event["ts"] = float(ts)
    for name in ("predictions_offset", "partition"):
        value = event.get(name)
        if value is not None and (type(value) is not int or value < 0):
            return WRONG_TYPE, name, f"{name}: expected an integer >= 0, got {describe(value)}"
    return None


def _timestamp(ts: Any) -> float | tuple[str, str, str]:
    if _is_number(ts):
        if not math.isfinite(ts):
            return NON_FINITE, "ts", f"ts: expected a finite number, got {ts!r}"
        return _plausible(float(ts), ts)
    if isinstance(ts, str):
        try:
            parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return INVALID_VALUE, "ts", ("ts: expected epoch seconds or RFC 3339, got "
                                         f"{describe(ts)}")
        if parsed.tzinfo is None:
            return INVALID_VALUE, "ts", f"ts: RFC 3339 time needs a UTC offset, got {ts!r}"
        return _plausible(parsed.timestamp(), ts)
    return WRONG_TYPE, "ts", f"ts: expected a number or an RFC 3339 string, got {describe(ts)}"


def _plausible(seconds: float, given: Any) -> float | tuple[str, str, str]:
    """``seconds`` if within [TS_MIN, TS_MAX), else why not (naming a likely unit mistake)."""
    if TS_MIN <= seconds < TS_MAX:
        return seconds
    expected = "ts: expected a time from 1970 to the year 5138 (epoch seconds 0 to 1e11)"
    if seconds < TS_MIN:
        return INVALID_VALUE, "ts", f"{expected}, got {given!r}: before 1970"
    for unit, per_second in _SMALLER_UNITS:
        if isinstance(given, str) or seconds / per_second >= TS_MAX:
            continue
        as_seconds = datetime.fromtimestamp(seconds / per_second, UTC)
        return INVALID_VALUE, "ts", (
            f"{expected}, got {given!r}, which looks like {unit}: send seconds (divided by "
            f"{per_second:,}: {as_seconds:%Y-%m-%dT%H:%M:%SZ})")
    return INVALID_VALUE, "ts", f"{expected}, got {given!r}"


def _check_scalar(value: Any, path: str, allow_null: bool) -> tuple[str, str, str] | None:
    if value is None:
        return None if allow_null else (MISSING_FIELD, path, f"{path}: must not be null")
    if isinstance(value, (str, bool)):
        return None
    if _is_number(value):
        if math.isfinite(value):
            return None
        return NON_FINITE, path, f"{path}: expected a finite number, got {value!r}"
    return WRONG_TYPE, path, f"{path}: expected a number, string or boolean, got {describe(value)}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
