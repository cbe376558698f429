"""Alert events of contract v1, built from a window's findings.

Pure functions: findings and a window report in, JSON-ready dicts out. The
lifecycle (when to fire, resolve, hold back) lives in :mod:`streams.core.alerts`;
this module decides only what an event says.

One event may carry several conditions of one (model, version, kind) that
fired or resolved in the same window: a *group*. Its top-level fields
(``dedup_key``, ``feature``, ``statistic``, ...) are those of the *lead*
member (the most severe, then a real feature before the joint test, then the
largest statistic/threshold ratio), ``severity`` is the highest of the
members, and ``features`` lists every member with its own ``dedup_key``.
An event about one condition has no ``features`` and reads exactly as before
grouping existed, with the same ``alert_id``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from detectors.monitor import JOINT, Finding, WindowReport

SCHEMA_VERSION = 1
FIRING = "firing"
RESOLVED = "resolved"
RATE_LIMIT_KIND = "alert_rate_limit"
MONITOR_RESET_KIND = "monitor_reset"
NO_DATA_KIND = "no_data"
ALL_MODELS = "*"        # model_id/model_version of an event about every model of a partition
HOUR_S = 3600.0
MAX_GROUP_SIZE = 100     # members per event: 100 members are ~45 KB, far below Kafka's 1 MiB
_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
_NAMES_LISTED = 10

Member = tuple[str, Finding]                                  # (dedup_key, finding)
Resolution = tuple[str, Finding, Mapping[str, Any]]          # ... plus the open-alert entry


def alert_id(identity: str) -> str:
    """The deterministic id of an event: 32 hex digits of the SHA-256 of its identity.

    >>> alert_id("m|v1|data_drift|x|distribution|firing|0.0|3")
    '75ca134c30fb4bda484b610fcfd58b45'
    """
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def group_key(model_id: str, model_version: str, kind: str, segment: str | None = None) -> str:
    """What conditions are grouped by: one model version (or one segment of it) and one kind.

    >>> group_key("fraud-v1", "7", "data_drift")
    'fraud-v1|7|data_drift'
    >>> group_key("fraud-v1", "7", "performance", "channel=web")
    'fraud-v1|7|performance|channel=web'
    """
    base = f"{model_id}|{model_version}|{kind}"
    return base if segment is None else f"{base}|{segment}"


def max_severity(severities: Sequence[str]) -> str:
    """The most urgent of ``info`` < ``warning`` < ``critical``.

    >>> max_severity(["warning", "critical", "info"])
    'critical'
    """
    return max(severities, key=lambda s: _SEVERITY_RANK.get(s, 0))


def lead_first(members: Sequence[Member]) -> list[Member]:
    """Members ordered so the one that speaks for the group comes first (stable)."""
    def rank(member: Member) -> tuple[int, bool, float]:
        result = member[1].result
        threshold = result.threshold
        score = result.statistic / threshold if threshold and math.isfinite(threshold) else 0.0
        return (_SEVERITY_RANK.get(result.severity, 0), member[1].feature != JOINT,
                score if math.isfinite(score) else 0.0)
    return sorted(members, key=rank, reverse=True)


def firing_event(model_id: str, model_version: str, members: Sequence[Member],
                 report: WindowReport) -> dict[str, Any]:
    """One firing event for conditions of one kind that started in ``report``'s window."""
    members = lead_first(members)
    key, lead = members[0]
    event = _finding_event(model_id, model_version, key, lead, report, FIRING)
    if len(members) == 1:
        return event
    keys = [k for k, _ in members]
    event["alert_id"] = alert_id(_group_identity(event["group_key"], FIRING, report, keys))
    event["severity"] = max_severity([f.result.severity for _, f in members])
    event["features"] = [_member(k, f, f.result.severity) for k, f in members]
    event["explanation"] = (f"{len(members)} {_noun(lead.kind)} conditions started together: "
                            f"{_names(members)}; strongest {_name(lead)}: "
                            f"{lead.result.explanation}")
    return event


