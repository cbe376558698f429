"""Dead-letter records: the refused bytes, where they came from, and why.

A dead letter must always fit on the dead-letter topic, whatever it refuses: a
record that cannot be produced would stop the worker on the same message after
every restart. So each part that comes from the input is bounded, and the
record says what was cut: the payload keeps its first 64 KiB
(``payload_truncated``), the message key its first 1 KiB (``source.key_truncated``,
with ``source.key_bytes`` the whole key's size), the reason and path their
first 1,000 and 500 characters; a payload re-encoded from a value nested
deeper than :data:`~streams.ingest.decode.MAX_DEPTH` levels says so
(``payload_clipped``). An encoded record is then at most
:data:`MAX_RECORD_BYTES`, far below Kafka's default 1 MB message limit.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

from streams.ingest.decode import Rejected

SCHEMA_VERSION = 1
MAX_KEPT_PAYLOAD = 65_536
MAX_KEPT_KEY = 1024
MAX_KEPT_REASON = 1000
MAX_KEPT_PATH = 500
MAX_RECORD_BYTES = 100_000
"""Bound of an encoded record plus its message key (a test holds the record to it)."""


@dataclass(frozen=True)
class Source:
    """Where a message was read: topic, partition, offset (or file and line)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    timestamp_ms: int | None = None


def kept_key(key: bytes | None) -> bytes | None:
    """The part of a message key a dead letter keeps (and is keyed by): its first 1 KiB.

    >>> len(kept_key(b"k" * 1_200_000)), kept_key(None)
    (1024, None)
    """
    return key if key is None or len(key) <= MAX_KEPT_KEY else key[:MAX_KEPT_KEY]


def dead_letter(rejected: Rejected, source: Source) -> dict[str, Any]:
    """Build the contract-v1 dead-letter event for one refusal.

    Payloads above 64 KiB keep only their first 64 KiB (``payload_truncated``),
    keys above 1 KiB their first 1 KiB (``key_truncated``).

    Examples
    --------
    >>> from streams.ingest.decode import Rejected
    >>> record = dead_letter(Rejected("invalid_json", "not valid JSON", b"{oops"),
    ...                      Source("driftline.predictions", 0, 42))
    >>> record["payload_b64"], record["source"]["offset"], record["payload_truncated"]
    ('e29vcHM=', 42, False)
    >>> record = dead_letter(Rejected("invalid_json", "not valid JSON", b"{"),
    ...                      Source("driftline.predictions", 0, 43, b"k" * 5000))
    >>> record["source"]["key_bytes"], record["source"]["key_truncated"]
    (5000, True)
    """
    payload = rejected.payload
    key = source.key
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "reason": _cut(rejected.reason, MAX_KEPT_REASON),
        "error": rejected.error,
        "source": {
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "key_b64": base64.b64encode(key[:MAX_KEPT_KEY]).decode() if key else None,
            "key_bytes": None if key is None else len(key),
            "key_truncated": key is not None and len(key) > MAX_KEPT_KEY,
            "timestamp_ms": source.timestamp_ms,
        },
        "payload_b64": base64.b64encode(payload[:MAX_KEPT_PAYLOAD]).decode(),
        "payload_bytes": len(payload),
        "payload_truncated": len(payload) > MAX_KEPT_PAYLOAD,
        "payload_clipped": rejected.clipped,
        "ts": time.time(),
    }
    if rejected.index is not None:
        record["event_index"] = rejected.index
    if rejected.path is not None:
        record["path"] = _cut(rejected.path, MAX_KEPT_PATH)
    return record


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
