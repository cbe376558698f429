"""Offline mode: the same engine over JSON-lines files, no Kafka."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from streams.deadletter import Source, dead_letter
from streams.decode import LABEL, PREDICTION, Rejected, decode_message
from streams.engine import MonitorEngine
from streams.settings import Settings

CHUNK_LINES = 5000


@dataclass
class ReplayStats:
    """Totals of one replay."""

    lines: int = 0
    events: int = 0
    labels: int = 0
    dead_letters: int = 0
    alerts: int = 0
    windows: int = 0
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        """Prediction events replayed per wall-clock second."""
        return self.events / self.seconds if self.seconds else 0.0


class _Progress:
    """A progress bar on stderr (a line every 5 s when stderr is not a terminal)."""

    def __init__(self, total_bytes: int, stream: IO[str]) -> None:
        self.total = max(total_bytes, 1)
        self.stream = stream
        self.tty = stream.isatty()
        self.started = self.last = time.monotonic()

    def update(self, done_bytes: int, events: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        share = min(done_bytes / self.total, 1.0)
        rate = events / max(now - self.started, 1e-9)
        bar = "█" * int(share * 30) + "·" * (30 - int(share * 30))
        text = f"replay {bar} {share:6.1%}  {events:,} events  {rate:,.0f} events/s"
        if self.tty:
            self.stream.write("\r" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def replay(settings: Settings, predictions: Path, out: Path, labels: Path | None = None,
           deadletter_out: Path | None = None,
           progress: IO[str] | None = sys.stderr) -> ReplayStats:
    """Run the monitor over ``predictions`` (one message per line) and write alerts to ``out``.

    Each line is decoded exactly like a Kafka message (a single event or an
    array); refused lines and events go to ``deadletter_out`` when given.
    """
    stats = ReplayStats()
    engine = MonitorEngine(settings)
    started = time.perf_counter()
    bar = _Progress(predictions.stat().st_size, progress) if progress is not None else None
    dead_sink = deadletter_out.open("wb") if deadletter_out else None
    try:
        with predictions.open("rb") as source, out.open("wb") as sink:
            done_bytes = 0
            while True:
                lines = [line for _, line in zip(range(CHUNK_LINES), source, strict=False)]
                if not lines:
                    break
                first_line = stats.lines + 1
                stats.lines += len(lines)
                done_bytes += sum(len(line) for line in lines)
                events, lines_of = _decode_lines(settings, lines, first_line, str(predictions),
                                                 stats, dead_sink)
                output = engine.process(events)
                stats.events += len(events)
                stats.windows += output.windows
                for event, problem in output.problems:
                    _write_dead(dead_sink, Rejected(problem.error, problem.reason,
                                                    orjson.dumps(event), path=problem.path),
                                Source(str(predictions), 0, lines_of[id(event)]))
                    stats.dead_letters += 1
                stats.alerts += len(output.alerts)
                sink.write(b"".join(orjson.dumps(a) + b"\n" for a in output.alerts))
                if bar:
                    bar.update(done_bytes, stats.events)
        if labels is not None:
            _count_labels(settings, labels, stats, dead_sink)
    finally:
        if dead_sink:
            dead_sink.close()
    stats.seconds = time.perf_counter() - started
    if bar:
        bar.update(bar.total, stats.events, final=True)
    return stats


def _decode_lines(settings: Settings, lines: list[bytes], first_line: int, name: str,
                  stats: ReplayStats, dead_sink: IO[bytes] | None
                  ) -> tuple[list[dict[str, Any]], dict[int, int]]:
    events: list[dict[str, Any]] = []
    lines_of: dict[int, int] = {}
    for number, line in enumerate(lines, start=first_line):
        decoded = decode_message(line.rstrip(b"\r\n"), PREDICTION, settings.limits)
        events.extend(decoded.events)
        for event in decoded.events:
            lines_of[id(event)] = number
        for rejected in decoded.rejected:
            _write_dead(dead_sink, rejected, Source(name, 0, number))
            stats.dead_letters += 1
    return events, lines_of


def _count_labels(settings: Settings, labels: Path, stats: ReplayStats,
                  dead_sink: IO[bytes] | None) -> None:
    # Labels are validated and counted; joining them arrives with performance monitoring.
    with labels.open("rb") as source:
        for number, line in enumerate(source, start=1):
            decoded = decode_message(line.rstrip(b"\r\n"), LABEL, settings.limits)
            stats.labels += len(decoded.events)
            for rejected in decoded.rejected:
                _write_dead(dead_sink, rejected, Source(str(labels), 0, number))
                stats.dead_letters += 1


def _write_dead(sink: IO[bytes] | None, rejected: Rejected, source: Source) -> None:
    if sink is not None:
        sink.write(orjson.dumps(dead_letter(rejected, source)) + b"\n")
