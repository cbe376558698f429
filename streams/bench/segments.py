"""Drift per segment (``bench quality --part segments``): false alarms, a detection, cost.

The model is the feature bench's (20 features: 8 normal, 4 lognormal, 3
Poisson, 5 categorical; :func:`streams.bench.features.batches`), in
1,000-event batches, with one segment name whose 20 values take uneven
shares of the events (share ∝ 1/rank: from 28 % down to 1.4 %). Each run
feeds the whole version's :class:`~detectors.monitor.ModelMonitor` and the
:class:`~detectors.segments.SegmentMonitors` of its 20 values, with the
budget split as the engine splits it
(:meth:`~detectors.config.MonitorConfig.split_budget`).

* **stationary**: ``--segment-events`` events per seed (default 10M); every
  flagged finding is a false alarm (a sequential alarm repeated by its
  window's full report counts once), counted for the whole version and for
  the segments, per 10M events of the version.
* **one segment shifts**: the value with the 8th largest share (3.5 % of the
  events) has ``normal_0`` shifted by 1 sd from event 300,000 on; detected
  when a report of that segment flags ``normal_0``, with the delay in that
  segment's events and in the version's; the whole version's own verdict is
  shown next to it.
* **cost**: CPU µs per event of the whole version's update alone and with
  the segments' (same run), and the memory one segment's monitor holds
  (``tracemalloc``), while it collects its reference and after, with the
  size of its checkpointed state.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import orjson
from numpy.typing import NDArray

from detectors.batch import ColumnBatch
from detectors.config import MonitorConfig
from detectors.monitor import ModelMonitor, WindowReport
from detectors.segments import SegmentMonitors
from streams.bench.features import BATCH, SCHEMA, batches

SEGMENTS = 20
SHIFT_AT = 300_000
SHIFT_EVENTS = 700_000
SHIFTED = 7           # rank of the shifted value: 8th largest share
SHIFTED_FEATURE = "normal_0"
SHARES = (1.0 / np.arange(1, SEGMENTS + 1)) / np.sum(1.0 / np.arange(1, SEGMENTS + 1))


@dataclass
class SegmentRun:
    """What one run saw: false alarms, a detection, CPU seconds."""

    events: int
    whole_alarms: int = 0
    segment_alarms: int = 0
    detected_at: int | None = None         # version's event at which the segment alarmed
    segment_delay: int | None = None       # the same, in the shifted segment's events
    raised_at: int | None = None           # version's events fed when the alarm came out
    whole_detected: bool = False
    whole_seconds: float = 0.0
    segment_seconds: float = 0.0


def segmented(seed: int, events: int) -> Iterator[tuple[ColumnBatch, dict[str, NDArray[np.intp]],
                                                      NDArray[np.intp]]]:
    """Batches of the feature bench's stream, their rows per segment, and each row's value."""
    rng = np.random.default_rng([seed, 17])
    for batch in batches(seed, events, None):
        value = rng.choice(SEGMENTS, size=len(batch), p=SHARES)
        order = np.argsort(value, kind="stable")
        bounds = np.searchsorted(value[order], np.arange(SEGMENTS + 1))
        rows = {f"region=r{v}": order[bounds[v]:bounds[v + 1]] for v in range(SEGMENTS)
                if bounds[v + 1] > bounds[v]}
        yield batch, rows, value


def _alarms(reports: list[WindowReport], seen: set[tuple[str | None, int, str]]) -> list[
        tuple[WindowReport, str]]:
    """Flagged (report, feature) pairs, a sequential alarm's window summary counted once."""
    flagged = []
    for report in reports:
        for finding in report.drifted:
            key = (report.segment, report.index, finding.feature)
            if not report.partial and finding.result.detector.startswith("cusum") and key in seen:
                continue
            if report.partial:
                seen.add(key)
            flagged.append((report, finding.feature))
    return flagged


def run_segments(seed: int, events: int, shift: bool = False,
                 shift_at: int = SHIFT_AT) -> SegmentRun:
    """Feed one run to a whole version's monitor and its 20 segments' monitors."""
    whole_config, each = MonitorConfig().split_budget(SEGMENTS)
    whole = ModelMonitor(SCHEMA, {}, whole_config)
    segments = SegmentMonitors(SCHEMA, {}, each, SEGMENTS)
    run = SegmentRun(events)
    seen: set[tuple[str | None, int, str]] = set()
    target, position = f"region=r{SHIFTED}", 0
    moved_events: list[NDArray[np.intp]] = []     # the shifted segment's, since the shift
    for batch, rows, value in segmented(seed, events):
        index = position + np.arange(len(batch))
        if shift:
            moved = (value == SHIFTED) & (index >= shift_at)
            if moved.any():
                column = batch.columns[SHIFTED_FEATURE]
                column.values[moved] += 1.0      # normal_0 has sd 1
        started = time.process_time()
        whole_reports = whole.update_many(batch)
        middle = time.process_time()
        segment_reports = segments.update_many(batch, rows)
        run.whole_seconds += middle - started
        run.segment_seconds += time.process_time() - middle
        for report, feature in _alarms(whole_reports, seen):
            if shift and feature == SHIFTED_FEATURE and report.end_ts >= shift_at:
                run.whole_detected = True
            else:
                run.whole_alarms += 1
        moved_events.append(index[(value == SHIFTED) & (index >= shift_at)])
        for report, feature in _alarms(segment_reports, seen):
            if shift and report.segment == target and feature == SHIFTED_FEATURE and (
                    report.end_ts >= shift_at):
                if run.detected_at is None:
                    # Reports carry event time: the alarm's event, whenever it came out.
                    run.detected_at = int(report.end_ts)
                    run.segment_delay = int(np.count_nonzero(
                        np.concatenate(moved_events) <= report.end_ts))
                    run.raised_at = position + len(batch)
            else:
                run.segment_alarms += 1
        position += len(batch)
    return run


