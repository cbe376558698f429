"""One receiver: turn an alert event into its format's requests and deliver them in order.

An alert event becomes one request (``driftline``, ``alertmanager``, ``slack``)
or one per condition (``pagerduty``: each condition is its own incident). The
event is delivered when every request is; the first request that is given up
parks the whole event, with the reason (earlier requests of it were delivered
and are sent again only if the event is, e.g. after a restart: receivers
de-duplicate). A lock keeps the Alertmanager re-send from interleaving with a
delivery, so a condition's re-sent firing never follows its resolution.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson

from streams.delivery.firing import FiringAlerts
from streams.delivery.formats import alertmanager_alert, members, pagerduty_event, slack_message
from streams.delivery.post import Poster
from streams.delivery.webhook import WebhookSettings

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)


class Receiver:
    """Delivers alert events to one webhook in its format; counts what happened.

    ``firing`` (required for the ``alertmanager`` format) keeps the alerts to re-send.

    Examples
    --------
    >>> receiver = Receiver(WebhookSettings("http://127.0.0.1:9/hook", format="slack"))
    >>> receiver.poster.endpoint, receiver.delivered, receiver.parked
    ('http://127.0.0.1:9', 0, 0)
    """

    def __init__(self, settings: WebhookSettings, firing: FiringAlerts | None = None,
                 seed: int | None = None) -> None:
        if settings.format == "alertmanager" and firing is None:
            raise ValueError("an alertmanager receiver needs the store of its firing alerts")
        self.settings = settings
        self.poster = Poster(settings, seed)
        self.firing = firing
        self.delivered = 0
        self.parked = 0
        self.resent = 0
        self._lock = asyncio.Lock()

    @property
    def retried(self) -> int:
        """Attempts that were followed by another one."""
        return self.poster.retried

    async def deliver(self, session: aiohttp.ClientSession, alert: dict[str, Any]) -> str | None:
        """Deliver one alert event: None when delivered, else the reason to park it."""
        alert_id = str(alert.get("alert_id"))
        async with self._lock:
            try:
                bodies = await self._bodies(alert)
            except (TypeError, ValueError) as exc:
                self.parked += 1
                return f"{self.poster.endpoint}: cannot encode the alert as JSON: {exc}"
            for body in bodies:
                sent = await self.poster.send(session, body, alert_id)
                if not sent.delivered:
                    self.parked += 1
                    await self._settled(alert)
                    return sent.detail
            self.delivered += 1
            await self._settled(alert)
        return None

    async def resend(self, session: aiohttp.ClientSession) -> int:
        """Send every firing Alertmanager alert once more; the count sent (0 on failure).

        Not retried: the next interval is the retry.
        """
        if self.firing is None:
            return 0
        async with self._lock:
            active = await self.firing.all()
            if not active:
                return 0
            outcome = await self.poster.attempt(session, orjson.dumps(active), "resend", 1)
        if outcome.verdict != "delivered":
            log.warning("re-send of %d firing alerts to %s failed: %s", len(active),
                        self.poster.endpoint, outcome.detail)
            return 0
        self.resent += len(active)
        return len(active)

    async def _bodies(self, alert: dict[str, Any]) -> list[bytes]:
        form = self.settings.format
        if form == "driftline":
            return [orjson.dumps(alert)]
        if form == "slack":
            return [orjson.dumps(slack_message(alert))]
        if form == "pagerduty":
            return [orjson.dumps(pagerduty_event(member, self.settings.routing_key))
                    for member in members(alert)]
        return [orjson.dumps([await self._alertmanager(member) for member in members(alert)])]

    async def _alertmanager(self, member: dict[str, Any]) -> dict[str, Any]:
        assert self.firing is not None
        key = str(member.get("dedup_key"))
        generator_url = self.settings.generator_url
        if member.get("status") != "resolved":
            posted = alertmanager_alert(member, generator_url=generator_url)
            # Firing from now on, delivered or not: the re-sends keep offering it.
            await self.firing.put(key, posted)
            return posted
        fired = await self.firing.get(key)
        severity = str(member.get("fired_severity") or member.get("severity"))
        if fired is not None:
            severity = str(fired["labels"].get("severity", severity))
        resolved = alertmanager_alert(member, severity=severity, generator_url=generator_url)
        if fired is not None:
            # Alertmanager identifies an alert by its labels: resolve exactly the one that fired.
            resolved["labels"] = fired["labels"]
            resolved["startsAt"] = fired["startsAt"]
            resolved["endsAt"] = max(resolved["endsAt"], fired["startsAt"])
        return resolved

    async def _settled(self, alert: dict[str, Any]) -> None:
        # A resolution leaves the re-sent set once it is delivered or parked, not before:
        # a restart in between finds the firing's labels again.
        if self.firing is None:
            return
        for member in members(alert):
            if member.get("status") == "resolved":
                await self.firing.remove(str(member.get("dedup_key")))
