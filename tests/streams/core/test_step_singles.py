"""One-event messages of typed models are decoded a run at a time: the same step as one by one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from detectors.synthetic import ScenarioSpec, iter_chunks
from streams.core.engine import MonitorEngine
from streams.core.labels import LabelEngine
from streams.core.messages import Line, LineRun
from streams.core.partition import PartitionState, StepOutput
from streams.core.step import PartitionStep
from streams.ingest.batch import BatchDecoder
from streams.ingest.typed import TypedModels
from streams.settings import Settings, load_settings
from streams.state.pending import MemoryPendingStore
from tests.messages import Record


def _settings() -> Settings:
    # Runs of 300 messages: a batch of 1,500 is five runs, each flushed like the loop does.
    return load_settings(environ={"DRIFTLINE_WORKER_BATCH_SIZE": "300",
                                  "DRIFTLINE_WORKER_GROUP_EVENTS": "1"})


def _messages(settings: Settings, spoilt: bool) -> list[list[Record]]:
    topic = settings.topics.name("predictions")
    stream, _ = next(iter_chunks(ScenarioSpec("stationary", 3000, seed=4), chunk_size=3000))
    values = [orjson.dumps(event) for event in stream]
    keys: list[bytes | None] = [b"credit-risk"] * len(values)
    assert stream[0]["model_id"] == "credit-risk"
    if spoilt:
        values[2150] = values[2150][:-5]                              # malformed JSON
        keys[2200] = b"another-model"                                 # key mismatch
        values[2250] = orjson.dumps(stream[2250:2252])                # an array of two
        values[2300] = values[2300].replace(b'"score":', b'"score":1e999,"x":', 1)   # inf
        values[2500] = orjson.dumps({**stream[2500], "model_id": "new-model"})
        keys[2500] = None                                             # no key: not checked
    records = [Record(topic, n, value, key)
               for n, (value, key) in enumerate(zip(values, keys, strict=True))]
    return [records[:1500], records[1500:]]


def _run(settings: Settings, batches: list[list[Record]], monkeypatch: pytest.MonkeyPatch
         ) -> dict[str, Any]:
    """Step ``batches``; the last step's outputs, the state, and every group a monitor got."""
    groups: list[int] = []
    process_groups = MonitorEngine.process_groups

    def record(self: MonitorEngine, by_version: dict[Any, list[Any]], *rest: Any) -> Any:
        groups.extend(len(group) for group in by_version.values())
        return process_groups(self, by_version, *rest)

    monkeypatch.setattr(MonitorEngine, "process_groups", record)
    state = PartitionState.fresh(settings, 0)
    step = PartitionStep(settings, MemoryPendingStore())
    output = StepOutput()
    for batch in batches:
        output = step(state, batch)
    monkeypatch.setattr(MonitorEngine, "process_groups", process_groups)
    return {**_summary(output, state), "groups": groups}


def _summary(output: StepOutput, state: PartitionState) -> dict[str, Any]:
    return {"events": output.events, "windows": output.windows,
            "messages": dict(output.messages), "offsets": dict(state.offsets),
            "dead_letters": [(key, letter["reason"], letter.get("offset"))
                             for key, letter in output.dead_letters],
            "alerts": [alert["alert_id"] for alert in output.alerts],
            "reports": [(m, v, r.index, r.events) for m, v, r, _ in output.reports],
            "monitors": sorted((key, monitor.events)
                               for key, monitor in state.monitors._monitors.items())}


