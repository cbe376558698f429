"""A prediction or label whose message key is not its model_id: refused, or accepted by policy.

Keyed by another model, an event lands in that model's partition and splits its
own model into two monitors, silently (issue #14, item 5).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.ingest.batch import BatchDecoder
from streams.ingest.decode import LABEL, PREDICTION, decode_message
from streams.ingest.typed import TypedModels
from streams.settings import LimitSettings

REJECT, ACCEPT = LimitSettings(), LimitSettings(key_policy="accept")
SCHEMA = {"a": "numeric"}


def prediction(model_id: str = "m", i: int = 0) -> dict[str, Any]:
    return {"model_id": model_id, "model_version": "v1", "event_id": f"e{i}", "ts": 1.0,
            "features": {"a": 1.0}, "prediction": 1}


def label(model_id: str = "m", i: int = 0) -> dict[str, Any]:
    return {"model_id": model_id, "event_id": f"e{i}", "ts": 2.0, "label": 1}


def outcome(document: Any, key: bytes | str | None, kind: str = PREDICTION,
            limits: LimitSettings = REJECT, typed: bool = False) -> tuple[list[str], list[Any]]:
    models = TypedModels()
    models.register("m", "v1", SCHEMA)
    models.register("n", "v1", SCHEMA)
    decoder = BatchDecoder(kind, limits, models if typed else None)
    decoder.add(orjson.dumps(document), 0, key)
    batch = decoder.take()
    ids = [e["event_id"] if isinstance(e, dict) else e.event_id for e in batch.events]
    return ids, [(r.error, r.index, r.path) for _, r in batch.rejected]


@pytest.mark.parametrize("typed", [False, True])
@pytest.mark.parametrize("key", [b"m", "m"])
def test_an_event_keyed_by_its_model_id_passes(key: bytes | str, typed: bool) -> None:
    assert outcome(prediction(), key, typed=typed) == (["e0"], [])
    assert outcome([prediction(i=1), prediction(i=2)], key, typed=typed) == (["e1", "e2"], [])
    assert outcome(label(), key, LABEL) == (["e0"], [])


@pytest.mark.parametrize("typed", [False, True])
def test_an_event_keyed_by_another_model_is_dead_lettered_with_both_named(typed: bool) -> None:
    assert outcome(prediction("n"), b"m", typed=typed) == ([], [("key_mismatch", None,
                                                                  "model_id")])
    assert outcome(label("n"), b"m", LABEL) == ([], [("key_mismatch", None, "model_id")])
    (refusal,) = decode_message(orjson.dumps(prediction("n")), PREDICTION, REJECT, b"m").rejected
    assert refusal.reason.startswith("model_id 'n' differs from the message key 'm': ")
    assert "limits.key_policy: accept" in refusal.reason


@pytest.mark.parametrize("typed", [False, True])
def test_in_an_array_only_the_events_of_another_model_are_refused(typed: bool) -> None:
    mixed = [prediction("m", 1), prediction("n", 2), prediction("m", 3)]
    assert outcome(mixed, b"m", typed=typed) == (["e1", "e3"], [("key_mismatch", 1, "model_id")])


@pytest.mark.parametrize("key", [None, b"", ""])
def test_a_message_without_a_key_is_accepted(key: bytes | str | None) -> None:
    assert outcome([prediction("m", 1), prediction("n", 2)], key) == (["e1", "e2"], [])


def test_the_accept_policy_monitors_the_event_where_it_landed() -> None:
    assert outcome(prediction("n"), b"m", limits=ACCEPT) == (["e0"], [])
    assert outcome(label("n"), b"m", LABEL, limits=ACCEPT) == (["e0"], [])


def test_a_key_that_is_not_utf8_names_no_model() -> None:
    assert outcome(prediction("m"), b"\xff") == ([], [("key_mismatch", None, "model_id")])
    (refusal,) = decode_message(orjson.dumps(prediction()), PREDICTION, REJECT,
                                b"\xff").rejected
    assert "message key bytes b'\\xff'" in refusal.reason


def test_other_refusals_come_before_the_key_check() -> None:
    assert outcome({**prediction("n"), "ts": "soon"}, b"m") == (
        [], [("invalid_value", None, "ts")])


model_ids = st.sampled_from(["m", "n", "é", ""]) | st.text(max_size=3)
keys = st.none() | st.sampled_from([b"m", b"n", "m", b"", b"\xff"]) | st.binary(max_size=3)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.builds(prediction, model_ids, st.integers(0, 9)), max_size=4)
       | st.builds(prediction, model_ids), keys, st.booleans())
def test_fast_typed_and_slow_paths_check_keys_alike(document: Any, key: bytes | str | None,
                                                    typed: bool) -> None:
    raw = json.dumps(document).encode()
    slow = decode_message(raw, PREDICTION, REJECT, key)
    expected = ([e["event_id"] for e in slow.events],
                [(r.error, r.index, r.path) for r in slow.rejected])
    assert outcome(document, key, typed=typed) == expected
