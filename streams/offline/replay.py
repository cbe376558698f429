"""Offline mode: the worker's partition step over JSON-lines files, no Kafka.

Predictions are read in chunks; labels are read alongside them in event-time
order (every label with ``ts`` up to the chunk's last prediction ``ts`` is
joined after the chunk), so a replay sees labels arrive late the way a live
stream does. Control commands (``--control``, e.g. the ticks a worker
published) are read in file order, each after the prediction lines its
``predictions_offset`` counts (:class:`_ControlFeed`). Pending predictions live in memory here
(:class:`~streams.state.pending.MemoryPendingStore`); line numbers stand in for offsets.

**Deterministic output.** Everything written carries event time, never the
wall clock, so two replays of the same files write the same bytes. An
alert's ``ts`` is the end of its window (the event at which it fired or
resolved) unless that lies past the newest prediction read (a rate-limit notice's
window is its whole hour); a retrain request or a dead letter gets the ``ts``
of the newest prediction read when it was produced (0 before any).
"""

from __future__ import annotations

import gc
import math
import os
import stat
import sys
import time
from collections import deque
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import islice, repeat
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from streams.core.messages import Line, LineRun
from streams.core.partition import InputMessage, PartitionState, StepOutput
from streams.core.step import PartitionStep
from streams.settings import Settings
from streams.state.pending import MemoryPendingStore

if TYPE_CHECKING:
    # Only a replay with --summary or --report makes one (streams.ui.commands imports it then).
    from streams.offline.run_summary import RunSummary

CHUNK_LINES = 5000
STDIN = "-"
"""The predictions path that means standard input."""


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

    def counts(self) -> dict[str, int]:
        """Every total but the wall-clock time (what a reproducible summary records)."""
        return {name: value for name, value in vars(self).items() if name != "seconds"}


