"""``driftline bench replay``: offline replay next to a bare read + decode of the same file.

A stationary scenario is written to a temporary JSON-lines file once. Each
round then times, one after the other:

1. a bare ``for line in file: orjson.loads(line)`` (the reference);
2. :func:`streams.offline.replay.replay` in this process;
3. a whole ``driftline replay`` process (``python -m streams.ui.cli replay``):
   wall time including interpreter start-up and imports, which is what a
   user waits for. Its byte code is cached, as an installed package's is
   (an untimed first process writes it to a temporary ``PYTHONPYCACHEPREFIX``):
   where ``PYTHONDONTWRITEBYTECODE`` is set, as on this project's CI machines,
   each process would otherwise compile every module it imports, ~0.25 s;
4. the bare read again.

Both replay rates are printed as ratios to the reference of the same round
(its two bare reads as one rate, see :func:`~streams.bench.summary.bracketed`),
then min and median over the rounds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from detectors.synthetic import ScenarioSpec
from streams.bench.summary import bracketed, print_summary
from streams.offline.replay import replay
from streams.offline.simulate import write_scenario
from streams.settings import load_settings


@dataclass(frozen=True)
class ReplayRound:
    """One round: events/s of the bare decode, of replay in-process and as a process."""

    raw_eps: float
    """The reference: the bare reads before and after both replays, as one rate."""
    replay_eps: float
    process_eps: float
    alerts: int

    @property
    def ratio(self) -> float:
        """In-process replay rate as a share of the bare read+decode rate."""
        return self.replay_eps / self.raw_eps

    @property
    def process_ratio(self) -> float:
        """Whole-process replay rate as a share of the bare read+decode rate."""
        return self.process_eps / self.raw_eps


def read_rate(path: Path, events: int) -> float:
    """Events/s of reading ``path`` line by line with ``orjson.loads``."""
    started = time.perf_counter()
    with path.open("rb") as source:
        for line in source:
            orjson.loads(line)
    return events / (time.perf_counter() - started)


def process_rate(predictions: Path, out: Path, events: int,
                 pycache: Path | None = None) -> float:
    """Events/s of a whole ``driftline replay`` process over ``predictions`` (wall time).

    With ``pycache``, the process keeps its byte code there (``PYTHONPYCACHEPREFIX``)
    even where ``PYTHONDONTWRITEBYTECODE`` is set: as an installed package does, instead
    of compiling every module at each start.
    """
    # Built-in defaults, like the in-process replay: no DRIFTLINE_* from the caller's shell.
    env = {key: value for key, value in os.environ.items() if not key.startswith("DRIFTLINE_")}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    command = [sys.executable, "-m", "streams.ui.cli", "--log-level", "WARNING", "replay",
               "--predictions", str(predictions), "--out", str(out), "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    replayed = re.search(r"replayed ([\d,]+) events", done.stderr)
    if done.returncode != 0 or replayed is None:
        raise RuntimeError(f"driftline replay failed ({done.returncode}): {done.stderr[-2000:]}")
    if int(replayed.group(1).replace(",", "")) != events:
        raise RuntimeError(f"driftline replay: {replayed.group(0)}, expected {events:,}")
    return events / elapsed


def run_replay(events: int, rounds: int, out: IO[str] = sys.stdout) -> list[ReplayRound]:
    """Time the three readers of one file ``rounds`` times; print per-round figures and summary."""
    results: list[ReplayRound] = []
    with tempfile.TemporaryDirectory(prefix="driftline-bench-") as workdir:
        files = write_scenario(ScenarioSpec("stationary", events), Path(workdir))
        alerts_path = Path(workdir) / "alerts.jsonl"
        settings = load_settings(environ={})
        print(f"{events:,} stationary events, one per line "
              f"({files.predictions.stat().st_size:,} bytes)", file=out)
        print(f"{'round':>5} {'read+orjson':>16} {'replay in-process':>18} {'ratio':>7} "
              f"{'`driftline replay`':>18} {'ratio':>7}", file=out, flush=True)
        # Byte code as an installed package has it: written by an untimed first process.
        pycache = Path(workdir) / "pycache"
        with files.predictions.open("rb") as source:
            head = Path(workdir) / "head.jsonl"
            head.write_bytes(source.readline())
        process_rate(head, alerts_path, 1, pycache)
        for index in range(rounds):
            before = read_rate(files.predictions, events)
            started = time.perf_counter()
            stats = replay(settings, files.predictions, alerts_path, progress=None)
            in_process = stats.events / (time.perf_counter() - started)
            if stats.events != events:
                raise RuntimeError(f"replay saw {stats.events} of {events} events")
            process = process_rate(files.predictions, alerts_path, events, pycache)
            after = read_rate(files.predictions, events)
            raw = bracketed(before, after)
            result = ReplayRound(raw, in_process, process, stats.alerts)
            results.append(result)
            print(f"{index + 1:>5} {raw:>12,.0f} e/s {result.replay_eps:>14,.0f} e/s "
                  f"{result.ratio:>7.2f} {result.process_eps:>14,.0f} e/s "
                  f"{result.process_ratio:>7.2f}   ({result.alerts} alerts; read before / "
                  f"after: {before:,.0f} / {after:,.0f})", file=out, flush=True)
    print_summary([("read+orjson", [r.raw_eps for r in results], ",.0f"),
                   ("replay in-process", [r.replay_eps for r in results], ",.0f"),
                   ("ratio", [r.ratio for r in results], ".2f"),
                   ("driftline replay", [r.process_eps for r in results], ",.0f"),
                   ("process ratio", [r.process_ratio for r in results], ".2f")], out)
    return results
