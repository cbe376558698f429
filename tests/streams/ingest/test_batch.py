"""The fast decoder (msgspec) accepts exactly what the slow validator accepts, with equal values."""

from __future__ import annotations

import json
import math
from typing import Any, get_type_hints

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.ingest.batch import BatchDecoder, LabelEnvelope, PredictionEnvelope
from streams.ingest.decode import LABEL, PREDICTION, TS_MAX, TS_MIN, decode_message
from streams.settings import LimitSettings

LIMITS = LimitSettings(max_message_bytes=10_000, max_events_per_message=50, max_features=3)

GOOD = {"model_id": "m", "model_version": "v1", "event_id": "e1", "ts": 1.5,
        "features": {"a": 1.0, "b": "x"}, "prediction": 1, "score": 0.7}
LABEL_EVENT = {"model_id": "m", "event_id": "e1", "ts": 2, "label": "fraud"}

scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=3)
           | st.sampled_from(["", "x" * 257, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) |
                      st.dictionaries(st.text(max_size=4), inner, max_size=4), max_leaves=8)


def _mutations(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with some fields replaced by arbitrary JSON, removed, or added."""
    names = [*base, "score", "scores", "segments", "model_version", "label", "features"]
    return st.builds(
        lambda changes, removed: {**{k: v for k, v in base.items() if k not in removed},
                                  **changes},
        st.dictionaries(st.sampled_from(names), values, max_size=3),
        st.sets(st.sampled_from(list(base)), max_size=2))


KNOWN = {PREDICTION: ("model_id", "model_version", "event_id", "ts", "features", "prediction",
                     "score", "scores", "segments"),
         LABEL: ("model_id", "model_version", "event_id", "ts", "label")}


def _known(event: dict[str, Any], kind: str) -> bytes:
    # The fast path keeps only the contract's fields; nothing downstream reads others.
    return orjson.dumps({k: event[k] for k in KNOWN[kind] if k in event},
                        option=orjson.OPT_SORT_KEYS)


def _outcome(raw: bytes, kind: str) -> tuple[list[bytes], list[tuple[int, str, Any, Any]]]:
    decoder = BatchDecoder(kind, LIMITS)
    decoder.add(raw, 7)
    batch = decoder.take()
    assert set(batch.origins) <= {7}
    return ([_known(e, kind) for e in batch.events],
            [(origin, r.error, r.index, r.path) for origin, r in batch.rejected])


def _slow(raw: bytes, kind: str) -> tuple[list[bytes], list[tuple[int, str, Any, Any]]]:
    decoded = decode_message(raw, kind, LIMITS)
    return ([_known(e, kind) for e in decoded.events],
            [(7, r.error, r.index, r.path) for r in decoded.rejected])


@settings(max_examples=600, deadline=None)
@given(st.lists(_mutations(GOOD), min_size=1, max_size=4) | _mutations(GOOD))
def test_predictions_fast_and_slow_paths_agree(document: Any) -> None:
    raw = json.dumps(document).encode()     # stdlib: also integers beyond 64 bits
    assert _outcome(raw, PREDICTION) == _slow(raw, PREDICTION)


@settings(max_examples=400, deadline=None)
@given(st.lists(_mutations(LABEL_EVENT), min_size=1, max_size=4) | _mutations(LABEL_EVENT))
def test_labels_fast_and_slow_paths_agree(document: Any) -> None:
    raw = json.dumps(document).encode()
    assert _outcome(raw, LABEL) == _slow(raw, LABEL)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_events_or_reasons_never_an_exception(raw: bytes) -> None:
    for kind in (PREDICTION, LABEL):
        assert _outcome(raw, kind) == _slow(raw, kind)


def test_the_good_path_normalises_ts_and_keeps_the_message_of_each_event() -> None:
    decoder = BatchDecoder(PREDICTION, LIMITS)
    decoder.add(orjson.dumps(dict(GOOD, ts=2)), 0)
    decoder.add(orjson.dumps([GOOD, dict(GOOD, event_id=None), GOOD]), 1)
    decoder.add(orjson.dumps(dict(GOOD, features={"a": 1, "b": 2, "c": 3, "d": 4})), 2)
    batch = decoder.take()
    assert [type(e["ts"]) for e in batch.events] == [float, float, float]
    assert batch.events[0]["ts"] == 2.0
    assert batch.origins == [0, 1, 1]
    assert [(origin, r.error, r.index, r.path) for origin, r in batch.rejected] == [
        (1, "wrong_type", 1, "event_id"), (2, "invalid_value", None, "features")]
    assert "at most 3" in batch.rejected[1][1].reason
    assert decoder.take().events == []


def test_integers_beyond_int64_and_nested_values_read_alike_on_both_paths() -> None:
    big = 2**70
    for document in (dict(GOOD, features={"a": big}), dict(GOOD, prediction=-big),
                     dict(GOOD, features={"a": [1, {"b": big}]}), dict(GOOD, features={"a": [1]})):
        raw = json.dumps(document).encode()
        assert _outcome(raw, PREDICTION) == _slow(raw, PREDICTION), document
    for value in (big, 2**63, -(2**63) - 1):        # beyond int64: a float on both paths
        label = json.dumps(dict(LABEL_EVENT, label=value)).encode()
        events, rejected = _outcome(label, LABEL)
        assert (events, rejected) == _slow(label, LABEL) and not rejected
        assert orjson.loads(events[0])["label"] == float(value)


def test_both_paths_draw_the_ts_bounds_alike() -> None:
    # The fast path states the bounds in its schema (anything outside takes the slow path,
    # which names the reason); both must use the same numbers.
    for envelope in (PredictionEnvelope, LabelEnvelope):
        (bounds,) = get_type_hints(envelope, include_extras=True)["ts"].__metadata__
        assert (bounds.ge, bounds.lt) == (TS_MIN, TS_MAX)
    edges = (TS_MIN, -0.0, -1e-300, -1, TS_MAX, TS_MAX - 1e-3, math.nextafter(TS_MAX, 0.0),
             1_700_000_000_000, 2**64, -(2**64), "1969-12-31T23:59:59Z", "9999-01-01T00:00:00Z")
    for ts in edges:
        for kind, event in ((PREDICTION, GOOD), (LABEL, LABEL_EVENT)):
            raw = json.dumps(dict(event, ts=ts)).encode()
            assert _outcome(raw, kind) == _slow(raw, kind), ts
            both = json.dumps([event, dict(event, ts=ts)]).encode()
            assert _outcome(both, kind) == _slow(both, kind), ts
    events, rejected = _outcome(json.dumps(dict(GOOD, ts=1_700_000_000_000)).encode(), PREDICTION)
    assert not events and rejected == [(7, "invalid_value", None, "ts")]
