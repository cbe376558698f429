"""The receivers' documented request shapes, as JSON Schemas the delivery tests validate against.

Written from the receivers' own references:
- Alertmanager: api/v2/openapi.yaml, ``postableAlerts`` (an array of ``postableAlert``:
  ``labels`` required, a LabelSet of strings; ``annotations`` a LabelSet; ``startsAt`` /
  ``endsAt`` date-time; ``generatorURL`` uri; nothing else).
- Slack incoming webhooks + Block Kit: ``text`` (fallback when blocks are sent), ``blocks`` (at
  most 50); ``header`` takes a ``plain_text`` object of at most 150 characters, ``section`` a
  text object of at most 3,000, ``context`` at most 10 elements.
- PagerDuty Events API v2 (``POST /v2/enqueue``): ``routing_key``, ``event_action`` in
  trigger/acknowledge/resolve, ``dedup_key`` at most 255 characters; a trigger needs
  ``payload`` with ``summary`` (at most 1,024), ``source`` and ``severity`` (critical, error,
  warning, info), and may carry ``timestamp``, ``component``, ``group``, ``class``,
  ``custom_details``; ``client``, ``client_url``, ``links``, ``images`` sit beside it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import jsonschema

_LABEL_SET = {"type": "object", "additionalProperties": {"type": "string"}}

ALERTMANAGER = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["labels"],
        "additionalProperties": False,
        "properties": {
            "labels": {**_LABEL_SET, "minProperties": 1},
            "annotations": _LABEL_SET,
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time"},
            "generatorURL": {"type": "string", "format": "uri"},
        },
    },
}

_PLAIN_TEXT = {"type": "object", "required": ["type", "text"],
               "properties": {"type": {"const": "plain_text"},
                              "text": {"type": "string", "minLength": 1, "maxLength": 150}}}
_TEXT = {"type": "object", "required": ["type", "text"],
         "properties": {"type": {"enum": ["plain_text", "mrkdwn"]},
                        "text": {"type": "string", "minLength": 1, "maxLength": 3000}}}

SLACK = {
    "type": "object",
    "required": ["text"],
    "properties": {
        "text": {"type": "string", "minLength": 1},
        "blocks": {"type": "array", "maxItems": 50, "items": {
            "type": "object", "required": ["type"],
            "oneOf": [
                {"properties": {"type": {"const": "header"}, "text": _PLAIN_TEXT},
                 "required": ["text"]},
                {"properties": {"type": {"const": "section"}, "text": _TEXT},
                 "required": ["text"]},
                {"properties": {"type": {"const": "context"},
                                "elements": {"type": "array", "minItems": 1, "maxItems": 10,
                                             "items": _TEXT}},
                 "required": ["elements"]},
                {"properties": {"type": {"const": "divider"}}},
            ]}},
    },
}

PAGERDUTY = {
    "type": "object",
    "required": ["routing_key", "event_action"],
    "additionalProperties": False,
    "properties": {
        "routing_key": {"type": "string", "minLength": 1},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "client": {"type": "string"},
        "client_url": {"type": "string"},
        "links": {"type": "array"},
        "images": {"type": "array"},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "additionalProperties": False,
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "source": {"type": "string", "minLength": 1},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": {"type": "string", "format": "date-time"},
                "component": {"type": "string"},
                "group": {"type": "string"},
                "class": {"type": "string"},
                "custom_details": {"type": "object"},
            },
        },
    },
    "if": {"properties": {"event_action": {"const": "trigger"}}},
    "then": {"required": ["payload"]},
    "else": {"required": ["dedup_key"]},
}


_FORMATS = jsonschema.FormatChecker()


# jsonschema checks date-time only with an optional package installed: check it here.
@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or (
        "T" in value and datetime.fromisoformat(value).tzinfo is not None)


@_FORMATS.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Raise unless ``instance`` has the documented shape (date-times and URIs checked too)."""
    jsonschema.validate(instance, schema, format_checker=_FORMATS)
