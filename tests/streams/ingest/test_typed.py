"""Typed decoding of known models: the same events, columns and refusals as the generic path."""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.batch import CategoricalColumn, NumericColumn
from detectors.synthetic import ScenarioSpec, iter_chunks
from streams.core.label_columns import pending_rows
from streams.core.messages import Line
from streams.core.partition import PartitionState
from streams.core.step import PartitionStep
from streams.ingest.batch import BatchDecoder
from streams.ingest.columnar import build_batch
from streams.ingest.decode import PREDICTION
from streams.ingest.typed import TypedModels, untyped
from streams.settings import LimitSettings, load_settings
from streams.state.pending import MemoryPendingStore

LIMITS = LimitSettings(max_message_bytes=10_000, max_events_per_message=50, max_features=3)
SCHEMA = {"a": "numeric", "b": "categorical"}
OUTPUTS = {"prediction": "numeric", "score": "numeric"}
GOOD = {"model_id": "m", "model_version": "v1", "event_id": "e1", "ts": 1.5,
        "features": {"a": 1.0, "b": "x"}, "prediction": 1, "score": 0.7}

scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=3)
           | st.sampled_from([1e308, -1e308, "x" * 257]))
values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.text(max_size=2), scalars,
                                                                   max_size=2)
features = st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3)
events = st.builds(
    lambda changes, removed, feats: {**{k: v for k, v in GOOD.items() if k not in removed},
                                     "features": feats, **changes},
    st.dictionaries(st.sampled_from(["model_id", "model_version", "prediction", "score",
                                     "scores", "segments", "ts", "event_id"]),
                    values | st.sampled_from(["m", "v1", "v2"]), max_size=2),
    st.sets(st.sampled_from(["score", "prediction"]), max_size=1),
    features)


def _generic(raw: bytes) -> list[dict[str, Any]]:
    decoder = BatchDecoder(PREDICTION, LIMITS)
    decoder.add(raw, 0)
    batch = decoder.take()
    assert not batch.rejected, "the typed path took a message the generic path refuses"
    return batch.events


def _column(column: Any) -> Any:
    if isinstance(column, NumericColumn):
        return column.values.tolist(), column.missing.tolist()
    assert isinstance(column, CategoricalColumn)
    return list(column.values)


def _batch(events: list[Any]) -> Any:
    batch, problems = build_batch(events, SCHEMA, OUTPUTS)
    return ({n: _column(c) for n, c in batch.columns.items()},
            {n: _column(c) for n, c in batch.outputs.items()},
            batch.ts.tolist(), batch.rejected,
            [(p.row, p.error, p.path, p.reason) for p in problems])


def _pending(events: list[Any]) -> Any:
    rows = pending_rows(events, np.arange(len(events), dtype=np.int64), feature_every=1)
    nan_equal = [None if math.isnan(v) else v for v in rows.confidence.tolist()]
    return (rows.event_ids, rows.versions, rows.ts.tolist(), rows.predictions,
            [None if math.isnan(v) else v for v in rows.score.tolist()], nan_equal,
            rows.segments,
            [{name: _number(f.get(name), kind) for name, kind in SCHEMA.items()}
             if f is not None else None for f in rows.features or []])


def _number(value: Any, kind: str) -> Any:
    # The typed path reads a numeric feature as float64, the generic path keeps the JSON
    # integer: equal as numbers, except beyond 2**53 (9007199254740993 is read 2**53).
    if kind == "numeric" and type(value) is int:
        return float(value)
    return value


@settings(max_examples=800, deadline=None)
@given(st.lists(events, min_size=1, max_size=3) | events)
def test_typed_events_read_as_the_generic_path_reads_them(document: Any) -> None:
    raw = json.dumps(document).encode()     # stdlib: also integers beyond 64 bits
    models = TypedModels()
    models.register("m", "v1", SCHEMA)
    typed = models.decode(raw)
    if typed is None:
        return      # the generic path decides, as without typed decoding
    generic = _generic(raw)
    assert len(typed) == len(generic)
    assert _batch(typed) == _batch(generic)
    assert _pending(typed) == _pending(generic)
    for event, plain in zip(typed, generic, strict=True):
        assert untyped(event)["features"] == {name: _number(plain["features"].get(name), kind)
                                              for name, kind in SCHEMA.items()}


def _typed_or_none(raw: dict[str, Any]) -> list[Any] | None:
    models = TypedModels()
    models.register("m", "v1", SCHEMA)
    return models.decode(orjson.dumps(raw))


@pytest.mark.parametrize(("change", "why"), [
    ({"model_id": "other"}, "a model without a schema"),
    ({"model_version": "v2"}, "a version without a monitor"),
    ({"features": {"a": 1.0, "c": 2.0}}, "a feature outside the schema"),
    ({"features": {"a": True}}, "a boolean where a number is expected"),
    ({"features": {"b": 3}}, "a number where a category is expected"),
    ({"score": None}, "a null score (refused by the contract)"),
    ({"ts": "2026-01-01T00:00:00Z"}, "an RFC 3339 ts (the generic path converts it)"),
])
def test_anything_but_an_exact_match_is_left_to_the_generic_path(change: dict[str, Any],
                                                                  why: str) -> None:
    assert _typed_or_none({**GOOD, **change}) is None, why
    assert _typed_or_none(GOOD) is not None


