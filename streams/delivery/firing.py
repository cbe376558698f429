"""The Alertmanager alerts that fire now, per receiver, kept in Redis.

Alertmanager forgets an alert that is not sent again within its
``resolve_timeout``, so its clients re-send every active alert at an interval.
The set of active alerts must outlive the delivery process (a restart would
otherwise stop the re-sends until each condition fires again), so it lives in
one Redis hash per receiver: the condition's ``dedup_key`` → the
``postableAlert`` sent when it fired (whose labels its resolution repeats).
The hash is named by a digest of the receiver's URL, never the URL itself,
which may carry a token.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, cast

import orjson

if TYPE_CHECKING:
    import redis.asyncio


def firing_key(group_id: str, url: str) -> str:
    """The Redis hash of one receiver's firing alerts.

    >>> firing_key("driftline-delivery", "http://am:9093/api/v2/alerts")
    'driftline:delivery:driftline-delivery:firing:f0dee8ca98d8'
    """
    return (f"driftline:delivery:{group_id}:firing:"
            f"{hashlib.sha256(url.encode()).hexdigest()[:12]}")


class FiringAlerts:
    """The firing ``postableAlert`` of each condition of one Alertmanager receiver."""

    def __init__(self, client: redis.asyncio.Redis, key: str) -> None:
        self.client = client
        self.key = key

    async def get(self, dedup_key: str) -> dict[str, Any] | None:
        """The alert sent when ``dedup_key`` fired, or None."""
        raw = await self.client.hget(self.key, dedup_key)
        return None if raw is None else cast("dict[str, Any]", orjson.loads(raw))

    async def put(self, dedup_key: str, alert: dict[str, Any]) -> None:
        """Remember ``alert`` as firing."""
        await self.client.hset(self.key, dedup_key, orjson.dumps(alert))

    async def remove(self, dedup_key: str) -> None:
        """Forget a condition that resolved."""
        await self.client.hdel(self.key, dedup_key)

    async def all(self) -> list[dict[str, Any]]:
        """Every firing alert, in no particular order."""
        values = await self.client.hvals(self.key)
        return [cast("dict[str, Any]", orjson.loads(raw)) for raw in values]
