"""Two replays of the same files write the same bytes: outputs carry event time only."""

from __future__ import annotations

from pathlib import Path

import orjson

from detectors.synthetic import ScenarioSpec
from streams.offline.replay import CHUNK_LINES, replay
from streams.offline.simulate import write_scenario
from streams.settings import load_settings
from tests.contract import validate


def replay_into(out: Path, predictions: Path, labels: Path) -> dict[str, bytes]:
    out.mkdir()
    paths = {name: out / f"{name}.jsonl" for name in ("alerts", "retrain", "deadletter",
                                                          "audit")}
    replay(load_settings(environ={}), predictions, paths["alerts"], labels=labels,
           deadletter_out=paths["deadletter"], retrain_out=paths["retrain"], progress=None,
           audit_out=paths["audit"])
    return {name: path.read_bytes() for name, path in paths.items()}


def test_two_replays_of_the_same_files_are_byte_identical(tmp_path: Path) -> None:
    files = write_scenario(ScenarioSpec("concept_change", 60_000, label_delay_events=500),
                           tmp_path / "sim")
    # A broken line in the middle: its dead letter is an output too.
    lines = files.predictions.read_bytes().splitlines(keepends=True)
    files.predictions.write_bytes(b"".join(lines[:30_000]) + b"{broken\n"
                                  + b"".join(lines[30_000:]))

    first = replay_into(tmp_path / "first", files.predictions, files.labels)
    second = replay_into(tmp_path / "second", files.predictions, files.labels)

    assert all(first.values()), {name: len(data) for name, data in first.items()}
    assert first == second

    events = [orjson.loads(line) for line in lines]
    last_ts = events[-1]["ts"]
    for alert in map(orjson.loads, first["alerts"].splitlines()):
        validate(alert, "alert")
        assert alert["ts"] == alert["window"]["end_ts"], alert
    for request in map(orjson.loads, first["retrain"].splitlines()):
        validate(request, "retrain")
        assert request["training_window"]["end_ts"] <= request["ts"] <= last_ts
    audit = [orjson.loads(line) for line in first["audit"].splitlines()]
    for record in audit:
        validate(record, "audit")
    kinds = [r["kind"] for r in audit]
    assert kinds[:2] == ["config", "reference_set"], kinds
    # Every alert and retrain request is in the trail, in the order they were published.
    alert_ids = [orjson.loads(line)["alert_id"] for line in first["alerts"].splitlines()]
    assert [r["audit_id"] for r in audit if r["kind"] == "alert"] == alert_ids
    retrain_ids = [orjson.loads(line)["retrain_id"] for line in first["retrain"].splitlines()]
    assert [r["audit_id"] for r in audit if r["kind"] == "retrain_request"] == retrain_ids
    # Stamped with event time: a reference at its last event, an alert at its window's end.
    assert audit[1]["ts"] == audit[1]["details"]["reference"]["end_ts"]
    (dead,) = map(orjson.loads, first["deadletter"].splitlines())
    validate(dead, "deadletter")
    # Stamped with the newest prediction of its chunk (the broken line is line 30,001).
    chunk_end = (30_000 // CHUNK_LINES + 1) * CHUNK_LINES     # a line number
    assert dead["ts"] == events[chunk_end - 2]["ts"], dead    # one line of the chunk is broken