def test_a_new_schema_sends_the_models_older_versions_back_to_the_generic_path() -> None:
    models = TypedModels()
    models.register("m", "v1", SCHEMA)
    models.register("m", "v2", {"a": "numeric"})
    assert models.decode(orjson.dumps({**GOOD, "model_version": "v2",
                                       "features": {"a": 2.0}})) is not None
    assert models.decode(orjson.dumps(GOOD)) is None
    models.forget("m")
    assert len(models) == 0


def _messages(settings: Any) -> list[Any]:
    """A 2-model stream in 40-event messages, with the odd messages that leave the typed path."""
    spec = ScenarioSpec("stationary", 12_000, seed=3)
    stream, _ = next(iter_chunks(spec, chunk_size=12_000))
    for i, event in enumerate(stream):
        event["model_id"] = f"model-{i % 2}"
        if i % 997 == 0:
            event["features"]["extra"] = 1.0          # a feature outside the schema
        if i % 1499 == 0:
            event["features"]["age"] = "old"          # a wrong type: dead-lettered
        if i >= 9_000 and i % 2:
            event["model_version"] = "v2"             # a new version mid-stream
    topic = settings.topics.name("predictions")
    return [Line(topic, n, orjson.dumps(stream[s:s + 40]))
            for n, s in enumerate(range(0, len(stream), 40))]


def _run(monkeypatch: pytest.MonkeyPatch, typed: bool) -> Any:
    settings = load_settings(environ={"DRIFTLINE_REFERENCE_SIZE": "2000",
                                      "DRIFTLINE_WINDOW_SIZE": "500"})
    if not typed:
        monkeypatch.setattr(TypedModels, "decode", lambda self, value, key=None: None)
    messages = _messages(settings)
    state = PartitionState.fresh(settings, 0)
    store = MemoryPendingStore()
    step = PartitionStep(settings, store)
    alerts, dead, windows, events = [], [], 0, 0
    for start in range(0, len(messages), 50):
        output = step(state, messages[start:start + 50])
        # ``ts`` of an alert is when it was raised (wall clock), not part of what is compared.
        alerts += [msgspec.json.encode({k: v for k, v in a.items() if k != "ts"})
                   for a in output.alerts]
        dead += [(d["error"], d["reason"], d["source"]["offset"]) for _, d in output.dead_letters]
        windows += output.windows
        events += output.events
    monkeypatch.undo()
    return alerts, dead, windows, events, state.monitors.to_state()["models"]


def test_a_step_gives_the_same_outputs_and_state_with_typed_decoding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    typed, generic = _run(monkeypatch, True), _run(monkeypatch, False)
    alerts, dead, windows, events, models = typed
    assert events == 12_000 and windows > 10 and dead and alerts and len(models) == 3
    assert typed == generic


@pytest.mark.parametrize("name", ["credit-score", "credit score", "1st", "__init__", "__repr__"])
def test_a_feature_name_that_cannot_be_a_struct_field_keeps_the_model_generic(name: str) -> None:
    # msgspec refused such a field with a TypeError, which stopped the worker at the model's
    # first events (issue #14).
    models = TypedModels()
    models.register("m", "v1", SCHEMA)
    models.register("m", "v2", {**SCHEMA, name: "numeric"})
    assert len(models) == 0 and models.decode(orjson.dumps(GOOD)) is None
    settings = load_settings(environ={})
    state = PartitionState.fresh(settings, 0)
    event = {**GOOD, "features": {name: 1.0, "b": "x"}}
    output = PartitionStep(settings, MemoryPendingStore())(
        state, [Line(settings.topics.name("predictions"), 0, orjson.dumps([event] * 3))])
    assert output.events == 3 and not output.dead_letters


def _singles(model_id: str, version: str, count: int) -> list[bytes]:
    return [orjson.dumps({**GOOD, "model_id": model_id, "model_version": version,
                          "event_id": f"{model_id}-{n}"}) for n in range(count)]


@pytest.mark.parametrize(("keys", "second_version", "typed"), [
    ([b"m"] * 3 + [b"n"] * 2, "v1", True),          # one allowed version per run
    ([b"m"] * 3 + [b"m"] * 2, "v1", False),         # the second run's key names another model
    ([b"m"] * 3 + [None] * 2, "v1", True),          # no key: no key check
    ([b"m"] * 3 + [b"n"] * 2, "v9", False),         # a version never registered
])
def test_runs_of_one_key_type_exactly_as_the_messages_one_by_one(
        keys: list[bytes | None], second_version: str, typed: bool) -> None:
    models = TypedModels()
    models.register("m", "v1", SCHEMA)
    models.register("n", "v1", SCHEMA)
    values = _singles("m", "v1", 3) + _singles("n", second_version, 2)
    by_run = models.decode_singles(values, keys, runs=[3, 2])
    assert (by_run is not None) is typed
    assert by_run == models.decode_singles(values, keys)


def test_a_run_of_several_versions_is_checked_message_by_message() -> None:
    models = TypedModels()
    models.register("m", "v1", SCHEMA)
    models.register("m", "v2", SCHEMA)
    values = _singles("m", "v1", 2) + _singles("m", "v2", 2)
    decoded = models.decode_singles(values, [b"m"] * 4, runs=[4])
    assert decoded is not None
    assert [event.model_version for event in decoded] == ["v1", "v1", "v2", "v2"]
    models.forget("m", "v2")
    assert models.decode_singles(values, [b"m"] * 4, runs=[4]) is None
    # An array among them is never typed as a single event.
    assert models.decode_singles([*values[:2], b"[" + values[0] + b"]"], [b"m"] * 3,
                                 runs=[3]) is None
