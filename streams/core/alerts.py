"""Alert lifecycle: dedup, hysteresis, cooldown, grouping and a per-model rate limit.

The policy is a pure step: ``(state, window report) -> (state, alert events)``.
Its state is checkpointed with the monitor it belongs to, so a restart neither
repeats a firing alert nor forgets an open one; ``alert_id`` is a hash of what
the alert is about and of the window that triggered it, so a replayed window
yields the same id and consumers can de-duplicate.

Lifecycle of one condition (dedup key = model, version, kind, feature, check):

- it **fires** once when its finding drifts, and stays open while it drifts;
- it **resolves** after ``resolve_after_windows`` consecutive clean windows
  (hysteresis);
- for ``cooldown_windows`` windows after it resolved, a new drift of the same
  key is **held**: it fires when the cooldown ends if it is still drifting then,
  and is forgotten if it clears first (a flap that never pages twice);
- conditions of one (model, version, kind) that fire in the same window share
  **one event** (``group``), and so do those that resolve in the same window;
  each is still tracked, held and resolved on its own;
- a model publishes at most ``max_alerts_per_hour`` firing events per hour of
  event time (:class:`AlertRateLimit`); beyond that firings are held like in a
  cooldown, and one ``alert_rate_limit`` alert fires and, when the hour is
  over, resolves saying how many were held back. Resolutions are never held.

Held firings are counted by reason (``cooldown``, ``rate_limit``) for metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

from detectors.errors import require
from detectors.monitor import Finding, WindowReport
from streams.core.alert_events import (
    FIRING,
    HOUR_S,
    MAX_GROUP_SIZE,
    RESOLVED,
    Member,
    Resolution,
    firing_event,
    rate_limit_event,
    rebaseline_event,
    resolved_event,
)

STATE_VERSION = 2
COOLDOWN = "cooldown"
RATE_LIMIT = "rate_limit"
__all__ = ["COOLDOWN", "FIRING", "RATE_LIMIT", "RESOLVED", "AlertPolicy", "AlertRateLimit",
           "AlertSettings"]

# What AlertPolicy batches into events: a firing member, a resolution or an open-alert entry.
_Keyed = TypeVar("_Keyed", Member, Resolution, tuple[str, dict[str, Any]])


@dataclass(frozen=True)
class AlertSettings:
    """How alerts are de-duplicated, grouped and throttled (the ``alerts`` settings).

    Parameters
    ----------
    resolve_after_windows
        Consecutive clean windows before a firing condition resolves.
    cooldown_windows
        Windows after a resolution during which the same condition is held
        instead of firing again (0 = no cooldown).
    group
        One event for the conditions of one model version and kind that fire
        (or resolve) in the same window.
    max_alerts_per_hour
        Firing events per model per hour of event time (0 = no limit).

    Examples
    --------
    >>> AlertSettings(cooldown_windows=-1)
    Traceback (most recent call last):
    ...
    detectors.errors.ConfigurationError: cooldown_windows: expected an integer >= 0, got -1
    """

    resolve_after_windows: int = 3
    cooldown_windows: int = 5
    group: bool = True
    max_alerts_per_hour: int = 20

    def __post_init__(self) -> None:
        require(self.resolve_after_windows >= 1, "resolve_after_windows", "an integer >= 1",
                self.resolve_after_windows)
        require(self.cooldown_windows >= 0, "cooldown_windows", "an integer >= 0",
                self.cooldown_windows)
        require(self.max_alerts_per_hour >= 0, "max_alerts_per_hour",
                "an integer >= 0 (0 = no limit)", self.max_alerts_per_hour)


class AlertRateLimit:
    """At most ``max_per_hour`` firing events of one model per hour of event time.

    Hours are fixed (``floor(end_ts / 3600)`` of the window that fires), so a
    replay and a live run count the same. One instance is shared by the
    policies of every version of the model.

    Examples
    --------
    >>> limit = AlertRateLimit("m", max_per_hour=1)
    >>> limit.advance(10.0), limit.allow(), limit.allow()
    ([], True, False)
    >>> [e["status"] for e in limit.hold(2, "v1")], limit.suppressed
    (['firing'], 2)
    >>> [(e["status"], e["suppressed"]) for e in limit.advance(3600.0)]
    [('resolved', 2)]
    """

    def __init__(self, model_id: str, max_per_hour: int = 20) -> None:
        require(max_per_hour >= 0, "max_per_hour", "an integer >= 0 (0 = no limit)",
                max_per_hour)
        self.model_id = model_id
        self.max_per_hour = max_per_hour
        self._reset()

    def _reset(self) -> None:
        self.hour: int | None = None
        self.sent = 0
        self.suppressed = 0
        self._notice: dict[str, str] | None = None   # the open alert_rate_limit alert

    def advance(self, end_ts: float) -> list[dict[str, Any]]:
        """Move to the hour of ``end_ts`` (never back); close the last hour's notice."""
        hour = math.floor(end_ts / HOUR_S) if math.isfinite(end_ts) else self.hour
        if hour is None or (self.hour is not None and hour <= self.hour):
            return []
        events = []
        if self._notice is not None and self.hour is not None:
            events.append(rate_limit_event(
                self.model_id, self._notice["model_version"], RESOLVED, self.hour, self.sent,
                self.suppressed, self.max_per_hour, fired_as=self._notice["alert_id"]))
        self.hour, self.sent, self.suppressed, self._notice = hour, 0, 0, None
        return events

    def allow(self) -> bool:
        """Take one firing event from this hour's budget; False when it is spent."""
        if self.max_per_hour and self.sent >= self.max_per_hour:
            return False
        self.sent += 1
        return True

    def hold(self, conditions: int, model_version: str) -> list[dict[str, Any]]:
        """Count conditions held back; the first hold of an hour fires the notice."""
        if conditions <= 0:
            return []
        self.suppressed += conditions
        if self._notice is not None or self.hour is None:
            return []
        event = rate_limit_event(self.model_id, model_version, FIRING, self.hour, self.sent,
                                 self.suppressed, self.max_per_hour)
        self._notice = {"alert_id": event["alert_id"], "model_version": model_version}
        return [event]

    def to_state(self) -> dict[str, Any]:
        """Plain-dict state (the limit itself comes from the settings)."""
        return {"version": 1, "model_id": self.model_id, "hour": self.hour, "sent": self.sent,
                "suppressed": self.suppressed, "notice": self._notice}

    @classmethod
    def from_state(cls, state: dict[str, Any], max_per_hour: int) -> AlertRateLimit:
        """Rebuild from :meth:`to_state` output with the current limit."""
        limit = cls(state["model_id"], max_per_hour)
        limit.hour, limit.sent, limit.suppressed = state["hour"], state["sent"], \
            state["suppressed"]
        limit._notice = dict(state["notice"]) if state["notice"] else None
        return limit


