"""``--log-format json`` (or ``log.format``) writes one JSON object per log line."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.ui.logs import configure_logging


def run_replay(tmp_path: Path, *options: str, **env: str) -> subprocess.CompletedProcess[str]:
    predictions = tmp_path / "p.jsonl"
    predictions.write_text('{"model_id": "m", "model_version": "v", "event_id": "e1", "ts": 1, '
                           '"features": {"x": 1.0}, "prediction": 0}\n')
    # A deprecated variable: loading the settings logs a warning.
    environ = {**os.environ, "DRIFTLINE_METRICS_PORT": "9000", **env}
    return subprocess.run([sys.executable, "-m", "streams.ui.cli", *options, "replay",
                           "--predictions", str(predictions), "--out", str(tmp_path / "a.jsonl"),
                           "--quiet"], env=environ, capture_output=True, text=True, timeout=120,
                          check=True)


def log_lines(stderr: str) -> list[str]:
    # The replay's closing summary is printed, not logged.
    return [line for line in stderr.splitlines() if not line.startswith("replayed ")]


@pytest.mark.parametrize("how", ["option", "setting"])
def test_json_logs_are_one_object_per_line(tmp_path: Path, how: str) -> None:
    done = (run_replay(tmp_path, "--log-format", "json") if how == "option"
            else run_replay(tmp_path, DRIFTLINE_LOG_FORMAT="json"))
    lines = log_lines(done.stderr)
    records = [orjson.loads(line) for line in lines]       # every line parses
    warnings = [r for r in records if r["level"] == "WARNING"
                and "worker.metrics_port is deprecated" in r["message"]]
    assert len(warnings) == 1, done.stderr
    assert warnings[0]["logger"] == "driftline.settings"
    assert warnings[0]["ts"].endswith("+00:00")


def test_text_logs_stay_the_default(tmp_path: Path) -> None:
    lines = log_lines(run_replay(tmp_path).stderr)
    assert any(" WARNING driftline.settings: worker.metrics_port is deprecated" in line
               for line in lines), lines
    assert not any(line.startswith("{") for line in lines)


def test_an_exception_is_kept_in_its_record() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("INFO", "json", stream)
    try:
        try:
            raise ValueError("broken input")
        except ValueError:
            logging.getLogger("driftline.test").exception("step failed")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    record = orjson.loads(stream.getvalue())
    assert record["message"] == "step failed" and record["level"] == "ERROR"
    assert "ValueError: broken input" in record["exc_info"]
