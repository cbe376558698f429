"""The concept-drift bench in a tiny configuration: rows, scoring and the printed table."""

from __future__ import annotations

import io
import math

import pytest

from streams.bench.concept import (
    DEFAULT_DETECTORS,
    OURS,
    Drift,
    drift_schedule,
    mcc,
    run_concept_bench,
    score,
)


def test_tiny_run_gives_one_row_per_stream_and_detector_and_a_table() -> None:
    out = io.StringIO()
    rows = run_concept_bench(seeds=1, events=4000, out=out, streams=("sea",),
                             kinds=("abrupt", "gradual"), detectors=("DDM",), workers=1,
                             timing_events=500)
    assert [(r["stream"], r["detector"]) for r in rows] == [
        ("sea/abrupt", "DDM"), ("sea/abrupt", OURS), ("sea/gradual", "DDM"),
        ("sea/gradual", OURS)]
    for row in rows:
        assert row["ours"] == (row["detector"] == OURS)
        assert (row["seeds"], row["events"], row["drifts"]) == (1, 4000, 3)
        assert row["tp"] + row["fn"] == 3
        assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == 4000
        assert -1.0 <= row["mcc"] <= 1.0
        assert row["false_alarms_per_million"] == row["fp"] / 4000 * 1e6
        assert 0.0 < row["error_rate"] < 1.0 and row["us_per_event"] > 0.0
        assert row["tp"] == 0 or 0 <= row["mean_delay"] <= row["max_delay"]
    text = out.getvalue()
    tables = [block for block in text.split("\n\n") if block.startswith("== ")]
    assert len(tables) == 2
    for table in tables:
        lines = table.splitlines()
        assert lines[1].split()[:2] == ["detector", "MCC"]
        assert len(lines) == 2 + 2 + 1  # header, column names, two detectors, verdict
        assert lines[-1].startswith("ours (*) MCC ") and lines[-1].endswith("MET")
    summary = text.strip().splitlines()[-1]
    assert summary.startswith("ours met the bar on ") and "/2 streams" in summary
    assert "not run: ADWIN, EDDM, HDDM_A, HDDM_W, PageHinkley, KSWIN" in summary


def test_default_run_leaves_out_only_kswin() -> None:
    assert "KSWIN" not in DEFAULT_DETECTORS and OURS in DEFAULT_DETECTORS
    assert {"ADWIN", "DDM", "EDDM", "HDDM_A", "HDDM_W", "PageHinkley"} <= set(DEFAULT_DETECTORS)


def test_unknown_detector_names_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"^detectors: expected names among .+'CUSUM'"):
        run_concept_bench(seeds=1, events=1000, out=None, detectors=("CUSUM",), workers=1)


def test_scoring_first_detection_in_the_window_is_the_true_positive() -> None:
    drifts = drift_schedule(100_000, "gradual")
    assert drifts == [Drift(24_500, 1000), Drift(49_500, 1000), Drift(74_500, 1000)]
    # 24,400 is before the first drift; 27,500 is its last tolerated event (start + width +
    # 2,000); 27,501 and the second hit in a window are false positives; no hit on the third.
    result = score([24_400, 25_000, 27_400, 49_600, 52_000], drifts)
    assert result == {"tp": 2, "fp": 3, "fn": 1, "delays": [500, 100]}
    assert score([27_500], drifts)["tp"] == 1 and score([27_501], drifts)["tp"] == 0
    assert mcc(9, 0, 0, 99_991) == 1.0
    assert math.isclose(mcc(9, 1, 0, 99_990), math.sqrt(0.9), rel_tol=1e-4)
    assert mcc(0, 0, 3, 99_997) == 0.0
