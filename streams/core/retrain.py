"""Retrain requests: when a confirmed performance/concept alert has enough labels behind it.

A pure step like the alert policy. A firing ``performance`` or
``concept_drift`` alert opens a *drift* for its model version; once
``min_labels`` labelled events with a prediction time at or after the drift's
start have been joined, one retrain event is emitted with the evidence and the
exact data to train on. At most one request is open per model version: the
next one can only come from a new version seen in the predictions.

The training window starts at the event that confirmed the drift (the alert's
``window.end_ts``), not at an estimate of the change point: it loses the few
hundred events between the change and its detection, and in exchange holds
no event from the old concept.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
TRIGGER_KINDS = ("performance", "concept_drift")


@dataclass
class RetrainPolicy:
    """Drift evidence and retrain requests of one model version.

    Parameters
    ----------
    model_id, model_version
        The model version this policy speaks for.
    min_labels
        Labelled events after the drift point needed before a request is sent.

    Examples
    --------
    >>> policy = RetrainPolicy("m", "v1", min_labels=2)
    >>> policy.on_alert({"kind": "performance", "status": "firing", "alert_id": "a1",
    ...                  "window": {"end_ts": 10.0}, "feature": "accuracy",
    ...                  "explanation": "accuracy fell"})
    >>> request = policy.on_labelled(ts=[9.0, 11.0, 12.0], prediction_offsets=[5, 7, 9],
    ...                              label_offsets=[2, 3, 4], partition=0)
    >>> request["training_window"]["offsets"][0]
    {'topic': 'predictions', 'partition': 0, 'start_offset': 7, 'end_offset': 10}
    """

    model_id: str
    model_version: str
    min_labels: int = 1000
    drift: dict[str, Any] | None = None
    requested: str | None = None

    def on_alert(self, alert: dict[str, Any]) -> None:
        """Note a firing performance/concept alert as drift evidence."""
        if alert["kind"] not in TRIGGER_KINDS or alert["status"] != "firing" or self.requested:
            return
        if self.drift is None:
            # The event that confirmed the drift: later than the change itself, so every
            # event of the training window comes from the new concept.
            start = float(alert["window"]["end_ts"])
            self.drift = {"start_ts": start, "alert_ids": [], "evidence": [], "labels": 0,
                          "first": None, "last": None}
        if alert["alert_id"] not in self.drift["alert_ids"]:
            self.drift["alert_ids"].append(alert["alert_id"])
            self.drift["evidence"].append({
                "kind": alert["kind"], "metric": alert.get("feature"),
                "statistic": alert.get("statistic"), "threshold": alert.get("threshold"),
                "effect_size": alert.get("effect_size"), "explanation": alert.get("explanation"),
                "reference": alert.get("reference", {})})

    def on_labelled(self, ts: list[float], prediction_offsets: list[int],
                    label_offsets: list[int], partition: int,
                    topics: tuple[str, str] = ("predictions", "labels"),
                    coverage: float | None = None,
                    challenger: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Count joined events (prediction time, input offsets); maybe emit the request.

        Only events with a prediction time at or after the drift's start count.
        Offsets are those of ``partition`` in ``topics`` (predictions, labels);
        the training window spans the counted events.
        """
        drift = self.drift
        if drift is None or self.requested:
            return None
        start = drift["start_ts"]
        after = [i for i, t in enumerate(ts) if t >= start]
        if not after:
            return None
        drift["labels"] += len(after)
        low = [min(ts[i] for i in after), min(prediction_offsets[i] for i in after),
               min(label_offsets[i] for i in after)]
        high = [max(ts[i] for i in after), max(prediction_offsets[i] for i in after),
                max(label_offsets[i] for i in after)]
        drift["first"] = [min(a, b) for a, b in zip(drift["first"] or low, low, strict=True)]
        drift["last"] = [max(a, b) for a, b in zip(drift["last"] or high, high, strict=True)]
        if drift["labels"] < self.min_labels:
            return None
        return self._request(partition, topics, coverage, challenger)

    def _request(self, partition: int, topics: tuple[str, str], coverage: float | None,
                 challenger: dict[str, Any] | None) -> dict[str, Any]:
        drift = self.drift
        assert drift is not None
        identity = "|".join((self.model_id, self.model_version, drift["alert_ids"][0]))
        key = hashlib.sha256(identity.encode()).hexdigest()
        self.requested = key[:32]
        kinds = sorted({e["kind"] for e in drift["evidence"]})
        event: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "retrain_id": key[:32],
            "idempotency_key": key,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "reason": f"{' and '.join(kinds)} alert confirmed by {drift['labels']:,} labelled "
                      f"events after the drift point",
            "alert_ids": list(drift["alert_ids"]),
            "evidence": list(drift["evidence"]),
            "training_window": {
                "start_ts": drift["start_ts"], "end_ts": drift["last"][0],
                "offsets": [
                    {"topic": topic, "partition": partition, "start_offset": int(drift["first"][i]),
                     "end_offset": int(drift["last"][i]) + 1}
                    for i, topic in ((1, topics[0]), (2, topics[1]))],
            },
            "labeled_events": drift["labels"],
            "label_coverage": coverage,
            "ts": time.time(),
        }
        if challenger is not None:
            event["challenger"] = challenger
        return event

    def to_state(self) -> dict[str, Any]:
        """Plain-dict state."""
        return {"version": 1, "model_id": self.model_id, "model_version": self.model_version,
                "min_labels": self.min_labels, "drift": self.drift, "requested": self.requested}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RetrainPolicy:
        """Rebuild from :meth:`to_state` output."""
        return cls(state["model_id"], state["model_version"], int(state["min_labels"]),
                   state["drift"], state["requested"])


__all__ = ["TRIGGER_KINDS", "RetrainPolicy"]
