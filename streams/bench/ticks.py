"""``driftline bench ticks``: what ticks cost the partition step, in CPU time.

In-process, no Kafka: a stationary stream of ``models`` models, 100 events per
message, goes through :class:`~streams.core.step.PartitionStep` in steps of
``worker.batch_size`` events, after an untimed warm-up in which every model
collects its reference. Each round times (``time.process_time``) a bare
``orjson.loads`` of the same messages (the reference), the step without ticks,
and the step with a tick after every step, the two in turns (a worker sends one per partition
every ``ticks.interval_s``, seconds apart: this is far more often). No model is
quiet, so the figure is the bookkeeping every prediction run and every tick pays.

Run it against an older checkout with ``--ticks-every 0`` (its step knows no
ticks) to compare before and after on the same machine::

    PYTHONPATH=/path/to/old python -m streams.bench.ticks --ticks-every 0
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from typing import IO

import orjson

from streams.bench.summary import Row, print_summary
from streams.core.messages import Line

EVENTS_PER_MESSAGE = 100
WARMUP_EVENTS_PER_MODEL = 1600
PREDICTIONS = "bench.predictions"
CONTROL = "bench.control"


def _messages(events: int, models: int, seed: int) -> list[bytes]:
    from detectors.synthetic import ScenarioSpec, iter_chunks

    stream, _ = next(iter_chunks(ScenarioSpec("stationary", events, seed=seed),
                                 chunk_size=events))
    for row, event in enumerate(stream):
        event["model_id"] = f"model-{row % models:02d}"
    return [orjson.dumps(stream[start:start + EVENTS_PER_MESSAGE])
            for start in range(0, len(stream), EVENTS_PER_MESSAGE)]


def _cpu(run: Callable[[], object]) -> float:
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        run()
        return time.process_time() - started
    finally:
        gc.enable()


def time_step(values: list[bytes], warmup: int, ticks_every: int) -> float:
    """CPU seconds of the step over ``values[warmup:]`` (a tick every ``ticks_every`` steps)."""
    from streams.core.partition import PartitionState
    from streams.core.step import PartitionStep
    from streams.settings import load_settings
    from streams.state.pending import MemoryPendingStore

    settings = load_settings(environ={"DRIFTLINE_MONITOR_REFERENCE_SIZE": "1000",
                                      "DRIFTLINE_MONITOR_WINDOW_SIZE": "500"})
    step = PartitionStep(settings, MemoryPendingStore(), (PREDICTIONS, "bench.labels", CONTROL))
    state = PartitionState.fresh(settings, 0)
    messages = [Line(PREDICTIONS, offset, value) for offset, value in enumerate(values)]
    per_step = max(settings.worker.batch_size // EVENTS_PER_MESSAGE, 1)
    for start in range(0, warmup, per_step):
        step(state, messages[start:min(start + per_step, warmup)])
    batches = [messages[start:start + per_step]
               for start in range(warmup, len(messages), per_step)]
    ticks = 0

    def run() -> None:
        nonlocal ticks
        for number, batch in enumerate(batches, start=1):
            if ticks_every and number % ticks_every == 0:
                batch = [*batch, Line(CONTROL, ticks, orjson.dumps({
                    "command": "tick", "ts": 1_800_000_000.0 + ticks,
                    "predictions_offset": batch[-1].offset() + 1}))]
                ticks += 1
            step(state, batch)
            gc.collect(1)

    return _cpu(run)


def run_ticks_bench(events: int, models: int, rounds: int, ticks_every: int,
                    out: IO[str] = sys.stdout) -> None:
    """Print per-round µs/event of a bare decode and the step without and with ticks."""
    warmup_events = WARMUP_EVENTS_PER_MODEL * models
    values = _messages(warmup_events + events, models, seed=7)
    warmup = warmup_events // EVENTS_PER_MESSAGE
    timed = values[warmup:]
    measured = len(timed) * EVENTS_PER_MESSAGE
    print(f"bench ticks: {measured:,} events of {models} models, {EVENTS_PER_MESSAGE} per "
          f"message, after {warmup_events:,} untimed; CPU µs/event", file=out)
    raw, plain, ticked = [], [], []
    for number in range(1, rounds + 1):
        raw.append(_cpu(lambda: [orjson.loads(v) for v in timed]) / measured * 1e6)
        # Alternate which variant runs first: a shared machine drifts within a round.
        if ticks_every and number % 2 == 0:
            ticked.append(time_step(values, warmup, ticks_every) / measured * 1e6)
        plain.append(time_step(values, warmup, 0) / measured * 1e6)
        if ticks_every and number % 2:
            ticked.append(time_step(values, warmup, ticks_every) / measured * 1e6)
        line = f"round {number}: orjson.loads {raw[-1]:.2f}  step {plain[-1]:.2f}"
        if ticks_every:
            line += (f"  step+ticks {ticked[-1]:.2f}  ticks/no ticks "
                     f"{ticked[-1] / plain[-1]:.3f}")
        print(line, file=out)
    rows: list[Row] = [("orjson.loads µs/event", raw, ".2f"), ("step µs/event", plain, ".2f"),
                       ("step / orjson.loads", [p / r for p, r in zip(plain, raw, strict=True)],
                        ".2f")]
    if ticks_every:
        rows += [("step+ticks µs/event", ticked, ".2f"),
                 ("step+ticks / step", [t / p for t, p in zip(ticked, plain, strict=True)],
                  ".3f")]
    print_summary(rows, out)


def main(argv: list[str] | None = None) -> int:
    """``python -m streams.bench.ticks``: the same as ``driftline bench ticks``."""
    parser = argparse.ArgumentParser(prog="python -m streams.bench.ticks")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ticks-every", type=int, default=1)
    args = parser.parse_args(argv)
    run_ticks_bench(args.events, args.models, args.rounds, args.ticks_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
