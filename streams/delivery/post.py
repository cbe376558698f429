"""POST one request body to one webhook, retrying with backoff until it is delivered or given up.

Connection errors, timeouts, 408, 429 and 5xx are retried with exponential
backoff and jitter, never sooner than the receiver's ``Retry-After``; any other
answer outside 2xx (a redirect included: it is never followed) gives up at
once. A request is given up after ``max_attempts`` attempts or when the next
one would start more than ``max_retry_window_s`` after the first. Every
attempt of one body sends the same bytes (so the same signature).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote, urlsplit

from streams.delivery.webhook import (
    ALERT_ID_HEADER,
    ATTEMPT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSettings,
    sign,
    without_credentials,
)

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429})
_SNIPPET_BYTES = 200


class Outcome(NamedTuple):
    """What one attempt came to: ``delivered``, ``retry`` or ``give_up``, and why."""

    verdict: str
    detail: str = ""
    retry_after_s: float = 0.0


@dataclass
class Sent:
    """How one body's delivery ended: delivered or not, after how many attempts."""

    delivered: bool
    attempts: int
    detail: str = ""


class Poster:
    """Sends request bodies to one webhook with its signature, headers and retry policy.

    Examples
    --------
    >>> poster = Poster(WebhookSettings("https://ops:pw@hooks.example.com/t0k3n"))
    >>> poster.endpoint, poster.backoff_s(3, retry_after_s=0.0) <= 2.0
    ('https://hooks.example.com', True)
    >>> poster.backoff_s(1, retry_after_s=7.0)
    7.0
    """

    def __init__(self, settings: WebhookSettings, seed: int | None = None) -> None:
        self.settings = settings
        # Webhook URLs often carry a token in their path or user info (Slack, Teams): logs
        # and park reasons (which reach the dead-letter topic) name only the host.
        parts = urlsplit(settings.url)
        self.endpoint = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port
                                                                 else "")
        self._request_url = without_credentials(settings.url, mask="")
        self._authorization: dict[str, str] = {}
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self._authorization["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self._random = random.Random(seed)
        self.retried = 0

    async def send(self, session: aiohttp.ClientSession, body: bytes, alert_id: str) -> Sent:
        """Deliver ``body`` or give up; sleeps between attempts (cancellable)."""
        first = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            outcome = await self.attempt(session, body, alert_id, attempts)
            if outcome.verdict == "delivered":
                return Sent(True, attempts)
            if outcome.verdict == "give_up":
                return Sent(False, attempts, f"{self.endpoint}: {outcome.detail}")
            delay_s = self.backoff_s(attempts, outcome.retry_after_s)
            elapsed_s = time.monotonic() - first
            if attempts >= self.settings.max_attempts:
                return Sent(False, attempts, f"{self.endpoint}: gave up after {attempts} "
                                             f"attempts: {outcome.detail}")
            if elapsed_s + delay_s > self.settings.max_retry_window_s:
                return Sent(False, attempts, f"{self.endpoint}: gave up after {attempts} "
                                             f"attempts in {elapsed_s:.1f} s (retry window): "
                                             f"{outcome.detail}")
            log.debug("webhook %s: retry %d in %.2f s: %s", self.endpoint, attempts, delay_s,
                      outcome.detail)
            self.retried += 1
            await asyncio.sleep(delay_s)

    async def attempt(self, session: aiohttp.ClientSession, body: bytes, alert_id: str,
                      attempt: int) -> Outcome:
        """One ``POST`` of ``body``: what came of it."""
        import aiohttp

        headers = {**self.settings.headers, "Content-Type": "application/json",
                   "User-Agent": "driftline-webhook/2", TIMESTAMP_HEADER: str(int(time.time())),
                   ALERT_ID_HEADER: alert_id, ATTEMPT_HEADER: str(attempt),
                   **self._authorization}
        if self.settings.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.settings.secret)
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        try:
            async with session.post(self._request_url, data=body, headers=headers,
                                    allow_redirects=False, timeout=timeout) as response:
                if 200 <= response.status < 300:
                    return Outcome("delivered")
                snippet = (await response.content.read(_SNIPPET_BYTES)).decode("utf-8",
                                                                                "replace")
                detail = f"HTTP {response.status} {response.reason}: {snippet.strip()}"
                detail = detail.rstrip(": ")
                if response.status in RETRY_STATUSES or response.status >= 500:
                    return Outcome("retry", detail,
                                   retry_after_s(response.headers.get("Retry-After")))
                return Outcome("give_up", detail)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:  # refused, reset, timeout
            return Outcome("retry", f"cannot reach the receiver: {exc!r}")

    def backoff_s(self, attempts: int, retry_after_s: float) -> float:
        """Delay before the next attempt: jittered exponential, at least ``retry_after_s``."""
        ceiling = min(self.settings.backoff_max_s,
                      self.settings.backoff_initial_s * 2.0 ** min(attempts - 1, 62))
        return max(self._random.uniform(ceiling / 2, ceiling), retry_after_s)


def retry_after_s(value: str | None) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); 0 if absent.

    >>> retry_after_s("3"), retry_after_s(None), retry_after_s("soon")
    (3.0, 0.0, 0.0)
    """
    if not value:
        return 0.0
    try:
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds > 0 else 0.0
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return 0.0
