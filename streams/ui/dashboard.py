"""The live web dashboard: a page, JSON reads of the hot view, and server-sent events.

Served on the worker's one web port (:mod:`streams.runtime.app`): its handlers are
plain aiohttp functions listed in :data:`DASHBOARD_ROUTES`, registered there as
Faust views; :func:`install_dashboard` gives the web application what they read.
Who may read it: :mod:`streams.ui.access`.

The worker keeps the live view in Redis (:class:`~streams.state.hotview.HotView`) and
announces every write on its pub/sub channel. This server subscribes to that
channel and pushes what is new to each open page over ``/events``; it never
reads Kafka and holds no state of its own beyond what each page was sent.

Routes:

* ``/`` — the page (``streams/ui/static``: plain HTML, CSS and JS, no network);
* ``/api/models``, ``/api/labels``, ``/api/alerts?limit=``,
  ``/api/throughput?limit=``, ``/api/series?model_id=&model_version=&limit=`` —
  the hot view as JSON;
* ``/api/drilldown?model_id=&model_version=&feature=`` or ``?alert_id=``,
  ``/api/audit?model_id=&model_version=&limit=`` — the drill-down and the audit trail
  (:mod:`streams.ui.drilldown`);
* ``/events`` — server-sent events: one ``snapshot``, then an ``update`` with
  only the new windows, alerts and throughput samples after each write.

Label coverage, performance and segments are read from the hot view's
``driftline:hot:<group_id>:labels`` hash (fields ``model_id|partition``; see
:meth:`HotView.labels`); the page says "no labels joined yet" while it is empty.
Label-driven windows (performance, estimates) stay out of the drift series.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson
import redis
from aiohttp import web

from streams.settings import Settings
from streams.state.connect import async_redis_client
from streams.state.hotview import HotView
from streams.ui import drilldown
from streams.ui.routes import Route

log = logging.getLogger("driftline.dashboard")

STATIC_DIR = Path(__file__).parent / "static"
MAX_LIMIT = 1000
# Writes arriving this close together are sent as one update: a busy worker writes
# the hot view after every batch, and a page needs no more than a few frames a second.
COALESCE_S = 0.05
POLL_S = 5.0            # re-check without a notification, in case one was missed
KEEPALIVE_S = 15.0
_HOT_VIEW = web.AppKey("hot_view", HotView)
_SETTINGS = web.AppKey("settings", Settings)
_CLOSING = web.AppKey("closing", asyncio.Event)


class LiveFeed:
    """What one page has been sent, so that each update holds only what is new.

    Parameters
    ----------
    hot : HotView
        The live view to read.
    alerts_limit : int
        Recent alerts in the snapshot, and the most looked at per update.
    seen_max : int
        Alert ids remembered to drop repeats (at-least-once delivery re-sends ids).
    """

    def __init__(self, hot: HotView, alerts_limit: int = 100, seen_max: int = 2000) -> None:
        self.hot = hot
        self.alerts_limit = alerts_limit
        self.seen_max = seen_max
        self._last_index: dict[str, int] = {}
        self._last_throughput_ts = 0.0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._models_json = b""

    def snapshot(self) -> dict[str, Any]:
        """Everything the page draws, and remember it as sent."""
        models = self.hot.models()
        self._models_json = orjson.dumps(models)
        series = {}
        for model in models:
            name = f"{model['model_id']}|{model['model_version']}"
            points = self.hot.series(model["model_id"], model["model_version"])
            series[name] = points
            self._last_index[name] = points[-1]["index"] if points else -1
        alerts = self.hot.alerts(self.alerts_limit)
        for alert in reversed(alerts):
            self._remember(alert)
        throughput = self.hot.throughput()
        if throughput:
            self._last_throughput_ts = throughput[-1]["ts"]
        return {"models": models, "labels": self.hot.labels(), "series": series,
                "alerts": alerts, "throughput": throughput, "server_time": time.time()}

    def update(self) -> dict[str, Any] | None:
        """What changed since the last call (``None`` when nothing did).

        ``series`` holds only windows newer than those sent, oldest first; a
        series whose windows restarted (a rebaseline) is sent whole and named in
        ``reset``. ``alerts`` holds unseen alerts, oldest first.
        """
        models = self.hot.models()
        models_json = orjson.dumps(models)
        series: dict[str, list[dict[str, Any]]] = {}
        reset = []
        for model in models:
            name = f"{model['model_id']}|{model['model_version']}"
            last = self._last_index.get(name, -1)
            recent = self.hot.series(model["model_id"], model["model_version"], limit=50)
            if recent and recent[-1]["index"] < last:
                recent = self.hot.series(model["model_id"], model["model_version"])
                reset.append(name)
                fresh = recent
            else:
                fresh = [point for point in recent if point["index"] > last]
            if fresh:
                series[name] = fresh
                self._last_index[name] = fresh[-1]["index"]
        alerts = [a for a in reversed(self.hot.alerts(self.alerts_limit)) if self._remember(a)]
        throughput = [p for p in self.hot.throughput(limit=50)
                      if p["ts"] > self._last_throughput_ts]
        if throughput:
            self._last_throughput_ts = throughput[-1]["ts"]
        if not (series or alerts or throughput or models_json != self._models_json):
            return None
        self._models_json = models_json
        return {"models": models, "labels": self.hot.labels(), "series": series,
                "reset": reset, "alerts": alerts, "throughput": throughput,
                "server_time": time.time()}

    def _remember(self, alert: dict[str, Any]) -> bool:
        """Note an alert as sent; ``False`` when it had been already."""
        alert_id = str(alert.get("alert_id", ""))
        if alert_id in self._seen:
            return False
        self._seen[alert_id] = None
        while len(self._seen) > self.seen_max:
            self._seen.popitem(last=False)
        return True


def _limit(request: web.Request, default: int) -> int:
    """The ``limit`` query parameter, validated.

    Raises
    ------
    aiohttp.web.HTTPBadRequest
        Naming the parameter, what was expected and what was given.
    """
    text = request.query.get("limit", str(default))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise web.HTTPBadRequest(text=f"limit: expected an integer from 1 to {MAX_LIMIT}, "
                                 f"got {text!r}")
    return value


async def _read(request: web.Request, method: str, *args: Any) -> web.Response:
    # The hot view's client is synchronous: keep its round trips off the event loop.
    try:
        value = await asyncio.to_thread(getattr(request.app[_HOT_VIEW], method), *args)
    except redis.RedisError as exc:
        raise web.HTTPServiceUnavailable(text=f"hot view unreadable: {exc}") from exc
    return web.Response(body=orjson.dumps(value), content_type="application/json")


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def _models(request: web.Request) -> web.Response:
    return await _read(request, "models")


async def _labels(request: web.Request) -> web.Response:
    return await _read(request, "labels")


async def _alerts(request: web.Request) -> web.Response:
    return await _read(request, "alerts", _limit(request, 50))


async def _throughput(request: web.Request) -> web.Response:
    return await _read(request, "throughput", _limit(request, 360))


async def _series(request: web.Request) -> web.Response:
    missing = [k for k in ("model_id", "model_version") if not request.query.get(k)]
    if missing:
        raise web.HTTPBadRequest(text=f"{missing[0]}: expected a non-empty query parameter, "
                                 "got none")
    return await _read(request, "series", request.query["model_id"],
                       request.query["model_version"], _limit(request, 360))


async def _drilldown_view(request: web.Request, view: Any) -> web.Response:
    """``view(hot_view, query)`` as JSON; its refusals as 400 (bad request) or 404 (unknown)."""
    try:
        value = await asyncio.to_thread(view, request.app[_HOT_VIEW], dict(request.query))
    except drilldown.NotInLiveView as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc
    except drilldown.DrillDownError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    except redis.RedisError as exc:
        raise web.HTTPServiceUnavailable(text=f"hot view unreadable: {exc}") from exc
    return web.Response(body=orjson.dumps(value), content_type="application/json")


async def _drilldown(request: web.Request) -> web.Response:
    return await _drilldown_view(request, drilldown.drilldown)


async def _audit(request: web.Request) -> web.Response:
    return await _drilldown_view(request, drilldown.audit_trail)


async def _send(response: web.StreamResponse, event: str, payload: Any) -> None:
    await response.write(b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload)
                         + b"\n\n")


async def _events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: a snapshot, then updates as the worker writes the hot view."""
    app = request.app
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    feed = LiveFeed(app[_HOT_VIEW])
    client = async_redis_client(app[_SETTINGS].redis_url, app[_SETTINGS].redis,
                                socket_timeout=5.0)
    try:
        # Closed by aclosing(): redis-py leaves PubSub.aclose unannotated.
        async with contextlib.aclosing(client.pubsub()) as pubsub:
            # Subscribe before the snapshot: a write between the two is then not lost.
            await pubsub.subscribe(app[_HOT_VIEW].channel)
            snapshot = await asyncio.to_thread(feed.snapshot)
            await _send(response, "snapshot", {"group_id": app[_SETTINGS].group_id, **snapshot})
            last_check = last_write = time.monotonic()
            while not app[_CLOSING].is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                now = time.monotonic()
                if message is None and now - last_check < POLL_S:
                    if now - last_write >= KEEPALIVE_S:
                        await response.write(b": keepalive\n\n")
                        last_write = now
                    continue
                if message is not None:
                    await asyncio.sleep(COALESCE_S)
                    while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.0):
                        pass
                last_check = time.monotonic()
                update = await asyncio.to_thread(feed.update)
                if update is not None:
                    await _send(response, "update", update)
                    last_write = time.monotonic()
    except ConnectionResetError:
        pass                     # the page went away
    except redis.RedisError as exc:
        # The page shows the problem and EventSource reconnects (with a new snapshot).
        log.warning("dashboard lost the hot view: %s", exc)
        try:
            await _send(response, "problem", {"error": f"hot view unreadable: {exc}"})
        except ConnectionResetError:
            pass
    finally:
        await client.aclose()
    return response