@pytest.mark.parametrize("spoilt", [False, True], ids=["clean", "spoilt"])
def test_runs_of_one_event_messages_step_as_message_by_message(
        monkeypatch: pytest.MonkeyPatch, spoilt: bool) -> None:
    settings = _settings()
    taken: list[int] = []
    add_singles = BatchDecoder.add_singles

    def counting(self: BatchDecoder, values: list[Any], *rest: Any) -> bool:
        took = add_singles(self, values, *rest)
        taken.append(len(values) if took else 0)
        return took

    monkeypatch.setattr(BatchDecoder, "add_singles", counting)
    runs = _run(settings, _messages(settings, spoilt), monkeypatch)
    # The second batch's runs were taken whole (the first batch's model had no type yet);
    # with a spoilt message, the loop takes over at its run's start (message 2,100).
    assert sum(taken) == (1500 if not spoilt else 600)
    monkeypatch.setattr(PartitionStep, "_single_events", staticmethod(lambda *_: 0))
    one_by_one = _run(settings, _messages(settings, spoilt), monkeypatch)
    assert runs == one_by_one
    if not spoilt:
        assert runs["groups"][-5:] == [300] * 5     # each run flushed where the loop would
    assert runs["events"] == 1500 + (1 if spoilt else 0) - (3 if spoilt else 0)
    if spoilt:
        assert len(runs["dead_letters"]) == 3


