"""The alert-delivery Faust app: one agent per receiver over the alerts topic.

The app is its own consumer group (``delivery.group_id``), so its committed
offsets on the alerts topic are the delivery queue: an alert's offset is
acknowledged only once every receiver has delivered it or parked it on the
dead-letter topic (Faust counts one reference per agent), and committed every
``delivery.commit_interval_s``. A restart, or a ``kill -9``, resumes from the
last commit: nothing is lost, and what was delivered after it is sent again
(receivers de-duplicate on ``X-Driftline-Alert-Id``). Alerts are keyed by
``model_id``, and each agent takes its partitions' alerts one at a time, so a
condition's ``resolved`` never overtakes its ``firing``; a receiver that
retries holds up only its own agent until its stream buffer is full
(Faust's ``stream_buffer_maxsize``), then the others wait with it.

Alertmanager receivers also get a timer that re-sends every firing alert each
``resend_interval_s``. Faust runs here without ``exactly_once`` (Tansu fails
aiokafka's idempotent producer) and with no tables: the firing alerts live in
Redis (:mod:`streams.delivery.firing`).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from streams.delivery.credentials import faust_credentials
from streams.delivery.firing import FiringAlerts, firing_key
from streams.delivery.receiver import Receiver
from streams.ingest.deadletter import Source, dead_letter
from streams.ingest.decode import Rejected
from streams.settings import Settings

if TYPE_CHECKING:
    import aiohttp
    import faust
    import redis.asyncio

log = logging.getLogger(__name__)

WEBHOOK_FAILED = "webhook_failed"
"""Dead-letter code of an alert a receiver did not take."""
INVALID_ALERT = "invalid_alert"
"""Dead-letter code of an alerts-topic message that is no alert event."""
_PARK_RETRY_S = 1.0
_REDIS_RETRY_S = 1.0
_REDIS_TIMEOUT_S = 5.0


class Delivery:
    """The receivers of one delivery app and what they share (HTTP session, Redis).

    Examples
    --------
    >>> from streams.delivery.webhook import WebhookSettings
    >>> from streams.settings import SinkSettings, load_settings
    >>> settings = load_settings(environ={}).with_overrides(sinks=SinkSettings((
    ...     WebhookSettings("http://127.0.0.1:9/hook", format="slack"),)))
    >>> [r.settings.format for r in Delivery(settings).receivers]
    ['slack']
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.group_id = settings.delivery.group(settings.group_id)
        self._redis: redis.asyncio.Redis | None = None
        self._session: aiohttp.ClientSession | None = None
        self.receivers = [Receiver(hook, self._firing(hook.url) if hook.format == "alertmanager"
                                   else None) for hook in settings.sinks.webhooks]
        self.invalid = 0

    def _firing(self, url: str) -> FiringAlerts:
        if self._redis is None:
            from streams.state.connect import async_redis_client

            self._redis = async_redis_client(self.settings.redis_url, self.settings.redis,
                                             socket_timeout=_REDIS_TIMEOUT_S)
        return FiringAlerts(self._redis, firing_key(self.group_id, url))

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session every receiver shares (made on first use, inside the loop)."""
        if self._session is None or self._session.closed:
            import aiohttp

            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the HTTP session and the Redis client."""
        if self._session is not None:
            await self._session.close()
        if self._redis is not None:
            await self._redis.aclose()

    def figures(self) -> dict[str, Any]:
        """What each receiver did so far (``/healthz`` shows it)."""
        return {"group_id": self.group_id, "invalid": self.invalid, "receivers": [
            {"endpoint": r.poster.endpoint, "format": r.settings.format,
             "delivered": r.delivered, "retried": r.retried, "parked": r.parked,
             "resent": r.resent} for r in self.receivers]}


