"""Audit events: every decision driftline takes, and on what basis.

Pure functions: what a step decided in, JSON-ready dicts out (schema
``streams/ingest/schemas/audit.schema.json``, docs/events.md "Audit trail").
The partition step collects them in its outputs; the worker publishes them on
the compacted ``driftline.audit`` topic and replay writes them to a file.

Kinds:

* ``config`` — the settings in force when a worker starts processing a
  partition (its hash and the settings hashed);
* ``reference_set`` — a model version's reference is complete: learned from its
  first events or loaded from a reference file (content hash and size);
* ``rebaseline`` — an operator accepted a new normal (who, why);
* ``alert`` — an alert fired or resolved;
* ``retrain_request`` — a retrain request was published.

**Keys and compaction.** Compaction keeps the last record of each key, so a
key must name one decision, never a slot that later decisions overwrite
(``model|version|kind`` would keep only a model's last alert). Every record's
key is ``model_id|model_version|kind|audit_id`` with a deterministic
``audit_id``: compaction then removes only a decision published twice (the
at-least-once re-publication after a crash, same id) and never history. The
key still starts with the model, so a model's records can be found (and, if
a deletion is ever required, tombstoned) by key.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, is_dataclass
from typing import Any

import orjson

from streams.settings import Settings

AUDIT_VERSION = 1
CONFIG = "config"
REFERENCE_SET = "reference_set"
REBASELINE = "rebaseline"
ALERT = "alert"
RETRAIN_REQUEST = "retrain_request"
KINDS = (CONFIG, REFERENCE_SET, REBASELINE, ALERT, RETRAIN_REQUEST)
ALL = "*"
MAX_TEXT = 1000
# The sections that decide what is monitored and when it alarms. Connections, access and
# delivery (brokers, the kafka map, redis, dashboard, sinks, worker tuning) are left out:
# they hold secrets and decide no verdict.
DECIDING_SECTIONS = ("group_id", "topics", "monitor", "limits", "alerts", "labels",
                     "performance", "estimation", "models")


def audit_id(*parts: object) -> str:
    """32 hex digits of the SHA-256 of ``parts`` joined by ``|``.

    >>> audit_id("m", "v1", "reference_set", 1.5)
    '041f5f68aca65056b3084d35fa53cb2a'
    """
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


def audit_key(record: dict[str, Any]) -> str:
    """The record's message key: one key per decision (see the module docstring).

    >>> audit_key({"model_id": "m", "model_version": None, "kind": "rebaseline",
    ...            "audit_id": "ab12"})
    'm|*|rebaseline|ab12'
    """
    return (f"{record['model_id']}|{record['model_version'] or ALL}|{record['kind']}|"
            f"{record['audit_id']}")


def deciding_settings(settings: Settings) -> dict[str, Any]:
    """The settings that decide verdicts, as plain JSON-ready values.

    >>> from streams.settings import load_settings
    >>> sorted(deciding_settings(load_settings(environ={})))[:3]
    ['alerts', 'estimation', 'group_id']
    """
    plain: dict[str, Any] = {}
    for name in DECIDING_SECTIONS:
        value = getattr(settings, name)
        if name == "models":
            value = {model_id: asdict(model) for model_id, model in value.items()}
        elif is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        plain[name] = value
    # Through JSON once: tuples become lists, as any reader of the record sees them.
    ready: dict[str, Any] = orjson.loads(orjson.dumps(plain, option=orjson.OPT_SORT_KEYS
                                                      | orjson.OPT_NON_STR_KEYS))
    return ready


def settings_hash(settings: Settings) -> str:
    """SHA-256 of :func:`deciding_settings` in canonical JSON (sorted keys).

    >>> from streams.settings import load_settings
    >>> a = settings_hash(load_settings(environ={}))
    >>> b = settings_hash(load_settings(environ={"DRIFTLINE_WINDOW_SIZE": "1000"}))
    >>> len(a), a == b
    (64, False)
    """
    text = orjson.dumps(deciding_settings(settings), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()


def _record(kind: str, model_id: str, model_version: str | None, partition: int,
            identity: str, summary: str, details: dict[str, Any],
            ts: float | None = None) -> dict[str, Any]:
    return {"audit_version": AUDIT_VERSION, "audit_id": identity, "kind": kind,
            "model_id": model_id, "model_version": model_version, "partition": partition,
            "summary": summary, "details": details,
            "ts": time.time() if ts is None else ts}


def config_record(settings: Settings, partition: int, offsets: dict[str, int],
                  config_hash: str | None = None) -> dict[str, Any]:
    """The settings in force as a worker starts processing ``partition`` at ``offsets``.

    The id depends on the settings, the group, the partition and the offsets:
    a worker that starts again from the same checkpoint with the same settings
    publishes the same record (compaction keeps one).
    """
    digest = config_hash or settings_hash(settings)
    where = dict(sorted(offsets.items()))
    return _record(
        CONFIG, ALL, None, partition,
        audit_id(CONFIG, digest, settings.group_id, partition, orjson.dumps(where).decode()),
        f"partition {partition} of group {settings.group_id} processed with settings "
        f"{digest[:12]} (reference_size {settings.monitor.reference_size}, window_size "
        f"{settings.monitor.window_size}, alpha {settings.monitor.alpha:g})",
        {"settings_sha256": digest, "group_id": settings.group_id, "offsets": where,
         "settings": deciding_settings(settings)})


def reference_record(model_id: str, model_version: str, partition: int,
                     source: dict[str, Any], window: dict[str, float],
                     digest: str | None) -> dict[str, Any]:
    """A model version's reference is set: from its first events, or from a file.

    ``source`` is ``{"type": "first_events", "events": N}`` or ``{"type":
    "file", "path", "sha256", "bytes", "events", "training": {...}}``;
    ``window`` the reference's events and event-time span; ``digest`` the
    SHA-256 of the reference as learned (:attr:`ModelMonitor.reference_digest`).

    Examples
    --------
    >>> record = reference_record("m", "v1", 2, {"type": "first_events", "events": 500},
    ...                           {"events": 500, "start_ts": 0.0, "end_ts": 499.0}, "ab" * 32)
    >>> record["kind"], record["partition"]
    ('reference_set', 2)
    >>> record["summary"]
    'm v1: reference set from its first 500 events (learned sha256 abababababab)'
    """
    if source["type"] == "file":
        summary = (f"{model_id} {model_version}: reference loaded from {source['path']} "
                   f"(sha256 {source['sha256'][:12]}, {source['bytes']:,} bytes, "
                   f"{source['events']:,} events)")
    else:
        summary = (f"{model_id} {model_version}: reference set from its first "
                   f"{source['events']:,} events (learned sha256 {(digest or '-')[:12]})")
    return _record(
        REFERENCE_SET, model_id, model_version, partition,
        audit_id(model_id, model_version, REFERENCE_SET, digest or source.get("sha256"),
                 window.get("start_ts"), window.get("end_ts")),
        summary, {"source": source, "reference": window, "learned_sha256": digest})


def rebaseline_record(model_id: str, model_version: str | None, partition: int,
                      command: dict[str, Any], offset: int,
                      resolved: list[dict[str, Any]]) -> dict[str, Any]:
    """An operator's re-baseline, read at control-topic ``offset``: who, why, what it closed.

    Examples
    --------
    >>> record = rebaseline_record("m", None, 0, {"requested_by": "ana@ops",
    ...                            "reason": "new pricing"}, 41, [{"alert_id": "a1"}])
    >>> record["summary"]
    'm every version: re-baselined by ana@ops: new pricing (1 open alert resolved)'
    >>> record["details"]["resolved_alert_ids"], record["details"]["control_offset"]
    (['a1'], 41)
    """
    # Free text from the control topic: bounded, as everything a record holds.
    who = (command.get("requested_by") or "unknown")[:MAX_TEXT]
    reason = (command.get("reason") or "requested on the control topic")[:MAX_TEXT]
    requested_ts = command.get("ts")
    if not isinstance(requested_ts, int | float) or isinstance(requested_ts, bool):
        requested_ts = None
    versions = model_version or "every version"
    return _record(
        REBASELINE, model_id, model_version, partition,
        audit_id(model_id, model_version, REBASELINE, offset, requested_ts, who, reason),
        f"{model_id} {versions}: re-baselined by {who}: {reason} ({len(resolved)} open "
        f"alert{'' if len(resolved) == 1 else 's'} resolved)",
        {"requested_by": who, "reason": reason, "requested_ts": command.get("ts"),
         "control_offset": offset, "resolved_alert_ids": [a["alert_id"] for a in resolved]})


def alert_record(alert: dict[str, Any], partition: int) -> dict[str, Any]:
    """An alert fired or resolved (the alert itself is on the alerts topic)."""
    status = alert.get("status", "")
    what = alert.get("feature") or alert.get("segment") or ""
    fields = ("alert_id", "dedup_key", "kind", "status", "severity", "feature", "segment",
              "detector", "statistic", "threshold", "window", "explanation", "resolves")
    return _record(
        ALERT, alert["model_id"], alert.get("model_version"), partition, alert["alert_id"],
        f"{alert['model_id']} {alert.get('model_version')}: {alert.get('kind')} {what} "
        f"{status} ({alert.get('severity')})".replace("  ", " "),
        {name: alert.get(name) for name in fields if name in alert}
        | ({"features": [m.get("feature") for m in alert["features"]]}
           if alert.get("features") else {}))


def retrain_record(request: dict[str, Any], partition: int) -> dict[str, Any]:
    """A retrain request was published (the request itself is on the retrain topic)."""
    return _record(
        RETRAIN_REQUEST, request["model_id"], request["model_version"], partition,
        request["retrain_id"],
        f"{request['model_id']} {request['model_version']}: retrain requested: "
        f"{request['reason']}",
        {name: request.get(name) for name in ("retrain_id", "reason", "alert_ids",
                                              "training_window", "labeled_events")})


__all__ = ["ALERT", "AUDIT_VERSION", "CONFIG", "KINDS", "REBASELINE", "REFERENCE_SET",
           "RETRAIN_REQUEST", "alert_record", "audit_id", "audit_key", "config_record",
           "deciding_settings", "rebaseline_record", "reference_record", "retrain_record",
           "settings_hash"]
