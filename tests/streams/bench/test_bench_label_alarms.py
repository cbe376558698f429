"""The label-side false-alarm bench runs on a small size and prints its table (not its figures)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from streams.bench.label_alarms import KINDS, predictions, run_label_alarm_bench
from tests.streams.bench.test_bench import _bench


def test_tiny_run_gives_one_row_per_rate_and_coverage_and_a_table() -> None:
    out = io.StringIO()
    rows = run_label_alarm_bench(labelled_events=4000, out=out, rates=(0.05, 0.4),
                                 coverages=(0.3, 1.0), workers=1)
    assert [(r["rate"], r["coverage"]) for r in rows] == [(0.05, 0.3), (0.05, 1.0),
                                                          (0.4, 0.3), (0.4, 1.0)]
    for row in rows:
        assert row["labelled"] == 4000
        # Labels are drawn at random: about labelled / coverage predictions were made.
        assert row["predictions"] >= 4000 / row["coverage"] * 0.9
        assert row["alarms"] == sum(row[kind] for kind in KINDS)
        assert row["per_10m"] == pytest.approx(row["alarms"] / 4000 * 1e7)
        assert abs(row["error_rate"] - row["rate"]) < 0.06
    text = out.getvalue()
    assert "false alarms per 10M labelled events" in text
    assert text.count("\n") >= 7 and "budget 1" in text


def test_the_simulated_classifier_is_calibrated_at_every_rate() -> None:
    rng = np.random.default_rng(3)
    for rate in (0.01, 0.1, 0.4):
        truth, predicted, score, confidence = predictions(rng, rate, 200_000)
        wrong = truth != predicted
        assert abs(wrong.mean() - rate) < 0.005
        assert abs((1.0 - confidence).mean() - rate) < 0.005
        # Calibrated: among the least confident tenth, errors match their confidence.
        low = confidence < np.quantile(confidence, 0.1)
        assert abs(wrong[low].mean() - (1.0 - confidence[low]).mean()) < 0.02
        positive = predicted == "1"
        assert np.allclose(score[positive], confidence[positive])
        assert np.allclose(score[~positive], 1.0 - confidence[~positive])


def test_invalid_rates_and_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="rates"):
        run_label_alarm_bench(labelled_events=100, out=None, rates=(0.6,), workers=1)
    with pytest.raises(ValueError, match="coverages"):
        run_label_alarm_bench(labelled_events=100, out=None, coverages=(0.0,), workers=1)
    with pytest.raises(ValueError, match="labelled_events"):
        run_label_alarm_bench(labelled_events=0, out=None, workers=1)


def test_the_cli_part_runs_on_a_small_size() -> None:
    out = _bench("quality", "--part", "labels", "--label-events", "3000", "--label-rates",
                 "0.2", "--label-coverages", "0.5", "1")
    assert "false alarms per 10M labelled events" in out
    assert sum(line.lstrip().startswith("20%") for line in out.splitlines()) == 2