def resolved_event(model_id: str, model_version: str, members: Sequence[Resolution],
                   report: WindowReport, clean_windows: int) -> dict[str, Any]:
    """One resolved event for open conditions of one kind that cleared in ``report``'s window.

    The lead is a member that led its own firing event when there is one, so a
    consumer that reads only the top-level ``dedup_key`` sees it both fire and resolve.
    """
    members = sorted(members, key=lambda m: not m[2].get("lead", True))
    key, lead, entry = members[0]
    event = _finding_event(model_id, model_version, key, lead, report, RESOLVED)
    event["explanation"] = f"back to normal for {clean_windows} windows: " \
                           f"{lead.result.explanation}"
    _mark_resolution(event, entry)
    if len(members) == 1:
        return event
    keys = [k for k, _, _ in members]
    event["alert_id"] = alert_id(_group_identity(event["group_key"], RESOLVED, report, keys))
    event["features"] = [_mark_resolution(_member(k, f, "info"), e) for k, f, e in members]
    event["explanation"] = (f"{len(members)} {_noun(lead.kind)} conditions back to normal for "
                            f"{clean_windows} windows: "
                            f"{_names([(k, f) for k, f, _ in members])}")
    return event


def rebaseline_event(model_id: str, model_version: str,
                     members: Sequence[tuple[str, Mapping[str, Any]]], reason: str,
                     at_ts: float) -> dict[str, Any]:
    """One resolved event for open conditions of one kind closed by a re-baseline."""
    members = sorted(members, key=lambda m: not m[1].get("lead", True))
    key, entry = members[0]
    kind = str(entry.get("kind", key.split("|")[2]))
    segment = entry.get("segment")
    explanation = (f"re-baselined: {reason}; a new reference is being collected from the "
                   "next events")
    event: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "alert_id": alert_id(f"{key}|{RESOLVED}|rebaseline|{entry['alert_id']}"),
        "dedup_key": key, "group_key": group_key(model_id, model_version, kind, segment),
        "model_id": model_id, "model_version": model_version, "kind": kind,
        "status": RESOLVED, "severity": "info", "feature": entry.get("feature"),
        "segment": segment, "detector": entry.get("detector", "rebaseline"), "statistic": 0.0,
        "threshold": 0.0, "p_value": None, "effect_size": 0.0,
        "window": {"start_ts": at_ts, "end_ts": at_ts, "events": 0},
        "reference": {}, "explanation": explanation, "ts": time.time()}
    _mark_resolution(event, entry)
    if len(members) > 1:
        fired = sorted(str(e["alert_id"]) for _, e in members)
        event["alert_id"] = alert_id(f"{event['group_key']}|{RESOLVED}|rebaseline|"
                                     + orjson.dumps(fired).decode())
        event["features"] = [_mark_resolution(
            {"dedup_key": k, "feature": e.get("feature"), "check": k.split("|")[4],
             "detector": e.get("detector", "rebaseline"), "statistic": 0.0, "threshold": 0.0,
             "p_value": None, "effect_size": 0.0, "severity": "info",
             "explanation": explanation}, e) for k, e in members]
        event["explanation"] = f"{len(members)} open conditions closed; {explanation}"
    return event


