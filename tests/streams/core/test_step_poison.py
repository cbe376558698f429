"""No input stops a partition step: any bytes, keys and nesting become events or dead letters.

The real path, in process: :class:`PartitionStep` over a partition that already
knows model ``m`` (so typed decoding, schemas and column checks are live), a
pending store that encodes every blob as Redis would, every output encoded as
the worker publishes it, and the partition's state encoded as a checkpoint.
Each message is stepped on its own so that what became of it can be told: its
events were counted, or it was dead-lettered with a reason (or both, for an
event a column check refused).

One partition lives through all the examples, as in a worker: what one message
leaves in the state meets every later one (and copying the state per example
would cost more than the steps).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.partition import PartitionState
from streams.core.step import PartitionStep
from streams.ingest.deadletter import MAX_KEPT_KEY, MAX_RECORD_BYTES
from streams.settings import Settings, load_settings
from streams.state.pending import MemoryPendingStore, PendingRows
from tests.messages import Record

SETTINGS = load_settings(environ={"DRIFTLINE_REFERENCE_SIZE": "100",
                                  "DRIFTLINE_WINDOW_SIZE": "100",
                                  "DRIFTLINE_JOINED_TOPIC": "true"})
PREDICTIONS, LABELS, CONTROL = (SETTINGS.topics.name(role)
                                for role in ("predictions", "labels", "control"))
ERRORS = set(orjson.loads(
    (__import__("importlib.resources").resources.files("streams.ingest") / "schemas"
     / "deadletter.schema.json").read_bytes())["properties"]["error"]["enum"])


def Message(topic: str, offset: int, key: bytes | None,  # noqa: N802 - reads as a class
            value: bytes | None) -> Record:
    """A record with a create time, key before value (as the examples draw them)."""
    return Record(topic, offset, value, key, ts_ms=1_700_000_000_000)


class EncodingStore(MemoryPendingStore):
    """Pending blobs go through the bytes Redis would hold, and back."""

    def _persist(self, partition: int, model_id: str, first_offset: int,
                 rows: PendingRows) -> None:
        PendingRows.decode(rows.encode())


def _prediction(i: int, **changes: Any) -> dict[str, Any]:
    event = {"model_id": "m", "model_version": "v1", "event_id": f"e{i}", "ts": 1e9 + i,
             "features": {"a": float(i % 7), "b": "xyz"[i % 3]}, "prediction": i % 2,
             "score": (i % 10) / 10}
    event.update(changes)
    return event


def _primed(settings: Settings) -> tuple[PartitionState, PartitionStep]:
    """A partition whose model ``m`` has a reference and a schema, restored from a checkpoint."""
    state = PartitionState.fresh(settings, 0)
    step = PartitionStep(settings, EncodingStore())
    step(state, [Message(PREDICTIONS, n, b"m", orjson.dumps([_prediction(n * 50 + i)
                                                              for i in range(50)]))
                 for n in range(5)])
    assert len(state.monitors.typed) == 1
    restored = PartitionState.from_state(settings, 0, orjson.loads(orjson.dumps(state.to_state())),
                                         state.offsets)
    return restored, step


PARTITION, STEP = _primed(SETTINGS)
OFFSETS = itertools.count(10)
HUGE_KEY = b"k" * 1_200_000
HUGE_TS = b'{"model_id":"m","event_id":"x","label":1,"ts":"' + b"9" * 1_000_000 + b'"}'

# A JSON value nested ``depth`` deep, as text (hypothesis' recursive strategies stay shallow).
depths = st.sampled_from([2, 254, 255, 256, 300, 999, 1000, 1021, 1022, 1023, 5000]) | \
    st.integers(0, 1100)
nested = st.builds(lambda depth, brace, leaf: (("{\"k\":" if brace else "[") * depth + leaf
                                               + ("}" if brace else "]") * depth),
                   depths, st.booleans(), st.sampled_from(["1", "\"s\"", "null", "[]", "{}"]))
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=4)
           | st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                           max_leaves=4)
PLACES = ["model_id", "model_version", "event_id", "ts", "prediction", "score", "label",
          "features", "features.a", "features.b", "features.z", "scores", "scores.x",
          "segments.s", "extra", "command", "reason"]


def _event(kind: str, i: int) -> dict[str, Any]:
    if kind == "labels":
        return {"model_id": "m", "event_id": f"e{i % 250}", "ts": 1e9 + i, "label": i % 2}
    if kind == "control":
        return {"command": "rebaseline", "model_id": "m", "reason": "test"}
    return _prediction(1000 + i)


# Built once: a strategy made inside a draw costs hypothesis more than the step itself.
SHAPES = st.sampled_from(["event", "array", "bytes", "json"])
ANY_BYTES = st.binary(max_size=64)
COUNTS = st.integers(0, 3)
POISON_COUNTS = st.integers(0, 2)
INDICES = st.integers(0, 10**6)
POISON_PLACES = st.sampled_from(PLACES)
POISONS = nested | json_values.map(lambda value: json.dumps(value))
# Control commands re-baseline model m: rarer, so that it is mostly typed-decoded.
KINDS = st.sampled_from(["predictions", "predictions", "predictions", "labels", "labels",
                         "control"])
KEYS = st.sampled_from([b"m", b"m", None, b"", b"other", HUGE_KEY]) | st.binary(max_size=8)
ODD_VALUES = st.sampled_from([None, b"", HUGE_TS])
TOPICS = {"predictions": PREDICTIONS, "labels": LABELS, "control": CONTROL}


@st.composite
def documents(draw: st.DrawFn, kind: str) -> bytes | None:
    """A message of ``kind``: an event or an array, some fields poisoned; or any bytes."""
    shape = draw(SHAPES)
    if shape == "bytes":
        return draw(ANY_BYTES | ODD_VALUES)
    if shape == "json":
        return draw(POISONS).encode()
    events = [_event(kind, draw(INDICES))
              for _ in range(1 if shape == "event" else draw(COUNTS))]
    poisons: list[str] = []
    for event in events:
        for _ in range(draw(POISON_COUNTS)):
            place = draw(POISON_PLACES)
            marker = f"@@{len(poisons)}@@"
            poisons.append(draw(POISONS))
            parent, _, name = place.rpartition(".")
            target = event.setdefault(parent, {}) if parent else event
            if isinstance(target, dict):
                target[name or place] = marker
    raw = orjson.dumps(events[0] if shape == "event" and events else events)
    for n, poison in enumerate(poisons):
        raw = raw.replace(f'"@@{n}@@"'.encode(), poison.encode())
    return raw


DOCUMENTS = {kind: documents(kind) for kind in TOPICS}


@st.composite
def messages(draw: st.DrawFn) -> list[Message]:
    out = []
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(KINDS)
        topic = TOPICS[kind]
        out.append(Message(topic, next(OFFSETS), draw(KEYS), draw(DOCUMENTS[kind])))
    return out


def _expected_events(value: bytes | None) -> int | None:
    """Events in a message that must be counted when nothing of it is dead-lettered."""
    try:
        document = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        try:
            # msgspec parses deeper than orjson's 1,024 levels when the recursion limit allows
            # (hypothesis raises it): the fast path then counts an event whose unknown field
            # is that deep, and ignores the field, as it should.
            document = msgspec.json.decode(value or b"")
        except (msgspec.DecodeError, RecursionError):
            return None
    return 1 if isinstance(document, dict) else len(document) if isinstance(document, list) \
        else None


@settings(max_examples=10_000, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages())
def test_no_input_stops_the_step_and_every_message_is_counted_or_dead_lettered(
        batch: list[Message]) -> None:
    state, step = PARTITION, STEP
    for message in batch:
        output = step(state, [message])
        counted = output.events + output.labels + len(output.rebaselines)
        for key, record in output.dead_letters:
            encoded = orjson.dumps(record)      # as the worker publishes it
            assert len(encoded) + len(key or b"") <= MAX_RECORD_BYTES, len(encoded)
            assert key is None or len(key) <= MAX_KEPT_KEY
            assert record["error"] in ERRORS and record["reason"], record
            assert record["source"]["offset"] == message.offset()
        if not output.dead_letters:
            assert counted == _expected_events(message.value()), (counted, message.value())
        for record in (*output.alerts, *output.retrain, *output.joined):
            orjson.dumps(record)
        assert state.offsets[message.topic()] == message.offset() + 1
    orjson.dumps(state.to_state())              # what a checkpoint writes


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


ISSUE_CASES = {   # the poison messages of issue #14, each of which stopped the worker
    "model_id nested 1,000 deep": (b"m", b'{"model_id":' + _nested(1000) + b',"model_version":'
                                   b'"v1","event_id":"p","ts":1,"features":{},"prediction":1}'),
    "feature nested 300 deep": (b"m", orjson.dumps(_prediction(7)).replace(
        b'"b":"y"', b'"b":' + _nested(300))),
    "bad array element nested 300 deep": (b"m", b"[" + orjson.dumps(_prediction(8)) + b","
                                          + orjson.dumps({"model_id": "m", "features": {"a": 1}})
                                          .replace(b"1}", _nested(300) + b"}") + b"]"),
    "1.2 MB key": (HUGE_KEY, orjson.dumps({"model_id": "m"})),
    "feature named credit-score": (b"n", orjson.dumps([{**_prediction(9), "model_id": "n",
                                                         "features": {"credit-score": 1.0}}])),
}


@pytest.mark.parametrize("case", list(ISSUE_CASES))
def test_each_poison_of_the_issue_is_dead_lettered_and_the_step_goes_on(case: str) -> None:
    key, value = ISSUE_CASES[case]
    state = PartitionState.fresh(SETTINGS, 0)
    step = PartitionStep(SETTINGS, EncodingStore())
    good = [Message(PREDICTIONS, n, b"m", orjson.dumps([_prediction(n * 10 + i)
                                                        for i in range(10)])) for n in range(3)]
    output = step(state, [*good, Message(PREDICTIONS, 3, key, value),
                          Message(PREDICTIONS, 4, b"m", orjson.dumps(_prediction(99)))])
    assert state.offsets[PREDICTIONS] == 5
    if case == "feature named credit-score":     # a valid event: counted, on the generic path
        assert output.events == 32 and not output.dead_letters
        return
    expected = 31 + (case == "bad array element nested 300 deep")
    assert output.events == expected
    [(dead_key, record)] = output.dead_letters
    assert record["source"]["offset"] == 3 and record["reason"]
    assert len(orjson.dumps(record)) < 5000 and len(dead_key or b"") <= MAX_KEPT_KEY


def test_a_mapped_record_whose_mapping_raises_is_dead_lettered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.ingest.mapping import MappingError, RecordMapper
    from streams.settings import Settings as Plain
    from streams.settings_inputs import parse_inputs
    from tests.streams.ingest.test_mapping import PREDICTIONS as MAPPED
    from tests.streams.ingest.test_mapping import Record

    settings = Plain(inputs=parse_inputs([MAPPED], {}))
    record = Record("shop", 5, orjson.dumps({"id": "e1", "in": {"x": 1.0, "c.d": "a"},
                                             "out": [1]}), b"churn", [("v", b"1")], 1_000)

    def deep(*args: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(RecordMapper, "_event", deep)
    output = PartitionStep(settings, MemoryPendingStore())(PartitionState.fresh(settings, 0),
                                                            [record])
    [(key, dead)] = output.dead_letters
    assert (key, dead["error"], dead["source"]["offset"]) == (b"churn", "internal_error", 5)
    assert dead["reason"].startswith("unexpected RecursionError while checking the message")

    def unreachable(*args: Any) -> Any:
        raise MappingError("schema registry unreachable")

    monkeypatch.setattr(RecordMapper, "map", unreachable)
    with pytest.raises(MappingError):      # not the record's fault: the step stops
        PartitionStep(settings, MemoryPendingStore())(PartitionState.fresh(settings, 0),
                                                      [record])
