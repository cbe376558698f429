"""The benchmarks run and print their tables (how fast is for the bench, not the tests)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_replay_bench_prints_rates_and_a_ratio() -> None:
    done = subprocess.run([sys.executable, "-m", "streams.ui.cli", "bench", "replay", "--events",
                           "20000", "--rounds", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "read+orjson" in done.stdout and "ratio: min" in done.stdout
    assert done.stdout.count("(0 alerts)") == 2


@pytest.mark.integration
def test_throughput_bench_runs_on_the_embedded_broker() -> None:
    done = subprocess.run([sys.executable, "-m", "streams.ui.cli", "--log-level", "WARNING",
                           "bench",
                           "throughput", "--events", "20000", "--rounds", "1",
                           "--events-per-message", "100"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "raw consume+orjson" in done.stdout and "ratio: min" in done.stdout