def test_array_messages_are_not_decoded_as_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run decoder would refuse them after decoding them all: they never reach it."""
    settings = _settings()
    topic = settings.topics.name("predictions")
    stream, _ = next(iter_chunks(ScenarioSpec("stationary", 3000, seed=4), chunk_size=3000))
    batches = [[Record(topic, n, orjson.dumps(stream[s:s + 10]), b"credit-risk")
                for n, s in enumerate(range(start, start + 1500, 10), start // 10)]
               for start in (0, 1500)]
    runs: list[int] = []
    decode_singles = TypedModels.decode_singles

    def counting(self: TypedModels, values: list[bytes], *rest: Any) -> Any:
        runs.append(len(values))
        return decode_singles(self, values, *rest)

    monkeypatch.setattr(TypedModels, "decode_singles", counting)
    state = PartitionState.fresh(settings, 0)
    step = PartitionStep(settings, MemoryPendingStore())
    assert [step(state, batch).events for batch in batches] == [1500, 1500]
    assert len(state.monitors.typed) == 1 and runs == []


@pytest.mark.parametrize("spoilt", [False, True], ids=["clean", "spoilt"])
def test_a_line_run_steps_as_its_lines(monkeypatch: pytest.MonkeyPatch, spoilt: bool) -> None:
    """Replay hands the step whole runs of lines: read as columns, the same step as line by line."""
    settings = _settings()
    batches = _messages(settings, spoilt)
    topic = settings.topics.name("predictions")
    as_runs = [LineRun(topic, batch[0].offset(), [record.value() for record in batch])
               for batch in batches]
    as_lines: list[list[Record | Line]] = [
        [Line(topic, line.offset(), line.value()) for line in run] for run in as_runs]
    from_runs = _run(settings, as_runs, monkeypatch)  # type: ignore[arg-type]
    assert from_runs == _run(settings, as_lines, monkeypatch)  # type: ignore[arg-type]
    assert from_runs["offsets"] == {topic: 3000}
    # Spoilt, without keys: two lines refused, one an array of two events.
    assert from_runs["events"] == (1499 if spoilt else 1500)
    reasons = [letter[1].split(":")[0] for letter in from_runs["dead_letters"]]
    assert reasons == (["not valid JSON"] * 2 if spoilt else [])        # 1e999 too


def test_interleaved_models_step_as_message_by_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """A keyed run of several models is decoded a model at a time: nothing else changes."""
    settings = _settings()
    topic = settings.topics.name("predictions")
    streams = []
    for seed, model_id in enumerate(("m-a", "m-b", "m-c")):
        stream, _ = next(iter_chunks(ScenarioSpec("stationary", 1000, seed=seed),
                                     chunk_size=1000))
        streams.append([{**event, "model_id": model_id, "event_id": f"{model_id}-{n}"}
                        for n, event in enumerate(stream)])
    # Interleaved as a shared topic holds them: a, b, c, a, b, c, ... then a tail of a.
    order = [event for trio in zip(*(s[:900] for s in streams), strict=True)
             for event in trio] + streams[0][900:]
    records = [Record(topic, n, orjson.dumps(event), event["model_id"].encode())
               for n, event in enumerate(order)]
    batches = [records[:1500], records[1500:]]
    offset_of = {event["event_id"]: n for n, event in enumerate(order)}
    pending: list[bool] = []
    grouped: list[int] = []
    on_predictions, add_singles = LabelEngine.on_predictions, BatchDecoder.add_singles

    def checking(self: LabelEngine, model_id: str, events: list[Any], offsets: Any,
                 *rest: Any) -> Any:
        # Each event keeps its own message's offset, however the run was reordered.
        pending.append(all(offset_of[event.event_id if not isinstance(event, dict)
                                     else event["event_id"]] == offset
                           for event, offset in zip(events, offsets.tolist(), strict=True)))
        return on_predictions(self, model_id, events, offsets, *rest)

    def counting(self: BatchDecoder, values: list[Any], *rest: Any) -> bool:
        took = add_singles(self, values, *rest)
        grouped.append(len(values) if took else 0)
        return took

    monkeypatch.setattr(LabelEngine, "on_predictions", checking)
    monkeypatch.setattr(BatchDecoder, "add_singles", counting)
    runs = _run(settings, batches, monkeypatch)
    assert pending and all(pending) and sum(grouped) == 1300     # the second batch: one run
    monkeypatch.setattr(PartitionStep, "_single_events", staticmethod(lambda *_: 0))
    one_by_one = _run(settings, batches, monkeypatch)
    # Models may reach the monitors in another order; each model sees the same events.
    for summary in (runs, one_by_one):
        summary["groups"] = sorted(summary["groups"])
        summary["alerts"] = sorted(summary["alerts"])
        summary["reports"] = sorted(summary["reports"])
    assert runs == one_by_one
    assert runs["offsets"] == {topic: 2800} and runs["events"] == 1300
    assert {key[0] for key, _ in runs["monitors"]} == {"m-a", "m-b", "m-c"}


class _NoOffset(Record):
    """A message built by hand, without an offset (the step's protocol allows ``None``)."""

    def offset(self) -> Any:
        return None


def test_messages_without_offsets_step_like_the_others_and_move_no_offset() -> None:
    settings = _settings()
    batches = _messages(settings, spoilt=True)
    unnumbered = [[_NoOffset(r.topic(), 0, r.value(), r.key()) for r in batch]
                  for batch in batches]
    summaries = []
    for run in (batches, unnumbered):
        state = PartitionState.fresh(settings, 0)
        step = PartitionStep(settings, MemoryPendingStore())
        output = StepOutput()
        for batch in run:
            output = step(state, batch)
        summaries.append(_summary(output, state))
    numbered, bare = summaries
    assert bare["offsets"] == {} and numbered["offsets"]
    assert {**bare, "offsets": None, "dead_letters": None} == {
        **numbered, "offsets": None, "dead_letters": None}
    assert [reason for _, reason, _ in bare["dead_letters"]] == [
        reason for _, reason, _ in numbered["dead_letters"]]


def test_a_tombstone_among_one_event_messages_is_refused_and_the_rest_step() -> None:
    settings = _settings()
    first, second = _messages(settings, spoilt=False)
    tombstone = Record(second[100].topic(), second[100].offset(), None, second[100].key())
    second = [*second[:100], tombstone, *second[101:]]
    summaries = []
    for singles in (True, False):
        state = PartitionState.fresh(settings, 0)
        step = PartitionStep(settings, MemoryPendingStore())
        if not singles:
            step._single_events = lambda *_: 0  # type: ignore[method-assign]
        step(state, first)
        summaries.append(_summary(step(state, second), state))
    assert summaries[0] == summaries[1]
    assert summaries[0]["events"] == 1499
    [(_, reason, _)] = summaries[0]["dead_letters"]
    assert reason == "empty message"