def rate_limit_event(model_id: str, model_version: str, status: str, hour: int, sent: int,
                     suppressed: int, limit: int,
                     fired_as: str | None = None) -> dict[str, Any]:
    """The notice that a model reached its hourly alert limit (firing), or its summary.

    ``hour`` counts hours of event time since the epoch. The resolved event closes
    the hour and says how many conditions were held back in it.
    """
    key = f"{model_id}|{RATE_LIMIT_KIND}"
    start = hour * HOUR_S
    since = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%MZ")
    if status == FIRING:
        explanation = (f"model {model_id} reached its limit of {limit} alert firings per hour "
                       f"in the hour from {since} (event time): further firings are held "
                       "back and counted; conditions still present fire in the next hour")
    else:
        explanation = (f"{suppressed} alert firings of model {model_id} were held back in the "
                       f"hour from {since} (event time, limit {limit} per hour); conditions "
                       "still present fire now")
    event: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "alert_id": alert_id(f"{key}|{status}|{hour}"),
        "dedup_key": key, "model_id": model_id, "model_version": model_version,
        "kind": RATE_LIMIT_KIND, "status": status,
        "severity": "warning" if status == FIRING else "info", "feature": None,
        "segment": None, "detector": "rate_limit", "statistic": float(sent),
        "threshold": float(limit), "p_value": None,
        "window": {"start_ts": start, "end_ts": start + HOUR_S, "events": 0},
        "reference": {}, "explanation": explanation, "suppressed": suppressed,
        "ts": time.time()}
    if fired_as is not None:
        event["resolves"] = fired_as
        event["fired_severity"] = "warning"
    return event


def monitor_reset_event(group_id: str, partition: int, committed: Mapping[str, int],
                        policy: str, ts: float) -> dict[str, Any]:
    """The notice that a partition's monitors start afresh because its checkpoint is gone.

    The consumer group had read the partition up to ``committed`` (offsets per
    input topic) but Redis holds no checkpoint of it: the state of every model
    in it is lost. ``policy`` is what the worker does about it (``resume``
    from the committed offsets or ``rewind`` to the earliest). The id depends
    on the group, partition and offsets only, so workers that meet the same
    loss publish the same event.

    >>> event = monitor_reset_event("g", 3, {"predictions": 500}, "resume", ts=0.0)
    >>> event["kind"], event["model_id"], event["statistic"], event["alert_id"][:8]
    ('monitor_reset', '*', 500.0, '8eb31946')
    """
    key = f"{ALL_MODELS}|{MONITOR_RESET_KIND}|{group_id}|{partition}"
    offsets = dict(sorted(committed.items()))
    where = ("the committed offsets: the events before them are not counted, and references "
             "are learned again from the next events" if policy == "resume" else
             "the earliest offsets the topics retain: that history is read and counted again, "
             "and alerts found in it are published again (with the same ids as before where "
             "the same windows are cut)")
    return {
        "schema_version": SCHEMA_VERSION,
        "alert_id": alert_id(f"{key}|{FIRING}|{orjson.dumps(offsets).decode()}"),
        "dedup_key": key, "model_id": ALL_MODELS, "model_version": ALL_MODELS,
        "kind": MONITOR_RESET_KIND, "status": FIRING, "severity": "critical",
        "feature": None, "segment": None, "detector": "checkpoint",
        "statistic": float(sum(offsets.values())), "threshold": 0.0, "p_value": None,
        "window": {"start_ts": ts, "end_ts": ts, "events": 0}, "reference": {},
        "partition": partition, "policy": policy, "offsets": offsets,
        "explanation": (f"partition {partition} of consumer group {group_id} has no checkpoint "
                        "in Redis although the group had read it up to offsets "
                        f"{', '.join(f'{t} {o}' for t, o in offsets.items())}: the "
                        "monitor state of every model in it is lost (did Redis lose its data?). "
                        f"Its monitors start afresh from {where}"),
        "ts": ts}


