"""What a receiver is sent for one alert event: the request bodies of each ``format``.

Pure functions, no I/O. An alert event that groups several conditions
(``features``) names each in its members; receivers that track conditions one
by one (Alertmanager alerts, PagerDuty incidents) get one entry per member,
all sharing the event's ``group_key``, so a member that resolves later
resolves exactly its own entry. The shapes follow the receivers' documented
contracts:

- Alertmanager API v2 ``POST /api/v2/alerts``: a list of ``postableAlert``
  (``labels`` required; ``annotations``, ``startsAt``, ``endsAt``,
  ``generatorURL``). Labels identify an alert, so a resolution carries the
  labels of its firing (its severity) and ``endsAt``.
- Slack incoming webhooks: ``text`` (the notification's fallback) plus Block
  Kit ``blocks`` (a ``header`` of plain text up to 150 characters, ``section``
  mrkdwn up to 3,000); ``&``, ``<`` and ``>`` are escaped.
- PagerDuty Events API v2 ``POST /v2/enqueue``: ``routing_key``,
  ``event_action`` (``trigger`` or ``resolve``), ``dedup_key`` (at most 255
  characters) and, to trigger, a ``payload`` with ``summary`` (at most 1,024),
  ``source``, ``severity`` (critical, error, warning or info) and more.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
PAGERDUTY_SUMMARY_MAX = 1024
PAGERDUTY_DEDUP_MAX = 255
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")


def rfc3339(ts: float) -> str:
    """Format Unix seconds as an RFC 3339 UTC time.

    >>> rfc3339(1_700_000_000.5)
    '2023-11-14T22:13:20.500Z'
    """
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def members(alert: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One alert per condition: a grouped event's members, each with the event's context.

    >>> [m["feature"] for m in members({"feature": "a", "features": [
    ...     {"feature": "a"}, {"feature": "b"}]})]
    ['a', 'b']
    """
    features = alert.get("features")
    if not isinstance(features, list) or not features:
        return [dict(alert)]
    shared = {k: v for k, v in alert.items() if k != "features"}
    return [{**shared, **member} for member in features if isinstance(member, dict)]


def summary(alert: Mapping[str, Any], status: bool = True) -> str:
    """One line naming what drifts where (and the alert's status, unless ``status=False``).

    >>> summary({"kind": "data_drift", "model_id": "m", "model_version": "v1",
    ...          "feature": "age", "status": "firing"})
    'data drift on model m v1, feature age (firing)'
    """
    text = (f"{str(alert.get('kind', 'alert')).replace('_', ' ')} on model "
            f"{alert.get('model_id')} {alert.get('model_version')}")
    if alert.get("feature"):
        text += f", feature {alert['feature']}"
    if alert.get("segment"):
        text += f", segment {alert['segment']}"
    return f"{text} ({alert.get('status')})" if status else text


def alertmanager_alert(alert: Mapping[str, Any], *, severity: str | None = None,
                       starts_at: float | None = None,
                       generator_url: str | None = None) -> dict[str, Any]:
    """Translate one driftline alert (one condition) into a ``postableAlert``.

    Pass the firing's ``severity`` and start time (``starts_at``) when
    translating its resolution, so the labels match.

    Examples
    --------
    >>> am = alertmanager_alert({"dedup_key": "m|v1|data_drift|age|ks", "model_id": "m",
    ...     "model_version": "v1", "kind": "data_drift", "status": "resolved",
    ...     "severity": "info", "feature": "age", "explanation": "age is back to normal",
    ...     "ts": 0.0}, severity="critical", starts_at=0.0)
    >>> am["labels"]["alertname"], am["labels"]["severity"], am["endsAt"]
    ('DriftlineDataDrift', 'critical', '1970-01-01T00:00:00.000Z')
    """
    kind = str(alert.get("kind", "unknown"))
    ts = number(alert.get("ts"), time.time())
    labels = {"alertname": "Driftline" + "".join(p.capitalize() for p in kind.split("_")),
              "model_id": str(alert.get("model_id")),
              "model_version": str(alert.get("model_version")), "kind": kind,
              "severity": severity or str(alert.get("severity")),
              "dedup_key": str(alert.get("dedup_key"))}
    if alert.get("group_key"):
        labels["group_key"] = str(alert["group_key"])
    # Alertmanager treats an empty label as an absent one; omit rather than send "None".
    for name in ("feature", "segment"):
        if alert.get(name):
            labels[name] = str(alert[name])
    annotations = {"summary": summary(alert, status=False),
                   "description": str(alert.get("explanation", "")),
                   "alert_id": str(alert.get("alert_id")), "detector": str(alert.get("detector")),
                   "statistic": str(alert.get("statistic")),
                   "threshold": str(alert.get("threshold"))}
    payload: dict[str, Any] = {"labels": labels, "annotations": annotations,
                               "startsAt": rfc3339(ts if starts_at is None else starts_at)}
    if alert.get("status") == "resolved":
        payload["endsAt"] = rfc3339(max(ts, starts_at or ts))
    if generator_url:
        payload["generatorURL"] = generator_url
    return payload


