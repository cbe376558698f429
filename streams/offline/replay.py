"""Offline mode: the same engines over JSON-lines files, no Kafka.

Predictions are read in chunks; labels are read alongside them in event-time
order (every label with ``ts`` up to the chunk's last prediction ``ts`` is
joined after the chunk), so a replay sees labels arrive late the way a live
stream does. Pending predictions live in memory here
(:class:`~streams.state.pending.MemoryPendingStore`); line numbers stand in for offsets.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from streams.core.engine import MonitorEngine
from streams.core.labels import LabelEngine, LabelStep
from streams.ingest.deadletter import Source, dead_letter
from streams.ingest.decode import LABEL, PREDICTION, Rejected, decode_message
from streams.settings import Settings
from streams.state.pending import MemoryPendingStore

CHUNK_LINES = 5000


@dataclass
class ReplayStats:
    """Totals of one replay."""

    lines: int = 0
    events: int = 0
    labels: int = 0
    joined: int = 0
    retrain: int = 0
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


class _LabelFeed:
    """Label events of a JSON-lines file, released in ``ts`` order up to a bound."""

    def __init__(self, settings: Settings, path: Path, stats: ReplayStats,
                 dead_sink: IO[bytes] | None) -> None:
        self.settings, self.path, self.stats, self.dead_sink = settings, path, stats, dead_sink
        self._source = path.open("rb")
        self._line = 0
        self._held: deque[tuple[dict[str, Any], int, int]] = deque()

    def until(self, bound: float) -> list[tuple[dict[str, Any], int, int]]:
        """Labels with ``ts <= bound`` (plus any already read): ``(event, line, index)``."""
        released: list[tuple[dict[str, Any], int, int]] = []
        while True:
            while self._held and self._held[0][0]["ts"] <= bound:
                released.append(self._held.popleft())
            if self._held or self._source.closed:
                return released
            line = self._source.readline()
            if not line:
                self._source.close()
                return released
            self._line += 1
            decoded = decode_message(line.rstrip(b"\r\n"), LABEL, self.settings.limits)
            for rejected in decoded.rejected:
                _write_dead(self.dead_sink, rejected, Source(str(self.path), 0, self._line))
                self.stats.dead_letters += 1
            self._held += [(event, self._line, i) for i, event in enumerate(decoded.events)]

    def rest(self) -> list[tuple[dict[str, Any], int, int]]:
        """Every label not yet released."""
        return self.until(float("inf"))


def replay(settings: Settings, predictions: Path, out: Path, labels: Path | None = None,
           deadletter_out: Path | None = None, retrain_out: Path | None = None,
           progress: IO[str] | None = sys.stderr) -> ReplayStats:
    """Run the monitors over ``predictions`` (one message per line); write alerts to ``out``.

    Each line is decoded exactly like a Kafka message (a single event or an
    array); refused lines and events go to ``deadletter_out`` when given.
    ``labels`` are joined in event-time order; retrain requests go to
    ``retrain_out`` when given.
    """
    stats = ReplayStats()
    engine = MonitorEngine(settings)
    label_engine = LabelEngine(settings)
    store = MemoryPendingStore()
    started = time.perf_counter()
    bar = _Progress(predictions.stat().st_size, progress) if progress is not None else None
    dead_sink = deadletter_out.open("wb") if deadletter_out else None
    retrain_sink = retrain_out.open("wb") if retrain_out else None
    feed = _LabelFeed(settings, labels, stats, dead_sink) if labels is not None else None
    try:
        with predictions.open("rb") as source, out.open("wb") as sink:
            def emit(step: LabelStep) -> None:
                stats.alerts += len(step.alerts)
                sink.write(b"".join(orjson.dumps(a) + b"\n" for a in step.alerts))
                stats.retrain += len(step.retrain)
                if retrain_sink is not None:
                    retrain_sink.write(b"".join(orjson.dumps(r) + b"\n" for r in step.retrain))

            def join(released: list[tuple[dict[str, Any], int, int]]) -> None:
                stats.labels += len(released)
                requests = label_engine.requests([r[0] for r in released],
                                                 [r[1] for r in released],
                                                 [r[2] for r in released])
                for model_id, group in requests.items():
                    claims = store.claim(0, model_id, [(r.event_id, r.claimant) for r in group])
                    emit(label_engine.on_claims(model_id, group, claims))

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
                if feed is not None and events:
                    step = label_engine.on_predictions(events,
                                                       [lines_of[id(e)] for e in events])
                    for model_id, entries in step.entries.items():
                        store.put(0, model_id, entries)
                    emit(step)
                    for model_id, waiting in step.retry.items():
                        claims = store.claim(0, model_id,
                                             [(r.event_id, r.claimant) for r in waiting])
                        emit(label_engine.on_claims(model_id, waiting, claims))
                    join(feed.until(max(e["ts"] for e in events)))
                if bar:
                    bar.update(done_bytes, stats.events)
            if feed is not None:
                join(feed.rest())
                stats.joined = sum(m["joined"] for m in label_engine.summary().values())
    finally:
        if dead_sink:
            dead_sink.close()
        if retrain_sink:
            retrain_sink.close()
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


def _write_dead(sink: IO[bytes] | None, rejected: Rejected, source: Source) -> None:
    if sink is not None:
        sink.write(orjson.dumps(dead_letter(rejected, source)) + b"\n")