def make_delivery_app(settings: Settings, datadir: Path | None = None) -> faust.App:
    """Build the delivery app for ``settings``: agents, re-send timers, ``/healthz``.

    Run it with ``driftline deliver`` (a Faust worker). Nothing is connected until
    the app starts. ``datadir`` is Faust's own directory (created at once, left empty:
    the app has no tables); default ``<temporary directory>/<delivery group>``.

    Examples
    --------
    >>> from streams.delivery.webhook import WebhookSettings
    >>> from streams.settings import SinkSettings, load_settings
    >>> settings = load_settings(environ={}).with_overrides(sinks=SinkSettings((
    ...     WebhookSettings("http://127.0.0.1:9/hook"),)))
    >>> app = make_delivery_app(settings)
    >>> app.conf.id, sorted(app.agents)
    ('driftline-delivery', ['deliver-0-driftline'])
    """
    import faust
    import mode

    delivery = Delivery(settings)
    conf = settings.delivery
    session_s = conf.session_timeout_ms / 1000
    app = faust.App(
        delivery.group_id,
        broker=";".join(f"kafka://{server.strip()}"
                        for server in settings.bootstrap_servers.split(",")),
        broker_credentials=faust_credentials(settings.kafka),
        autodiscover=False,
        datadir=str(datadir or Path(tempfile.gettempdir()) / delivery.group_id),
        broker_session_timeout=session_s, broker_heartbeat_interval=max(session_s / 5, 0.1),
        broker_commit_interval=conf.commit_interval_s, consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topics.partitions,
        web_enabled=True, web_bind=conf.web_host, web_host=conf.web_host, web_port=conf.web_port,
        web_router_enabled=False, web_tables_enabled=False, web_graph_enabled=False,
        web_stats_enabled=False, key_serializer="raw", value_serializer="raw",
        # A stop or rebalance must not wait for an alert that is being retried (up to
        # max_retry_window_s): it stays unacked, uncommitted, and is delivered after.
        stream_wait_empty=False)
    alerts_topic = settings.topics.name("alerts")
    alerts = app.topic(alerts_topic, key_serializer="raw", value_serializer="raw")
    deadletter = app.topic(settings.topics.name("deadletter"), key_serializer="raw",
                           value_serializer="raw")

    async def park(message: Any, code: str, reason: str) -> None:
        # Never acked before the dead letter is on the topic: a failed send is retried.
        record = dead_letter(Rejected(code, reason, bytes(message.value or b"")),
                             Source(alerts_topic, message.partition, message.offset,
                                    message.key))
        while True:
            try:
                await (await deadletter.send(key=message.key, value=orjson.dumps(record)))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is away: the alert waits, unacked
                log.warning("dead letter for %s not written (%r); retrying", alerts_topic, exc)
                await asyncio.sleep(_PARK_RETRY_S)

    for index, receiver in enumerate(delivery.receivers):
        name = f"deliver-{index}-{receiver.settings.format}"
        # Each agent sees every message; a message that is no alert is parked once.
        app.agent(alerts, name=name)(_deliver_agent(delivery, receiver, park,
                                                    parks_invalid=index == 0))
        interval = receiver.settings.resend_interval_s
        if receiver.settings.format == "alertmanager" and interval > 0:
            app.timer(interval, name=f"resend-{index}")(_resend_timer(delivery, receiver))

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", **delivery.figures()})

    class Closer(mode.Service):
        async def on_stop(self) -> None:
            await delivery.close()

    app.add_dependency(Closer())
    return app


def _deliver_agent(delivery: Delivery, receiver: Receiver, park: Any,
                   parks_invalid: bool) -> Any:
    async def deliver(stream: Any) -> None:
        # Acked by hand, after delivery or parking: an agent stopped mid-retry (shutdown,
        # rebalance) leaves its alert unacked, so it is read again, never skipped.
        manual = stream.noack()
        async for event in manual.events():
            message = event.message
            try:
                alert = orjson.loads(message.value or b"")
                if not isinstance(alert, dict) or "alert_id" not in alert:
                    raise ValueError("expected a JSON object with an alert_id")
            except ValueError as exc:
                if parks_invalid:
                    delivery.invalid += 1
                    await park(message, INVALID_ALERT, f"not an alert event: {exc}")
            else:
                reason = await _deliver_waiting_out_redis(delivery, receiver, alert)
                if reason is not None:
                    log.warning("alert %s parked: %s", alert.get("alert_id"), reason)
                    await park(message, WEBHOOK_FAILED, reason)
            await manual.ack(event)

    return deliver


async def _deliver_waiting_out_redis(delivery: Delivery, receiver: Receiver,
                                     alert: dict[str, Any]) -> str | None:
    """Deliver one alert; None, or the reason to park it. A Redis outage is waited out."""
    import redis

    while True:
        try:
            return await receiver.deliver(delivery.session(), alert)
        except redis.RedisError as exc:  # the firing set is away: the alert waits, unacked
            log.warning("Redis unavailable for %s (%r); retrying", receiver.poster.endpoint, exc)
            await asyncio.sleep(_REDIS_RETRY_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: park the alert, never stop the stream
            log.exception("delivery to %s failed unexpectedly", receiver.poster.endpoint)
            receiver.parked += 1
            return f"{receiver.poster.endpoint}: unexpected error: {exc!r}"


def _resend_timer(delivery: Delivery, receiver: Receiver) -> Any:
    async def resend() -> None:
        try:
            await receiver.resend(delivery.session())
        except Exception:  # Redis away: the next interval tries again
            log.exception("re-send to %s failed", receiver.poster.endpoint)

    return resend
