"""Dead-letter records: the refused bytes, where they came from, and why."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

from streams.ingest.decode import Rejected

SCHEMA_VERSION = 1
MAX_KEPT_PAYLOAD = 65_536


@dataclass(frozen=True)
class Source:
    """Where a message was read: topic, partition, offset (or file and line)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    timestamp_ms: int | None = None


def dead_letter(rejected: Rejected, source: Source) -> dict[str, Any]:
    """Build the contract-v1 dead-letter event for one refusal.

    Payloads above 64 KiB keep only their first 64 KiB (``payload_truncated``).

    Examples
    --------
    >>> from streams.ingest.decode import Rejected
    >>> record = dead_letter(Rejected("invalid_json", "not valid JSON", b"{oops"),
    ...                      Source("driftline.predictions", 0, 42))
    >>> record["payload_b64"], record["source"]["offset"], record["payload_truncated"]
    ('e29vcHM=', 42, False)
    """
    payload = rejected.payload
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "reason": rejected.reason,
        "error": rejected.error,
        "source": {
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "key_b64": base64.b64encode(source.key).decode() if source.key else None,
            "timestamp_ms": source.timestamp_ms,
        },
        "payload_b64": base64.b64encode(payload[:MAX_KEPT_PAYLOAD]).decode(),
        "payload_bytes": len(payload),
        "payload_truncated": len(payload) > MAX_KEPT_PAYLOAD,
        "ts": time.time(),
    }
    if rejected.index is not None:
        record["event_index"] = rejected.index
    if rejected.path is not None:
        record["path"] = rejected.path
    return record
