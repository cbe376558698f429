from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.ingest.decode import LABEL, PREDICTION, TS_MAX, decode_message
from streams.settings import LimitSettings

CODES = {"invalid_json", "not_an_object", "missing_field", "wrong_type", "non_finite",
         "oversized", "invalid_value", "too_many_events"}
LIMITS = LimitSettings(max_message_bytes=10_000, max_events_per_message=50)

GOOD = {"model_id": "m", "model_version": "v1", "event_id": "e1", "ts": 1.5,
        "features": {"a": 1.0, "b": "x", "c": None, "d": True}, "prediction": 1, "score": 0.7}

json_scalars = (st.none() | st.booleans() | st.integers() |
                st.floats(allow_nan=False, allow_infinity=False) | st.text())
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
event_like = st.fixed_dictionaries({}, optional={
    "model_id": json_values, "model_version": json_values, "event_id": json_values,
    "ts": json_values, "features": json_values, "prediction": json_values, "score": json_values,
    "label": json_values})


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_events_or_reasons_never_an_exception(raw: bytes) -> None:
    for kind in (PREDICTION, LABEL):
        decoded = decode_message(raw, kind, LIMITS)
        assert all(r.error in CODES and r.reason for r in decoded.rejected)
        assert decoded.events or decoded.rejected or raw.strip().startswith(b"[")


@settings(max_examples=300, deadline=None)
@given(st.lists(event_like, max_size=5) | event_like)
def test_any_json_document_is_split_into_valid_events_and_reasons(document: object) -> None:
    raw = json.dumps(document).encode()    # stdlib: also writes integers beyond 64 bits
    decoded = decode_message(raw, PREDICTION, LIMITS)
    count = len(document) if isinstance(document, list) else 1
    if len(raw) <= LIMITS.max_message_bytes:
        assert len(decoded.events) + len(decoded.rejected) == count
    for event in decoded.events:
        assert isinstance(event["model_id"], str) and isinstance(event["ts"], float)
        assert isinstance(event["features"], dict)


def test_a_valid_event_passes_and_ts_is_normalised() -> None:
    iso = dict(GOOD, ts="2026-01-01T00:00:00Z")
    decoded = decode_message(orjson.dumps([GOOD, iso]), PREDICTION, LIMITS)
    assert not decoded.rejected
    assert [e["ts"] for e in decoded.events] == [1.5, 1767225600.0]


@pytest.mark.parametrize(("ts", "unit"), [
    (1_700_000_000_000, "milliseconds"), (1_700_000_000_000.5, "milliseconds"),
    (1_700_000_000_000_000, "microseconds"), (1_700_000_000_000_000_000, "nanoseconds"),
    (10**30, None), (-1, None), (-1e-9, None), (TS_MAX, "milliseconds"),
    ("9999-12-31T00:00:00Z", None), ("1969-12-31T23:59:59Z", None),
])
def test_an_implausible_ts_is_refused_and_a_unit_mistake_is_named(ts: object,
                                                                   unit: str | None) -> None:
    for kind, event in ((PREDICTION, GOOD), (LABEL, {"model_id": "m", "event_id": "e",
                                                      "label": 1})):
        # stdlib json: also integers beyond 64 bits
        decoded = decode_message(json.dumps(dict(event, ts=ts)).encode(), kind, LIMITS)
        assert not decoded.events
        (rejected,) = decoded.rejected
        assert (rejected.error, rejected.path) == ("invalid_value", "ts")
        assert rejected.reason.startswith("ts: expected a time from 1970 to the year 5138")
        if unit is None:
            assert "looks like" not in rejected.reason
        else:
            assert f"which looks like {unit}: send seconds" in rejected.reason
    if unit == "milliseconds" and ts == 1_700_000_000_000:
        assert rejected.reason.endswith("(divided by 1,000: 2023-11-14T22:13:20Z)")


def test_old_and_simulated_times_stay_valid() -> None:
    # Replays of old data and simulated streams starting at 0 are not refused.
    for ts in (0, -0.0, 1, 1.5, 946_684_800, 1_700_000_000, TS_MAX - 1.0, "1970-01-01T00:00:00Z",
               "2999-01-01T00:00:00+02:00"):
        decoded = decode_message(orjson.dumps(dict(GOOD, ts=ts)), PREDICTION, LIMITS)
        assert not decoded.rejected, (ts, decoded.rejected)


def test_each_problem_has_its_code_and_a_reason_naming_the_field() -> None:
    cases = {
        b"{oops": "invalid_json",
        b"NaN": "invalid_json",
        b'{"x": 1e400}': "non_finite",
        b"42": "not_an_object",
        orjson.dumps({k: v for k, v in GOOD.items() if k != "ts"}): "missing_field",
        orjson.dumps(dict(GOOD, model_id=7)): "wrong_type",
        orjson.dumps(dict(GOOD, model_id="")): "invalid_value",
        orjson.dumps(dict(GOOD, ts="yesterday")): "invalid_value",
        orjson.dumps(dict(GOOD, ts="2026-01-01T00:00:00")): "invalid_value",
        orjson.dumps(dict(GOOD, features=[1, 2])): "wrong_type",
        orjson.dumps(dict(GOOD, prediction=None)): "missing_field",
        orjson.dumps(dict(GOOD, prediction={"a": 1})): "wrong_type",
        orjson.dumps(dict(GOOD, score="high")): "wrong_type",
        b"[" + b",".join([orjson.dumps(GOOD)] * 51) + b"]": "too_many_events",
        b'{"pad": "' + b"x" * 20_000 + b'"}': "oversized",
        b"": "invalid_json",
    }
    for raw, code in cases.items():
        decoded = decode_message(raw, PREDICTION, LIMITS)
        assert [r.error for r in decoded.rejected] == [code], (raw[:60], decoded.rejected)
        assert not decoded.events


def test_a_mixed_array_keeps_its_good_events_and_indexes_the_bad_ones() -> None:
    bad = dict(GOOD, event_id=None)
    decoded = decode_message(orjson.dumps([GOOD, bad, "text", GOOD]), PREDICTION, LIMITS)
    assert len(decoded.events) == 2
    assert [(r.index, r.error, r.path) for r in decoded.rejected] == [
        (1, "wrong_type", "event_id"), (2, "not_an_object", None)]
    assert orjson.loads(decoded.rejected[0].payload)["event_id"] is None


def test_labels_need_a_label() -> None:
    label = {"model_id": "m", "event_id": "e", "ts": 3, "label": "fraud"}
    assert decode_message(orjson.dumps(label), LABEL, LIMITS).events == [dict(label, ts=3.0)]
    missing = decode_message(orjson.dumps({"model_id": "m", "event_id": "e", "ts": 3}), LABEL,
                             LIMITS)
    assert missing.rejected[0].reason == "missing field label"
