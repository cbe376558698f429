"""How much a partition remembers: the model versions it holds and when they go idle.

A partition's monitors live as long as the partition, so the model versions it
holds are bounded (``limits.max_models_per_partition``,
``limits.max_versions_per_model``) and a version that stops sending expires
(``limits.idle_expiry_s``). :class:`VersionClock` keeps the event time each
version last sent and the partition's clock that expiry is measured on.

**Event time, robust to one skewed producer.** A version's time is the newest
``ts`` of its accepted predictions. The partition's clock is the second-newest
of its models' times: a single model stamping its events ahead (a clock set
wrong, a unit error) moves its own time only, and cannot make every other
model look idle. A model's own time also counts for its own versions, so an
old version expires once its successor has run for ``idle_expiry_s``.
Expiry is checked when a step ends, at most once per 1/64 of
``idle_expiry_s`` of clock; being event time, a replay of the same input
expires the same versions at the same point.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

TOO_MANY_MODELS = "too_many_models"
VERSIONS_PER_MODEL = "versions_per_model"
IDLE = "idle"
SWEEPS_PER_EXPIRY = 64


class Retired(NamedTuple):
    """A model version the partition stopped monitoring, and why (``idle`` or a limit)."""

    model_id: str
    model_version: str
    reason: str
    explanation: str
    """What its resolved alerts say."""
    at_ts: float
    """Event time of the retirement (the resolved alerts' time)."""


class VersionClock:
    """Last event time of every model version, and when each has been idle too long.

    Parameters
    ----------
    expiry_s
        Event time after which a version without predictions is idle.

    Examples
    --------
    >>> clock = VersionClock(expiry_s=100.0)
    >>> clock.seen(("a", "v1"), 1000.0); clock.seen(("b", "v1"), 1050.0)
    >>> clock.seen(("c", "v1"), 1200.0)      # alone, c cannot make a and b idle ...
    >>> clock.idle()
    []
    >>> clock.seen(("b", "v1"), 1150.0)      # ... a second model confirms the time
    >>> clock.idle()
    [('a', 'v1')]
    """

    def __init__(self, expiry_s: float) -> None:
        self.expiry_s = expiry_s
        self._last: dict[tuple[str, str], float] = {}
        # Versions restored without a time: they take the next time any version sends.
        self._adopted: list[tuple[str, str]] = []
        # The two newest model times, of two different models: (time, model_id), newest first.
        self._newest: list[tuple[float, str]] = []
        # The newest model time and the partition clock at the last sweep.
        self._swept = (-math.inf, -math.inf)

    def seen(self, key: tuple[str, str], ts: float) -> None:
        """Note that version ``key`` sent a prediction at ``ts`` (any order)."""
        if self._adopted:
            for adopted in self._adopted:
                self._last.setdefault(adopted, ts)
            self._adopted = []
        if ts > self._last.get(key, -math.inf):
            self._last[key] = ts
        model_id = key[0]
        others = [entry for entry in self._newest if entry[1] != model_id]
        mine = max([ts, *(t for t, m in self._newest if m == model_id)])
        self._newest = sorted([*others, (mine, model_id)], reverse=True)[:2]

    def last(self, key: tuple[str, str]) -> float:
        """When version ``key`` last sent (``-inf`` if never)."""
        return self._last.get(key, -math.inf)

    def adopt(self, key: tuple[str, str]) -> None:
        """Track a version whose last time is unknown as if it sent at the next event seen."""
        if key not in self._last:
            self._adopted.append(key)

    def forget(self, key: tuple[str, str]) -> None:
        """Stop tracking a version (the clock itself keeps the time it has seen)."""
        self._last.pop(key, None)
        if key in self._adopted:
            self._adopted.remove(key)

    @property
    def now(self) -> float:
        """The partition's clock: the second-newest model time (``-inf`` with one model)."""
        return self._newest[1][0] if len(self._newest) > 1 else -math.inf

    def idle(self) -> list[tuple[str, str]]:
        """Versions idle for longer than ``expiry_s``, once per 1/64 of it, oldest first."""
        newest = self._newest[0][0] if self._newest else -math.inf
        partition_now = self.now
        step = self.expiry_s / SWEEPS_PER_EXPIRY
        if newest < self._swept[0] + step and partition_now < self._swept[1] + step:
            return []
        self._swept = (newest, partition_now)
        model_now: dict[str, float] = {}
        for (model_id, _), ts in self._last.items():
            model_now[model_id] = max(ts, model_now.get(model_id, -math.inf))
        idle = [key for key, ts in self._last.items()
                if ts < max(partition_now, model_now[key[0]]) - self.expiry_s]
        return sorted(idle, key=lambda key: (self._last[key], key))

    def idlest(self, keys: list[tuple[str, str]]) -> tuple[str, str]:
        """Of ``keys``, the version that sent last longest ago (the first of ties)."""
        return min(keys, key=self.last)

    def restore(self, key: tuple[str, str], ts: float | None) -> None:
        """Track a version restored from a checkpoint, last seen at ``ts`` (``None``: unknown)."""
        if ts is None:
            self.adopt(key)
        else:
            self._last[key] = ts

    def to_state(self) -> dict[str, Any]:
        """The partition's clock as a plain dict, a few numbers whatever the versions.

        Each version's :meth:`last` time is saved with the version (its model's
        part of an incremental checkpoint), and comes back through :meth:`restore`.
        """
        return {"newest": [[ts, m] for ts, m in self._newest],
                "swept": [t if math.isfinite(t) else None for t in self._swept]}

    @classmethod
    def from_state(cls, expiry_s: float, state: dict[str, Any] | None) -> VersionClock:
        """Rebuild from :meth:`to_state` output (``None``: a partition saved before expiry)."""
        clock = cls(expiry_s)
        if state is not None:
            clock._newest = [(float(ts), m) for ts, m in state["newest"]]
            newest, now = state["swept"]
            clock._swept = (-math.inf if newest is None else float(newest),
                            -math.inf if now is None else float(now))
        return clock


__all__ = ["IDLE", "TOO_MANY_MODELS", "VERSIONS_PER_MODEL", "Retired", "VersionClock"]
