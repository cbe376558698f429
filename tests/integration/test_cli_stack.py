"""`driftline demo` and `driftline up` as a user runs them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

# `demo` and `up` keep the dashboard's default port when it looks free: with the tests spread
# over processes (pytest-xdist), two of them could both see it free and race for it.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("default_web_port")]


def descendants(pid: int) -> set[int]:
    children: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            children.add(int(entry))
            children |= descendants(int(entry))
    return children


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_demo_detects_the_planted_drift_and_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streams.ui.cli", "demo", "--events", "30000", "--rate", "15000"],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    out = result.stdout
    assert "planted drift: mean_shift on credit_score from event 15,000" in out
    assert "data_drift       credit_score" in out
    assert "data_drift alerts before the drift point: 0" in out
    assert re.search(r"labels of credit-risk: [\d,]+ joined of [\d,]+ predictions", out), out
    assert "result: OK" in out


def test_up_starts_everything_and_sigterm_leaves_no_process_behind() -> None:
    up = subprocess.Popen([sys.executable, "-m", "streams.ui.cli", "up"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
    try:
        assert up.stdout is not None
        banner = [up.stdout.readline() for _ in range(2)]
        assert banner[0].startswith("driftline is up"), banner
        time.sleep(1.0)
        children = descendants(up.pid)
        assert len(children) >= 3, children      # tansu, redis-server, worker
        up.send_signal(signal.SIGTERM)
        assert up.wait(30) == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in children):
            time.sleep(0.2)
        assert not [pid for pid in children if alive(pid)]
    finally:
        if up.poll() is None:
            up.kill()
