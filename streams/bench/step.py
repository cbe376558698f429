"""``driftline bench step``: CPU time of the partition step per event, with and without segments.

The simulated stationary stream (13 features, one event per message, as
``driftline simulate`` writes it) is encoded once, then copied with a
``segments`` entry that cycles over ``--segments`` values (``{"region":
"r7"}``). Each round times, in this process and in CPU seconds
(``time.process_time``):

1. ``orjson.loads`` of every message of the plain stream (the reference);
2. the partition step over the plain stream, fed ``worker.batch_size``
   messages at a time from fresh state, as the worker feeds it;
3. the same over the stream with segments.

The steady state is timed: the first ``--warmup`` events (default 150,000:
every segment collects its 5,000-event reference, calibrates its tests once
and tests a window) are fed first, timed apart and shown as the warm-up
cost. Figures are µs per event and each step's ratio to the reference of
the same round, then min and median over the rounds. The step includes decoding,
the monitors, the alert policy and storing pending predictions for the label
join (in memory); with segments, the drift monitors of every segment value
(up to ``limits.max_drift_segments``) too.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import IO

import orjson

from detectors.synthetic import ScenarioSpec, iter_chunks
from streams.bench.summary import print_summary
from streams.core.partition import PartitionState
from streams.core.step import PartitionStep
from streams.settings import Settings, load_settings
from streams.state.pending import MemoryPendingStore

TOPICS = ("predictions", "labels", "control")


class _Message:
    """A consumed record as the step reads it (confluent-kafka's ``Message`` fits)."""

    __slots__ = ("_key", "_offset", "_value")

    def __init__(self, offset: int, value: bytes, key: bytes) -> None:
        self._offset, self._value, self._key = offset, value, key

    def topic(self) -> str:
        return TOPICS[0]

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)


def stream_values(events: int, segments: int) -> tuple[list[bytes], list[bytes]]:
    """The stationary stream's message values, plain and with ``segments`` segment values."""
    plain: list[bytes] = []
    segmented: list[bytes] = []
    for chunk, _labels in iter_chunks(ScenarioSpec("stationary", events)):
        for event in chunk:
            plain.append(orjson.dumps(event))
            event["segments"] = {"region": f"r{len(segmented) % max(segments, 1)}"}
            segmented.append(orjson.dumps(event))
    return plain, segmented


def step_seconds(settings: Settings, values: Sequence[bytes], key: bytes,
                 warmup: int) -> tuple[float, float]:
    """CPU seconds of the partition step over ``values`` from fresh state: warm-up, the rest."""
    state = PartitionState.fresh(settings, 0)
    step = PartitionStep(settings, MemoryPendingStore(), TOPICS)
    size = settings.worker.batch_size
    messages = [_Message(offset, value, key) for offset, value in enumerate(values)]
    seconds = [0.0, 0.0]
    for start in range(0, len(messages), size):
        batch = messages[start:start + size]
        started = time.process_time()
        step(state, batch)
        seconds[start >= warmup] += time.process_time() - started
    return seconds[0], seconds[1]


def decode_seconds(values: Sequence[bytes]) -> float:
    """CPU seconds of ``orjson.loads`` over ``values``."""
    started = time.process_time()
    for value in values:
        orjson.loads(value)
    return time.process_time() - started


def run_step_bench(events: int = 200_000, segments: int = 20, rounds: int = 3,
                   warmup: int = 150_000,
                   out: IO[str] = sys.stdout) -> list[tuple[float, float, float]]:
    """Print per-round µs/event of the reference and both steps; return them per round."""
    settings = load_settings(environ={})
    warmup = warmup // settings.worker.batch_size * settings.worker.batch_size
    plain, segmented = stream_values(warmup + events, segments)
    key = orjson.loads(plain[0])["model_id"].encode()
    print(f"{events:,} stationary events (13 features) after {warmup:,} of warm-up, one per "
          f"message, in steps of {settings.worker.batch_size:,} messages; CPU µs/event "
          "(warm-up's in brackets)", file=out)
    print(f"{'round':>5} {'orjson.loads':>13} {'step':>16} {'ratio':>6} "
          f"{f'step, {segments} segments':>24} {'ratio':>6}", file=out, flush=True)
    results: list[tuple[float, float, float]] = []
    for index in range(rounds):
        reference = decode_seconds(plain[warmup:]) / events * 1e6
        whole_warmup, whole = (1e6 * s / n for s, n in zip(
            step_seconds(settings, plain, key, warmup), (warmup, events), strict=True))
        segments_warmup, with_segments = (1e6 * s / n for s, n in zip(
            step_seconds(settings, segmented, key, warmup), (warmup, events), strict=True))
        results.append((reference, whole, with_segments))
        print(f"{index + 1:>5} {reference:>13.2f} {whole:>7.2f} ({whole_warmup:>6.2f}) "
              f"{whole / reference:>6.1f} {with_segments:>15.2f} ({segments_warmup:>6.2f}) "
              f"{with_segments / reference:>6.1f}", file=out, flush=True)
    print_summary([
        ("orjson.loads µs/event", [r[0] for r in results], ".2f"),
        ("step µs/event", [r[1] for r in results], ".2f"),
        ("step ratio", [r[1] / r[0] for r in results], ".1f"),
        (f"step with {segments} segments µs/event", [r[2] for r in results], ".2f"),
        (f"step with {segments} segments ratio", [r[2] / r[0] for r in results], ".1f")], out)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run from the command line (``python -m streams.bench.step``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--warmup", type=int, default=150_000)
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    run_step_bench(args.events, args.segments, args.rounds, args.warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
