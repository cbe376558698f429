from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.ui.cli import build_parser, main
from tests.contract import validate


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.ui.cli", *args], capture_output=True,
                          text=True, timeout=300)


def alerts_of(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_stationary_200k_events_replay_without_a_single_alert(tmp_path: Path) -> None:
    assert cli("simulate", "--scenario", "stationary", "--events", "200000",
               "--out", str(tmp_path)).returncode == 0
    done = cli("replay", "--predictions", str(tmp_path / "predictions.jsonl"),
               "--labels", str(tmp_path / "labels.jsonl"), "--out", str(tmp_path / "a.jsonl"))
    assert done.returncode == 0, done.stderr
    assert "replayed 200,000 events" in done.stderr and "events/s" in done.stderr
    assert alerts_of(tmp_path / "a.jsonl") == []


def test_mean_shift_replay_alerts_on_the_shifted_feature_after_the_drift(tmp_path: Path) -> None:
    assert cli("simulate", "--scenario", "mean_shift", "--events", "60000",
               "--out", str(tmp_path)).returncode == 0
    truth = orjson.loads((tmp_path / "truth.json").read_bytes())
    assert main(["replay", "--predictions", str(tmp_path / "predictions.jsonl"), "--out",
                 str(tmp_path / "a.jsonl"), "--quiet"]) == 0
    alerts = alerts_of(tmp_path / "a.jsonl")
    drift_ts = truth["start_ts"] + truth["drift_at"] / truth["events_per_second"]
    drifted = [a for a in alerts if a["kind"] == "data_drift"]
    assert [a["feature"] for a in drifted] == ["credit_score"]
    assert drifted[0]["window"]["end_ts"] >= drift_ts
    for alert in alerts:
        validate(alert, "alert")


def test_replay_writes_dead_letters_for_bad_lines(tmp_path: Path) -> None:
    good = {"model_id": "m", "model_version": "v", "event_id": "1", "ts": 1, "features": {"x": 1},
            "prediction": 0}
    predictions = tmp_path / "p.jsonl"
    bad_type = dict(good, features={"x": "high"})
    predictions.write_bytes(orjson.dumps(good) + b"\n{broken\n" + orjson.dumps([good, {}]) +
                            b"\n" + orjson.dumps(bad_type) + b"\n")
    assert main(["replay", "--predictions", str(predictions), "--out", str(tmp_path / "a.jsonl"),
                 "--deadletter", str(tmp_path / "dead.jsonl"), "--quiet"]) == 0
    dead = alerts_of(tmp_path / "dead.jsonl")
    assert [(d["error"], d["source"]["offset"]) for d in dead] == [
        ("invalid_json", 2), ("missing_field", 3), ("wrong_type", 4)]
    for record in dead:
        validate(record, "deadletter")


def test_errors_exit_2_with_a_clear_message(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--predictions", str(tmp_path / "none.jsonl"), "--out", "x"]) == 2
    assert "no such file" in capsys.readouterr().err
    config = tmp_path / "bad.yaml"
    config.write_text("monitor:\n  window_size: 3\n")
    assert main(["--config", str(config), "replay", "--predictions", str(config), "--out",
                 str(tmp_path / "a")]) == 2
    assert "monitor.window_size: expected an integer >= 100, got 3" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["worker", "up", "demo", "replay", "simulate", "rebaseline",
                                     "tail", "status",
                                     "bench"])
def test_every_subcommand_explains_itself(command: str) -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    text = subparsers.choices[command].format_help()  # type: ignore[attr-defined]
    assert len(text) > 200 and "usage: driftline " + command in text