def segment_memory(events_per_segment: int) -> tuple[float, float]:
    """KiB one segment's monitor holds after ``events_per_segment`` events, and its state's.

    The 20 values take equal shares here, so that every monitor is at the same point.
    """
    _, each = MonitorConfig().split_budget(SEGMENTS)
    stream = []
    for batch in batches(1, events_per_segment * SEGMENTS, None):
        value = np.arange(len(batch)) % SEGMENTS
        stream.append((batch, {f"region=r{v}": np.flatnonzero(value == v)
                               for v in range(SEGMENTS)}))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        segments = SegmentMonitors(SCHEMA, {}, each, SEGMENTS, feed_events=BATCH // SEGMENTS)
        for batch, rows in stream:
            segments.update_many(batch, rows)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    state = len(orjson.dumps(segments.to_state()))
    return held / len(segments) / 1024, state / len(segments) / 1024


def run_segment_bench(out: IO[str] = sys.stdout, events: int = 10_000_000, seeds: int = 3,
                      shift_events: int = SHIFT_EVENTS, shift_at: int = SHIFT_AT,
                      memory_events: tuple[int, int] = (2500, 6000)) -> dict[str, Any]:
    """Run the stationary seeds, the shifted run and the memory probe; print and return them."""
    print(f"\ndrift per segment: 20-feature model, {SEGMENTS} segment values (shares "
          f"{SHARES[0]:.1%} … {SHARES[-1]:.1%}), budget split half/half "
          "(MonitorConfig.split_budget)", file=out, flush=True)
    stationary = [run_segments(seed, events) for seed in range(seeds)]
    total = sum(r.events for r in stationary)
    whole = sum(r.whole_alarms for r in stationary)
    segment = sum(r.segment_alarms for r in stationary)
    print(f"stationary, {seeds} × {events:,} events: false alarms whole version {whole}, "
          f"segments {segment}; per 10M events of the version: "
          f"{1e7 * (whole + segment) / max(total, 1):.2f}", file=out, flush=True)
    shifted = run_segments(0, shift_events, shift=True, shift_at=shift_at)
    detected = ("not detected" if shifted.detected_at is None else
                f"detected at the version's event {shifted.detected_at - shift_at:,} after the "
                f"shift (the segment's {shifted.segment_delay:,}th), raised once "
                f"{(shifted.raised_at or 0) - shift_at:,} had been fed (its events wait "
                "to be fed in bulk)")
    print(f"region=r{SHIFTED} ({SHARES[SHIFTED]:.1%} of events) {SHIFTED_FEATURE} +1 sd from "
          f"event {shift_at:,}: {detected}; the whole version "
          f"{'also flagged it' if shifted.whole_detected else 'did not flag it'}; "
          f"other false alarms {shifted.whole_alarms + shifted.segment_alarms}", file=out)
    whole_us = [1e6 * r.whole_seconds / r.events for r in stationary]
    both_us = [1e6 * (r.whole_seconds + r.segment_seconds) / r.events for r in stationary]
    print(f"CPU µs/event (min/median over seeds): whole version {min(whole_us):.2f}/"
          f"{float(np.median(whole_us)):.2f}, with its {SEGMENTS} segments {min(both_us):.2f}/"
          f"{float(np.median(both_us)):.2f}", file=out)
    collecting, collecting_state = segment_memory(memory_events[0])
    after, after_state = segment_memory(memory_events[1])
    print(f"memory per segment monitor: {collecting:,.0f} KiB while collecting its reference "
          f"({memory_events[0]:,} events), {after:,.0f} KiB after ({memory_events[1]:,} "
          f"events); checkpointed state "
          f"{collecting_state:,.0f} / {after_state:,.0f} KiB", file=out, flush=True)
    return {"events": total, "whole_alarms": whole, "segment_alarms": segment,
            "detected_at": shifted.detected_at, "segment_delay": shifted.segment_delay,
            "raised_at": shifted.raised_at,
            "whole_detected": shifted.whole_detected, "whole_us": whole_us, "both_us": both_us,
            "memory_kib": (collecting, after), "state_kib": (collecting_state, after_state)}


__all__ = ["run_segment_bench", "run_segments", "segment_memory"]
