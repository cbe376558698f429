"""Alert lifecycle: a drift fires once per dedup key and resolves after clean windows.

The policy is a pure step: ``(state, window report) -> (state, alert events)``.
Its state is checkpointed with the monitor it belongs to, so a restart neither
repeats a firing alert nor forgets an open one; ``alert_id`` is a hash of what
the alert is about and of the window that triggered it, so a replayed window
yields the same id and consumers can de-duplicate.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from detectors.monitor import Finding, WindowReport

SCHEMA_VERSION = 1
FIRING = "firing"
RESOLVED = "resolved"


@dataclass
class AlertPolicy:
    """Open alerts of one model version and when they may resolve.

    Parameters
    ----------
    model_id, model_version
        The model version whose windows this policy judges.
    resolve_after_windows
        Consecutive clean windows before a firing alert resolves (hysteresis).
    """

    model_id: str
    model_version: str
    resolve_after_windows: int = 3
    open_alerts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def apply(self, report: WindowReport) -> list[dict[str, Any]]:
        """Turn one window's findings into firing and resolved alert events."""
        alerts: list[dict[str, Any]] = []
        for finding in report.findings:
            key = self.dedup_key(finding)
            current = self.open_alerts.get(key)
            if finding.result.drift:
                if current is None:
                    alert = self._event(finding, report, key, FIRING)
                    self.open_alerts[key] = {
                        "alert_id": alert["alert_id"], "clean_windows": 0, "kind": finding.kind,
                        "feature": finding.feature, "detector": finding.result.detector}
                    alerts.append(alert)
                else:
                    current["clean_windows"] = 0
            elif current is not None:
                current["clean_windows"] += 1
                if current["clean_windows"] >= self.resolve_after_windows:
                    alerts.append(self._event(finding, report, key, RESOLVED,
                                              fired_as=current["alert_id"]))
                    del self.open_alerts[key]
        return alerts

    def resolve_all(self, reason: str, at_ts: float) -> list[dict[str, Any]]:
        """Resolve every open alert at once (the model was re-baselined); forget them."""
        alerts = []
        for key, entry in sorted(self.open_alerts.items()):
            identity = f"{key}|{RESOLVED}|rebaseline|{entry['alert_id']}"
            alerts.append({
                "schema_version": SCHEMA_VERSION,
                "alert_id": hashlib.sha256(identity.encode()).hexdigest()[:32],
                "dedup_key": key, "model_id": self.model_id, "model_version": self.model_version,
                "kind": entry.get("kind", key.split("|")[2]), "status": RESOLVED,
                "severity": "info", "feature": entry.get("feature"), "segment": None,
                "detector": entry.get("detector", "rebaseline"), "statistic": 0.0,
                "threshold": 0.0, "p_value": None, "effect_size": 0.0,
                "window": {"start_ts": at_ts, "end_ts": at_ts, "events": 0},
                "reference": {}, "explanation": f"re-baselined: {reason}; a new reference is "
                "being collected from the next events", "ts": time.time(),
                "resolves": entry["alert_id"]})
        self.open_alerts.clear()
        return alerts

    def dedup_key(self, finding: Finding) -> str:
        """Stable identity of what an alert is about."""
        return "|".join((self.model_id, self.model_version, finding.kind, finding.feature,
                         finding.check))

    def _event(self, finding: Finding, report: WindowReport, key: str, status: str,
               fired_as: str | None = None) -> dict[str, Any]:
        result = finding.result
        identity = f"{key}|{status}|{report.reference.get('start_ts')}|{report.index}"
        event: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "alert_id": hashlib.sha256(identity.encode()).hexdigest()[:32],
            "dedup_key": key,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "kind": finding.kind,
            "status": status,
            "severity": result.severity if status == FIRING else "info",
            "feature": finding.feature,
            "segment": None,
            "detector": result.detector,
            "statistic": result.statistic,
            "threshold": result.threshold,
            "p_value": result.p_value,
            "effect_size": result.effect_size,
            "window": {"start_ts": report.start_ts, "end_ts": report.end_ts,
                       "events": report.events, "index": report.index},
            "reference": {**report.reference, **{k: v for k, v in result.reference.items()
                                                 if k != "events"}},
            "explanation": result.explanation if status == FIRING else
            f"back to normal for {self.resolve_after_windows} windows: {result.explanation}",
            "ts": time.time(),
        }
        if fired_as is not None:
            event["resolves"] = fired_as
        return event

    def to_state(self) -> dict[str, Any]:
        """Plain-dict state."""
        return {"version": 1, "model_id": self.model_id, "model_version": self.model_version,
                "resolve_after_windows": self.resolve_after_windows,
                "open_alerts": self.open_alerts}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AlertPolicy:
        """Rebuild from :meth:`to_state` output."""
        return cls(state["model_id"], state["model_version"], state["resolve_after_windows"],
                   {k: dict(v) for k, v in state["open_alerts"].items()})
