"""Every refusal is total: deep nesting, huge keys and strings, and the unexpected.

The poison messages of issue #14 each stopped the worker on every restart: a
list nested 1,000 deep as ``model_id`` (``RecursionError`` in the reason's
``repr``), a list nested 300 deep as a feature value or in a bad array element
(``orjson.dumps``: "Recursion limit reached" re-encoding it), a 1.2 MB message
key (a dead letter too large to produce).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from streams.ingest.batch import BatchDecoder
from streams.ingest.bounded import MAX_DEPTH, describe, reencode
from streams.ingest.deadletter import (
    MAX_KEPT_KEY,
    MAX_KEPT_PAYLOAD,
    MAX_RECORD_BYTES,
    Source,
    dead_letter,
    kept_key,
)
from streams.ingest.decode import (
    CONTROL,
    LABEL,
    PREDICTION,
    Rejected,
    decode_message,
    decode_safely,
)
from streams.settings import LimitSettings

LIMITS = LimitSettings()
GOOD = {"model_id": "m", "model_version": "v1", "event_id": "e1", "ts": 1.5,
        "features": {"a": 1.0}, "prediction": 1}


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def with_value(event: dict[str, Any], place: str, value: str) -> bytes:
    """``event`` as JSON with ``value`` (JSON text) at ``place`` (dotted)."""
    parent, _, name = place.rpartition(".")
    copy = {k: dict(v) if isinstance(v, dict) else v for k, v in event.items()}
    (copy.setdefault(parent, {}) if parent else copy)[name] = "@@"
    return orjson.dumps(copy).replace(b'"@@"', value.encode())


def _decoded(raw: bytes, kind: str = PREDICTION) -> tuple[list[Any], list[Rejected]]:
    decoder = BatchDecoder(kind, LIMITS)
    decoder.add(raw, 0)
    batch = decoder.take()
    return batch.events, [rejected for _, rejected in batch.rejected]


@pytest.mark.parametrize("depth", [300, 1000, 1021])
@pytest.mark.parametrize("place", ["model_id", "model_version", "event_id", "ts", "prediction",
                                   "score", "features", "features.a", "features.new",
                                   "scores", "scores.x", "segments.s"])
def test_a_deeply_nested_field_is_refused_with_a_short_reason(place: str, depth: int) -> None:
    events, rejected = _decoded(with_value(GOOD, place, nested(depth)))
    assert not events
    (refusal,) = rejected
    assert refusal.error == "wrong_type" and refusal.path == place
    assert len(refusal.reason) < 150 and "[[[…]]]" in refusal.reason


@pytest.mark.parametrize("depth", [300, 1000])
def test_a_deeply_nested_label_is_refused(depth: int) -> None:
    label = {"model_id": "m", "event_id": "e", "ts": 1.0, "label": 1}
    events, rejected = _decoded(with_value(label, "label", nested(depth)), LABEL)
    assert not events and [(r.error, r.path) for r in rejected] == [("wrong_type", "label")]


@pytest.mark.parametrize("depth", [300, 1000, 1021])
def test_a_bad_array_element_holding_deep_nesting_is_re_encoded_to_a_bounded_depth(
        depth: int) -> None:
    bad = with_value({k: v for k, v in GOOD.items() if k != "event_id"}, "features.a",
                     nested(depth))
    raw = b"[" + orjson.dumps(GOOD) + b"," + bad + b"," + nested(depth).encode() + b"]"
    events, rejected = _decoded(raw)
    assert len(events) == 1
    assert [(r.error, r.index, r.clipped) for r in rejected] == [
        ("missing_field", 1, True), ("not_an_object", 2, True)]
    for refusal in rejected:
        assert refusal.payload.count(b"[") <= MAX_DEPTH + 1
        assert b"nested deeper than 64 levels" in refusal.payload
        orjson.loads(refusal.payload)


def test_a_deep_unknown_field_does_not_stop_the_fast_path() -> None:
    # msgspec raises RecursionError (not a DecodeError) skipping a field ~1,000 deep.
    events, rejected = _decoded(with_value(GOOD, "extra", nested(1000)))
    assert len(events) == 1 and not rejected


def test_shallow_payloads_are_re_encoded_as_before() -> None:
    assert reencode({"a": [1, {"b": None}]}) == (b'{"a":[1,{"b":null}]}', False)
    assert describe("x" * 1_000_000) == "str '" + "x" * 39 + "…"


def test_a_huge_ts_string_gives_a_short_reason() -> None:
    raw = orjson.dumps({"model_id": "m", "event_id": "e", "label": 1, "ts": "9" * 1_000_000})
    (refusal,) = decode_message(raw, LABEL, LIMITS).rejected
    assert refusal.error == "invalid_value" and len(refusal.reason) < 100


def test_anything_a_check_raises_refuses_the_message_and_names_the_exception(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise ZeroDivisionError("a check that divides by zero")

    monkeypatch.setattr("streams.ingest.decode.validate_event", broken)
    for kind, raw in ((PREDICTION, b'{"model_id":"m"}'), (CONTROL, b'{"command":"x"}')):
        (refusal,) = decode_safely(raw, kind, LIMITS).rejected
        assert refusal.error == "internal_error" and refusal.payload == raw
        assert refusal.reason == ("unexpected ZeroDivisionError while checking the message: a "
                                  "check that divides by zero")
    events, rejected = _decoded(b'{"model_id":"m"}')
    assert not events and [r.error for r in rejected] == ["internal_error"]


def test_a_dead_letter_keeps_a_bounded_part_of_a_huge_key_and_says_so() -> None:
    key = b"k" * 1_200_000
    record = dead_letter(Rejected("missing_field", "missing field model_version", b"{}"),
                         Source("driftline.predictions", 3, 7, key, 1))
    source = record["source"]
    assert base64.b64decode(source["key_b64"]) == key[:MAX_KEPT_KEY]
    assert (source["key_bytes"], source["key_truncated"]) == (1_200_000, True)
    assert kept_key(key) == key[:MAX_KEPT_KEY] and kept_key(b"m") == b"m"
    assert len(orjson.dumps(record)) < 3000


def test_every_part_of_a_dead_letter_from_the_input_is_bounded() -> None:
    worst = Rejected("wrong_type", "\x00" * 2_000_000, b"\x00" * 2_000_000, 99_999,
                     "\x01" * 2_000_000, True)
    record = dead_letter(worst, Source("t" * 249, 2**31 - 1, 2**63 - 1, b"\xff" * 2_000_000,
                                       2**63 - 1))
    size = len(orjson.dumps(record)) + len(kept_key(b"\xff" * 2_000_000) or b"")
    assert size <= MAX_RECORD_BYTES, size
    assert record["payload_truncated"] and record["payload_bytes"] == 2_000_000
    assert len(base64.b64decode(record["payload_b64"])) == MAX_KEPT_PAYLOAD
    assert record["reason"].endswith("…") and record["path"].endswith("…")
    assert record["payload_clipped"] is True
