"""Drift monitors per segment value: a shift that the whole model version dilutes.

A prediction may name the segments it belongs to (``{"country": "IT"}``). A
shift in one country's traffic moves the whole model's distributions by that
country's share only, often below what the version's own tests can tell from
noise. :class:`SegmentMonitors` therefore gives each segment value
(``country=IT``) a :class:`~detectors.monitor.ModelMonitor` of its own, with
its own reference (the segment's first ``reference_size`` events) and its
own tumbling windows, counted in the segment's events.

Only the drift findings of a segment's monitor are reported (``data_drift``,
``prediction_drift``); data quality is watched for the whole version, which
sees every event. Each report and finding carries the segment's
``name=value``, and a drifting finding's explanation starts with it.

A monitor's update has a fixed cost per call (about a millisecond for 20
features), and a segment's share of a batch is small: a segment's events
therefore wait, in the compact form of :mod:`detectors.staged`, until
``feed_events`` of them have arrived, or until the version has seen
``MAX_WAIT`` × ``feed_events`` events since the oldest of them (so a rare
segment is not held back for long), and are then fed at once. Windows
count events, so the reports are the same; they come up to that much later.

The number of segment values with a monitor is capped (``max_segments``):
events of later values are counted, not monitored. The false-alarm budget is
shared with the whole version's monitor through
:meth:`~detectors.config.MonitorConfig.split_budget`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from detectors.batch import ColumnBatch
from detectors.config import MonitorConfig
from detectors.errors import ConfigurationError, StateError, require
from detectors.monitor import DATA_DRIFT, PREDICTION_DRIFT, Finding, ModelMonitor, WindowReport
from detectors.staged import StagedEvents

SEGMENT_KINDS = (DATA_DRIFT, PREDICTION_DRIFT)
"""Finding kinds a segment's monitor reports."""
FEED_EVENTS = 1000
"""A segment's events are fed to its monitor this many at a time (or after ``MAX_WAIT``)."""
MAX_WAIT = 20
"""Waiting events are fed once the version has seen ``MAX_WAIT × feed_events`` since."""


