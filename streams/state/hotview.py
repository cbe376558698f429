"""The live view in Redis: what dashboards and ``driftline status`` read.

Workers write, per step, in one pipeline:

* ``{prefix}models`` — hash ``model_id|model_version`` → latest summary (JSON);
* ``{prefix}series:{model_id}|{model_version}`` — list, newest first, of window
  points ``{index, end_ts, events, scores: {name: statistic/threshold}}``, capped;
* ``{prefix}alerts`` — list, newest first, of alert events, capped;
* ``{prefix}throughput`` — list, newest first, of ``{ts, events_per_s, …}``, capped;
* ``{prefix}detail:{model_id}|{model_version}`` — hash ``feature`` → the last closed
  window's distribution verdict: statistic, threshold, explanation, and the reference
  and window histograms (what the drill-down draws);
* ``{prefix}drifted:{model_id}|{model_version}`` — list, newest first, of the same for
  each feature whose window drifted, capped (the histograms behind an alert);
* ``{prefix}audit`` — list, newest first, of audit records, capped;
* a version the worker stops monitoring (idle, or past ``limits.max_versions_per_model``)
  loses its ``models`` entry and its ``series``, ``detail`` and ``drifted`` keys;
* a message on the pub/sub channel ``{prefix}updates`` after each write, so a
  dashboard can push changes at once instead of polling.

``prefix`` is ``driftline:hot:<group_id>:``. Everything is bounded, the number of
versions included.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import orjson

from detectors.monitor import Finding, WindowReport
from streams.settings_security import RedisSettings
from streams.state.connect import redis_client


def series_name(kind: str, feature: str, check: str) -> str:
    """Name of one test's series, e.g. ``data_drift:credit_score``."""
    return f"{kind}:{feature}" if check == "distribution" else f"{kind}:{feature}:{check}"


