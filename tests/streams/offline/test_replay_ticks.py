"""Replay with --control: ticks read where their predictions_offset puts them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson

from streams.core.partition import PartitionState
from streams.core.step import PartitionStep
from streams.offline.replay import replay
from streams.settings import load_settings
from streams.state.pending import MemoryPendingStore
from tests.messages import Record

SETTINGS = load_settings(environ={
    "DRIFTLINE_MONITOR_REFERENCE_SIZE": "1000", "DRIFTLINE_MONITOR_WINDOW_SIZE": "500",
    "DRIFTLINE_TICKS_IDLE_CLOSE_S": "60", "DRIFTLINE_TICKS_NO_DATA_AFTER_S": "120",
    "DRIFTLINE_TICKS_MIN_WINDOW_EVENTS": "100"})
T0 = 1_800_000_000.0


def predictions(seed: int) -> list[bytes]:
    """Model a sends 1,300 events then 20 more much later; model b sends 1,100 throughout."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(1300):
        for model_id in ("a", "b") if i < 1100 else ("a",):
            lines.append(orjson.dumps({
                "model_id": model_id, "model_version": "v1", "event_id": f"{model_id}{i}",
                "ts": T0 + i, "features": {"x": float(rng.normal()), "y": float(rng.normal())},
                "prediction": int(rng.random() < 0.3)}))
    for i in range(20):
        lines.append(orjson.dumps({
            "model_id": "a", "model_version": "v1", "event_id": f"late{i}", "ts": T0 + 9000 + i,
            "features": {"x": 0.0, "y": 0.0}, "prediction": 0}))
    return lines


def ticks(after: list[int], start: float) -> list[dict[str, Any]]:
    """One tick every 30 s, each sent when ``after[k]`` predictions had been read."""
    return [{"command": "tick", "ts": start + 30.0 * k, "predictions_offset": offset,
             "partition": 0} for k, offset in enumerate(after)]


def read_alerts(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def alerts_of(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, int | None]]:
    return [(a["alert_id"], a["kind"], a["status"], a["window"].get("events")) for a in rows]


def test_replay_with_ticks_gives_the_live_step_s_alerts(tmp_path: Path) -> None:
    lines = predictions(seed=3)
    quiet_at = len(lines) - 20          # a's 20 late events come after the ticks below
    # Ticks while both models send (offsets inside the stream), then 12 ticks of silence.
    sent = ticks([500, 1500, 2000] + [quiet_at] * 12, T0 + 10_000)
    # Live: the consumer reads each tick some records after its offset.
    records = [Record("p", offset, value) for offset, value in enumerate(lines)]
    live = PartitionStep(SETTINGS, MemoryPendingStore(), ("p", "l", "c"))
    state = PartitionState.fresh(SETTINGS, 0)
    merged: list[Record] = []
    position = 0
    for number, tick in enumerate(sent):
        read_at = min(tick["predictions_offset"] + 37, quiet_at)
        merged += records[position:read_at]
        position = max(position, read_at)
        merged.append(Record("c", number, orjson.dumps(tick)))
    merged += records[position:]
    live_alerts: list[dict[str, Any]] = []
    windows = 0
    for start in range(0, len(merged), 700):
        output = live(state, merged[start:start + 700])
        live_alerts += output.alerts
        windows += output.windows
    # Offline: the predictions file and the ticks as the control topic holds them.
    (tmp_path / "p.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "c.jsonl").write_bytes(b"\n".join(map(orjson.dumps, sent)) + b"\n")
    stats = replay(SETTINGS, tmp_path / "p.jsonl", tmp_path / "alerts.jsonl",
                   control=tmp_path / "c.jsonl", progress=None)
    replayed = read_alerts(tmp_path / "alerts.jsonl")
    assert alerts_of(replayed) == alerts_of(live_alerts)
    assert stats.windows == windows
    # What the ticks did: a's 200-event window closed (a, and b's 100: b was quiet too), then
    # both fired no_data; a's late events resolved its alert.
    no_data = [(a["model_id"], a["status"]) for a in replayed if a["kind"] == "no_data"]
    assert no_data == [("a", "firing"), ("b", "firing"), ("a", "resolved")]


def test_a_replay_without_control_has_no_quiet_models(tmp_path: Path) -> None:
    lines = predictions(seed=4)
    (tmp_path / "p.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    replay(SETTINGS, tmp_path / "p.jsonl", tmp_path / "alerts.jsonl", progress=None)
    replayed = read_alerts(tmp_path / "alerts.jsonl")
    assert [a for a in replayed if a["kind"] == "no_data"] == []


def test_malformed_control_lines_are_dead_lettered_in_place(tmp_path: Path) -> None:
    lines = predictions(seed=5)[:10]
    (tmp_path / "p.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "c.jsonl").write_bytes(b'{"command": "tick"}\nnot json\n')
    replay(SETTINGS, tmp_path / "p.jsonl", tmp_path / "alerts.jsonl",
           control=tmp_path / "c.jsonl", deadletter_out=tmp_path / "dead.jsonl", progress=None)
    dead = [orjson.loads(line) for line in (tmp_path / "dead.jsonl").read_bytes().splitlines()]
    assert [(d["source"]["topic"], d["source"]["offset"], d["error"]) for d in dead] == [
        (str(tmp_path / "c.jsonl"), 1, "missing_field"),
        (str(tmp_path / "c.jsonl"), 2, "invalid_json")]