class SegmentMonitors:
    """The segment-value drift monitors of one model version.

    Parameters
    ----------
    schema
        Feature name → ``"numeric"`` or ``"categorical"`` (the version's).
    outputs
        Output column name → type (the version's).
    config
        Settings of each segment's monitor: its share of the version's
        false-alarm budget (:meth:`~detectors.config.MonitorConfig.split_budget`).
    max_segments
        Segment values with a monitor; events of further values are counted
        (:meth:`take_overflow`).
    feed_events
        A segment's events wait until this many have arrived (or until the
        version has seen ``MAX_WAIT`` times as many) and are fed at once.

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> config = MonitorConfig(reference_size=1000, window_size=500).split_budget(2)[1]
    >>> segments = SegmentMonitors({"x": "numeric"}, {}, config, max_segments=2,
    ...                            feed_events=100)
    >>> x = rng.normal(size=6000)
    >>> web = np.arange(0, 6000, 2)                        # every other event is web's
    >>> x[web[web >= 3000]] += 2.0                         # web shifts halfway through
    >>> batch = ColumnBatch.from_numeric(ts=np.arange(6000.0), x=x)
    >>> rows = {"channel=web": web, "channel=app": web + 1}
    >>> drifted = {(r.segment, f.feature) for r in segments.update_many(batch, rows)
    ...            for f in r.drifted}
    >>> sorted(drifted)
    [('channel=web', 'x')]
    """

    STATE_VERSION: ClassVar[int] = 1

    def __init__(self, schema: dict[str, str], outputs: dict[str, str], config: MonitorConfig,
                 max_segments: int, feed_events: int = FEED_EVENTS) -> None:
        require(max_segments >= 1, "max_segments", "an integer >= 1", max_segments)
        require(feed_events >= 1, "feed_events", "an integer >= 1", feed_events)
        self.schema = dict(schema)
        self.outputs = dict(outputs)
        self.config = config
        self.max_segments = max_segments
        self.feed_events = feed_events
        self._reset()

    def _reset(self) -> None:
        self._monitors: dict[str, ModelMonitor] = {}
        self._overflow = 0
        self._events = 0                              # the version's, since created
        self._waiting: dict[str, StagedEvents] = {}   # events not yet fed, per segment
        self._since: dict[str, int] = {}              # _events when the oldest of them came

    def __len__(self) -> int:
        """Segment values with a monitor."""
        return len(self._monitors)

    @property
    def segments(self) -> list[str]:
        """The ``name=value`` of every segment with a monitor, in the order first seen."""
        return list(self._monitors)

    def monitor(self, segment: str) -> ModelMonitor | None:
        """The monitor of one segment value, if it has one."""
        return self._monitors.get(segment)

    def take_overflow(self) -> int:
        """Events of segment values past ``max_segments`` since the last call."""
        overflow, self._overflow = self._overflow, 0
        return overflow

    def update_many(self, batch: ColumnBatch,
                    rows_of: Mapping[str, Sequence[int] | NDArray[np.intp]]) -> list[WindowReport]:
        """Feed each segment value its rows of ``batch``; return the segments' reports.

        ``rows_of`` maps a segment's ``name=value`` to its rows of the batch, in
        ascending order; an event may be in several segments (one per name).
        Each segment's reports come in its stream order.
        """
        reports: list[WindowReport] = []
        if len(batch) == 0:
            return reports
        stacked: StagedEvents | None = None    # the batch, stacked once for every segment
        for segment, rows in rows_of.items():
            if segment not in self._monitors:
                if len(self._monitors) >= self.max_segments:
                    self._overflow += len(rows)
                    continue
                self._monitors[segment] = ModelMonitor(self.schema, self.outputs, self.config)
            stacked = stacked or StagedEvents.append(None, batch, share=False)
            events = stacked.take(np.asarray(rows, dtype=np.intp))
            waiting = self._waiting.get(segment)
            if waiting is None:
                self._waiting[segment], self._since[segment] = events, self._events
            else:
                self._waiting[segment] = waiting.extend(events)
        self._events += len(batch)
        patience = MAX_WAIT * self.feed_events
        for segment in [s for s, waiting in self._waiting.items()
                        if len(waiting) >= self.feed_events
                        or self._events - self._since[s] >= patience]:
            del self._since[segment]
            monitor = self._monitors[segment]
            for report in monitor.update_many(self._waiting.pop(segment).batch()):
                tagged = _tagged(report, segment)
                if tagged.findings:
                    reports.append(tagged)
        return reports

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state of every segment's monitor."""
        return {"type": "segment_monitors", "version": self.STATE_VERSION,
                "max_segments": self.max_segments, "schema": dict(self.schema),
                "outputs": dict(self.outputs), "config": self.config.__dict__.copy(),
                "overflow": self._overflow, "feed_events": self.feed_events,
                "events": self._events, "since": dict(self._since),
                "waiting": {segment: waiting.to_plain()
                            for segment, waiting in self._waiting.items()},
                "monitors": {segment: monitor.to_state()
                             for segment, monitor in self._monitors.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SegmentMonitors:
        """Rebuild from :meth:`to_state` output."""
        if state.get("type") != "segment_monitors" or state.get("version") != cls.STATE_VERSION:
            raise StateError(f"state: expected segment_monitors version {cls.STATE_VERSION}, "
                             f"got {state.get('type')!r} version {state.get('version')!r}")
        try:
            segments = cls(state["schema"], state["outputs"], MonitorConfig(**state["config"]),
                           state["max_segments"], state["feed_events"])
            segments._overflow = int(state["overflow"])
            segments._events = int(state["events"])
            segments._since = {segment: int(at) for segment, at in state["since"].items()}
            segments._waiting = {segment: StagedEvents.from_plain(plain)
                                 for segment, plain in state["waiting"].items()}
            segments._monitors = {segment: ModelMonitor.from_state(monitor)
                                  for segment, monitor in state["monitors"].items()}
        except (KeyError, TypeError, ValueError, ConfigurationError) as exc:
            raise StateError(f"state: cannot restore segment_monitors: {exc}") from exc
        return segments


def _tagged(report: WindowReport, segment: str) -> WindowReport:
    """``report`` of one segment: its drift findings only, each naming the segment."""
    prefix = f"segment {segment}: "
    findings = [Finding(f.kind, f.feature, f.check,
                        f.result.prefixed(prefix) if f.result.drift else f.result, segment)
                for f in report.findings if f.kind in SEGMENT_KINDS]
    return WindowReport(index=report.index, start_ts=report.start_ts, end_ts=report.end_ts,
                        events=report.events, findings=findings, reference=report.reference,
                        partial=report.partial, segment=segment)


__all__ = ["SEGMENT_KINDS", "SegmentMonitors"]