def format_progress(done_bytes: int, total_bytes: int | None, events: int, elapsed_s: float,
                    final: bool = False) -> str:
    """The progress line of a replay: share read, events, rate, elapsed time and ETA.

    The ETA assumes the rest of the input goes at the rate so far in bytes; it
    needs the input's size, so a stream (``total_bytes`` None) shows the bytes
    read instead of a bar and has no ETA. The ``final`` line has no ETA either.

    Examples
    --------
    >>> format_progress(25_000_000, 100_000_000, 60_000, 12.0)
    'replay ███████▌······················  25.0%  60,000 events  5,000 events/s  \
elapsed 0:12  ETA 0:36'
    >>> format_progress(25_000_000, None, 60_000, 4000.0)
    'replay 25.0 MB read  60,000 events  15 events/s  elapsed 1:06:40'

    """
    rate = events / elapsed_s if elapsed_s > 0 else 0.0
    counts = f"{events:,} events  {rate:,.0f} events/s  elapsed {_duration(elapsed_s)}"
    if total_bytes is None:
        return f"replay {done_bytes / 1e6:,.1f} MB read  {counts}"
    share = min(done_bytes / max(total_bytes, 1), 1.0)
    # Eighths of a cell, so a long replay's bar visibly moves.
    eighths = int(share * 30 * 8)
    bar = ("█" * (eighths // 8) + (_PARTIAL[eighths % 8] if eighths < 240 else "")).ljust(30, "·")
    text = f"replay {bar} {share:6.1%}  {counts}"
    if not final and done_bytes > 0 and elapsed_s > 0:
        text += f"  ETA {_duration(elapsed_s * (total_bytes - done_bytes) / done_bytes)}"
    return text


_PARTIAL = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]


def _duration(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``."""
    minutes, secs = divmod(max(int(round(seconds)), 0), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Progress:
    """A progress bar on stderr (a line every 5 s when stderr is not a terminal)."""

    def __init__(self, total_bytes: int | None, stream: IO[str]) -> None:
        self.total = total_bytes
        self.stream = stream
        self.tty = stream.isatty()
        self.started = self.last = time.monotonic()

    def update(self, done_bytes: int, events: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        text = format_progress(done_bytes, self.total, events, now - self.started, final)
        if self.tty:
            # Clear to the line's end: the ETA can get shorter.
            self.stream.write("\r" + text + "\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


class _LabelFeed:
    """Label lines of a JSON-lines file, released in file order once their ``ts`` is due."""

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        self._source = path.open("rb")
        self._line = 0
        self._held: deque[tuple[float, Line]] = deque()

    def until(self, bound: float) -> list[Line]:
        """Lines whose latest label ``ts`` is at most ``bound`` (unreadable lines at once)."""
        released: list[Line] = []
        while True:
            while self._held and self._held[0][0] <= bound:
                released.append(self._held.popleft()[1])
            if self._held or self._source.closed:
                return released
            raw = self._source.readline()
            if not raw:
                self._source.close()
                return released
            self._line += 1
            self._held.append((_latest_ts(raw), Line(self.name, self._line, raw.rstrip(b"\r\n"))))

    def rest(self) -> list[Line]:
        """Every line not yet released."""
        return self.until(math.inf)


class _ControlFeed:
    """Control lines of a JSON-lines file, each due after the predictions it follows.

    A command's ``predictions_offset`` (a tick's: the next predictions offset
    its publisher had to read) counts lines of the predictions file: it is due
    after that many lines, in file order (never before the command above it);
    a command without one is due with the command above it (the first: before
    any prediction). A file dumped from a partition's predictions starting at
    offset 0, without gaps, numbers them as Kafka did. Replay numbers its lines
    from 1 (its offsets), so a tick is handed to the step with
    ``predictions_offset`` one more: past exactly the lines it follows.
    """

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        self._source = path.open("rb")
        self._line = 0
        self._due = 0
        self._next: tuple[int, Line] | None = None

    def until(self, lines_read: int) -> list[tuple[int, Line]]:
        """Commands due after at most ``lines_read`` prediction lines, with when each is due."""
        released: list[tuple[int, Line]] = []
        while True:
            if self._next is None:
                self._next = self._read()
                if self._next is None:
                    return released
            if self._next[0] > lines_read:
                return released
            released.append(self._next)
            self._next = None

    def close(self) -> None:
        """Close the file (what was not read is not replayed)."""
        self._source.close()

    def _read(self) -> tuple[int, Line] | None:
        if self._source.closed:
            return None
        raw = self._source.readline()
        if not raw:
            self._source.close()
            return None
        self._line += 1
        raw = raw.rstrip(b"\r\n")
        try:
            command = orjson.loads(raw)
            offset = command.get("predictions_offset") if isinstance(command, dict) else None
        except orjson.JSONDecodeError:
            offset = None          # the step dead-letters it, in its place
        if type(offset) is int and offset >= 0:
            self._due = max(self._due, offset)
            raw = orjson.dumps({**command, "predictions_offset": offset + 1})
        return self._due, Line(self.name, self._line, raw)


def _interleave(lines: LineRun, commands: list[tuple[int, Line]]) -> Sequence[InputMessage]:
    """Prediction lines with each command after its due line."""
    if not commands:
        return lines
    first_line = lines.first_offset
    merged: list[InputMessage] = []
    position = 0
    for due, command in commands:
        cut = min(max(due - first_line + 1, 0), len(lines))
        if cut > position:
            merged += lines[position:cut]
            position = cut
        merged.append(command)
    return merged + lines[position:]


def _latest_ts(raw: bytes) -> float:
    # Only to order the release; the step decodes and validates the line itself.
    try:
        document = orjson.loads(raw)
        events = document if isinstance(document, list) else [document]
        return max(float(e["ts"]) for e in events)
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
        return -math.inf


class _EventClock:
    """The newest prediction ``ts`` a replay has read: what it writes is stamped with it."""

    def __init__(self) -> None:
        self.now = -math.inf

    def advance(self, state: PartitionState) -> None:
        """Move to the newest accepted prediction of any model."""
        # Accepted predictions only: a refused line's ``ts`` may be anything at all.
        self.now = max(self.now, max((c.last_prediction_ts
                                      for c in state.labels.counts_by_model()),
                                     default=-math.inf))

    def stamp(self, record: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``record`` with ``ts`` in event time (see the module docstring)."""
        now = self.now if math.isfinite(self.now) else 0.0
        window = record.get("window")
        if isinstance(window, dict) and isinstance(window.get("end_ts"), int | float):
            now = min(float(window["end_ts"]), now)
        return {**record, "ts": now}

    def stamp_audit(self, record: dict[str, Any]) -> dict[str, Any]:
        """An audit record with ``ts`` in event time: its window's or reference's end if earlier."""
        details = record.get("details") or {}
        span = details.get("window") or details.get("reference")
        return {**record, "ts": self.stamp({"window": span})["ts"]}


def _size(predictions: Path) -> int | None:
    """The input's size in bytes if it is a regular file (standard input may be one)."""
    try:
        info = (os.fstat(sys.stdin.fileno()) if str(predictions) == STDIN
                else predictions.stat())
    except (OSError, ValueError):     # no file descriptor behind sys.stdin (a test harness)
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def replay(settings: Settings, predictions: Path, out: Path, labels: Path | None = None,
           deadletter_out: Path | None = None, retrain_out: Path | None = None,
           progress: IO[str] | None = sys.stderr,
           summary: RunSummary | None = None, audit_out: Path | None = None,
           control: Path | None = None) -> ReplayStats:
    """Run the monitors over ``predictions`` (one message per line); write alerts to ``out``.

    ``predictions`` may be ``-``: standard input. A ``summary`` is shown every
    step's outputs and finished with the final state (what a run report draws).

    Each line is decoded exactly like a Kafka message (a single event or an
    array) by the same partition step the worker runs; refused lines and
    events go to ``deadletter_out`` when given. ``labels`` are joined in
    event-time order; retrain requests go to ``retrain_out`` and audit records
    (:mod:`streams.core.audit`) to ``audit_out`` when given;
    ``control`` commands (ticks) are read where their ``predictions_offset`` puts them.
    """
    stats = ReplayStats()
    started = time.perf_counter()
    state = PartitionState.fresh(settings, 0)
    feed = _LabelFeed(labels) if labels is not None else None
    stdin = str(predictions) == STDIN
    name = "<stdin>" if stdin else str(predictions)
    commands = _ControlFeed(control) if control is not None else None
    step = PartitionStep(settings, MemoryPendingStore(),
                         (name, feed.name if feed else "(no labels)",
                          commands.name if commands else "(no control)"))
    bar = _Progress(_size(predictions), progress) if progress is not None else None
    dead_sink = deadletter_out.open("wb") if deadletter_out else None
    retrain_sink = retrain_out.open("wb") if retrain_out else None
    audit_sink = audit_out.open("wb") if audit_out else None
    clock = _EventClock()
    done_bytes = 0
    # As in the worker: no automatic collections in the middle of a step (see worker.run).
    collecting = gc.isenabled()
    gc.disable()
    try:
        with (nullcontext(sys.stdin.buffer) if stdin else predictions.open("rb")) as source, \
                out.open("wb") as sink:
            def emit(output: StepOutput) -> None:
                clock.advance(state)
                stamp = clock.stamp
                if summary is not None:
                    summary.observe(output)
                stats.events += output.events
                stats.labels += output.labels
                stats.windows += output.windows
                stats.alerts += len(output.alerts)
                sink.write(b"".join(orjson.dumps(stamp(a)) + b"\n" for a in output.alerts))
                stats.retrain += len(output.retrain)
                if retrain_sink is not None:
                    retrain_sink.write(b"".join(orjson.dumps(stamp(r)) + b"\n"
                                                for r in output.retrain))
                if audit_sink is not None:
                    audit_sink.write(b"".join(orjson.dumps(clock.stamp_audit(record)) + b"\n"
                                              for record in output.audit))
                stats.dead_letters += len(output.dead_letters)
                if dead_sink is not None:
                    dead_sink.write(b"".join(orjson.dumps(stamp(record)) + b"\n"
                                             for _, record in output.dead_letters))

            while True:
                raw = list(islice(source, CHUNK_LINES))
                if not raw:
                    break
                first_line = stats.lines + 1
                stats.lines += len(raw)
                done_bytes += sum(map(len, raw))
                lines = LineRun(name, first_line, list(map(bytes.rstrip, raw, repeat(b"\r\n"))))
                emit(step(state, _interleave(lines, commands.until(stats.lines)
                                             if commands else [])))
                if feed is not None:
                    latest = max((c.last_prediction_ts for c in state.labels.counts_by_model()),
                                 default=-math.inf)
                    released = feed.until(latest)
                    if released:
                        emit(step(state, released))
                gc.collect(1)
                if bar:
                    bar.update(done_bytes, stats.events)
            if commands is not None:
                emit(step(state, [line for _, line in commands.until(sys.maxsize)]))
            if feed is not None:
                emit(step(state, feed.rest()))
                stats.joined = sum(m["joined"] for m in state.labels.summary().values())
    finally:
        if collecting:
            gc.enable()
        if dead_sink:
            dead_sink.close()
        if retrain_sink:
            retrain_sink.close()
        if audit_sink:
            audit_sink.close()
        if commands is not None:
            commands.close()
    stats.seconds = time.perf_counter() - started
    if summary is not None:
        summary.finish(state)
    if bar:
        bar.update(done_bytes, stats.events, final=True)
    return stats
