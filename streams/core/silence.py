"""Quiet models: tick time, idle windows and the ``no_data`` alert.

A worker publishes a **tick** on the control topic for every partition it owns,
every ``ticks.interval_s`` (:mod:`streams.runtime.ticks`). A tick carries the
publisher's wall clock (``ts``) and ``predictions_offset``, the next offset of
the partition's predictions the publisher had to read: every prediction before
it had been read when the tick was sent. The partition step applies ticks in
the order it reads them, so a replay given the same ticks decides the same.

**Tick time.** A model version is quiet *from* the first tick whose
``predictions_offset`` is past its last event: that tick's ``ts`` is its
``quiet_since``. Its silence is the ``ts`` of the latest tick minus
``quiet_since``: wall-clock time elapsed on the partition's log, measured from
the ticks alone. It does not read the events' own ``ts``, so producers whose
clocks lag or lead, and backfills of old data, do not make a model look quiet
while it sends. The offset rule makes ``quiet_since`` the same wherever between
two polls the consumer happened to read the tick (Kafka orders records within a
partition of one topic, not across the predictions and control topics).

- a version quiet for ``ticks.idle_close_s`` closes its open window with the
  events it has (:meth:`detectors.monitor.ModelMonitor.close_window`; fewer than
  ``ticks.min_window_events``: dropped untested);
- a model all of whose versions are quiet for ``ticks.no_data_after_s`` raises
  a ``no_data`` alert (once); its next accepted event resolves it.

Without ticks (none published, or a replay given none) nothing is ever quiet:
windows close by event count only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.errors import require
from streams.core.alert_events import no_data_event

__all__ = ["Silence", "TickResult", "TickSettings"]


@dataclass(frozen=True)
class TickSettings:
    """Ticks on the control topic: when a quiet model's window closes and when it alerts.

    Parameters
    ----------
    interval_s
        Seconds between the ticks a worker publishes for each partition it owns
        (0 = none: windows close by event count only and ``no_data`` never fires).
    idle_close_s
        A model version's open window closes, with the events it has, after this
        long without predictions (tick time: the wall clock carried by the ticks).
    min_window_events
        A window closed that way is tested if it holds at least this many events,
        else dropped untested (at least 50, the fewest a distribution test uses).
    no_data_after_s
        A model none of whose versions sent predictions for this long raises a
        ``no_data`` alert (0 = never); its next prediction resolves it.

    Examples
    --------
    >>> TickSettings(min_window_events=10)
    Traceback (most recent call last):
    ...
    detectors.errors.ConfigurationError: min_window_events: expected an integer >= 50, got 10
    """

    interval_s: float = 5.0
    idle_close_s: float = 600.0
    min_window_events: int = 200
    no_data_after_s: float = 1800.0

    def __post_init__(self) -> None:
        require(math.isfinite(self.interval_s) and self.interval_s >= 0, "interval_s",
                "a number of seconds >= 0 (0 = no ticks)", self.interval_s)
        require(math.isfinite(self.idle_close_s) and self.idle_close_s > 0, "idle_close_s",
                "a positive number of seconds", self.idle_close_s)
        require(self.min_window_events >= 50, "min_window_events", "an integer >= 50",
                self.min_window_events)
        require(math.isfinite(self.no_data_after_s) and self.no_data_after_s >= 0,
                "no_data_after_s", "a number of seconds >= 0 (0 = no alert)",
                self.no_data_after_s)


Key = tuple[str, str]


@dataclass
class TickResult:
    """What one tick decided."""

    idle: list[Key] = field(default_factory=list)
    """Versions quiet for ``idle_close_s`` whose window is due to close (once each)."""
    alerts: list[dict[str, Any]] = field(default_factory=list)
    """``no_data`` alerts fired."""
    changed: set[str] = field(default_factory=set)
    """Models whose silence state changed (what the next checkpoint writes)."""


class Silence:
    """Which model versions of one partition are quiet, since when, and open ``no_data`` alerts.

    Parameters
    ----------
    settings
        The ``ticks`` settings.

    Examples
    --------
    >>> silence = Silence(TickSettings(idle_close_s=60.0, no_data_after_s=120.0))
    >>> silence.heard(("m", "v1"), offset=9, ts=1000.0)
    []
    >>> silence.tick(5000.0, predictions_offset=10, last_ts=lambda key: 1000.0).changed
    {'m'}
    >>> silence.tick(5090.0, 10, lambda key: 1000.0).idle
    [('m', 'v1')]
    >>> alerts = silence.tick(5130.0, 10, lambda key: 1000.0).alerts
    >>> [(a["kind"], a["status"], a["statistic"]) for a in alerts]
    [('no_data', 'firing', 130.0)]
    >>> [a["status"] for a in silence.heard(("m", "v1"), offset=10, ts=5200.0)]
    ['resolved']
    """

    def __init__(self, settings: TickSettings) -> None:
        self.settings = settings
        self.last_tick = -math.inf
        self._offsets: dict[Key, int] = {}     # last prediction offset read, per version
        self._quiet: dict[Key, float] = {}     # quiet_since: the ts of the first tick past it
        self._due: set[Key] = set()            # quiet versions whose window may still close
        self._no_data: dict[str, dict[str, Any]] = {}   # open no_data alert per model

    def heard(self, key: Key, offset: int, ts: float) -> list[dict[str, Any]]:
        """Note predictions of version ``key`` up to ``offset`` (newest ``ts``); resolutions."""
        if offset > self._offsets.get(key, -1):
            self._offsets[key] = offset
        if self._quiet.pop(key, None) is not None:
            self._due.discard(key)
        entry = self._no_data.pop(key[0], None) if self._no_data else None
        if entry is None:
            return []
        return [no_data_event(key[0], entry["model_version"], "resolved", entry["since"],
                              max(self.last_tick, entry["since"]), ts,
                              self.settings.no_data_after_s, fired_as=entry["alert_id"])]

    def tick(self, ts: float, predictions_offset: int,
             last_ts: Callable[[Key], float]) -> TickResult:
        """Apply a tick; return the versions whose window is due to close and alerts fired.

        ``last_ts(key)`` gives a version's newest event ``ts`` (what the alert
        reports as the last data). Ticks never move time back: a publisher whose
        clock is behind the previous one's counts as no time passing.
        """
        now = self.last_tick = max(ts, self.last_tick)
        result = TickResult()
        for key, offset in self._offsets.items():
            if offset < predictions_offset and key not in self._quiet:
                self._quiet[key] = now
                self._due.add(key)
                result.changed.add(key[0])
        idle_after = self.settings.idle_close_s
        result.idle = sorted(key for key in self._due if now - self._quiet[key] >= idle_after)
        self._due.difference_update(result.idle)
        if self.settings.no_data_after_s:
            result.alerts = self._fire(now, last_ts)
        result.changed.update(key[0] for key in result.idle)
        result.changed.update(alert["model_id"] for alert in result.alerts)
        return result

    def _fire(self, now: float, last_ts: Callable[[Key], float]) -> list[dict[str, Any]]:
        since: dict[str, tuple[float, str]] = {}
        heard = {key[0] for key in self._offsets if key not in self._quiet}
        for (model_id, version), quiet_since in self._quiet.items():
            if model_id not in heard and model_id not in self._no_data:
                since[model_id] = max(since.get(model_id, (-math.inf, "")),
                                      (quiet_since, version))
        alerts = []
        for model_id, (quiet_since, version) in sorted(since.items()):
            if now - quiet_since >= self.settings.no_data_after_s:
                event = no_data_event(model_id, version, "firing", quiet_since, now,
                                      last_ts((model_id, version)), self.settings.no_data_after_s)
                self._no_data[model_id] = {"alert_id": event["alert_id"], "since": quiet_since,
                                           "model_version": version}
                alerts.append(event)
        return alerts

    def forget(self, key: Key, model_gone: bool, explanation: str,
               at_ts: float) -> list[dict[str, Any]]:
        """Stop tracking a version; the model's last one resolves its ``no_data`` alert."""
        self._offsets.pop(key, None)
        self._quiet.pop(key, None)
        self._due.discard(key)
        entry = self._no_data.pop(key[0], None) if model_gone else None
        if entry is None:
            return []
        return [no_data_event(key[0], entry["model_version"], "resolved", entry["since"],
                              max(self.last_tick, entry["since"]), at_ts,
                              self.settings.no_data_after_s, fired_as=entry["alert_id"],
                              explanation=explanation)]

    def version_state(self, key: Key) -> dict[str, Any]:
        """What a version's checkpoint entry keeps of its silence."""
        entry: dict[str, Any] = {"last_offset": self._offsets.get(key),
                                 "quiet_since": self._quiet.get(key)}
        alert = self._no_data.get(key[0])
        if alert is not None and alert["model_version"] == key[1]:
            entry["no_data"] = alert
        return entry

    def restore(self, key: Key, entry: Mapping[str, Any]) -> None:
        """Take back what :meth:`version_state` saved (absent: never ticked)."""
        if entry.get("last_offset") is not None:
            self._offsets[key] = int(entry["last_offset"])
        if entry.get("quiet_since") is not None:
            self._quiet[key] = float(entry["quiet_since"])
            self._due.add(key)     # closing an already closed window changes nothing
        if entry.get("no_data") is not None:
            self._no_data[key[0]] = dict(entry["no_data"])

    def to_state(self) -> dict[str, Any]:
        """What is not per model: the latest tick's time."""
        return {"last_tick": self.last_tick if math.isfinite(self.last_tick) else None}

    def restore_head(self, state: Mapping[str, Any] | None) -> None:
        """Take back :meth:`to_state` output (``None``: saved before ticks existed)."""
        if state and state.get("last_tick") is not None:
            self.last_tick = float(state["last_tick"])