async def _on_shutdown(app: web.Application) -> None:
    app[_CLOSING].set()


DASHBOARD_ROUTES: tuple[Route, ...] = (
    Route("/", _page),
    Route("/api/models", _models),
    Route("/api/labels", _labels),
    Route("/api/alerts", _alerts),
    Route("/api/throughput", _throughput),
    Route("/api/series", _series),
    Route("/api/drilldown", _drilldown),
    Route("/api/audit", _audit),
    Route("/events", _events),
)
"""Every page and read of the dashboard: registered as views of the worker's web app."""


def install_dashboard(web_app: web.Application, settings: Settings,
                      hot: HotView | None = None) -> None:
    """Give ``web_app`` what the dashboard's handlers read, and its static files.

    The routes themselves are :data:`DASHBOARD_ROUTES`, registered by the app
    factory (:func:`streams.runtime.app.make_app`) with the other views of the port.
    """
    web_app[_SETTINGS] = settings
    web_app[_HOT_VIEW] = hot or HotView(settings.redis_url, settings.group_id,
                                        security=settings.redis)
    web_app[_CLOSING] = asyncio.Event()
    web_app.on_shutdown.append(_on_shutdown)
    web_app.router.add_static("/static", STATIC_DIR)


__all__ = ["DASHBOARD_ROUTES", "LiveFeed", "install_dashboard"]
