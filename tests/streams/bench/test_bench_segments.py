"""The segment benches run end to end on small sizes (no timing assertions)."""

from __future__ import annotations

import io

from streams.bench.segments import run_segment_bench
from streams.bench.step import run_step_bench


def test_the_segment_bench_counts_false_alarms_and_finds_the_shifted_segment() -> None:
    out = io.StringIO()
    # The shifted value has 3.5 % of the events: its 5,000-event reference is full by 150,000.
    result = run_segment_bench(out=out, events=40_000, seeds=1, shift_events=210_000,
                               shift_at=160_000, memory_events=(200, 400))
    text = out.getvalue()
    assert "stationary, 1 × 40,000 events" in text
    assert result["events"] == 40_000
    assert result["whole_alarms"] + result["segment_alarms"] == 0
    # The shifted value (3.5 % of events, +1 sd) is found in its segment, not by the version.
    assert result["detected_at"] is not None and result["detected_at"] >= 160_000
    assert 0 < result["segment_delay"] <= 3000
    assert result["raised_at"] >= result["detected_at"]
    assert not result["whole_detected"]
    assert "memory per segment monitor" in text
    assert all(kib > 0 for kib in (*result["memory_kib"], *result["state_kib"]))


def test_the_step_bench_times_both_streams() -> None:
    out = io.StringIO()
    rounds = run_step_bench(events=5000, segments=4, rounds=1, warmup=5000, out=out)
    assert len(rounds) == 1 and all(figure > 0 for figure in rounds[0])
    assert "step with 4 segments µs/event: min" in out.getvalue()