def slack_message(alert: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message for one alert event (all its conditions).

    Examples
    --------
    >>> message = slack_message({"kind": "data_drift", "model_id": "m", "model_version": "v1",
    ...     "feature": "age", "status": "firing", "severity": "critical",
    ...     "explanation": "age <moved>", "alert_id": "a1"})
    >>> message["text"]
    ':red_circle: data drift on model m v1, feature age (firing)'
    >>> [block["type"] for block in message["blocks"]], message["blocks"][1]["text"]["text"]
    (['header', 'section', 'context'], 'age &lt;moved&gt;')
    """
    icon = {"critical": ":red_circle:", "warning": ":large_orange_circle:"}.get(
        str(alert.get("severity")), ":large_blue_circle:")
    if alert.get("status") == "resolved":
        icon = ":white_check_mark:"
    headline = f"{icon} {summary(alert)}"
    details = [_slack_escape(str(alert.get("explanation") or ""))]
    for member in members(alert) if alert.get("features") else []:
        details.append(f"• {_slack_escape(str(member.get('feature')))}: "
                       f"{member.get('detector')} {member.get('statistic')} > "
                       f"{member.get('threshold')}")
    section = "\n".join(line for line in details if line) or "(no explanation)"
    context = (f"severity *{_slack_escape(str(alert.get('severity')))}* · alert "
               f"`{_slack_escape(str(alert.get('alert_id')))}`")
    return {"text": headline,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text",
                                            "text": _clip(headline, SLACK_HEADER_MAX)}},
                {"type": "section", "text": {"type": "mrkdwn",
                                             "text": _clip(section, SLACK_SECTION_MAX)}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}]}


def pagerduty_event(alert: Mapping[str, Any], routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 event for one condition: trigger when firing, else resolve.

    Examples
    --------
    >>> event = pagerduty_event({"dedup_key": "m|v1|data_drift|age|ks", "model_id": "m",
    ...     "model_version": "v1", "kind": "data_drift", "status": "firing",
    ...     "severity": "critical", "feature": "age", "ts": 0.0}, "R0UT1NGKEY")
    >>> event["event_action"], event["dedup_key"], event["payload"]["severity"]
    ('trigger', 'm|v1|data_drift|age|ks', 'critical')
    >>> sorted(pagerduty_event({"dedup_key": "k", "status": "resolved"}, "R").keys())
    ['dedup_key', 'event_action', 'routing_key']
    """
    key = str(alert.get("dedup_key"))
    if len(key) > PAGERDUTY_DEDUP_MAX:
        key = hashlib.sha256(key.encode()).hexdigest()
    if alert.get("status") == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    severity = str(alert.get("severity"))
    details = {name: alert.get(name) for name in (
        "alert_id", "model_version", "feature", "segment", "detector", "statistic",
        "threshold", "explanation", "window", "group_key") if alert.get(name) is not None}
    return {"routing_key": routing_key, "event_action": "trigger", "dedup_key": key,
            "payload": {
                "summary": _clip(summary(alert), PAGERDUTY_SUMMARY_MAX),
                "source": f"driftline:{alert.get('model_id')}",
                "severity": severity if severity in PAGERDUTY_SEVERITIES else "warning",
                "timestamp": rfc3339(number(alert.get("ts"), time.time())),
                "component": str(alert.get("model_id")),
                "group": str(alert.get("model_version")),
                "class": str(alert.get("kind")),
                "custom_details": details},
            "client": "driftline"}


def number(value: object, default: float) -> float:
    """``value`` if it is a real number (not a bool), else ``default``.

    >>> number(3, 0.0), number(True, 0.0), number(None, 1.5)
    (3.0, 0.0, 1.5)
    """
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else default


def _slack_escape(text: str) -> str:
    # Slack reads &, < and > as markup (<!channel> notifies everyone).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
