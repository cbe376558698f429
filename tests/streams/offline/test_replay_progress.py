"""The replay progress line: share, events, rate, elapsed time, ETA (files only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streams.offline.replay import format_progress


def test_a_file_shows_elapsed_time_and_an_eta_from_the_bytes_left() -> None:
    line = format_progress(40_000_000, 100_000_000, 150_000, 80.0)
    assert line.startswith("replay ████████████")
    # 40 % read in 80 s: 60 % left takes 120 s more.
    assert line.endswith("  40.0%  150,000 events  1,875 events/s  elapsed 1:20  ETA 2:00")
    assert format_progress(1, 3, 10, 4000.0).endswith("elapsed 1:06:40  ETA 2:13:20")


def test_no_eta_before_any_byte_nor_in_the_final_line() -> None:
    assert "ETA" not in format_progress(0, 100, 0, 0.0)
    final = format_progress(100, 100, 1000, 2.0, final=True)
    assert final.endswith(" 100.0%  1,000 events  500 events/s  elapsed 0:02")
    assert "·" not in final


def test_standard_input_has_no_bar_and_no_eta() -> None:
    assert format_progress(2_500_000, None, 5000, 10.0) == (
        "replay 2.5 MB read  5,000 events  500 events/s  elapsed 0:10")


def test_replay_reads_predictions_from_standard_input(tmp_path: Path) -> None:
    events = b"".join(b'{"model_id":"m","model_version":"v","event_id":"%d","ts":%d,'
                      b'"features":{"x":%d},"prediction":0}\n' % (i, i, i % 7)
                      for i in range(3000))
    done = subprocess.run([sys.executable, "-m", "streams.ui.cli", "replay", "--predictions",
                           "-", "--out", str(tmp_path / "a.jsonl")], input=events,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    assert "replay 0.3 MB read  3,000 events" in err and "elapsed 0:0" in err, err
    assert "ETA" not in err and "replayed 3,000 events" in err