class HotView:
    """Write and read the live view of one consumer group."""

    def __init__(self, redis_url: str, group_id: str, series_length: int = 360,
                 alerts_length: int = 200, security: RedisSettings | None = None,
                 audit_length: int = 1000, drifted_length: int = 100) -> None:
        self.prefix = f"driftline:hot:{group_id}:"
        self.series_length = series_length
        self.alerts_length = alerts_length
        self.audit_length = audit_length
        self.drifted_length = drifted_length
        self._redis = redis_client(redis_url, security, socket_timeout=5.0)

    @property
    def channel(self) -> str:
        """Pub/sub channel announcing every write."""
        return self.prefix + "updates"

    def write(self, reports: list[tuple[str, str, WindowReport, int]],
              alerts: list[dict[str, Any]], audit: Sequence[dict[str, Any]] = (),
              retired: Sequence[tuple[str, str]] = ()) -> None:
        """Record closed windows ``(model_id, model_version, report, events)``, alerts, audit.

        ``retired`` versions ``(model_id, model_version)`` are no longer monitored: their
        summary, series, detail and drifted keys are deleted, after this write's own
        (their alerts stay in the alerts list, their history in the audit topic).
        Otherwise every version a worker ever saw would keep its keys for good.
        """
        if not reports and not alerts and not audit and not retired:
            return
        pipe = self._redis.pipeline(transaction=False)
        # A write covers a whole step, often many windows of one version. The detail hash and
        # the summary keep only the last: write those once per version (drifted ones always).
        last = {(model_id, model_version): position
                for position, (model_id, model_version, report, _) in enumerate(reports)
                if not report.partial}
        points: dict[str, list[bytes]] = {}
        for position, (model_id, model_version, report, events) in enumerate(reports):
            if report.partial:
                continue          # its alarm is in the alerts; the series holds closed windows
            newest = last[model_id, model_version] == position
            name = f"{model_id}|{model_version}"
            scores = {}
            statistics = {}
            drifted = []
            for finding in report.findings:
                result = finding.result
                threshold = result.threshold
                score = result.statistic / threshold if threshold and math.isfinite(threshold) \
                    else 0.0
                label = series_name(finding.kind, finding.feature, finding.check)
                scores[label] = round(score, 4)
                if result.drift:
                    drifted.append(label)
                if finding.check == "distribution":
                    statistics[label] = [_finite(result.statistic), _finite(threshold),
                                         result.detector]
                    if newest or result.drift:
                        self._write_detail(pipe, name, finding, report, newest)
            point = {"index": report.index, "start_ts": report.start_ts, "end_ts": report.end_ts,
                     "events": report.events, "scores": scores, "drifted": drifted,
                     "statistics": statistics}
            points.setdefault(name, []).append(orjson.dumps(point))
            if not newest:
                continue
            pipe.hset(self.prefix + "models", name, orjson.dumps({
                "model_id": model_id, "model_version": model_version, "events": events,
                "windows": report.index + 1, "last_window_end_ts": report.end_ts,
                "drifted": drifted, "updated_at": time.time()}))
        for name, values in points.items():
            # LPUSH of many values puts the last first: newest first, as one command.
            pipe.lpush(self.prefix + "series:" + name, *values)
            pipe.ltrim(self.prefix + "series:" + name, 0, self.series_length - 1)
        if alerts:
            pipe.lpush(self.prefix + "alerts", *map(orjson.dumps, alerts))
            pipe.ltrim(self.prefix + "alerts", 0, self.alerts_length - 1)
        if audit:
            pipe.lpush(self.prefix + "audit", *map(orjson.dumps, audit))
            pipe.ltrim(self.prefix + "audit", 0, self.audit_length - 1)
        for model_id, model_version in retired:
            name = f"{model_id}|{model_version}"
            pipe.hdel(self.prefix + "models", name)
            pipe.delete(*(f"{self.prefix}{kind}:{name}" for kind in ("series", "detail",
                                                                      "drifted")))
        pipe.publish(self.channel, orjson.dumps({"windows": len(reports), "alerts": len(alerts),
                                                 "audit": len(audit), "retired": len(retired)}))
        pipe.execute()

    def _write_detail(self, pipe: Any, name: str, finding: Finding,
                      report: WindowReport, newest: bool) -> None:
        """A distribution verdict of a closed window, with its histograms (the drill-down).

        ``newest``: the version's last window in this write, the one its detail hash keeps.
        """
        result = finding.result
        detail = orjson.dumps({
            "kind": finding.kind, "feature": finding.feature, "detector": result.detector,
            "statistic": _finite(result.statistic), "threshold": _finite(result.threshold),
            "p_value": result.p_value, "drift": result.drift, "severity": result.severity,
            "explanation": result.explanation, "distribution": result.distribution,
            "window": {"index": report.index, "start_ts": report.start_ts,
                       "end_ts": report.end_ts, "events": report.events},
            "reference": report.reference})
        if newest:
            pipe.hset(self.prefix + "detail:" + name, finding.feature, detail)
        if result.drift:
            pipe.lpush(self.prefix + "drifted:" + name, detail)
            pipe.ltrim(self.prefix + "drifted:" + name, 0, self.drifted_length - 1)

    def write_throughput(self, point: dict[str, Any]) -> None:
        """Record one throughput sample (events/s and friends)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.lpush(self.prefix + "throughput", orjson.dumps(point))
        pipe.ltrim(self.prefix + "throughput", 0, self.series_length - 1)
        pipe.publish(self.channel, b'{"throughput":1}')
        pipe.execute()

    def write_labels(self, summary: dict[str, dict[str, Any]], partition: int) -> None:
        """Record one partition's label summary per model (see :meth:`labels`)."""
        if not summary:
            return
        pipe = self._redis.pipeline(transaction=False)
        for model_id, entry in summary.items():
            pipe.hset(self.prefix + "labels", f"{model_id}|{partition}",
                      orjson.dumps({"model_id": model_id, "partition": partition, **entry,
                                    "updated_at": time.time()}))
        pipe.publish(self.channel, b'{"labels":1}')
        pipe.execute()

    def labels(self) -> dict[str, dict[str, Any]]:
        """Label join summary per model, summed over partitions.

        Keys: ``predictions``, ``labels``, ``joined``, ``duplicates``,
        ``unmatched``, ``waiting``, ``coverage`` (joined / predictions),
        ``delay_p50_s``/``delay_p90_s`` and the newest partition's
        ``performance``, ``estimate``, ``challengers`` and ``segments`` (or ``None``).
        """
        raw = self._redis.hgetall(self.prefix + "labels")
        models: dict[str, dict[str, Any]] = {}
        for value in raw.values():
            entry = orjson.loads(value)
            total = models.setdefault(entry["model_id"], {
                "model_id": entry["model_id"], "predictions": 0, "labels": 0, "joined": 0,
                "duplicates": 0, "unmatched": 0, "waiting": 0, "updated_at": 0.0})
            for key in ("predictions", "labels", "joined", "duplicates", "unmatched", "waiting"):
                total[key] += entry.get(key) or 0
            if entry["updated_at"] >= total["updated_at"]:
                for key in ("delay_p50_s", "delay_p90_s", "performance", "estimate",
                            "challengers", "segments", "task", "version", "updated_at"):
                    total[key] = entry.get(key)
        for total in models.values():
            total["coverage"] = (total["joined"] / total["predictions"]
                                 if total["predictions"] else None)
        return models

    def models(self) -> list[dict[str, Any]]:
        """Latest summary of every model version, sorted by name."""
        raw = self._redis.hgetall(self.prefix + "models")
        return sorted((orjson.loads(v) for v in raw.values()),
                      key=lambda m: (m["model_id"], m["model_version"]))

    def series(self, model_id: str, model_version: str, limit: int = 360) -> list[dict[str, Any]]:
        """Window points of a model version, oldest first."""
        raw = self._redis.lrange(f"{self.prefix}series:{model_id}|{model_version}", 0, limit - 1)
        return [orjson.loads(item) for item in reversed(raw)]

    def alerts(self, limit: int = 50) -> list[dict[str, Any]]:
        """Most recent alert events, newest first."""
        raw = self._redis.lrange(self.prefix + "alerts", 0, limit - 1)
        return [orjson.loads(item) for item in raw]

    def details(self, model_id: str, model_version: str) -> dict[str, dict[str, Any]]:
        """The last closed window's distribution verdict of every feature of a version."""
        raw = self._redis.hgetall(f"{self.prefix}detail:{model_id}|{model_version}")
        return {key.decode() if isinstance(key, bytes) else str(key): orjson.loads(value)
                for key, value in raw.items()}

    def drifted(self, model_id: str, model_version: str) -> list[dict[str, Any]]:
        """Verdicts of drifted windows of a version, newest first (histograms included)."""
        raw = self._redis.lrange(f"{self.prefix}drifted:{model_id}|{model_version}", 0, -1)
        return [orjson.loads(item) for item in raw]

    def audit(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Most recent audit records, newest first."""
        raw = self._redis.lrange(self.prefix + "audit", 0, limit - 1)
        return [orjson.loads(item) for item in raw]

    def throughput(self, limit: int = 360) -> list[dict[str, Any]]:
        """Throughput samples, oldest first."""
        raw = self._redis.lrange(self.prefix + "throughput", 0, limit - 1)
        return [orjson.loads(item) for item in reversed(raw)]


def _finite(value: float) -> float | None:
    """JSON has no infinity: a statistic or threshold that is not finite reads null."""
    return value if math.isfinite(value) else None
