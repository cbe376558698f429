"""The benchmarks run and print their tables (how fast is for the bench, not the tests)."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from streams.bench.throughput import model_ids, model_streams

SMALL_MONITOR = {"DRIFTLINE_REFERENCE_SIZE": "100", "DRIFTLINE_WINDOW_SIZE": "100"}
"""The smallest reference and window: a short warm-up (200 events per model)."""


def _bench(*args: str, environ: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "streams.ui.cli", "--log-level", "WARNING",
                           "bench", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(environ or {})})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _figures(text: str, name: str) -> tuple[float, float]:
    """(min, median) of a summary line ``name: min X  median Y``."""
    line = next(line for line in text.splitlines() if line.strip().startswith(f"{name}: min"))
    _, values = line.split(": min ")
    low, median = values.split("  median ")
    return float(low.replace(",", "")), float(median.replace(",", ""))


def test_replay_bench_prints_in_process_and_whole_process_ratios() -> None:
    out = _bench("replay", "--events", "5000", "--rounds", "2")
    assert "read+orjson" in out and "replay in-process" in out and "`driftline replay`" in out
    assert out.count("(0 alerts; read before / after: ") == 2
    rounds = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert len(rounds) == 2 and all(len(r) == 18 for r in rounds), out
    for r in rounds:
        # The round's reference is its two bare reads as one rate: between them.
        reference, before, after = (float(r[i].rstrip(")").replace(",", "")) for i in (1, 15, 17))
        assert min(before, after) <= reference <= max(before, after), r
    for name in ("read+orjson", "replay in-process", "ratio", "driftline replay",
                 "process ratio"):
        # A figure, not a speed: on a loaded machine a 5,000-event process ratio prints 0.00.
        low, median = _figures(out, name)
        assert 0 <= low <= median, (name, out)


def test_many_model_stream_splits_the_events_over_models_with_their_own_streams() -> None:
    streams = model_streams(2000, 100, models=20)
    assert [key for key, _ in streams] == model_ids(20)
    first_scores = set()
    total = 0
    for key, values in streams:
        messages = [orjson.loads(value) for value in values]
        assert all(event["model_id"] == key for message in messages for event in message)
        total += sum(len(message) for message in messages)
        first_scores.add(messages[0][0]["score"])
    assert total == 2000
    assert len(first_scores) == 20        # one seed per model: 20 different streams


def test_one_event_messages_are_bare_events() -> None:
    [(key, values)] = model_streams(3, 1)
    events = [orjson.loads(value) for value in values]
    assert key == "credit-risk" and len(events) == 3 and all("features" in e for e in events)


def test_warm_up_messages_come_first_in_each_model_stream() -> None:
    streams = model_streams(2000, 100, models=20, warmup=300)
    for key, values in streams:
        messages = [orjson.loads(value) for value in values]
        assert [len(message) for message in messages] == [100] * 4, key
        assert len({event["event_id"] for message in messages for event in message}) == 400


@pytest.mark.integration
def test_throughput_bench_measures_the_steady_state_of_both_shapes_and_many_models() -> None:
    out = _bench("throughput", "--events", "4000", "--rounds", "1", environ=SMALL_MONITOR)
    assert "measured: the steady state" in out and "reference_size 100" in out, out
    for shape in (1, 100):
        assert (f"{shape} event(s)/message; warm-up 200 events on the 1-model stream, 4,000 "
                "on the 20-model stream") in out, out
    assert "raw consume+orjson" in out and "worker 20 models" in out
    tables = out.split("event(s)/message")[1:]
    assert len(tables) == 2
    for table in tables:
        for name in ("raw", "worker", "ratio", "worker 20 models", "20-model / 1-model"):
            low, median = _figures(table, name)
            assert 0 < low <= median, (name, table)
        [line] = [line for line in table.splitlines() if line.split()[:1] == ["1"]]
        # The reference is the raw consumer's runs before and after the worker, as one rate.
        reference, runs = line.split()[1], line.split("raw before / after: ")[1].split(" / ")
        before, after = (float(run.replace(",", "")) for run in runs)
        assert min(before, after) <= float(reference.replace(",", "")) <= max(before, after)


@pytest.mark.integration
def test_throughput_bench_without_warm_up_times_one_shape_of_one_model_whole() -> None:
    out = _bench("throughput", "--events", "4000", "--rounds", "2", "--events-per-message",
                 "100", "--models", "1", "--no-warmup")
    assert "measured: whole streams" in out and "warm-up" not in out, out
    assert "100 event(s)/message" in out and "1 event(s)/message" not in out, out
    assert "models" not in out
    for name in ("raw", "worker", "ratio"):
        low, median = _figures(out, name)
        assert 0 < low <= median, (name, out)


def test_bench_ticks_prints_the_step_without_and_with_ticks() -> None:
    text = _bench("ticks", "--events", "2000", "--models", "2", "--rounds", "2")
    assert "2,000 events of 2 models" in text
    assert sum(line.startswith("round ") for line in text.splitlines()) == 2
    for name in ("orjson.loads µs/event", "step µs/event", "step+ticks µs/event",
                 "step+ticks / step"):
        low, median = _figures(text, name)
        assert 0 < low <= median