class AlertPolicy:
    """Open alerts of one model version and when they may fire, resolve or wait.

    Parameters
    ----------
    model_id, model_version
        The model version whose windows this policy judges.
    resolve_after_windows
        Consecutive clean windows before a firing alert resolves (hysteresis).
    open_alerts
        Open conditions by dedup key (restored state; empty for a new policy).
    cooldown_windows, group
        See :class:`AlertSettings`.
    rate_limit
        The model's shared :class:`AlertRateLimit`, or None for no limit.

    Examples
    --------
    >>> from detectors.base import TestResult
    >>> def window(index, drifting):
    ...     return WindowReport(index, index * 60.0, index * 60.0 + 59, 500, [Finding(
    ...         "data_drift", name, "distribution", TestResult(
    ...         detector="ks", drift=name in drifting, statistic=0.3, threshold=0.1, p_value=1e-9,
    ...         effect_size=0.4, severity="warning", window_events=500,
    ...         explanation=f"{name} moved")) for name in "abc"])
    >>> policy = AlertPolicy("m", "v1", resolve_after_windows=1, cooldown_windows=2)
    >>> [(a["status"], a["feature"], len(a.get("features", [a])))
    ...  for a in policy.apply(window(0, "ab"))]
    [('firing', 'a', 2)]
    >>> [(a["status"], a["feature"]) for a in policy.apply(window(1, "b"))]
    [('resolved', 'a')]
    >>> [(a["status"], a["feature"]) for a in policy.apply(window(2, "a"))]  # a is held
    [('resolved', 'b')]
    >>> policy.take_suppressed()
    {'cooldown': 1}
    """

    def __init__(self, model_id: str, model_version: str, resolve_after_windows: int = 3,
                 open_alerts: dict[str, dict[str, Any]] | None = None, *,
                 cooldown_windows: int = 5, group: bool = True,
                 rate_limit: AlertRateLimit | None = None) -> None:
        AlertSettings(resolve_after_windows, cooldown_windows, group)   # validates
        self.model_id = model_id
        self.model_version = model_version
        self.resolve_after_windows = resolve_after_windows
        self.cooldown_windows = cooldown_windows
        self.group = group
        self.rate_limit = rate_limit
        self.open_alerts: dict[str, dict[str, Any]] = open_alerts or {}
        # Conditions drifting but not fired (cooldown or rate limit): key -> clean windows, tag.
        self._held: dict[str, dict[str, Any]] = {}
        self._resolved_at: dict[str, int] = {}   # key -> window index of its last resolution
        self._suppressed: dict[str, int] = {}    # holds since take_suppressed(), by reason

    def apply(self, report: WindowReport) -> list[dict[str, Any]]:
        """Turn one window's findings into firing and resolved alert events."""
        alerts = self.rate_limit.advance(report.end_ts) if self.rate_limit else []
        self._resolved_at = {k: i for k, i in self._resolved_at.items()
                             if report.index <= i + self.cooldown_windows}
        resolved: list[Resolution] = []
        starting: list[Member] = []
        for finding in report.findings:
            key = self.dedup_key(finding)
            drift = finding.result.drift
            entry = self.open_alerts.get(key, self._held.get(key))
            if entry is not None:
                entry["clean_windows"] = 0 if drift else entry["clean_windows"] + 1
                if entry["clean_windows"] >= self.resolve_after_windows:
                    if key in self.open_alerts:
                        resolved.append((key, finding, self.open_alerts.pop(key)))
                        self._resolved_at[key] = report.index
                    else:
                        del self._held[key]   # it never fired: it ends silently
                if key in self.open_alerts or not drift:
                    continue
            if drift:
                if key in self._resolved_at:
                    self._hold(key, COOLDOWN)
                else:
                    starting.append((key, finding))
        for resolutions in self._batches(resolved):
            alerts.append(resolved_event(self.model_id, self.model_version, resolutions, report,
                                         self.resolve_after_windows))
        for members in self._batches(starting):
            alerts += self._fire(members, report)
        return alerts

    def resolve_all(self, reason: str, at_ts: float) -> list[dict[str, Any]]:
        """Resolve every open alert at once (the model was re-baselined); forget them."""
        alerts = [rebaseline_event(self.model_id, self.model_version, members, reason, at_ts)
                  for members in self._batches(sorted(self.open_alerts.items()))]
        self.open_alerts.clear()
        self._held.clear()
        self._resolved_at.clear()
        return alerts

    def take_suppressed(self) -> dict[str, int]:
        """Firings held back since the last call, by reason (for a metrics counter)."""
        counts, self._suppressed = self._suppressed, {}
        return counts

    def dedup_key(self, finding: Finding) -> str:
        """Stable identity of what an alert is about (``|name=value`` ends a segment's)."""
        key = "|".join((self.model_id, self.model_version, finding.kind, finding.feature,
                        finding.check))
        return key if finding.segment is None else f"{key}|{finding.segment}"

    def _fire(self, members: list[Member], report: WindowReport) -> list[dict[str, Any]]:
        if self.rate_limit is not None and not self.rate_limit.allow():
            hour = self.rate_limit.hour
            newly = sum(self._hold(key, f"{RATE_LIMIT}@{hour}") for key, _ in members)
            return self.rate_limit.hold(newly, self.model_version)
        event = firing_event(self.model_id, self.model_version, members, report)
        for key, finding in members:
            self._held.pop(key, None)
            self.open_alerts[key] = {
                "alert_id": event["alert_id"], "clean_windows": 0, "kind": finding.kind,
                "feature": finding.feature, "detector": finding.result.detector,
                "severity": finding.result.severity, "lead": key == event["dedup_key"]}
            if finding.segment is not None:
                self.open_alerts[key]["segment"] = finding.segment
        return [event]

    def _hold(self, key: str, tag: str) -> bool:
        """Hold a drifting condition back; True (and counted) unless already held for ``tag``."""
        entry = self._held.setdefault(key, {"clean_windows": 0, "tag": None})
        if entry["tag"] == tag:
            return False
        entry["tag"] = tag
        reason = tag.partition("@")[0]
        self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
        return True

    def _batches(self, members: list[_Keyed]) -> list[list[_Keyed]]:
        """Members (tuples led by a dedup key) in events: one per kind, or one each."""
        if not self.group:
            return [[m] for m in members]
        by_kind: dict[str, list[_Keyed]] = {}
        for member in members:
            about = member[1]   # a Finding, or an open-alert entry
            kind = about.kind if isinstance(about, Finding) else str(about["kind"])
            by_kind.setdefault(kind, []).append(member)
        return [batch[i:i + MAX_GROUP_SIZE] for batch in by_kind.values()
                for i in range(0, len(batch), MAX_GROUP_SIZE)]

    def to_state(self) -> dict[str, Any]:
        """Plain-dict state (version 2; version 1 had ``open_alerts`` only)."""
        return {"version": STATE_VERSION, "model_id": self.model_id,
                "model_version": self.model_version,
                "resolve_after_windows": self.resolve_after_windows,
                "cooldown_windows": self.cooldown_windows, "group": self.group,
                "open_alerts": self.open_alerts, "held": self._held,
                "resolved_at": self._resolved_at}

    @classmethod
    def from_state(cls, state: dict[str, Any], settings: AlertSettings | None = None,
                   rate_limit: AlertRateLimit | None = None) -> AlertPolicy:
        """Rebuild from :meth:`to_state` output (version 1 or 2).

        With ``settings``, the configuration comes from them rather than from the
        state, so a restarted worker applies changed alert settings.
        """
        config = settings or AlertSettings(
            state["resolve_after_windows"], state.get("cooldown_windows", 0),
            state.get("group", False))
        policy = cls(state["model_id"], state["model_version"], config.resolve_after_windows,
                     {k: dict(v) for k, v in state["open_alerts"].items()},
                     cooldown_windows=config.cooldown_windows, group=config.group,
                     rate_limit=rate_limit)
        policy._held = {k: dict(v) for k, v in state.get("held", {}).items()}
        policy._resolved_at = {k: int(v) for k, v in state.get("resolved_at", {}).items()}
        return policy