def no_data_event(model_id: str, model_version: str, status: str, since: float, now: float,
                  data_ts: float, threshold: float, fired_as: str | None = None,
                  explanation: str | None = None) -> dict[str, Any]:
    """The alert that a model sent no predictions for ``threshold`` seconds, or its end.

    ``since`` and ``now`` are tick times (:mod:`streams.core.silence`): the model is
    quiet from ``since``, and ``now`` is the latest tick. ``data_ts`` is event
    time: the last prediction's ``ts`` (firing) or the returning one's (resolved),
    the alert's window. The id depends on the model, the status and ``since`` only.

    >>> event = no_data_event("m", "v1", "firing", since=100.0, now=1900.0, data_ts=90.0,
    ...                       threshold=1800.0)
    >>> event["kind"], event["statistic"], event["window"], event["alert_id"][:8]
    ('no_data', 1800.0, {'start_ts': 90.0, 'end_ts': 90.0, 'events': 0}, '3a0ffe69')
    """
    key = f"{model_id}|{NO_DATA_KIND}"
    quiet = now - since
    if explanation is None and status == FIRING:
        explanation = (f"no predictions from model {model_id} (any version) for {quiet:,.0f} s "
                       f"of tick time (ticks.no_data_after_s = {threshold:g}); the last one, of "
                       f"version {model_version}, had ts {_when(data_ts)}")
    elif explanation is None:
        explanation = (f"predictions of model {model_id} arrive again (ts {_when(data_ts)}) "
                       f"after at least {quiet:,.0f} s without any")
    event: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "alert_id": alert_id(f"{key}|{status}|{since!r}"),
        "dedup_key": key, "group_key": key, "model_id": model_id,
        "model_version": model_version, "kind": NO_DATA_KIND, "status": status,
        "severity": "warning" if status == FIRING else "info", "feature": None,
        "segment": None, "detector": "no_data", "statistic": quiet, "threshold": threshold,
        "p_value": None, "effect_size": 0.0,
        "window": {"start_ts": data_ts, "end_ts": data_ts, "events": 0},
        "reference": {}, "quiet_since": since, "explanation": explanation, "ts": time.time()}
    if fired_as is not None:
        event["resolves"] = fired_as
        event["fired_severity"] = "warning"
    return event


def _when(ts: float) -> str:
    if not math.isfinite(ts):
        return "unknown"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{ts:g}"


def _finding_event(model_id: str, model_version: str, key: str, finding: Finding,
                   report: WindowReport, status: str) -> dict[str, Any]:
    result = finding.result
    # Unchanged since before grouping: a replayed window yields the same id as then.
    identity = f"{key}|{status}|{report.reference.get('start_ts')}|{report.index}"
    return {
        "schema_version": SCHEMA_VERSION,
        "alert_id": alert_id(identity),
        "dedup_key": key,
        "group_key": group_key(model_id, model_version, finding.kind, finding.segment),
        "model_id": model_id,
        "model_version": model_version,
        "kind": finding.kind,
        "status": status,
        "severity": result.severity if status == FIRING else "info",
        "feature": finding.feature,
        "segment": finding.segment,
        "detector": result.detector,
        "statistic": result.statistic,
        "threshold": result.threshold,
        "p_value": result.p_value,
        "effect_size": result.effect_size,
        "window": {"start_ts": report.start_ts, "end_ts": report.end_ts,
                   "events": report.events, "index": report.index},
        "reference": {**report.reference, **{k: v for k, v in result.reference.items()
                                             if k != "events"}},
        "explanation": result.explanation,
        "ts": time.time(),
    }


def _member(key: str, finding: Finding, severity: str) -> dict[str, Any]:
    result = finding.result
    return {"dedup_key": key, "feature": finding.feature, "check": finding.check,
            "detector": result.detector, "statistic": result.statistic,
            "threshold": result.threshold, "p_value": result.p_value,
            "effect_size": result.effect_size, "severity": severity,
            "explanation": result.explanation}


def _mark_resolution(event: dict[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    event["resolves"] = entry["alert_id"]
    if entry.get("severity"):
        event["fired_severity"] = entry["severity"]
    return event


def _group_identity(group: str, status: str, report: WindowReport, keys: list[str]) -> str:
    return (f"{group}|{status}|{report.reference.get('start_ts')}|{report.index}|"
            + orjson.dumps(sorted(keys)).decode())


def _name(finding: Finding) -> str:
    return finding.feature if finding.check == "distribution" \
        else f"{finding.feature} ({finding.check})"


def _names(members: Sequence[Member]) -> str:
    names = [_name(f) for _, f in members[:_NAMES_LISTED]]
    more = len(members) - _NAMES_LISTED
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _noun(kind: str) -> str:
    return kind.replace("_", " ")
