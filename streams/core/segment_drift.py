"""Drift per segment value, next to each model version's own monitor.

A model version whose first events name segments (``"segments": {"country":
"IT"}``) gets, besides its :class:`~detectors.monitor.ModelMonitor`, a
:class:`~detectors.segments.SegmentMonitors`: one drift monitor per segment
value, the first ``limits.max_drift_segments`` values of the version. The
version's false-alarm budget is split between the two
(:meth:`~detectors.config.MonitorConfig.split_budget`), so it is decided when
the version's monitor is created; a version created without segments keeps
its whole budget and its segments are not watched for drift (logged once).

Each segment has its own window indices, hence its own alert policy; the
model's rate limit is shared through the engine's policy factory. Segment
reports raise alerts (``segment`` set) but are not the version's reports:
the windows, series and summaries of a version stay the whole version's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from itertools import repeat
from operator import attrgetter
from typing import Any

from detectors.batch import ColumnBatch
from detectors.config import MonitorConfig
from detectors.segments import SegmentMonitors
from streams.core.alerts import AlertPolicy
from streams.core.label_columns import segment_label

DRIFT_SEGMENTS = "drift_segments_per_model"
"""The limit counted when a segment value finds no room (``limits.max_drift_segments``)."""

PolicyFactory = Callable[[str, str, "dict[str, Any] | None"], AlertPolicy]
Key = tuple[str, str]

log = logging.getLogger(__name__)
_SEGMENTS_ATTR = attrgetter("segments")


def segments_of(events: list[Any]) -> list[Any]:
    """Each event's ``segments`` (falsy where it has none), dicts or typed structs.

    >>> segments_of([{"segments": {"channel": "web"}}, {}])
    [{'channel': 'web'}, None]
    """
    if events and type(events[0]) is not dict:
        return list(map(_SEGMENTS_ATTR, events))
    return list(map(dict.get, events, repeat("segments")))


def segment_rows(segments: list[Any], dropped: Iterable[int] = ()) -> dict[str, list[int]]:
    """Rows per segment ``name=value``, counted in the batch left after ``dropped`` rows.

    >>> segment_rows([{"channel": "web"}, {"channel": "app"}, {"channel": "web"}], dropped=[1])
    {'channel=web': [0, 1]}
    """
    skip = set(dropped)
    rows_of: dict[str, list[int]] = {}
    labels: dict[tuple[str, type, Any], str] = {}
    row = 0
    for position, named in enumerate(segments):
        if position in skip:
            continue
        if named:
            for name, value in named.items():
                # Typed and hashed: True and 1 are different segments.
                key = (name, type(value), value)
                label = labels.get(key)
                if label is None:
                    label = labels[key] = segment_label(name, value)
                rows = rows_of.get(label)
                if rows is None:
                    rows = rows_of[label] = []
                rows.append(row)
        row += 1
    return rows_of


class SegmentDrift:
    """Segment-value drift monitors and their alert policies, per model version.

    Parameters
    ----------
    max_segments
        Segment values per model version with a drift monitor (0: none).
    policy_factory
        ``(model_id, model_version, state or None) -> AlertPolicy``.

    Examples
    --------
    >>> drift = SegmentDrift(0, lambda m, v, s: AlertPolicy(m, v))
    >>> drift.wanted([{"segments": {"channel": "web"}}])
    False
    """

    def __init__(self, max_segments: int, policy_factory: PolicyFactory) -> None:
        self.max_segments = max_segments
        self._policy_factory = policy_factory
        self._monitors: dict[Key, SegmentMonitors] = {}
        self._policies: dict[tuple[str, str, str], AlertPolicy] = {}
        self._unwatched: set[Key] = set()     # logged once: not state

    def __contains__(self, key: object) -> bool:
        return key in self._monitors

    def monitors(self, key: Key) -> SegmentMonitors | None:
        """The segment monitors of a model version, if it has them."""
        return self._monitors.get(key)

    def wanted(self, events: list[Any]) -> bool:
        """Whether a new version with these first events gets segment monitors."""
        return self.max_segments > 0 and any(segments_of(events))

    def start(self, key: Key, schema: dict[str, str], outputs: dict[str, str],
              config: MonitorConfig) -> None:
        """Give a version segment monitors with ``config`` (a segment's share of the budget)."""
        self._monitors[key] = SegmentMonitors(schema, outputs, config, self.max_segments)

    def feed(self, key: Key, events: list[Any], batch: ColumnBatch, dropped: Iterable[int],
             suppressed: dict[str, int]) -> tuple[list[dict[str, Any]], int]:
        """Feed a version's events (``batch`` is them without ``dropped`` rows).

        Returns the alerts and how many events of segment values past the cap
        were left out; held-back firings are added to ``suppressed``.
        """
        monitors = self._monitors.get(key)
        if monitors is None:
            # The first and last events only: a warning is not worth a pass over every event.
            if (self.max_segments and key not in self._unwatched
                    and any(segments_of([events[0], events[-1]]))):
                self._unwatched.add(key)
                log.warning("model %s version %s: events name segments, but its first events "
                            "did not: its drift is watched for the whole version only (its "
                            "false-alarm budget is not shared); `driftline rebaseline` starts "
                            "it again with segments", *key)
            return [], 0
        alerts: list[dict[str, Any]] = []
        for report in monitors.update_many(batch, segment_rows(segments_of(events), dropped)):
            segment = report.segment or ""
            policy = self._policies.get((*key, segment))
            if policy is None:
                policy = self._policies[(*key, segment)] = self._policy_factory(*key, None)
            alerts += policy.apply(report)
            for reason, count in policy.take_suppressed().items():
                suppressed[reason] = suppressed.get(reason, 0) + count
        return alerts, monitors.take_overflow()

    def drop(self, key: Key, reason: str, at_ts: float) -> list[dict[str, Any]]:
        """Forget a version's segment monitors; their open alerts resolve."""
        self._monitors.pop(key, None)
        self._unwatched.discard(key)
        alerts: list[dict[str, Any]] = []
        for policy_key in [k for k in self._policies if k[:2] == key]:
            alerts += self._policies.pop(policy_key).resolve_all(reason, at_ts)
        return alerts

    def to_state(self, key: Key) -> dict[str, Any]:
        """A version's part of its model's checkpoint entry (empty without segments)."""
        monitors = self._monitors.get(key)
        if monitors is None:
            return {}
        return {"segments": monitors.to_state(),
                "segment_policies": {k[2]: policy.to_state()
                                     for k, policy in self._policies.items() if k[:2] == key}}

    def restore(self, key: Key, entry: dict[str, Any]) -> None:
        """Rebuild a version's part from :meth:`to_state` output (nothing if absent)."""
        if entry.get("segments") is None:
            return
        self._monitors[key] = SegmentMonitors.from_state(entry["segments"])
        for segment, state in entry.get("segment_policies", {}).items():
            self._policies[(*key, segment)] = self._policy_factory(*key, state)


__all__ = ["DRIFT_SEGMENTS", "SegmentDrift", "segment_rows", "segments_of"]
